//! `--format` and `--filter` beside the real docker CLI on the same daemon:
//! table headers and widths, `{{json .}}`, config.json's `psFormat` and
//! `imagesFormat`, and Docker's errors for bad templates and filters.

mod common;

use common::Daemon;

#[test]
fn ps_and_images_tables_match_docker() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "create", "--name", "fmt1", "--label", "k=v", "busybox", "true",
    ])
    .ok();
    for args in [
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\t{{.Image}}\t{{.State}}",
        ][..],
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.Labels}} {{.Label \"k\"}}",
        ],
        &[
            "ps",
            "-a",
            "--filter",
            "label=k=v",
            "--format",
            "{{.Names}}",
        ],
        &["images", "--format", "table {{.Repository}}\t{{.Tag}}"],
        &["inspect", "--format", "{{.Name}} {{.Config.Image}}", "fmt1"],
        &[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            "busybox",
        ],
    ] {
        let ours = d.berth(args).ok().to_string();
        let theirs = d.docker(args).ok().to_string();
        assert_eq!(ours, theirs, "{args:?}");
    }
    let line = d
        .berth(&["ps", "-a", "--format", "{{json .}}"])
        .ok()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["Names"], "fmt1");
    assert_eq!(v["State"], "created");
}

#[test]
fn config_json_ps_and_images_formats_are_honoured() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["create", "--name", "cfgfmt", "busybox", "true"])
        .ok();
    let dir = d.dir.path().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"psFormat": "PS {{.Names}}", "imagesFormat": "IMG {{.Repository}}"}"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::berth_bin())
            .args(["-H", &d.host()])
            .args(args)
            .env("BERTH_NO_AUTOSTART", "1")
            .env("DOCKER_CONFIG", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["ps", "-a"]), "PS cfgfmt\n");
    assert_eq!(run(&["images"]), "IMG busybox\n");
    // --format and -q win over the file.
    assert_eq!(run(&["ps", "-a", "--format", "{{.Image}}"]), "busybox\n");
    assert_eq!(run(&["ps", "-aq"]).trim().len(), 12);
}

#[test]
fn bad_templates_and_filters_fail_before_doing_anything() {
    let d = Daemon::start();
    d.busybox();
    for args in [
        &["ps", "--format", "{{.Nope"][..],
        &["images", "--format", "{{.Nope"],
        &["ps", "--filter", "colour=red"],
        &["ps", "--filter", "health=great"],
        &["images", "--filter", "colour=red"],
        &["events", "--since", "yesterday"],
    ] {
        let ours = d.berth(args);
        let theirs = d.docker(args);
        assert_eq!(ours.code, 1, "{args:?}: {ours:?}");
        assert_eq!(theirs.code, ours.code, "{args:?}: {theirs:?}");
    }
}

#[test]
fn inspect_templates_see_go_types_as_docker_does() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["create", "--name", "ty1", "busybox", "true"])
        .ok();
    // Nil slices and maps, fields left out of the JSON, `if` on a missing
    // health, and the errors docker falls back to.
    for (what, template) in [
        (
            "ty1",
            "{{.Config.Entrypoint}}|{{.HostConfig.Binds}}|{{.HostConfig.CapAdd}}",
        ),
        (
            "ty1",
            "{{.HostConfig.Tmpfs}}|{{.Config.ExposedPorts}}|{{.Config.OnBuild}}",
        ),
        (
            "ty1",
            "{{if .State.Health}}unhealthy?{{else}}no check{{end}}",
        ),
        (
            "ty1",
            "{{with .Config.Healthcheck}}{{.Test}}{{end}}|{{.State.Health}}",
        ),
        (
            "ty1",
            "{{len .Config.Entrypoint}}|{{json .Config.Entrypoint}}",
        ),
        (
            "ty1",
            "{{.Config.Labels.nope}}|{{index .Config.Labels \"x\"}}",
        ),
        ("ty1", "{{.State.Health.Status}}"),
        ("ty1", "{{.Nope}}"),
        (
            "busybox",
            "{{.Config.Entrypoint}} {{.Config.Healthcheck}} {{.Parent}}",
        ),
    ] {
        let args = ["inspect", "-f", template, what];
        let (ours, theirs) = (d.berth(&args), d.docker(&args));
        assert_eq!(
            (ours.code, &ours.stdout, ours.stderr.trim()),
            (theirs.code, &theirs.stdout, theirs.stderr.trim()),
            "{template}"
        );
    }
}
