//! `stats`: docker 28's `RunStats`. Without names it subscribes to
//! container events first (`GET /events?filters={"type":{"container":true}}`,
//! the old filter form), lists the containers (`GET /containers/json`,
//! `?all=1` with `-a`) and follows starts, creations (`-a`) and deaths;
//! each container's samples come from `GET /containers/{id}/stats?stream=0|1`
//! (its 12-character ID, or the name as given). Once every container has
//! sent its first sample (or failed, or timed out after 2 s), the table is
//! printed: once with `--no-stream`, else redrawn every 500 ms in place.
//!
//! The numbers and the table are in [`super::stats_calc`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::container::ContainerSummary;
use clap::Args;
use tokio::sync::{mpsc, oneshot};

use super::stats_calc::{
    entry_from, stats_format, stats_text, stream_frame, StatsEntry, StatsResponse,
};
use super::{joined, out, CmdResult, Ctx};
use crate::client::{Client, JsonStream, Query};
use crate::format::template::Value;

/// How long a container may stay silent before its row is reset.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the streaming table is redrawn.
const REDRAW: Duration = Duration::from_millis(500);
/// The events filter docker sends (old form).
const CONTAINER_EVENTS: &str = r#"{"type":{"container":true}}"#;

/// `berth stats`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Display a live stream of container(s) resource usage statistics",
    override_usage = "berth stats [OPTIONS] [CONTAINER...]"
)]
pub(crate) struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string", verbatim_doc_comment)]
    pub(crate) format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub(crate) no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// One container being followed: its latest numbers and its last error.
#[derive(Debug, Clone, Default)]
struct Slot {
    entry: StatsEntry,
    error: Option<String>,
}

/// The containers followed, in the order they were added, and a version
/// that every change bumps (an unchanged table is not drawn again).
#[derive(Debug, Clone, Default)]
struct Followed(Arc<Mutex<Slots>>);

#[derive(Debug, Default)]
struct Slots {
    slots: Vec<Slot>,
    version: u64,
}

impl Followed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a container; false when it is already followed.
    fn add(&self, container: &str) -> bool {
        let mut v = self.lock();
        if v.slots.iter().any(|s| s.entry.container == container) {
            return false;
        }
        v.slots.push(Slot {
            entry: StatsEntry {
                container: container.to_string(),
                ..Default::default()
            },
            error: None,
        });
        v.version += 1;
        true
    }

    fn remove(&self, container: &str) {
        let mut v = self.lock();
        v.slots.retain(|s| s.entry.container != container);
        v.version += 1;
    }

    /// Applies `f` to a container's slot; false when it is not followed
    /// any more.
    fn update(&self, container: &str, f: impl FnOnce(&mut Slot)) -> bool {
        let mut v = self.lock();
        match v.slots.iter_mut().find(|s| s.entry.container == container) {
            Some(slot) => {
                f(slot);
                v.version += 1;
                true
            }
            None => false,
        }
    }

    fn snapshot(&self) -> Vec<Slot> {
        self.lock().slots.clone()
    }

    /// The entries and their version, unless the version is `drawn`.
    fn entries_since(&self, drawn: Option<u64>) -> Option<(u64, Vec<StatsEntry>)> {
        let v = self.lock();
        (drawn != Some(v.version)).then(|| {
            let entries = v.slots.iter().map(|s| s.entry.clone()).collect();
            (v.version, entries)
        })
    }
}

/// docker's `collect`: reads samples of one container into its slot;
/// `first` is told when the first sample (or error, or timeout) is in.
async fn collect(
    client: Arc<Client>,
    followed: Followed,
    container: String,
    stream: bool,
    first: Option<oneshot::Sender<()>>,
) {
    let mut first = first;
    let mut signal = move || {
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
    };
    let failed = |e: String| {
        move |s: &mut Slot| {
            s.entry.is_invalid = true;
            s.error = Some(e);
        }
    };
    let query = Query::new().add("stream", if stream { "1" } else { "0" });
    let resp = match client
        .get_stream(&format!("/containers/{container}/stats"), &query)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            followed.update(&container, failed(e.to_string()));
            signal();
            return;
        }
    };
    let mut samples = JsonStream::new(resp);
    loop {
        let alive =
            match tokio::time::timeout(SAMPLE_TIMEOUT, samples.next::<StatsResponse>()).await {
                Err(_) => followed.update(&container, |s| {
                    s.entry.reset();
                    s.error = Some("timeout waiting for stats".into());
                }),
                Ok(Some(Ok(v))) => followed.update(&container, |s| {
                    s.entry = entry_from(&container, &v);
                    s.error = None;
                }),
                Ok(Some(Err(e))) => {
                    followed.update(&container, failed(e.to_string()));
                    signal();
                    return;
                }
                Ok(None) => {
                    followed.update(&container, failed("EOF".into()));
                    signal();
                    return;
                }
            };
        signal();
        if !stream || !alive {
            return;
        }
    }
}

/// Starts following `container` unless it already is.
fn follow(
    ctx: &Ctx,
    followed: &Followed,
    container: &str,
    stream: bool,
    first: Option<oneshot::Sender<()>>,
) {
    if followed.add(container) {
        tokio::spawn(collect(
            Arc::clone(&ctx.client),
            followed.clone(),
            container.to_string(),
            stream,
            first,
        ));
    }
}

/// docker's `stringid`-style `ID[:12]` of an event's actor.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Follows container events: `start` (and `create` with `-a`) add a
/// container, `die` (without `-a`) drops it. The stream's end or failure
/// is reported on `done`.
fn watch_events(
    ctx: &Ctx,
    followed: &Followed,
    mut events: JsonStream,
    all: bool,
    stream: bool,
    done: mpsc::UnboundedSender<String>,
) {
    let ctx = ctx.clone();
    let followed = followed.clone();
    tokio::spawn(async move {
        loop {
            match events.next::<Value>().await {
                Some(Ok(ev)) => {
                    let action = ev.get("Action").map(Value::to_string).unwrap_or_default();
                    let id = ev
                        .get("Actor")
                        .and_then(|a| a.get("ID"))
                        .map(Value::to_string)
                        .unwrap_or_default();
                    match action.as_str() {
                        "start" => follow(&ctx, &followed, &short(&id), stream, None),
                        "create" if all => follow(&ctx, &followed, &short(&id), stream, None),
                        "die" if !all => followed.remove(&short(&id)),
                        _ => {}
                    }
                }
                Some(Err(e)) => {
                    let _ = done.send(e.to_string());
                    return;
                }
                None => {
                    let _ = done.send("EOF".into());
                    return;
                }
            }
        }
    });
}

/// A "first sample is in" signal whose receiving end goes to `firsts`.
fn first(firsts: &mut Vec<oneshot::Receiver<()>>) -> Option<oneshot::Sender<()>> {
    let (tx, rx) = oneshot::channel();
    firsts.push(rx);
    Some(tx)
}

/// `berth stats [CONTAINER...]`.
pub(crate) async fn stats(ctx: &Ctx, args: &StatsArgs) -> CmdResult {
    let followed = Followed::default();
    let stream = !args.no_stream;
    let show_all = args.containers.is_empty();
    let mut firsts = Vec::new();
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<String>();
    if show_all {
        // Subscribed before listing, so that no start is missed.
        let q = Query::new().add("filters", CONTAINER_EVENTS);
        match ctx.client.get_stream("/events", &q).await {
            Ok(resp) => watch_events(
                ctx,
                &followed,
                JsonStream::new(resp),
                args.all,
                stream,
                events_tx,
            ),
            Err(e) => {
                let _ = events_tx.send(e.to_string());
            }
        }
        let list: Vec<ContainerSummary> = ctx
            .client
            .get_json(
                "/containers/json",
                &Query::new().add_if(args.all, "all", "1"),
            )
            .await?;
        for c in &list {
            let tx = first(&mut firsts);
            follow(ctx, &followed, &short(&c.id), stream, tx);
        }
        for rx in firsts {
            let _ = rx.await;
        }
    } else {
        drop(events_tx);
        for name in &args.containers {
            let tx = first(&mut firsts);
            follow(ctx, &followed, name, stream, tx);
        }
        for rx in firsts {
            let _ = rx.await;
        }
        joined(
            followed
                .snapshot()
                .into_iter()
                .filter_map(|s| s.error)
                .collect(),
        )?;
    }

    // Like docker: config.json's statsFormat when no --format is given.
    let config_format = match args.format.as_deref() {
        None | Some("") => super::registry::config_format("statsFormat"),
        Some(_) => None,
    };
    let format = stats_format(config_format.as_deref().or(args.format.as_deref()));
    let mut ticker = tokio::time::interval(REDRAW);
    let mut drawn = None;
    loop {
        ticker.tick().await;
        // Samples come once a second and the table is redrawn twice: an
        // unchanged table is not rendered and written again.
        if let Some((version, entries)) = followed.entries_since(drawn) {
            let text = stats_text(format, &entries, !args.no_trunc)?;
            if stream {
                out(&stream_frame(&text))?;
            } else {
                out(&text)?;
            }
            if (entries.is_empty() && !show_all) || !stream {
                return Ok(0);
            }
            drawn = Some(version);
        }
        if let Ok(e) = events_rx.try_recv() {
            // docker shuts down quietly when the daemon drops the stream.
            if e.contains("unexpected EOF") || e.starts_with("error during connect") {
                return Ok(0);
            }
            anyhow::bail!(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followed_keeps_order_and_ignores_duplicates() {
        let f = Followed::default();
        assert!(f.add("b"));
        assert!(f.add("a"));
        assert!(!f.add("b"));
        assert!(f.update("a", |s| s.error = Some("x".into())));
        f.remove("b");
        assert!(!f.update("b", |_| {}));
        let snap = f.snapshot();
        assert_eq!(snap.len(), 1);
        let (v, entries) = f.entries_since(None).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(f.entries_since(Some(v)).is_none());
        assert!(!f.update("gone", |_| {}));
        assert!(f.entries_since(Some(v)).is_none());
        assert!(f.update("a", |s| s.error = None));
        assert!(f.entries_since(Some(v)).is_some());
        assert_eq!(snap[0].entry.container, "a");
        assert_eq!(snap[0].error.as_deref(), Some("x"));
        assert_eq!(short("4f1a2b3c4d5e0000"), "4f1a2b3c4d5e");
    }
}
