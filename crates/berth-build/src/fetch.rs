//! `ADD <url>`: a plain HTTP/1.1 GET by the daemon (redirects followed,
//! chunked bodies decoded), saved to a file for the copy. `https://` needs
//! TLS, which the builder does not carry: it is refused with a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::BuildError;

fn fail(url: &str, why: impl std::fmt::Display) -> BuildError {
    BuildError::Syntax(format!("failed to download {url}: {why}"))
}

/// Splits `http://host[:port]/path` into (host:port, host, path).
fn split_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    Some((addr, authority.to_string(), path))
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
    if url.starts_with("https://") {
        return Err(fail(url, "https is not supported by this builder yet"));
    }
    let mut current = url.to_string();
    for _ in 0..10 {
        let (addr, host, path) =
            split_url(&current).ok_or_else(|| fail(url, "not an http:// URL"))?;
        let mut s = TcpStream::connect(&addr).map_err(|e| fail(url, e))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
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
            current = if loc.starts_with("http") {
                loc
            } else {
                format!("http://{host}{loc}")
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
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/a/b.txt?x=1".into()
            )
        );
        assert_eq!(split_url("http://h").unwrap().0, "h:80");
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
        assert!(download("https://x/y", &dest).is_err());
    }
}
