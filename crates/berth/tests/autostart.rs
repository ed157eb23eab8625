//! A fresh install needs no service set-up: the first `berth` command that
//! finds no daemon on the default socket starts one and says so. Run in a
//! private mount and network namespace with tmpfs over /run/berth and
//! /var/lib/berth, so the test neither sees nor disturbs a daemon of the
//! machine.

mod common;

use std::process::Command;

#[test]
fn first_command_starts_the_daemon() {
    for d in ["/run/berth", "/var/lib/berth"] {
        std::fs::create_dir_all(d).unwrap();
    }
    let bin = common::berth_bin();
    let tar = common::fixtures().join("busybox-rootfs.tar");
    let script = format!(
        r#"set -e
mount -t tmpfs berth-test /run/berth
mount -t tmpfs berth-test /var/lib/berth
B={bin}
$B import -c 'CMD ["sh"]' - busybox:latest < {tar} > /dev/null 2> /tmp/autostart-stderr.$$
cat /tmp/autostart-stderr.$$; rm -f /tmp/autostart-stderr.$$
echo ---
$B run --rm busybox echo hello from berth
$B version --format '{{{{.Server.Version}}}}' > /dev/null
test -S /run/berth/berth.sock
pid=$(cat /run/berth/berth.pid)
kill $pid
for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
"#,
        bin = bin.display(),
        tar = tar.display()
    );
    // Its own network namespace too: a daemon of the machine's (default
    // roots) owns the default bridge and nftables table names.
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env_remove("BERTH_HOST")
        .env_remove("BERTH_NO_AUTOSTART")
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let (first_stderr, rest) = stdout.split_once("---\n").unwrap();
    assert!(
        first_stderr.contains("started one in the background"),
        "{first_stderr}"
    );
    assert_eq!(rest, "hello from berth\n");
    // With autostart disabled and no daemon, a clear error.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs t /run/berth && BERTH_NO_AUTOSTART=1 {} ps",
            bin.display()
        ))
        .env_remove("BERTH_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Cannot connect to the berth daemon at unix:///run/berth/berth.sock"),
        "{err}"
    );
}
