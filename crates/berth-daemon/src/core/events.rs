//! The events bus behind `GET /events`: what happened to containers,
//! images, networks and volumes. Live subscribers get every event as it is
//! emitted; past ones are replayed from a bounded journal that is appended
//! to a file under the data root, so `events --since` survives a restart.
//!
//! Subscribing takes the journal lock, so an event is either in the replay
//! snapshot or arrives on the live channel — never both, never neither.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::Filters;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Events kept for replay (Docker keeps 256 in memory; a longer window is
/// cheap and makes `--since 10m` useful on a busy host).
const JOURNAL_LEN: usize = 1024;
/// Live events buffered per subscriber before a slow one loses some.
const CHANNEL_LEN: usize = 1024;

/// The filter keys `GET /events` accepts (Docker's list).
pub const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// One event (Docker's `events.Message`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`, `daemon`.
    pub kind: String,
    /// `create`, `start`, `die`, `exec_create: sh -c …`, `tag`, …
    pub action: String,
    /// The actor: a container or image ID, a network ID, a volume name.
    pub id: String,
    /// The actor's attributes (`name`, `image`, `exitCode`, labels, …).
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// Docker's JSON: containers and images also carry the legacy
    /// `status`/`id`(/`from`) fields, networks and volumes do not.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano.div_euclid(1_000_000_000),
            "timeNano": self.time_nano,
        });
        if self.kind == "container" || self.kind == "image" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if self.kind == "container" {
                if let Some(image) = self.attributes.get("image") {
                    v["from"] = json!(image);
                }
            }
        }
        v
    }

    fn from_json(v: &Value) -> Option<Event> {
        let attributes = v["Actor"]["Attributes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Event {
            kind: v["Type"].as_str()?.to_string(),
            action: v["Action"].as_str()?.to_string(),
            id: v["Actor"]["ID"].as_str().unwrap_or_default().to_string(),
            attributes,
            time_nano: v["timeNano"].as_i64()?,
        })
    }

    /// Whether the event passes `filters` (keys already checked): values
    /// of one key are alternatives, different keys must all match.
    pub fn matches(&self, f: &Filters) -> bool {
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            let vals = f.get(key);
            vals.is_empty() || vals.iter().any(|v| pred(v))
        };
        let name = self.attributes.get("name").map(String::as_str);
        let actor_is =
            |v: &str| self.id == v || (v.len() >= 4 && self.id.starts_with(v)) || name == Some(v);
        any("type", &|v| self.kind == v)
            && any("event", &|v| {
                self.action == v || self.action.split(':').next() == Some(v)
            })
            && any("scope", &|v| v == "local")
            && any("container", &|v| self.kind == "container" && actor_is(v))
            && any("image", &|v| match self.kind.as_str() {
                "container" => self
                    .attributes
                    .get("image")
                    .is_some_and(|i| image_matches(i, v)),
                "image" => actor_is(v) || name.is_some_and(|n| image_matches(n, v)),
                _ => false,
            })
            && any("network", &|v| {
                (self.kind == "network" && actor_is(v))
                    || self.attributes.get("network").map(String::as_str) == Some(v)
            })
            && any("volume", &|v| self.kind == "volume" && actor_is(v))
            && any("daemon", &|v| self.kind == "daemon" && actor_is(v))
            && any("label", &|v| match v.split_once('=') {
                Some((k, want)) => self.attributes.get(k).map(String::as_str) == Some(want),
                None => self.attributes.contains_key(v),
            })
            && ["plugin", "node", "service", "secret", "config"]
                .iter()
                .all(|k| f.get(k).is_empty())
    }
}

/// `busybox` matches `busybox:latest`, `docker.io/library/busybox`, and
/// an image ID or its prefix.
fn image_matches(have: &str, want: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s
            .strip_prefix("docker.io/")
            .unwrap_or(s)
            .strip_prefix("library/")
            .unwrap_or(s.strip_prefix("docker.io/").unwrap_or(s));
        let last = s.rsplit('/').next().unwrap_or(s);
        if s.contains('@') || last.contains(':') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    }
    have == want
        || norm(have) == norm(want)
        || (want.len() >= 4 && have.trim_start_matches("sha256:").starts_with(want))
}

#[derive(Debug)]
struct Journal {
    recent: VecDeque<Arc<Event>>,
    path: Option<PathBuf>,
    file: Option<File>,
    /// Lines in the file; it is rewritten to the recent ones when this
    /// reaches twice the journal's length, so it stays bounded.
    lines: usize,
}

/// The daemon's events.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    journal: Mutex<Journal>,
}

/// A subscription: the past events asked for, then the live ones.
#[derive(Debug)]
pub struct Subscription {
    /// Journal events, oldest first.
    pub past: Vec<Arc<Event>>,
    /// Events emitted after `past` was taken.
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl Events {
    /// A bus whose journal is kept in `path` (read back now), or only in
    /// memory when `None`.
    pub fn open(path: Option<&Path>) -> Events {
        let mut recent = VecDeque::new();
        let mut lines = 0;
        if let Some(f) = path.and_then(|p| File::open(p).ok()) {
            for line in BufReader::new(f).lines().map_while(|l| l.ok()) {
                lines += 1;
                let Some(ev) = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| Event::from_json(&v))
                else {
                    continue; // a line torn by a crash
                };
                if recent.len() == JOURNAL_LEN {
                    recent.pop_front();
                }
                recent.push_back(Arc::new(ev));
            }
        }
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| tracing::warn!("events journal {}: {e}", p.display()))
                .ok()
        });
        let (tx, _) = broadcast::channel(CHANNEL_LEN);
        Events {
            tx,
            journal: Mutex::new(Journal {
                recent,
                path: path.map(Path::to_path_buf),
                file,
                lines,
            }),
        }
    }

    /// Records and publishes an event.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let time_nano = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let ev = Arc::new(Event {
            kind: kind.into(),
            action: action.into(),
            id: id.into(),
            attributes,
            time_nano,
        });
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        // Times never go backwards in the journal, even if the clock does,
        // so replay by time stays in order.
        let ev = match j.recent.back() {
            Some(last) if last.time_nano > ev.time_nano => Arc::new(Event {
                time_nano: last.time_nano,
                ..(*ev).clone()
            }),
            _ => ev,
        };
        if j.recent.len() == JOURNAL_LEN {
            j.recent.pop_front();
        }
        j.recent.push_back(ev.clone());
        j.append(&ev);
        let _ = self.tx.send(ev);
    }

    /// Live subscribers now (`NEventsListener` of `GET /info`).
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Past events with `since <= time <= until` (nanoseconds), and the
    /// live stream from this moment on.
    pub fn subscribe(&self, since: Option<i64>, until: Option<i64>) -> Subscription {
        let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.tx.subscribe();
        let past = match since {
            None => Vec::new(),
            Some(s) => j
                .recent
                .iter()
                .filter(|e| e.time_nano >= s && until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect(),
        };
        Subscription { past, live }
    }
}

impl Journal {
    fn append(&mut self, ev: &Event) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let mut line = ev.to_json().to_string();
        line.push('\n');
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!("events journal: {e}");
            return;
        }
        self.lines += 1;
        if self.lines >= 2 * JOURNAL_LEN {
            self.compact();
        }
    }

    /// Rewrites the file to the recent events (temp file, then rename, so
    /// a crash leaves the old or the new file, whole).
    fn compact(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            for ev in &self.recent {
                let mut line = ev.to_json().to_string();
                line.push('\n');
                f.write_all(line.as_bytes())?;
            }
            std::fs::rename(&tmp, &path)?;
            std::fs::OpenOptions::new().append(true).open(&path)
        };
        match write() {
            Ok(f) => {
                self.file = Some(f);
                self.lines = self.recent.len();
            }
            Err(e) => tracing::warn!("events journal {}: {e}", path.display()),
        }
    }
}

/// Attributes from `(key, value)` pairs.
pub fn attrs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(s: &str) -> Filters {
        Filters::parse(s).unwrap()
    }

    #[test]
    fn json_shapes_as_docker() {
        let ev = Event {
            kind: "container".into(),
            action: "die".into(),
            id: "abc".into(),
            attributes: attrs([("image", "busybox"), ("name", "c1"), ("exitCode", "0")]),
            time_nano: 1_700_000_000_123_456_789,
        };
        let v = ev.to_json();
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["time"], 1_700_000_000);
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "0");
        assert_eq!(Event::from_json(&v).unwrap(), ev);
        let vol = Event {
            kind: "volume".into(),
            action: "create".into(),
            id: "v1".into(),
            attributes: attrs([("driver", "local")]),
            time_nano: 1,
        };
        let v = vol.to_json();
        assert!(v.get("status").is_none() && v.get("id").is_none() && v.get("from").is_none());
    }

    #[test]
    fn filters_match_as_docker() {
        let ev = Event {
            kind: "container".into(),
            action: "exec_create: sh -c true".into(),
            id: "0123456789ab".into(),
            attributes: attrs([
                ("image", "busybox:latest"),
                ("name", "web"),
                ("env", "prod"),
            ]),
            time_nano: 1,
        };
        assert!(ev.matches(&filters("")));
        assert!(ev.matches(&filters(r#"{"type":["container"]}"#)));
        assert!(ev.matches(&filters(r#"{"type":{"container":true}}"#)));
        assert!(!ev.matches(&filters(r#"{"type":["image"]}"#)));
        assert!(ev.matches(&filters(r#"{"event":["exec_create"]}"#)));
        assert!(ev.matches(&filters(r#"{"event":["die","exec_create"]}"#)));
        assert!(!ev.matches(&filters(r#"{"event":["die"]}"#)));
        assert!(ev.matches(&filters(r#"{"container":["web"]}"#)));
        assert!(ev.matches(&filters(r#"{"container":["0123"]}"#)));
        assert!(!ev.matches(&filters(r#"{"container":["db"]}"#)));
        assert!(ev.matches(&filters(r#"{"image":["busybox"]}"#)));
        assert!(!ev.matches(&filters(r#"{"image":["alpine"]}"#)));
        assert!(ev.matches(&filters(r#"{"label":["env=prod"]}"#)));
        assert!(ev.matches(&filters(r#"{"label":["env"]}"#)));
        assert!(!ev.matches(&filters(r#"{"label":["env=dev"]}"#)));
        assert!(!ev.matches(&filters(r#"{"type":["container"],"event":["die"]}"#)));
    }

    #[test]
    fn journal_replays_survives_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let bus = Events::open(Some(&path));
        let mut sub = bus.subscribe(None, None);
        bus.emit("container", "start", "c0", BTreeMap::new());
        assert_eq!(sub.live.try_recv().unwrap().id, "c0");
        for i in 1..(2 * JOURNAL_LEN + 10) {
            bus.emit("container", "start", &format!("c{i}"), BTreeMap::new());
        }
        let all = bus.subscribe(Some(0), None).past;
        assert_eq!(all.len(), JOURNAL_LEN);
        assert_eq!(all.last().unwrap().id, format!("c{}", 2 * JOURNAL_LEN + 9));
        let t = all[10].time_nano;
        assert!(bus.subscribe(Some(t), None).past.len() <= JOURNAL_LEN - 10);
        drop(bus);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 2 * JOURNAL_LEN, "{lines}");
        let again = Events::open(Some(&path));
        let past = again.subscribe(Some(0), None).past;
        assert_eq!(past.len(), JOURNAL_LEN);
        assert_eq!(past.last().unwrap().id, format!("c{}", 2 * JOURNAL_LEN + 9));
        // A torn last line (crash mid-write) is skipped.
        std::fs::write(&path, "{\"Type\":\"contai").unwrap();
        assert!(Events::open(Some(&path))
            .subscribe(Some(0), None)
            .past
            .is_empty());
    }
}
