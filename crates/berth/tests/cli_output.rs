//! The CLI's output beside the real docker CLI on the same daemon (issue
//! 10): `--format` (templates, `table …`, `json`, `raw`) and table layout of
//! `network ls`, `volume ls`, `stats`, `system df` (`-v`), `info` and
//! `version`; config.json's `networksFormat`/`volumesFormat`/`statsFormat`;
//! `NEventsListener`; `Config.Healthcheck`'s key order; `completion`,
//! `help <cmd>`, and every `docker <object> <verb>` spelling.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{berth_bin, Daemon, Run};

/// Runs `args` through both CLIs until they print the same (a column like
/// CREATED may tick between the two runs) and asserts they do.
#[track_caller]
fn same(d: &Daemon, args: &[&str]) {
    let mut last = (String::new(), String::new());
    for _ in 0..3 {
        let ours = d.berth(args);
        let theirs = d.docker(args);
        assert_eq!(
            ours.code, theirs.code,
            "{args:?}: exit codes differ\nberth: {ours:?}\ndocker: {theirs:?}"
        );
        let o = format!("{}{}", ours.stdout, ours.stderr);
        // docker joins a volume's labels in Go's map order (random); ours
        // are sorted.
        let t = format!("{}{}", theirs.stdout, theirs.stderr).replace("c.d-e=f,a=b", "a=b,c.d-e=f");
        if o == t {
            return;
        }
        last = (o, t);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(last.0, last.1, "{args:?}");
}

/// `berth ARGS` with `DOCKER_CONFIG` pointing at `cfg`.
fn berth_with_config(d: &Daemon, cfg: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(berth_bin())
        .args(["-H", &d.host()])
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .env("DOCKER_CONFIG", cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn network_and_volume_ls_formats_match_docker() {
    let d = Daemon::start();
    d.berth(&["network", "create", "--label", "com.x.tier=db", "n10"])
        .ok();
    d.berth(&["network", "create", "--internal", "n2"]).ok();
    d.berth(&[
        "volume", "create", "--label", "a=b", "--label", "c.d-e=f", "v10",
    ])
    .ok();
    d.berth(&["volume", "create", "v2"]).ok();
    for format in [
        "",
        "table",
        "json",
        "raw",
        "{{json .}}",
        "{{.Name}} {{.Label \"com.x.tier\"}}",
        "table {{.Name}}\t{{.ID}}\t{{.CreatedAt}}\t{{.Labels}}\t{{.IPv4}}\t{{.IPv6}}\t{{.Internal}}\t{{.Scope}}\t{{.Label \"com.x.tier\"}}",
        "{{.Nope}}",
        "{{.Name",
    ] {
        same(&d, &["network", "ls", "--format", format]);
        same(&d, &["network", "ls", "-q", "--format", format]);
    }
    same(&d, &["network", "ls", "--no-trunc"]);
    same(&d, &["network", "ls", "-q"]);
    same(&d, &["network", "list", "--filter", "name=n1"]);
    for format in [
        "",
        "table",
        "json",
        "raw",
        "{{.Name}}:{{.Label \"a\"}}",
        "table {{.Name}}\t{{.Mountpoint}}\t{{.Scope}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}\t{{.Status}}\t{{.Group}}\t{{.Availability}}\t{{.Label \"c.d-e\"}}",
        "{{.Nope}}",
    ] {
        same(&d, &["volume", "ls", "--format", format]);
        same(&d, &["volume", "ls", "-q", "--format", format]);
    }
    same(&d, &["volume", "list", "--filter", "label=a=b"]);
    // The JSON line of a network carries Go's time.String() of its
    // creation (`2026-01-02 03:04:05.123456789 +0000 UTC`).
    let line = d
        .berth(&["network", "ls", "--filter", "name=n10", "--format", "json"])
        .ok()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert!(
        v["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"),
        "{v}"
    );
    assert_eq!(v["Labels"], "com.x.tier=db");
}

#[test]
fn config_json_list_formats_are_honoured() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["volume", "create", "cv"]).ok();
    d.berth(&["create", "--name", "cs", "busybox", "true"]).ok();
    let cfg = d.dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        r#"{"networksFormat": "N {{.Name}}", "volumesFormat": "V {{.Name}}", "statsFormat": "S {{.Name}}"}"#,
    )
    .unwrap();
    assert_eq!(
        berth_with_config(&d, &cfg, &["network", "ls"]),
        "N bridge\nN host\nN none\n"
    );
    assert_eq!(berth_with_config(&d, &cfg, &["volume", "ls"]), "V cv\n");
    assert_eq!(
        berth_with_config(&d, &cfg, &["stats", "--no-stream", "cs"]),
        "S cs\n"
    );
    // --format and -q win over the file.
    assert_eq!(
        berth_with_config(&d, &cfg, &["volume", "ls", "--format", "{{.Driver}}"]),
        "local\n"
    );
    assert_eq!(berth_with_config(&d, &cfg, &["volume", "ls", "-q"]), "cv\n");
}

#[test]
fn stats_formats_match_docker() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["create", "--name", "s1", "busybox", "true"]).ok();
    d.berth(&["create", "--name", "s2", "busybox", "true"]).ok();
    d.berth(&["run", "-d", "--name", "s3", "busybox", "sleep", "100"])
        .ok();
    // Stopped containers' numbers are all zero, so whole tables compare.
    for format in [
        "table",
        "json",
        "{{json .}}",
        "table {{.Name}}\t{{.ID}}\t{{.Container}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
        "{{.Container}}: {{.Name}} {{upper .Name}}",
        "{{.Nope}}",
        "{{.Name",
    ] {
        same(&d, &["stats", "--no-stream", "--format", format, "s1", "s2"]);
    }
    same(&d, &["stats", "--no-stream", "--no-trunc", "s1"]);
    same(
        &d,
        &[
            "stats",
            "--no-stream",
            "-a",
            "--format",
            "table {{.Name}}\t{{.ID}}",
        ],
    );
    same(&d, &["stats", "--no-stream", "nosuch"]);
}

#[test]
fn system_df_matches_docker() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["volume", "create", "dv"]).ok();
    d.berth(&["volume", "create", "unused"]).ok();
    d.berth(&[
        "create", "--name", "dfc", "-v", "dv:/data", "--label", "k=v", "busybox", "true",
    ])
    .ok();
    d.berth(&["create", "--name", "dfc2", "busybox", "sleep", "1"])
        .ok();
    d.berth(&["tag", "busybox", "other:1"]).ok();
    for args in [
        &["system", "df"][..],
        &["system", "df", "--format", "json"],
        &["system", "df", "--format", "raw"],
        &["system", "df", "--format", "table {{.Type}}\t{{.Reclaimable}}"],
        &["system", "df", "--format", "{{.Type}}={{.Size}}"],
        &["system", "df", "--format", "{{.Nope}}"],
        &["system", "df", "--format", "{{.Nope"],
        &["system", "df", "-v"],
        &["system", "df", "-v", "--format", "json"],
        &["system", "df", "-v", "--format", "raw"],
        &[
            "system",
            "df",
            "-v",
            "--format",
            "{{range .Images}}{{.ID}} {{.Repository}}:{{.Tag}}{{end}}|{{len .Containers}}|{{range .Volumes}}{{.Name}}={{.Links}} {{end}}",
        ],
        &["system", "df", "-v", "--format", "{{.Nope}}"],
    ] {
        same(&d, args);
    }
}

#[test]
fn info_and_version_formats_match_docker() {
    let d = Daemon::start();
    d.busybox();
    for args in [
        &["info", "--format", "{{.Driver}} {{.NCPU}} {{.OSType}} {{json .Plugins}} {{json .Swarm}}"][..],
        &["info", "--format", "{{json .RegistryConfig}} {{.ContainerdCommit.ID}} {{json .CDISpecDirs}} {{json .GenericResources}}"],
        &["info", "--format", "{{.Nope}}"],
        &["info", "--format", "{{.Name}} {{.Nope}}"],
        &["info", "--format", "{{.CPUCfsPeriod}} {{.HTTPProxy}}|"],
        &["info", "--format", "{{.Nope"],
        &["version", "--format", "{{.Server.Os}} {{.Nope}}"],
        &["version", "--format", "{{.Nope"],
        &["system", "info", "--format", "{{.Containers}} {{.Images}}"],
        &["version", "--format", "{{json .Server}}"],
        &["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"],
    ] {
        same(&d, args);
    }
    // The whole JSON reads as docker's (the same keys in the same order),
    // apart from the client's own part and what changes between calls.
    let norm = |s: &str| {
        let body = s.split(",\"ClientInfo\"").next().unwrap().to_string();
        body.split(',')
            .filter(|kv| !kv.starts_with("\"SystemTime\"") && !kv.starts_with("\"NFd\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ours = d.berth(&["info", "--format", "json"]).ok().to_string();
    let theirs = d.docker(&["info", "--format", "json"]).ok().to_string();
    assert_eq!(norm(&ours), norm(&theirs));
    let v: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(v["ClientInfo"]["Context"], "default");
    assert_eq!(v["ClientInfo"]["Plugins"], serde_json::json!([]));
    // The server part of `info` is laid out as docker lays it out.
    let ours = d.berth(&["info"]).ok().to_string();
    let theirs = d.docker(&["info"]).ok().to_string();
    // docker prints the runtimes in Go's map order (random): compare them
    // sorted.
    let server = |s: &str| {
        s.split("\nServer:\n")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("System Time"))
            .map(|l| match l.strip_prefix(" Runtimes:") {
                Some(names) => {
                    let mut names: Vec<&str> = names.split_whitespace().collect();
                    names.sort();
                    format!(" Runtimes: {}", names.join(" "))
                }
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(server(&ours), server(&theirs));
}

/// `GET /info`'s `NEventsListener` as a CLI reads it.
fn listeners(d: &Daemon) -> String {
    d.docker(&["info", "--format", "{{.NEventsListener}}"])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn info_counts_live_event_listeners() {
    let d = Daemon::start();
    assert_eq!(listeners(&d), "0");
    let mut subscribers: Vec<std::process::Child> = (0..2)
        .map(|_| {
            Command::new(berth_bin())
                .args(["-H", &d.host(), "events"])
                .env("BERTH_NO_AUTOSTART", "1")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = listeners(&d);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "NEventsListener {got}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("2");
    assert_eq!(
        d.berth(&["info", "--format", "{{.NEventsListener}}"]).ok(),
        "2\n"
    );
    let debug = d.berth(&["-D", "info"]).ok().to_string();
    assert!(debug.contains("  EventsListeners: 2\n"), "{debug}");
    for c in &mut subscribers {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    // A subscriber that went away is no longer counted.
    wait_for("0");
}

#[test]
fn healthcheck_keys_in_dockers_order() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "create",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-retries",
        "4",
        "--health-interval",
        "2s",
        "--health-start-interval",
        "1s",
        "--health-timeout",
        "3s",
        "--health-start-period",
        "5s",
        "busybox",
    ])
    .ok();
    d.docker(&["create", "--name", "hc2", "--health-cmd", "true", "busybox"])
        .ok();
    let want = r#"{"Test":["CMD-SHELL","true"],"Interval":2000000000,"Timeout":3000000000,"StartPeriod":5000000000,"StartInterval":1000000000,"Retries":4}"#;
    for name in ["hc", "hc2"] {
        same(&d, &["inspect", "-f", "{{json .Config.Healthcheck}}", name]);
    }
    assert_eq!(
        d.berth(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hc"])
            .ok()
            .trim(),
        want
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hc2"])
            .ok()
            .trim(),
        r#"{"Test":["CMD-SHELL","true"]}"#
    );
    // The raw API answer keeps the order too.
    let r = d.request("GET", "/v1.45/containers/hc/json", None).unwrap();
    assert!(r.body_string().contains(&format!("\"Healthcheck\":{want}")));
}

/// `berth ARGS` with no daemon anywhere (for commands that need none).
fn berth_offline(args: &[&str]) -> Run {
    let out = Command::new(berth_bin())
        .args(["-H", "unix:///nonexistent/berth.sock"])
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn completion_scripts_need_no_daemon_and_load() {
    let bash = berth_offline(&["completion", "bash"]);
    let script = bash.ok();
    assert!(script.contains("_berth()"), "{script}");
    for verb in ["ps", "images", "network", "volume", "completion"] {
        assert!(script.contains(verb), "{verb} missing");
    }
    // bash reads it and registers the function.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.bash");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p berth", path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("-F _berth berth"));
    assert!(berth_offline(&["completion", "zsh"])
        .ok()
        .starts_with("#compdef berth"));
    assert!(berth_offline(&["completion", "fish"])
        .ok()
        .contains("complete -c berth"));
    assert!(berth_offline(&["completion", "powershell"])
        .ok()
        .contains("Register-ArgumentCompleter"));
    let list = berth_offline(&["completion", "--help"]);
    for shell in ["bash", "fish", "powershell", "zsh"] {
        assert!(list.ok().contains(shell), "{list:?}");
    }
    let e = berth_offline(&["completion", "tcsh"]);
    assert_eq!(e.code, 1, "{e:?}");
    // --no-descriptions: the same words, none of the texts.
    let fish = berth_offline(&["completion", "fish"]).ok().to_string();
    let bare = berth_offline(&["completion", "fish", "--no-descriptions"])
        .ok()
        .to_string();
    assert!(fish.contains("List containers"), "{fish}");
    assert!(!bare.contains("List containers"), "{bare}");
    assert!(bare.contains("complete -c berth") && bare.contains("images"));
}

#[test]
fn help_cmd_is_cmd_dash_dash_help() {
    for path in [
        &["ps"][..],
        &["run"],
        &["container", "ls"],
        &["image", "rm"],
        &["network", "create"],
        &["volume", "ls"],
        &["system", "df"],
        &["builder", "prune"],
        &["completion", "bash"],
        &["container"],
    ] {
        let mut help = vec!["help"];
        help.extend_from_slice(path);
        let mut flag = path.to_vec();
        flag.push("--help");
        let a = berth_offline(&help);
        let b = berth_offline(&flag);
        assert_eq!(a.code, 0, "{help:?}: {a:?}");
        assert_eq!(a.stdout, b.stdout, "{path:?}");
        assert!(!a.stdout.is_empty());
    }
    let e = berth_offline(&["help", "nosuch"]);
    assert_eq!(e.fails(1), "unknown help topic: nosuch\n");
    let docker = Command::new(common::docker_bin())
        .args(["help", "nosuch"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(docker.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&docker.stderr), e.stderr);
}

/// `--help` in docker's layout: the usage line first, with the same words
/// as docker's, then the description, then the options or commands.
/// `(long name, type word)` of each option line of a help text:
/// `  -f, --filter filter   Filter…` gives `("filter", "filter")`.
fn option_types(help: &str) -> Vec<(String, String)> {
    let Some(options) = help.split("Options:\n").nth(1) else {
        return Vec::new();
    };
    options
        .lines()
        .filter_map(|l| {
            let names = l.split("   ").next()?.trim();
            let long = names.split("--").nth(1)?;
            let mut words = long.split(' ');
            let name = words.next()?.to_string();
            Some((name, words.next().unwrap_or("").to_string()))
        })
        .collect()
}

#[test]
fn help_is_in_docker_s_layout() {
    for path in [
        &["ps"][..],
        &["run"],
        &["container", "ls"],
        &["image", "rm"],
        &["logs"],
        &["images"],
        &["build"],
        &["exec"],
        &["events"],
        &["network", "ls"],
        &["volume", "rm"],
        &["cp"],
        &["export"],
        &["inspect"],
        &["commit"],
        &["stats"],
        &["system", "df"],
    ] {
        let mut args = path.to_vec();
        args.push("--help");
        let ours = berth_offline(&args).ok().to_string();
        let docker = Command::new(common::docker_bin())
            .args(&args)
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&docker.stdout).replace("docker", "berth");
        let usage = |s: &str| s.lines().next().unwrap_or("").to_string();
        assert_eq!(usage(&ours), usage(&theirs), "{path:?}");
        let about = |s: &str| s.lines().nth(2).unwrap_or("").to_string();
        assert_eq!(about(&ours), about(&theirs), "{path:?}");
        let aliases = |s: &str| {
            s.split("Aliases:\n")
                .nth(1)
                .and_then(|a| a.lines().next())
                .map(str::to_string)
        };
        assert_eq!(aliases(&ours), aliases(&theirs), "{path:?}\n{ours}");
        // The same options show the same value types (`--filter filter`,
        // `-n, --tail string`), in docker's sorted order.
        let ours_types = option_types(&ours);
        let theirs_types = option_types(&theirs);
        let shared: Vec<&(String, String)> = ours_types
            .iter()
            .filter(|(n, _)| theirs_types.iter().any(|(m, _)| m == n))
            .collect();
        assert!(!shared.is_empty(), "{path:?}\n{ours}");
        for (name, ty) in &shared {
            let theirs_ty = &theirs_types.iter().find(|(m, _)| m == name).unwrap().1;
            assert_eq!(ty, theirs_ty, "{path:?} --{name}\n{ours}");
        }
        let order: Vec<&String> = shared.iter().map(|(n, _)| n).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{path:?}");
        // No clap-style `<VALUE>` after a flag.
        assert!(
            ours.lines()
                .all(|l| !l.split("   ").next().unwrap_or("").contains('<')),
            "{path:?}\n{ours}"
        );
    }
    let group = berth_offline(&["container", "--help"]).ok().to_string();
    assert!(
        group.starts_with("Usage:  berth container COMMAND\n\nManage containers\n\nCommands:\n"),
        "{group}"
    );
    assert!(group.contains("\n  export      Export a container's filesystem"));
    let root = berth_offline(&["--help"]).ok().to_string();
    assert!(
        root.starts_with(
            "Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n  run "
        ),
        "{root}"
    );
    for section in [
        "\nManagement Commands:\n",
        "\nCommands:\n",
        "\nGlobal Options:\n",
    ] {
        assert!(root.contains(section), "{root}");
    }
    // `help CMD` is `CMD --help`.
    assert_eq!(
        berth_offline(&["help", "image", "ls"]).ok(),
        berth_offline(&["image", "ls", "--help"]).ok()
    );
}

/// docker's `<object> <verb>` spellings (verbs and their aliases), read
/// from the docker CLI's own help.
fn docker_spellings() -> Vec<Vec<String>> {
    let help = |args: &[&str]| {
        let out = Command::new(common::docker_bin())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut spellings = Vec::new();
    for object in [
        "container",
        "image",
        "network",
        "volume",
        "system",
        "builder",
    ] {
        let text = help(&[object]);
        let verbs: Vec<String> = text
            .split("Commands:\n")
            .nth(1)
            .unwrap_or("")
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        assert!(!verbs.is_empty(), "docker {object} --help:\n{text}");
        for verb in verbs {
            spellings.push(vec![object.to_string(), verb.clone()]);
            // "Aliases:\n  docker container ls, docker container list, docker ps"
            let text = help(&[object, &verb]);
            if let Some(aliases) = text.split("Aliases:\n").nth(1) {
                let line = aliases.lines().next().unwrap_or("");
                for alias in line.split(", ") {
                    let words: Vec<String> = alias
                        .split_whitespace()
                        .skip(1)
                        .map(str::to_string)
                        .collect();
                    if !words.is_empty() {
                        spellings.push(words);
                    }
                }
            }
        }
    }
    spellings
}

#[test]
fn every_docker_object_verb_spelling_works() {
    // Not in berth: cluster-only `volume update`.
    let missing = [&["volume", "update"][..]];
    let spellings = docker_spellings();
    assert!(spellings.len() > 60, "{spellings:?}");
    let mut failed = Vec::new();
    for words in &spellings {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if missing.contains(&words.as_slice()) {
            continue;
        }
        let mut args = words.clone();
        args.push("--help");
        let r = berth_offline(&args);
        if r.code != 0 || r.stdout.is_empty() {
            failed.push(format!("{words:?}: {}", r.stderr.trim()));
        }
    }
    assert!(failed.is_empty(), "berth lacks:\n{}", failed.join("\n"));

    // The object spellings run the same command as the short ones.
    let d = Daemon::start();
    d.busybox();
    d.berth(&["create", "--name", "sp", "busybox", "true"]).ok();
    d.berth(&["volume", "create", "spv"]).ok();
    // Tables without the CREATED column: "Less than a second ago" turns
    // into "1 second ago" between two calls.
    let ps = ["-a", "--format", "table {{.ID}}\t{{.Names}}\t{{.Status}}"];
    let images = ["--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}"];
    let with = |words: &[&'static str], extra: &[&'static str]| -> Vec<&'static str> {
        words.iter().chain(extra).copied().collect()
    };
    for (long, short) in [
        (with(&["container", "ls"], &ps), with(&["ps"], &ps)),
        (with(&["container", "list"], &ps), with(&["ps"], &ps)),
        (with(&["container", "ps"], &ps), with(&["ps"], &ps)),
        (with(&["image", "ls"], &images), with(&["images"], &images)),
        (
            with(&["image", "list"], &images),
            with(&["images"], &images),
        ),
        (
            ["system", "info", "-f", "{{.Images}}"].to_vec(),
            ["info", "-f", "{{.Images}}"].to_vec(),
        ),
        (
            ["container", "inspect", "-f", "{{.Name}}", "sp"].to_vec(),
            ["inspect", "-f", "{{.Name}}", "sp"].to_vec(),
        ),
        (
            ["image", "inspect", "-f", "{{.Os}}", "busybox"].to_vec(),
            ["inspect", "-f", "{{.Os}}", "busybox"].to_vec(),
        ),
        (
            ["network", "list", "-q"].to_vec(),
            ["network", "ls", "-q"].to_vec(),
        ),
        (["volume", "list"].to_vec(), ["volume", "ls"].to_vec()),
    ] {
        assert_eq!(d.berth(&long).ok(), d.berth(&short).ok(), "{long:?}");
    }
    d.berth(&["image", "tag", "busybox", "sp:1"]).ok();
    d.berth(&["image", "remove", "sp:1"]).ok();
    d.berth(&["container", "remove", "sp"]).ok();
    d.berth(&["volume", "remove", "spv"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok(), "");
}
