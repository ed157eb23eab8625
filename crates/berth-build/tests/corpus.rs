//! Real-world Dockerfiles of varied syntax parse, with the expected
//! number of instructions and a few details each.

use berth_build::parser::{parse, Args};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[test]
fn node_multistage() {
    let df = parse(&fixture("node-multistage.Dockerfile")).unwrap();
    let froms = df.instructions.iter().filter(|i| i.cmd == "FROM").count();
    assert_eq!(froms, 3);
    assert_eq!(df.instructions.len(), 20);
    let run = &df.instructions[4];
    assert_eq!(run.cmd, "RUN");
    assert!(run.raw().contains("npm ci;") && run.raw().contains("fi"));
}

#[test]
fn windows_escape() {
    let df = parse(&fixture("windows-escape.Dockerfile")).unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.instructions.len(), 6);
    assert!(matches!(&df.instructions[1].args, Args::Json(v) if v[0] == "powershell"));
    assert!(df.instructions[2].raw().contains("Set-Content"));
    assert_eq!(df.instructions[3].raw(), "testfile.txt c:\\");
}

#[test]
fn heredocs() {
    let df = parse(&fixture("heredocs.Dockerfile")).unwrap();
    let cmds: Vec<&str> = df.instructions.iter().map(|i| i.cmd.as_str()).collect();
    assert_eq!(
        cmds,
        [
            "FROM",
            "RUN",
            "RUN",
            "COPY",
            "RUN",
            "ONBUILD",
            "HEALTHCHECK",
            "STOPSIGNAL",
            "VOLUME",
            "LABEL"
        ]
    );
    assert_eq!(
        df.instructions[1].heredocs[0].content,
        "  set -ex\n  apt-get update\n  apt-get install -y vim\n"
    );
    assert_eq!(df.instructions[2].heredocs[0].content, "Welcome, $USER\n");
    assert!(df.instructions[2].heredocs[0].quoted);
    assert_eq!(df.instructions[6].flag("interval"), Some("5m"));
    assert!(df.instructions[9].raw().contains("span multiple lines."));
}

#[test]
fn golang_scratch() {
    let df = parse(&fixture("golang-scratch.Dockerfile")).unwrap();
    assert_eq!(df.instructions.len(), 10);
    assert_eq!(
        df.instructions[2].raw(),
        "go env -w GOPROXY=direct &&     go mod download"
    );
    assert_eq!(df.instructions[6].flag("from"), Some("build"));
}
