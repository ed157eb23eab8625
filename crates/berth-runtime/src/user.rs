//! `--user` resolution against the image's `/etc/passwd` and `/etc/group`,
//! read inside the container root without letting symlinks escape it.

use std::path::{Component, Path, PathBuf};

use crate::RuntimeError;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home directory ("/" when unknown), for `HOME`.
    pub home: String,
}

/// Joins `path` onto `root` resolving symlinks as if `root` were `/`: the
/// result is always inside `root` (filepath-securejoin's rule). Missing
/// components are kept as they are.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<String> = path_components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    // A loop: stop resolving; the caller gets a path that will not exist.
                    resolved = candidate;
                    continue;
                }
                let target = std::fs::read_link(&full).unwrap_or_default();
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    resolved = PathBuf::new();
                }
                for c in path_components(&t).into_iter().rev() {
                    pending.push(c);
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

fn path_components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_passwd(root: &Path) -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string(secure_join(root, "/etc/passwd")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn read_group(root: &Path) -> Vec<GroupEntry> {
    let text = std::fs::read_to_string(secure_join(root, "/etc/group")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`) the way
/// Docker does, plus `group_add` (names or numbers).
pub fn resolve(root: &Path, user: &str, group_add: &[String]) -> Result<ExecUser, RuntimeError> {
    let passwd = read_passwd(root);
    let groups = read_group(root);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let mut out = ExecUser {
        home: "/".into(),
        ..Default::default()
    };
    let mut username: Option<String> = None;
    if let Some(p) = passwd.iter().find(|p| p.name == u).or_else(|| {
        u.parse::<u32>()
            .ok()
            .and_then(|n| passwd.iter().find(|p| p.uid == n))
    }) {
        out.uid = p.uid;
        out.gid = p.gid;
        out.home = if p.home.is_empty() {
            "/".into()
        } else {
            p.home.clone()
        };
        username = Some(p.name.clone());
    } else if let Ok(n) = u.parse::<u32>() {
        out.uid = n;
    } else {
        return Err(RuntimeError::NoSuchUser(u.to_string()));
    }
    if let Some(g) = g {
        out.gid = lookup_group(&groups, g)?;
    } else if let Some(name) = &username {
        // Supplementary groups from /etc/group only when no group was given.
        for gr in groups.iter().filter(|gr| gr.members.contains(name)) {
            if gr.gid != out.gid && !out.additional_gids.contains(&gr.gid) {
                out.additional_gids.push(gr.gid);
            }
        }
    }
    for g in group_add {
        let gid = lookup_group(&groups, g)?;
        if !out.additional_gids.contains(&gid) {
            out.additional_gids.push(gid);
        }
    }
    Ok(out)
}

fn lookup_group(groups: &[GroupEntry], g: &str) -> Result<u32, RuntimeError> {
    if let Some(gr) = groups.iter().find(|gr| gr.name == g) {
        return Ok(gr.gid);
    }
    g.parse::<u32>()
        .map_err(|_| RuntimeError::NoSuchGroup(g.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root\nwww:x:33:\nextra:x:99:www\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn docker_rules() {
        let t = rootfs();
        let r = resolve(t.path(), "", &[]).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone(), r.home.as_str()),
            (0, 0, vec![10], "/root")
        );
        let w = resolve(t.path(), "www", &[]).unwrap();
        assert_eq!((w.uid, w.gid, w.additional_gids), (33, 33, vec![99]));
        let n = resolve(t.path(), "1234:5", &[]).unwrap();
        assert_eq!((n.uid, n.gid), (1234, 5));
        let g = resolve(t.path(), "33:wheel", &["extra".into()]).unwrap();
        assert_eq!((g.uid, g.gid, g.additional_gids), (33, 10, vec![99]));
        assert_eq!(
            resolve(t.path(), "nobody", &[]).unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(resolve(t.path(), "www:nogroup", &[]).is_err());
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        // An image whose /etc/passwd points at the host's file.
        std::os::unix::fs::symlink("/etc/shadow", t.path().join("etc/passwd")).unwrap();
        assert_eq!(
            secure_join(t.path(), "/etc/passwd"),
            t.path().join("etc/shadow")
        );
        std::os::unix::fs::symlink("../../../../..", t.path().join("up")).unwrap();
        assert_eq!(secure_join(t.path(), "/up/etc/x"), t.path().join("etc/x"));
        std::os::unix::fs::symlink("loop", t.path().join("loop")).unwrap();
        assert!(secure_join(t.path(), "/loop").starts_with(t.path()));
    }
}
