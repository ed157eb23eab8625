//! `inspect`, `container inspect`, `image inspect`: the daemon's JSON,
//! re-indented (docker's `IndentedInspector`), compacted with `--format
//! json`, or run through a Go template with `-f`.

use clap::Args;

use super::{out, requires_min, CmdResult, Ctx, StatusError};
use crate::client::{ClientError, Query};
use crate::format::json;
use crate::format::template::{Template, Value};

/// `berth inspect`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Return low-level information on Docker objects",
    override_usage = "berth inspect [OPTIONS] NAME|ID [NAME|ID...]"
)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub(crate) kind: Option<String>,
    /// NAME|ID [NAME|ID...]
    #[arg(value_name = "NAME|ID")]
    pub(crate) names: Vec<String>,
}

/// `berth container inspect` / `berth image inspect`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth (container|image) inspect [OPTIONS] NAME|ID [NAME|ID...]")]
pub(crate) struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes (containers only)
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    /// NAME|ID [NAME|ID...]
    #[arg(value_name = "NAME|ID")]
    pub(crate) names: Vec<String>,
}

/// Object kinds `inspect` looks through, in docker's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Image,
    Network,
    Volume,
    Plugin,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "container" => Kind::Container,
            "image" => Kind::Image,
            "network" => Kind::Network,
            "volume" => Kind::Volume,
            "plugin" => Kind::Plugin,
            _ => return None,
        })
    }

    fn path(self, name: &str) -> String {
        match self {
            Kind::Container => format!("/containers/{name}/json"),
            Kind::Image => format!("/images/{name}/json"),
            Kind::Network => format!("/networks/{name}"),
            Kind::Volume => format!("/volumes/{name}"),
            Kind::Plugin => format!("/plugins/{name}/json"),
        }
    }
}

/// Collects inspected objects and prints them as docker's inspectors do.
pub(crate) enum Inspector {
    /// A JSON array, indented four spaces (no `-f`).
    Indented(Vec<Vec<u8>>),
    /// A compact JSON array (`-f json`).
    Compact(Vec<Vec<u8>>),
    /// One template rendering per object.
    Template(Template, String),
}

impl Inspector {
    /// The inspector for a `--format` value.
    pub(crate) fn new(format: Option<&str>) -> Result<Inspector, StatusError> {
        match format {
            None | Some("") => Ok(Inspector::Indented(Vec::new())),
            Some("json") => Ok(Inspector::Compact(Vec::new())),
            Some(f) => Template::parse(f)
                .map(|t| Inspector::Template(t, String::new()))
                .map_err(|e| StatusError::new(64, format!("template parsing error: {e}"))),
        }
    }

    /// Adds one object's raw JSON; a template error is returned.
    pub(crate) fn add(&mut self, raw: Vec<u8>) -> Result<(), String> {
        match self {
            Inspector::Indented(v) | Inspector::Compact(v) => {
                v.push(raw);
                Ok(())
            }
            Inspector::Template(t, buf) => {
                let data = Value::from_json(&raw)
                    .map_err(|e| format!("unable to read inspect data: {e}"))?;
                let text = t
                    .execute_typed(&data)
                    .map_err(|e| format!("template parsing error: {e}"))?;
                buf.push_str(&text);
                buf.push('\n');
                Ok(())
            }
        }
    }

    /// The text to print (docker's `Flush`).
    pub(crate) fn finish(self) -> String {
        match self {
            Inspector::Indented(v) | Inspector::Compact(v) if v.is_empty() => "[]\n".into(),
            Inspector::Indented(v) => format!("{}\n", json::indent(&join_array(&v), "    ")),
            Inspector::Compact(v) => format!("{}\n", json::compact(&join_array(&v))),
            Inspector::Template(_, buf) if buf.is_empty() => "\n".into(),
            Inspector::Template(_, buf) => buf,
        }
    }
}

fn join_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, raw) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(raw);
    }
    out.push(b']');
    out
}

/// docker's `isErrSkippable`: try the next kind of object.
fn skippable(e: &ClientError) -> bool {
    let text = e.to_string();
    e.is_not_found() || text.contains("not supported") || text.contains("invalid reference format")
}

async fn fetch(ctx: &Ctx, kind: Kind, name: &str, size: bool) -> Result<Vec<u8>, ClientError> {
    let query = Query::new().add_if(kind == Kind::Container && size, "size", "1");
    Ok(ctx
        .client
        .get_bytes(&kind.path(name), &query)
        .await?
        .to_vec())
}

/// Looks `name` up as each kind in turn (docker's `inspectAll`).
async fn fetch_any(
    ctx: &Ctx,
    name: &str,
    size: bool,
    only: Option<Kind>,
) -> Result<Vec<u8>, String> {
    if let Some(kind) = only {
        return fetch(ctx, kind, name, size)
            .await
            .map_err(|e| e.to_string());
    }
    for kind in [Kind::Container, Kind::Image, Kind::Network, Kind::Volume] {
        match fetch(ctx, kind, name, size).await {
            Ok(raw) => {
                if size && kind != Kind::Container {
                    eprintln!(
                        "WARNING: --size ignored for {}",
                        format!("{kind:?}").to_lowercase()
                    );
                }
                return Ok(raw);
            }
            Err(e) if skippable(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    // Swarm objects are only looked up on a swarm manager, as docker does.
    if let Err(e) = ctx.client.get_bytes("/info", &Query::new()).await {
        eprintln!("{e}");
    }
    match fetch(ctx, Kind::Plugin, name, size).await {
        Ok(raw) => return Ok(raw),
        Err(e) if skippable(&e) => {}
        Err(e) => return Err(e.to_string()),
    }
    Err(format!("Error: No such object: {name}"))
}

async fn run(
    ctx: &Ctx,
    format: Option<&str>,
    names: &[String],
    size: bool,
    only: Option<Kind>,
) -> CmdResult {
    let mut inspector = Inspector::new(format)?;
    let mut errors = Vec::new();
    for name in names {
        match fetch_any(ctx, name, size, only).await {
            Ok(raw) => {
                if let Err(e) = inspector.add(raw) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    out(&inspector.finish())?;
    super::joined(errors)
}

/// `berth inspect NAME...`.
pub(crate) async fn inspect(ctx: &Ctx, args: &InspectArgs) -> CmdResult {
    requires_min(
        "inspect",
        "[OPTIONS] NAME|ID [NAME|ID...]",
        args.names.len(),
        1,
    )?;
    let only = match args.kind.as_deref() {
        None => None,
        Some(k) => match Kind::parse(k) {
            Some(kind) => Some(kind),
            None => {
                return Err(
                    StatusError::new(1, format!("{k:?} is not a valid value for --type")).into(),
                )
            }
        },
    };
    run(ctx, args.format.as_deref(), &args.names, args.size, only).await
}

/// `berth container inspect` (`image == false`) or `berth image inspect`.
pub(crate) async fn inspect_typed(ctx: &Ctx, args: &TypedInspectArgs, image: bool) -> CmdResult {
    let path = if image {
        "image inspect"
    } else {
        "container inspect"
    };
    requires_min(path, "[OPTIONS] NAME|ID [NAME|ID...]", args.names.len(), 1)?;
    let kind = if image { Kind::Image } else { Kind::Container };
    run(
        ctx,
        args.format.as_deref(),
        &args.names,
        args.size,
        Some(kind),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_like_docker() {
        let mut i = Inspector::new(None).unwrap();
        i.add(br#"{"Id":"a","Args":[]}"#.to_vec()).unwrap();
        i.add(br#"{"Id":"b"}"#.to_vec()).unwrap();
        assert_eq!(
            i.finish(),
            "[\n    {\n        \"Id\": \"a\",\n        \"Args\": []\n    },\n    {\n        \"Id\": \"b\"\n    }\n]\n"
        );
        assert_eq!(Inspector::new(None).unwrap().finish(), "[]\n");
    }

    #[test]
    fn compact_and_templates() {
        let mut i = Inspector::new(Some("json")).unwrap();
        i.add(b"{ \"Id\" : \"a\" }\n".to_vec()).unwrap();
        assert_eq!(i.finish(), "[{\"Id\":\"a\"}]\n");
        let mut i = Inspector::new(Some("{{.State.Status}}")).unwrap();
        i.add(br#"{"State":{"Status":"running"}}"#.to_vec())
            .unwrap();
        i.add(br#"{"State":{"Status":"exited"}}"#.to_vec()).unwrap();
        assert_eq!(i.finish(), "running\nexited\n");
        let mut i = Inspector::new(Some("{{.Nope}}")).unwrap();
        let e = i.add(br#"{"Id":"a"}"#.to_vec()).unwrap_err();
        assert_eq!(
            e,
            r#"template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(i.finish(), "\n");
        let e = Inspector::new(Some("{{.A")).err().unwrap();
        assert_eq!(e.code, 64);
    }
}
