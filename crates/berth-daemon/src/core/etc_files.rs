//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` of a container,
//! written as Docker writes them and bind-mounted in.

use std::path::Path;

use crate::error::{DaemonError, Result};

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text)
        .map_err(|e| DaemonError::Internal(format!("write {}: {e}", p.display())))
}

/// Writes the three files into `dir`.
pub(super) fn write_all(
    dir: &Path,
    hostname: &str,
    domainname: &str,
    extra_hosts: &[String],
) -> Result<()> {
    write(&dir.join("hostname"), &format!("{hostname}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let fqdn = if domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    // Without a network address yet the hostname resolves to loopback, so
    // tools that look themselves up (hostname -i, sudo) still work.
    hosts.push_str(&format!("127.0.1.1\t{fqdn}\n"));
    write(&dir.join("hosts"), &hosts)?;
    write(
        &dir.join("resolv.conf"),
        &resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
    )
}

/// The host's resolv.conf without loopback nameservers (unreachable from a
/// container); Google's public resolvers when none is left, as Docker does.
pub(super) fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_dropped() {
        let r = resolv_conf("search lan\nnameserver 127.0.0.53\noptions edns0\n");
        assert_eq!(
            r,
            "search lan\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let r = resolv_conf("nameserver 10.0.0.1\n");
        assert_eq!(r, "nameserver 10.0.0.1\n");
    }
}
