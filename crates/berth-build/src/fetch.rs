//! `ADD <url>`: a plain HTTP/1.1 GET by the daemon (redirects followed,
//! chunked bodies decoded), saved to a file for the copy. `https://` goes
//! through rustls with the system's roots (`SSL_CERT_FILE` first, as
//! OpenSSL does); a certificate they do not vouch for is an error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::BuildError;

fn fail(url: &str, why: impl std::fmt::Display) -> BuildError {
    BuildError::Syntax(format!("failed to download {url}: {why}"))
}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    https: bool,
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header (as written in the URL).
    host: String,
    /// The host name alone, for TLS.
    name: String,
    path: String,
}

/// Splits `http[s]://host[:port]/path`.
fn split_url(url: &str) -> Option<Url> {
    let (https, rest) = match url.strip_prefix("https://") {
        Some(r) => (true, r),
        None => (false, url.strip_prefix("http://")?),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    let has_port = authority.contains(':') && !authority.ends_with(']');
    let addr = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{}", if https { 443 } else { 80 })
    };
    let name = if has_port {
        &authority[..authority.rfind(':').unwrap_or(authority.len())]
    } else {
        authority
    };
    let name = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let path = path.split('#').next().unwrap_or("/").to_string();
    Some(Url {
        https,
        addr,
        host: authority.to_string(),
        name,
        path,
    })
}

/// Where the system's trusted roots are on common distributions.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| {
            SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        });
    let mut roots = rustls::RootCertStore::empty();
    if let Some(b) = bundle {
        let certs = CertificateDer::pem_file_iter(&b)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", b.display()))?;
        // One odd certificate in a system bundle must not refuse them all.
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A connection, plain or TLS.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn connect(u: &Url) -> Result<Box<dyn Conn>, String> {
    let s = TcpStream::connect(&u.addr).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    if !u.https {
        return Ok(Box::new(s));
    }
    let name = rustls::pki_types::ServerName::try_from(u.name.clone())
        .map_err(|e| format!("invalid host name {:?}: {e}", u.name))?;
    let conn = rustls::ClientConnection::new(tls_config()?, name).map_err(|e| e.to_string())?;
    Ok(Box::new(rustls::StreamOwned::new(conn, s)))
}

/// The file name ADD gives a download: the URL path's last segment.
pub(crate) fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    match after_scheme.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// Downloads `url` into `dest` (created, mode 0600 as Docker leaves it).
pub(crate) fn download(url: &str, dest: &Path) -> Result<(), BuildError> {
    let mut current = url.to_string();
    for _ in 0..10 {
        let u = split_url(&current).ok_or_else(|| fail(url, "not an http(s):// URL"))?;
        let (host, path) = (&u.host, &u.path);
        let mut s = connect(&u).map_err(|e| fail(url, e))?;
        // One write: a server may answer (and close) after the first packet.
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-build\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).map_err(|e| fail(url, e))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| fail(url, e))?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| fail(url, format!("bad response {status:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).map_err(|e| fail(url, e))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if matches!(code, 301 | 302 | 303 | 307 | 308) {
            let loc = header("location").ok_or_else(|| fail(url, "redirect without Location"))?;
            current = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc
            } else {
                let scheme = if u.https { "https" } else { "http" };
                format!("{scheme}://{host}{loc}")
            };
            continue;
        }
        if code != 200 {
            return Err(fail(url, format!("{} {}", code, status.trim())));
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dest)
            .map_err(|e| fail(url, e))?;
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).map_err(|e| fail(url, e))?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| fail(url, "bad chunk"))?;
                if n == 0 {
                    break;
                }
                let mut buf = vec![0u8; n];
                r.read_exact(&mut buf).map_err(|e| fail(url, e))?;
                f.write_all(&buf).map_err(|e| fail(url, e))?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf).map_err(|e| fail(url, e))?;
            }
        } else if let Some(len) = header("content-length").and_then(|l| l.parse::<u64>().ok()) {
            let copied = std::io::copy(&mut r.take(len), &mut f).map_err(|e| fail(url, e))?;
            if copied != len {
                return Err(fail(
                    url,
                    "the connection closed before the end of the body",
                ));
            }
        } else {
            std::io::copy(&mut r, &mut f).map_err(|e| fail(url, e))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail(url, e))?;
        return Ok(());
    }
    Err(fail(url, "too many redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a/b.txt?x=1").unwrap(),
            Url {
                https: false,
                addr: "127.0.0.1:8080".into(),
                host: "127.0.0.1:8080".into(),
                name: "127.0.0.1".into(),
                path: "/a/b.txt?x=1".into()
            }
        );
        assert_eq!(split_url("http://h").unwrap().addr, "h:80");
        let u = split_url("https://[::1]/x").unwrap();
        assert_eq!(
            (u.https, u.addr.as_str(), u.name.as_str()),
            (true, "[::1]:443", "::1")
        );
        assert!(split_url("ftp://h/x").is_none());
        assert_eq!(url_file_name("http://h/a/b.txt?x"), "b.txt");
        assert_eq!(url_file_name("http://h"), "");
    }

    #[test]
    fn downloads_with_redirect_and_chunks() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = std::thread::spawn(move || {
            for (i, s) in l.incoming().take(2).enumerate() {
                let mut s = s.unwrap();
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                if i == 0 {
                    let _ = s.write_all(
                        b"HTTP/1.1 302 Found\r\nLocation: /real\r\nContent-Length: 0\r\n\r\n",
                    );
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
                }
            }
        });
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("f");
        download(&format!("http://127.0.0.1:{port}/start"), &dest).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "abcde");
        srv.join().unwrap();
        // Nothing listens there: a clear error, no file.
        let e = download(&format!("https://127.0.0.1:{port}/y"), &t.path().join("g"));
        assert!(e.unwrap_err().to_string().contains("failed to download"));
        assert!(!t.path().join("g").exists());
    }
}
