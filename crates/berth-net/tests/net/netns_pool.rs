//! The pool of prepared network namespaces.

use std::time::{Duration, Instant};

use berth_net::NetnsPool;

use crate::util::*;

/// Unpins whatever the test left in its directory, even when it fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten() {
                let _ = berth_net::remove_netns(&e.path());
            }
        }
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn pool_hands_out_ready_namespaces_and_refills() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let nsdir = dir.path().join("netns");
    let _cleanup = Cleanup(nsdir.clone());
    // A first daemon makes the directory a shared mount point and dies,
    // leaving a stale namespace and one still in use.
    NetnsPool::open(&nsdir, "pool", 0, &[]).unwrap();
    let stale = nsdir.join("pool-stale");
    let used = nsdir.join("pool-used");
    berth_net::create_netns(&stale).unwrap();
    berth_net::create_netns(&used).unwrap();
    let pool = NetnsPool::open(&nsdir, "pool", 2, std::slice::from_ref(&used)).unwrap();
    assert!(!stale.exists(), "stale namespace unpinned");
    assert!(used.exists(), "namespace in use kept");
    pool.fill().unwrap();
    assert_eq!(pool.ready(), 2);

    let s = Instant::now();
    let p = pool.take().unwrap();
    let took = s.elapsed();
    assert!(p.starts_with(&nsdir));
    // Loopback is up inside.
    let lo = sh(
        "nsenter",
        &[
            &format!("--net={}", p.display()),
            "ip",
            "-o",
            "link",
            "show",
            "lo",
        ],
    );
    assert!(lo.contains("UP"), "{lo}");
    // The background refill brings the pool back to 2.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.ready() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pool.ready(), 2);
    println!("pool take: {took:?}");

    // Namespaces are distinct.
    let q = pool.take().unwrap();
    assert_ne!(p, q);
    pool.release(&p).unwrap();
    pool.release(&q).unwrap();
    pool.release(&used).unwrap();
    assert!(!p.exists() && !q.exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.ready() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    pool.close().unwrap();
    let left: Vec<_> = std::fs::read_dir(&nsdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    // A refill may have raced the close: unpin whatever is left.
    for l in &left {
        berth_net::remove_netns(l).unwrap();
    }
}
