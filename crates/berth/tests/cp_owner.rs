//! Who owns what `cp` copies (issue 9, `cp -a`): into a container the
//! tar's owners are kept, and `-a` (`copyUIDGID=1`) gives the files to the
//! container's user when it has one, as dockerd does; out of a container
//! files belong to the user running `cp`, and `-a` keeps the container's
//! owners.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::Daemon;

/// (uid, gid) of each entry of a tar, by name.
fn tar_owners(tar: &[u8]) -> Vec<(String, u64, u64)> {
    let mut ar = tar::Archive::new(tar);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

/// Owners of a path in a container, read back as a tar through our CLI.
fn owners_in(d: &Daemon, container_path: &str) -> Vec<(String, u64, u64)> {
    let mut cmd = std::process::Command::new(common::berth_bin());
    cmd.args(["-H", &d.host(), "cp", container_path, "-"])
        .env("BERTH_NO_AUTOSTART", "1");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tar_owners(&out.stdout)
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

/// A local tree owned by 1234:5678: `tree/`, `tree/f`, `tree/link`.
fn local_tree(root: &Path) -> String {
    let t = root.join("tree");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("f"), "data").unwrap();
    std::os::unix::fs::symlink("f", t.join("link")).unwrap();
    for p in [t.join("f"), t.clone()] {
        std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    }
    std::os::unix::fs::lchown(t.join("link"), Some(1234), Some(5678)).unwrap();
    t.display().to_string()
}

#[test]
fn cp_into_container_keeps_or_maps_owners() {
    let d = Daemon::start();
    d.busybox();
    let tree = local_tree(d.dir.path());
    d.berth(&["create", "--name", "plain", "busybox"]).ok();
    d.berth(&["create", "--name", "asuser", "--user", "nobody", "busybox"])
        .ok();

    // Without -a, both CLIs: the tar's owners, as dockerd keeps them.
    d.berth(&["cp", &tree, "plain:/tmp/ours"]).ok();
    d.docker(&["cp", &tree, "plain:/tmp/theirs"]).ok();
    for dir in ["/tmp/ours", "/tmp/theirs"] {
        let o = owners_in(&d, &format!("plain:{dir}"));
        assert!(!o.is_empty());
        assert!(
            o.iter().all(|(_, u, g)| (*u, *g) == (1234, 5678)),
            "{dir}: {o:?}"
        );
    }
    // -a into a container without a user: the same.
    d.berth(&["cp", "-a", &tree, "plain:/tmp/archived"]).ok();
    let o = owners_in(&d, "plain:/tmp/archived");
    assert!(o.iter().all(|(_, u, g)| (*u, *g) == (1234, 5678)), "{o:?}");

    // -a into a container that runs as `nobody`: everything is nobody's
    // (65534:65534 in the container's own /etc/passwd), links included.
    d.berth(&["cp", "-a", &tree, "asuser:/tmp/ours"]).ok();
    d.docker(&["cp", "--archive", &tree, "asuser:/tmp/theirs"])
        .ok();
    for dir in ["/tmp/ours", "/tmp/theirs"] {
        let o = owners_in(&d, &format!("asuser:{dir}"));
        assert_eq!(o.len(), 3, "{o:?}");
        assert!(
            o.iter().all(|(_, u, g)| (*u, *g) == (65534, 65534)),
            "{dir}: {o:?}"
        );
    }
    // Without -a that container still gets the tar's owners.
    d.berth(&["cp", &tree, "asuser:/tmp/plain"]).ok();
    let o = owners_in(&d, "asuser:/tmp/plain");
    assert!(o.iter().all(|(_, u, g)| (*u, *g) == (1234, 5678)), "{o:?}");

    // A running container is seen the same way from inside.
    d.berth(&[
        "run", "-d", "--name", "live", "--user", "daemon", "busybox", "sleep", "60",
    ])
    .ok();
    d.berth(&["cp", "-a", &tree, "live:/tmp/"]).ok();
    let out = d
        .berth(&["exec", "live", "stat", "-c", "%u:%g", "/tmp/tree/f"])
        .ok()
        .to_string();
    assert_eq!(out, "1:1\n");
}

#[test]
fn cp_out_of_container_owners_with_and_without_archive() {
    let d = Daemon::start();
    d.busybox();
    let tree = local_tree(d.dir.path());
    d.berth(&["create", "--name", "src", "busybox"]).ok();
    d.berth(&["cp", &tree, "src:/srv"]).ok();
    let out = d.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // Without -a: the files are the invoking user's (root here).
    let plain = out.join("plain");
    d.berth(&["cp", "src:/srv", &plain.display().to_string()])
        .ok();
    assert_eq!(owner(&plain.join("f")), (0, 0));
    assert_eq!(owner(&plain), (0, 0));
    let theirs = out.join("theirs");
    d.docker(&["cp", "src:/srv", &theirs.display().to_string()])
        .ok();
    assert_eq!(owner(&theirs.join("f")), (0, 0));

    // With -a our CLI keeps the container's owners, links included.
    let kept = out.join("kept");
    d.berth(&["cp", "-a", "src:/srv", &kept.display().to_string()])
        .ok();
    assert_eq!(owner(&kept.join("f")), (1234, 5678));
    assert_eq!(owner(&kept.join("link")), (1234, 5678));
    assert_eq!(owner(&kept), (1234, 5678));
    assert_eq!(std::fs::read_to_string(kept.join("f")).unwrap(), "data");
    // A single file too.
    let one = out.join("one");
    d.berth(&["cp", "--archive", "src:/srv/f", &one.display().to_string()])
        .ok();
    assert_eq!(owner(&one), (1234, 5678));

    // The tar stream (`-`) always carries the owners.
    let o = owners_in(&d, "src:/srv/f");
    assert_eq!(o, vec![("f".to_string(), 1234, 5678)]);
}
