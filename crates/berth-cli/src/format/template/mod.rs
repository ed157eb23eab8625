//! A small Go `text/template` engine for `--format` / `-f` flags.
//!
//! It runs the subset that scripts written for docker use:
//! `{{.A.B}}`, `{{json .A}}`, `{{index .A "k"}}`, `{{range .X}}…{{end}}`,
//! `{{if}}`/`{{else}}`, `{{with}}`, variables, pipelines, docker's helper
//! functions and Go's builtins, on a [`Value`] (JSON with ordered keys).
//!
//! ```text
//! let t = Template::parse("{{.State.Status}}")?;
//! assert_eq!(t.execute(&data)?, "running");
//! ```
//!
//! Differences from Go, because the data is JSON rather than Go structs:
//! `null` prints as `<nil>`, objects print as `map[k:v]`, and a missing key
//! is an error (as in docker's raw-JSON fallback with `missingkey=error`).
//! [`Template::execute_typed`] runs as docker's `inspect` does: as on the
//! typed structs first (nil slices `[]`, omitted fields zero), the raw JSON
//! when that fails.

mod exec;
mod gotypes;
mod parse;
mod value;

pub(crate) use value::Value;

/// A parse or execution error; the text follows Go's (`template: :1:2:
/// executing "" at <.Foo>: map has no entry for key "Foo"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TemplateError(pub(crate) String);

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    src: String,
    /// The name Go's error texts show (`template: NAME:1:2: …`); empty for
    /// most of docker's templates.
    name: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses template text.
    pub(crate) fn parse(src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            src: src.to_string(),
            name: String::new(),
            nodes: parse::parse(src)?,
        })
    }

    /// Parses template text under a name (docker's `version` template is
    /// named, so its errors say `template: version:1:2: …`).
    pub(crate) fn parse_named(name: &str, src: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(src).map_err(|e| {
            TemplateError(match e.0.strip_prefix("template: :") {
                Some(rest) => format!("template: {name}:{rest}"),
                None => e.0,
            })
        })?;
        Ok(Template {
            src: src.to_string(),
            name: name.to_string(),
            nodes,
        })
    }

    /// Renders the template, and on failure also returns what was written
    /// before it (Go's `Execute` leaves that in its writer: docker's
    /// `info`/`version` print it).
    pub(crate) fn execute_partial(&self, data: &Value) -> (String, Option<TemplateError>) {
        let mut exec = exec::Exec::new(&self.src, &self.name, data, false);
        let err = exec.run(data, &self.nodes).err();
        (exec.out, err)
    }

    /// Renders the template with `data` as `.`.
    pub(crate) fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.run(data, false)
    }

    /// Renders as docker's `inspect` does: on the typed structs (see
    /// [`gotypes`]) and, when that fails, on the raw JSON, whose result or
    /// error is then the answer.
    pub(crate) fn execute_typed(&self, data: &Value) -> Result<String, TemplateError> {
        let mut exec = exec::Exec::new(&self.src, &self.name, data, false);
        exec.typed = true;
        match exec.run(data, &self.nodes) {
            Ok(_) => Ok(exec.out),
            Err(_) => self.run(data, false),
        }
    }

    /// Renders a table header: `data` maps field names to column titles and
    /// the formatting functions pass their argument through.
    pub(crate) fn execute_header(&self, data: &Value) -> Result<String, TemplateError> {
        self.run(data, true)
    }

    fn run(&self, data: &Value, header: bool) -> Result<String, TemplateError> {
        let mut exec = exec::Exec::new(&self.src, &self.name, data, header);
        exec.run(data, &self.nodes)?;
        Ok(exec.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        Value::from_json(
            br#"{"Id":"abc","Name":"/web","State":{"Status":"running","ExitCode":0,"Running":true},
                "Config":{"Labels":{"b":"2","a":"1"},"Env":["A=1","B=2"],"Cmd":null},
                "Mounts":[{"Source":"/x","Destination":"/y"},{"Source":"/p","Destination":"/q"}],
                "Size":1984241,"Ratio":1.5}"#,
        )
        .unwrap()
    }

    fn run(t: &str) -> String {
        Template::parse(t).unwrap().execute(&data()).unwrap()
    }

    fn run_err(t: &str) -> String {
        Template::parse(t)
            .unwrap()
            .execute(&data())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn fields_and_text() {
        assert_eq!(run("{{.State.Status}}"), "running");
        assert_eq!(run("id={{.Id}} name={{.Name}}\n"), "id=abc name=/web\n");
        assert_eq!(
            run("{{.State.ExitCode}} {{.State.Running}} {{.Size}} {{.Ratio}}"),
            "0 true 1984241 1.5"
        );
        assert_eq!(run("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(run("{{.Config.Labels}}"), "map[a:1 b:2]");
        assert_eq!(run("{{.Config.Cmd}}"), "<nil>");
    }

    #[test]
    fn json_keeps_order() {
        assert_eq!(run("{{json .Config.Labels}}"), r#"{"b":"2","a":"1"}"#);
        assert_eq!(
            run("{{json .State}}"),
            r#"{"Status":"running","ExitCode":0,"Running":true}"#
        );
        assert_eq!(run("{{.Name | json}}"), r#""/web""#);
    }

    #[test]
    fn index_and_functions() {
        assert_eq!(run(r#"{{index .Config.Labels "a"}}"#), "1");
        assert_eq!(run(r#"{{index .Config.Labels "missing"}}"#), "");
        assert_eq!(run(r#"{{index .Config.Env 1}}"#), "B=2");
        assert_eq!(run(r#"{{join .Config.Env ","}}"#), "A=1,B=2");
        assert_eq!(run(r#"{{split "a/b" "/"}}"#), "[a b]");
        assert_eq!(
            run(r#"{{upper .State.Status}} {{lower "AB"}} {{title "hello world"}}"#),
            "RUNNING ab Hello World"
        );
        assert_eq!(
            run(r#"[{{pad .Id 1 2}}] {{truncate .Id 2}} {{len .Mounts}}"#),
            "[ abc  ] ab 2"
        );
        assert_eq!(
            run(r#"{{printf "%-6s|%3d|%q" .Id .Size "x"}}"#),
            "abc   |1984241|\"x\""
        );
        assert_eq!(run(r#"{{print "a" 1 2 "b"}}"#), "a1 2b");
        assert_eq!(run(r#"{{(index .Mounts 1).Source}}"#), "/p");
        assert!(run_err(r#"{{index .Config.Env 5}}"#)
            .contains("error calling index: index out of range: 5"));
    }

    #[test]
    fn control_flow() {
        assert_eq!(
            run(r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#),
            "up"
        );
        assert_eq!(
            run(r#"{{if not .State.Running}}a{{else if .Id}}b{{else}}c{{end}}"#),
            "b"
        );
        assert_eq!(
            run("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"),
            "/x:/y /p:/q "
        );
        assert_eq!(
            run("{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}};{{end}}"),
            "0=/x;1=/p;"
        );
        assert_eq!(
            run("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}"),
            "a=1,b=2,"
        );
        assert_eq!(run("{{range .Config.Cmd}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(run("{{with .State}}{{.Status}}{{end}}"), "running");
        assert_eq!(
            run("{{$n := .Name}}{{range .Mounts}}{{$n}}{{$.Id}}{{end}}"),
            "/webabc/webabc"
        );
        assert_eq!(
            run("{{range .Mounts}}{{if eq .Source \"/p\"}}{{break}}{{end}}{{.Source}}{{end}}"),
            "/x"
        );
        assert_eq!(
            run("{{- range .Config.Env }}\n  {{ . }}\n{{- end }}"),
            "\n  A=1\n  B=2"
        );
        assert_eq!(run("{{if and .Id (gt .Size 10)}}big{{end}}"), "big");
        assert_eq!(
            run("{{if or (eq .Id \"x\") (eq .Id \"abc\")}}y{{end}}"),
            "y"
        );
    }

    #[test]
    fn missing_keys_are_errors_like_docker() {
        assert_eq!(
            run_err("{{.Foo}}"),
            r#"template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#
        );
        assert_eq!(
            run_err("ab\n  {{.State.Nope}}"),
            r#"template: :2:10: executing "" at <.State.Nope>: map has no entry for key "Nope""#
        );
        assert!(run_err("{{.Id.X}}").contains("can't evaluate field X in type string"));
    }

    #[test]
    fn named_templates_and_partial_output() {
        let t = Template::parse_named("version", "{{.Id}} {{.Nope}}").unwrap();
        let (out, err) = t.execute_partial(&data());
        assert_eq!(out, "abc ");
        assert_eq!(
            err.unwrap().0,
            r#"template: version:1:10: executing "version" at <.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(
            Template::parse_named("version", "{{.Id").unwrap_err().0,
            "template: version:1: unclosed action"
        );
        let s = Value::go_struct(
            "system.dockerInfo",
            [("Id", Value::str("abc"))],
            Value::Null,
        );
        let (_, err) = Template::parse("{{.Nope}}").unwrap().execute_partial(&s);
        assert!(err
            .unwrap()
            .0
            .ends_with("can't evaluate field Nope in type system.dockerInfo"),);
    }

    #[test]
    fn header_mode() {
        let header = Value::object([
            ("ID", Value::str("CONTAINER ID")),
            ("Names", Value::str("NAMES")),
        ]);
        let t = Template::parse("{{.ID}}\t{{json .Names}}\t{{upper .Names}}\t{{.Other}}").unwrap();
        assert_eq!(
            t.execute_header(&header).unwrap(),
            "CONTAINER ID\tNAMES\tNAMES\t"
        );
    }

    #[test]
    fn context_methods_like_docker() {
        let row = Value::context(
            "*formatter.ContainerContext",
            [("ID", Value::str("abc"))],
            [(
                "Label",
                Value::object([("com.x.my-label", Value::str("v"))]),
            )],
        );
        let t = Template::parse(
            r#"{{.Label "com.x.my-label"}}|{{.Label "nope"}}|{{"com.x.my-label" | .Label}}"#,
        )
        .unwrap();
        assert_eq!(t.execute(&row).unwrap(), "v||v");
        let header = Value::object([("ID", Value::str("CONTAINER ID"))]);
        assert_eq!(t.execute_header(&header).unwrap(), "my label|nope|my label");
        let bad = Template::parse("{{.Label}}")
            .unwrap()
            .execute(&row)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("wrong number of args for Label: want 1 got 0"),
            "{bad}"
        );
        let bad = Template::parse("{{.Nope}}")
            .unwrap()
            .execute(&row)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("can't evaluate field Nope"), "{bad}");
        assert_eq!(
            Template::parse("{{json .}}")
                .unwrap()
                .execute(&row)
                .unwrap(),
            r#"{"ID":"abc"}"#
        );
    }

    #[test]
    fn typed_first_as_docker_inspect_does() {
        let typed = |t: &str| Template::parse(t).unwrap().execute_typed(&data());
        // Nil slices and maps print as Go prints them, JSON stays null.
        assert_eq!(typed("{{.Config.Cmd}}").unwrap(), "[]");
        assert_eq!(typed("{{json .Config.Cmd}}").unwrap(), "null");
        assert_eq!(typed("{{len .Config.Cmd}}").unwrap(), "0");
        // Fields docker omits when empty are zero, not errors.
        assert_eq!(typed("{{if .State.Health}}h{{end}}").unwrap(), "");
        assert_eq!(typed("{{.State.Health}}").unwrap(), "<nil>");
        assert_eq!(typed("{{.Config.ExposedPorts}}").unwrap(), "map[]");
        assert_eq!(typed("{{.Config.Labels.zz}}").unwrap(), "<no value>");
        // What fails on the structs fails with the raw JSON's error.
        assert_eq!(
            typed("{{.State.Health.Status}}").unwrap_err().to_string(),
            r#"template: :1:8: executing "" at <.State.Health.Status>: map has no entry for key "Health""#
        );
        assert_eq!(
            typed("{{.Nope}}").unwrap_err().to_string(),
            r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        // Untyped execution is unchanged.
        assert_eq!(run("{{.Config.Cmd}}"), "<nil>");
    }
}
