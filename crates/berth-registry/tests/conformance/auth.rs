//! Authentication (htpasswd Basic, Docker's token flow), per-repository
//! permissions, TLS, and the settings (`--config`, `--print-config`).

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::json;

use super::common::*;

/// A config file with access rules: alice may do everything; bob may
/// pull everything and push to bob/*; anyone may pull public/*.
fn rules_config(dir: &Path, extra: &str) -> String {
    let p = dir.join("registry.toml");
    std::fs::write(
        &p,
        format!(
            r#"{extra}
[[auth.access]]
account = "alice"
repository = "*"
actions = ["*"]

[[auth.access]]
account = "bob"
repository = "*"
actions = ["pull"]

[[auth.access]]
account = "bob"
repository = "bob/*"
actions = ["push"]

[[auth.access]]
account = "anonymous"
repository = "public/*"
actions = ["pull"]
"#
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn basic_auth_and_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret"), ("bob", "hunter2")]);
    let cfg = rules_config(
        tmp.path(),
        &format!("[auth]\nhtpasswd = {:?}", ht.to_str().unwrap()),
    );
    let reg = Registry::start(&["--config", &cfg]);

    // No credentials: 401 with a Basic challenge and UNAUTHORIZED.
    let anon = reg.api();
    let r = anon.get("/v2/").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "UNAUTHORIZED");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    let r = anon.get("/v2/alice/app/tags/list").await;
    assert_eq!(r.status, 401);
    // Wrong password, unknown user: 401.
    assert_eq!(
        reg.api().basic("alice", "wrong").get("/v2/").await.status,
        401
    );
    assert_eq!(
        reg.api()
            .basic("mallory", "secret")
            .get("/v2/")
            .await
            .status,
        401
    );

    let alice = reg.api().basic("alice", "secret");
    assert_eq!(alice.get("/v2/").await.status, 200);
    let (_, md, blobs) = alice.push_image("alice/app", "v1", 1).await;
    alice.push_image("public/base", "v1", 0).await;

    // bob may pull alice/app, not push or delete there.
    let bob = reg.api().basic("bob", "hunter2");
    assert_eq!(bob.get("/v2/alice/app/manifests/v1").await.status, 200);
    let r = bob
        .req("POST", "/v2/alice/app/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "DENIED"));
    let r = bob.delete(&format!("/v2/alice/app/manifests/{md}")).await;
    assert_eq!((r.status, r.code().as_str()), (403, "DENIED"));
    // ... and may push to bob/*, mounting from what he can read.
    bob.push_image("bob/tool", "v1", 1).await;
    let r = bob
        .req(
            "POST",
            &format!(
                "/v2/bob/tool/blobs/uploads/?mount={}&from=alice/app",
                blobs[1]
            ),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 201);
    let r = bob
        .delete(&format!("/v2/bob/tool/blobs/{}", blobs[1]))
        .await;
    assert_eq!(r.status, 403, "bob has no delete on bob/*");

    // Anonymous callers may pull public/* only.
    assert_eq!(anon.get("/v2/public/base/manifests/v1").await.status, 200);
    assert_eq!(anon.get("/v2/alice/app/manifests/v1").await.status, 401);

    // The catalog lists what the caller may pull.
    let r = bob.get("/v2/_catalog").await;
    assert_eq!(
        r.json()["repositories"],
        json!(["alice/app", "bob/tool", "public/base"])
    );
}

/// Fetches a token from the realm of `challenge` for `scope`.
async fn fetch_token(api: &Api, challenge: &str, scope: &str) -> Resp {
    let realm = challenge
        .split("realm=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no realm in {challenge}"));
    let service = challenge
        .split("service=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    api.get(&format!("{realm}?service={service}&scope={scope}"))
        .await
}

#[tokio::test]
async fn token_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret"), ("bob", "hunter2")]);
    let cfg = rules_config(tmp.path(), "");
    let reg = Registry::start(&[
        "--config",
        &cfg,
        "--htpasswd",
        ht.to_str().unwrap(),
        "--auth-token",
        "--auth-token-ttl",
        "3s",
    ]);
    let anon = reg.api();

    // The challenge names our realm, service and the scope needed.
    let r = anon.get("/v2/").await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}/token\",service=\"berth-registry\"",
            reg.url
        )
    );
    let r = anon
        .req("POST", "/v2/alice/app/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(r.status, 401);
    let push_challenge = r.header("www-authenticate").unwrap();
    assert!(
        push_challenge.contains("scope=\"repository:alice/app:pull,push\""),
        "{push_challenge}"
    );

    // alice gets a token for pull,push and pushes with it.
    let alice_basic = reg.api().basic("alice", "secret");
    let r = fetch_token(
        &alice_basic,
        &push_challenge,
        "repository:alice/app:pull,push",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 3);
    let alice = reg.api().with_auth(&format!("Bearer {token}"));
    assert_eq!(alice.get("/v2/").await.status, 200);
    let (_, md, _) = alice.push_image("alice/app", "v1", 1).await;

    // The token covers alice/app only: elsewhere, insufficient_scope.
    let r = alice.get("/v2/other/tags/list").await;
    assert_eq!(r.status, 401);
    let c = r.header("www-authenticate").unwrap();
    assert!(
        c.contains("error=\"insufficient_scope\"") && c.contains("repository:other:pull"),
        "{c}"
    );
    // ... and no delete.
    let r = alice.delete(&format!("/v2/alice/app/manifests/{md}")).await;
    assert_eq!(r.status, 401);

    // bob asks for pull,push on alice/app and gets pull only; pushing with
    // that token is 403 DENIED (asking again would not help).
    let bob_basic = reg.api().basic("bob", "hunter2");
    let r = fetch_token(
        &bob_basic,
        &push_challenge,
        "repository:alice/app:pull,push",
    )
    .await;
    assert_eq!(r.json()["scope"], "repository:alice/app:pull");
    let bob = reg
        .api()
        .with_auth(&format!("Bearer {}", r.json()["token"].as_str().unwrap()));
    assert_eq!(bob.get("/v2/alice/app/manifests/v1").await.status, 200);
    let r = bob
        .req("POST", "/v2/alice/app/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "DENIED"));

    // Wrong password at the token endpoint: 401.
    let r = fetch_token(
        &reg.api().basic("bob", "nope"),
        &push_challenge,
        "repository:x:pull",
    )
    .await;
    assert_eq!(r.status, 401);

    // Anonymous tokens carry what anonymous may do.
    // (Basic credentials are taken in token mode too.)
    alice_basic.push_image("public/base", "v1", 0).await;
    let r = fetch_token(&anon, &challenge, "repository:public/base:pull").await;
    let anon_tok = reg
        .api()
        .with_auth(&format!("Bearer {}", r.json()["token"].as_str().unwrap()));
    assert_eq!(
        anon_tok.get("/v2/public/base/manifests/v1").await.status,
        200
    );
    assert_eq!(anon_tok.get("/v2/alice/app/manifests/v1").await.status, 401);

    // Forged tokens: widened claims, another signer, alg none, garbage.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims["access"] =
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull", "push", "delete"]}]);
    let widened = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(claims.to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64URL.encode(claims.to_string())
    );
    let resigned = format!("{}.{}.{}", parts[0], parts[1], B64URL.encode([7u8; 32]));
    for forged in [widened, none, resigned, "garbage".to_string()] {
        let api = reg.api().with_auth(&format!("Bearer {forged}"));
        let r = api.delete(&format!("/v2/alice/app/manifests/{md}")).await;
        assert_eq!(r.status, 401, "{forged}");
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""));
        assert_eq!(api.get("/v2/alice/app/manifests/v1").await.status, 401);
    }

    // The OAuth2 form: password grant with a refresh token, then a
    // refresh grant.
    let form = "grant_type=password&username=alice&password=secret&service=berth-registry\
                &client_id=test&access_type=offline&scope=repository%3Aalice%2Fapp%3Apull";
    let r = anon
        .req(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let form = format!("grant_type=refresh_token&refresh_token={refresh}&service=berth-registry&scope=repository%3Aalice%2Fapp%3Apull");
    let r = anon.req("POST", "/token", &[], form.into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["access_token"].as_str().unwrap().to_owned();
    let api = reg.api().with_auth(&format!("Bearer {t}"));
    assert_eq!(api.get("/v2/alice/app/manifests/v1").await.status, 200);
    // A refresh token is not an access token.
    let api = reg.api().with_auth(&format!("Bearer {refresh}"));
    assert_eq!(api.get("/v2/alice/app/manifests/v1").await.status, 401);
    let form = "grant_type=password&username=alice&password=bad";
    assert_eq!(
        anon.req("POST", "/token", &[], form.as_bytes().to_vec())
            .await
            .status,
        401
    );

    // Tokens expire.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = alice.get("/v2/alice/app/manifests/v1").await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn tls_serves_https_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    let reg = Registry::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(reg.url.starts_with("https://"), "{}", reg.url);

    // A client that trusts the certificate.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(&reg.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/v2/")
        .header("host", &reg.addr)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = Api::new(&format!("http://{}", reg.addr));
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&plain.base[7..])
            .await
            .unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    })
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&r).contains("registry/2.0"));

    // A missing key is refused at start, naming the file.
    let out = std::process::Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(tmp.path().join("root2"))
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/key.pem"), "{err}");
}

#[test]
fn settings_from_file_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = rules_config(
        tmp.path(),
        "addr = \"127.0.0.1:5999\"\nread_only = true\n[gc]\ngrace_period = \"30m\"",
    );
    let out = std::process::Command::new(bin())
        .args([
            "serve",
            "--config",
            &cfg,
            "--root",
            "/srv/reg",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(printed["addr"].as_str(), Some("127.0.0.1:5999"));
    assert_eq!(printed["root"].as_str(), Some("/srv/reg"));
    assert_eq!(printed["read_only"].as_bool(), Some(true));
    assert_eq!(printed["gc"]["grace_period"].as_str(), Some("30m"));
    assert_eq!(printed["auth"]["access"].as_array().unwrap().len(), 4);

    // Mistakes name what is wrong.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[auth]\ntoken_ttl = \"soon\"\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--print-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.token_ttl"));
    let out = std::process::Command::new(bin())
        .args(["serve", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let ht = tmp.path().join("md5.htpasswd");
    std::fs::write(&ht, "bob:$apr1$abc$def\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(tmp.path().join("r"))
        .arg("--htpasswd")
        .arg(&ht)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("md5.htpasswd line 1") && err.contains("bcrypt"),
        "{err}"
    );
}
