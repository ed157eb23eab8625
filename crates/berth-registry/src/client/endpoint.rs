//! Where a reference's registry is and how to speak to it, Docker's way:
//! `docker.io` (and its old name `index.docker.io`) is served by
//! `registry-1.docker.io` while credentials are filed under
//! `https://index.docker.io/v1/`; loopback addresses and the daemon's
//! `insecure-registries` may use plain HTTP.

use std::net::IpAddr;

use berth_api::Reference;

/// The domain references use for Docker Hub.
pub const HUB_DOMAIN: &str = "docker.io";
/// The host that serves Docker Hub's distribution API.
pub const HUB_API_HOST: &str = "registry-1.docker.io";
/// The key Docker files Hub credentials under (and sends as `serveraddress`).
pub const HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The host (`host[:port]`) whose `/v2/` API serves `domain`.
pub fn api_host(domain: &str) -> &str {
    if is_hub(domain) {
        HUB_API_HOST
    } else {
        domain
    }
}

fn is_hub(domain: &str) -> bool {
    matches!(
        domain,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The key of a registry's entry in `~/.docker/config.json` `auths`.
pub fn auth_key(domain: &str) -> String {
    if is_hub(domain) {
        HUB_AUTH_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// `docker login SERVER`'s argument as a registry domain: the scheme, a
/// trailing path and `/` dropped (`https://reg:5000/v2/` → `reg:5000`);
/// Docker Hub's spellings all become `docker.io`.
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() || is_hub(&host) {
        HUB_DOMAIN.to_string()
    } else {
        host
    }
}

/// A `registry-mirrors` entry as Docker takes it (`https://mirror:5000`,
/// `http://10.0.0.2/`): the scheme it is spoken to with, which is always
/// the one written (no fallback), and its `host[:port]`. An entry without
/// an http or https scheme, or with user info, a query or a fragment, is an
/// error naming it; so is a path, which berth does not serve mirrors under.
pub fn parse_mirror(url: &str) -> Result<(&'static str, String), String> {
    let u = url.trim();
    let (scheme, rest) = if let Some(r) = u.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = u.strip_prefix("http://") {
        ("http", r)
    } else {
        let scheme = u.split_once("://").map(|(s, _)| s).unwrap_or("");
        return Err(format!(
            "invalid mirror: unsupported scheme {scheme:?} in {u:?}"
        ));
    };
    if rest.contains(['?', '#']) {
        return Err(format!(
            "invalid mirror: query or fragment at end of the URI {u:?}"
        ));
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains('@') {
        return Err(format!(
            "invalid mirror: username/password not allowed in URI {u:?}"
        ));
    }
    if host.is_empty() {
        return Err(format!("invalid mirror: {u:?} is not a valid URI"));
    }
    if !path.trim_end_matches('/').is_empty() {
        return Err(format!(
            "invalid mirror: {u:?} has a path; berth reaches mirrors at /v2/ of their host"
        ));
    }
    Ok((scheme, host.to_ascii_lowercase()))
}

/// What one pull or push talks to: a repository on a registry, and the
/// tag or digest asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The reference's domain (`docker.io`, `127.0.0.1:5000`).
    pub domain: String,
    /// The host of its API (`registry-1.docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// The repository (`library/busybox`).
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl Target {
    /// The target of a parsed reference; a bare name means `latest`.
    pub fn from_reference(r: &Reference) -> Target {
        Target {
            domain: r.domain().to_string(),
            host: api_host(r.domain()).to_string(),
            repository: r.path().to_string(),
            reference: r.digest().or(r.tag()).unwrap_or("latest").to_string(),
        }
    }

    /// True when the reference is a digest (content-addressed, so no tag
    /// is made and the manifest must hash to it).
    pub fn is_digest(&self) -> bool {
        self.reference.contains(':')
    }
}

/// Registries that may be used without verified TLS: loopback, always
/// (as Docker does), and the daemon's `insecure-registries` entries, each a
/// `host[:port]` or a CIDR.
#[derive(Debug, Clone, Default)]
pub struct Insecure {
    hosts: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl Insecure {
    /// Reads `insecure-registries` entries; a malformed CIDR is an error
    /// naming it.
    pub fn new(entries: &[String]) -> Result<Insecure, String> {
        let mut out = Insecure::default();
        for e in entries {
            let e = e
                .trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if let Some((ip, bits)) = e.split_once('/') {
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("insecure-registries: invalid CIDR {e:?}"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("insecure-registries: invalid CIDR {e:?}"))?;
                out.nets.push((ip, bits));
            } else if !e.is_empty() {
                out.hosts.push(e.to_ascii_lowercase());
            }
        }
        Ok(out)
    }

    /// Whether `host_port` (`127.0.0.1:5000`, `[::1]:5000`, `reg`) is insecure.
    pub fn contains(&self, host_port: &str) -> bool {
        let hp = host_port.to_ascii_lowercase();
        if self.hosts.contains(&hp) {
            return true;
        }
        let host = host_only(&hp);
        if host == "localhost" || self.hosts.iter().any(|h| h == host) {
            return true;
        }
        let Ok(ip) = host.parse::<IpAddr>() else {
            return false;
        };
        ip.is_loopback() || self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }
}

/// The host part of `host[:port]`, brackets of IPv6 literals removed.
pub fn host_only(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target(s: &str) -> Target {
        Target::from_reference(&Reference::parse_normalized(s).unwrap())
    }

    #[test]
    fn docker_hub_conventions() {
        let t = target("busybox");
        assert_eq!(t.host, "registry-1.docker.io");
        assert_eq!(t.repository, "library/busybox");
        assert_eq!(t.reference, "latest");
        let t = target("index.docker.io/user/app:v1");
        assert_eq!(
            (t.host.as_str(), t.repository.as_str()),
            ("registry-1.docker.io", "user/app")
        );
        assert_eq!(t.reference, "v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let t = target(&format!("127.0.0.1:5000/x/y@{d}"));
        assert_eq!(t.host, "127.0.0.1:5000");
        assert!(t.is_digest());
        assert_eq!(t.reference, d);
        assert_eq!(auth_key("docker.io"), HUB_AUTH_KEY);
        assert_eq!(auth_key("reg:5000"), "reg:5000");
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_server("http://Reg:5000/v2/"), "reg:5000");
        assert_eq!(normalize_server("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn mirrors_keep_their_scheme() {
        assert_eq!(
            parse_mirror("http://127.0.0.1:5000/").unwrap(),
            ("http", "127.0.0.1:5000".to_string())
        );
        assert_eq!(
            parse_mirror("https://Mirror.example").unwrap(),
            ("https", "mirror.example".to_string())
        );
        for bad in [
            "mirror.example:5000",
            "ftp://m",
            "https://u:p@m",
            "https://m/?x=1",
            "https://m/#f",
            "https://m/sub/path",
            "http://",
        ] {
            let e = parse_mirror(bad).unwrap_err();
            assert!(e.starts_with("invalid mirror:"), "{e}");
        }
    }

    #[test]
    fn insecure_rules() {
        let i = Insecure::new(&[
            "10.1.0.0/16".into(),
            "reg.local:5000".into(),
            "plain".into(),
        ])
        .unwrap();
        assert!(i.contains("127.0.0.1:5000"));
        assert!(i.contains("127.9.9.9"));
        assert!(i.contains("[::1]:5000"));
        assert!(i.contains("localhost:5000"));
        assert!(i.contains("10.1.200.3:443"));
        assert!(!i.contains("10.2.0.1:443"));
        assert!(i.contains("reg.local:5000"));
        assert!(!i.contains("reg.local:5001"));
        assert!(i.contains("plain:1234"));
        assert!(!i.contains("registry-1.docker.io"));
        assert!(Insecure::new(&["10.0.0.0/40".into()]).is_err());
        assert!(Insecure::new(&["nonsense/8".into()]).is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}"
    }

    proptest! {
        /// Any valid name on any host maps to that host and path; names on
        /// Docker Hub go to its API host, with `library/` for one component.
        #[test]
        fn targets_follow_docker(
            first in "[a-z0-9]{1,8}([_-][a-z0-9]{1,8}){0,2}",
            rest in proptest::collection::vec(component(), 0..3),
            port in proptest::option::of(1u16..65535),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            hub in any::<bool>(),
        ) {
            // A first component with a dot would be taken for a domain.
            let comps: Vec<String> = std::iter::once(first).chain(rest).collect();
            let path = comps.join("/");
            let domain = if hub { None } else {
                Some(match port { Some(p) => format!("reg.example:{p}"), None => "reg.example".into() })
            };
            let mut s = match &domain { Some(d) => format!("{d}/{path}"), None => path.clone() };
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            let r = Reference::parse_normalized(&s).unwrap();
            let t = Target::from_reference(&r);
            prop_assert_eq!(t.reference.as_str(), tag.as_deref().unwrap_or("latest"));
            match domain {
                Some(d) => {
                    prop_assert_eq!(&t.host, &d);
                    prop_assert_eq!(&t.repository, &path);
                    prop_assert_eq!(normalize_server(&format!("https://{d}/v2/")), d.clone());
                }
                None => {
                    prop_assert_eq!(t.host.as_str(), HUB_API_HOST);
                    let want = if comps.len() == 1 { format!("library/{path}") } else { path.clone() };
                    prop_assert_eq!(&t.repository, &want);
                }
            }
            prop_assert!(!t.repository.contains(".."));
            prop_assert!(!t.repository.starts_with('/'));
        }

        /// host_only never panics and strips only a numeric port.
        #[test]
        fn host_only_strips_ports(h in "[a-z0-9.]{1,20}", p in 0u16..65535) {
            let hp = format!("{h}:{p}");
            prop_assert_eq!(host_only(&hp), h.as_str());
            prop_assert_eq!(host_only(&h), h.as_str());
        }
    }
}
