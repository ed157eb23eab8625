//! Disk usage (`system df`) and the prunes (containers, images, volumes,
//! build cache), each reporting the bytes it really freed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use super::volumes::{dir_size, volume_json};
use super::Daemon;
use crate::error::Result;

/// Filters shared by the prunes: `until` (a time or a duration before
/// now) and `label` / `label!` (`key` or `key=value`).
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Only what was created before this (unix seconds).
    pub until: Option<i64>,
    /// Labels that must match.
    pub labels: Vec<String>,
    /// Labels that must not match.
    pub not_labels: Vec<String>,
}

fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

impl PruneFilter {
    /// Whether an object created at `created` (unix seconds) with these
    /// labels is selected.
    pub fn selects(&self, created: i64, labels: &BTreeMap<String, String>) -> bool {
        if self.until.is_some_and(|u| created >= u) {
            return false;
        }
        self.labels.iter().all(|l| label_matches(labels, l))
            && !self.not_labels.iter().any(|l| label_matches(labels, l))
    }
}

/// Parses Docker's `until` value: RFC 3339, unix seconds, or a Go
/// duration (`10m`, `1h30m`, `24h`) before now.
pub fn parse_until(v: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    if let Ok(s) = v.split('.').next().unwrap_or(v).parse::<i64>() {
        return Some(s);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = v;
    while !rest.is_empty() {
        let c = rest.chars().next()?;
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            rest = &rest[1..];
            continue;
        }
        let (mult, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else {
            match c {
                'h' => (3600.0, 1),
                'm' => (60.0, 1),
                's' => (1.0, 1),
                _ => return None,
            }
        };
        total += num.parse::<f64>().ok()? * mult;
        num.clear();
        rest = &rest[len..];
    }
    if !num.is_empty() {
        return None;
    }
    Some(chrono::Utc::now().timestamp() - total as i64)
}

fn created_secs(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Daemon {
    /// A container's own bytes: its writable layer and its log.
    fn container_bytes(&self, id: &str) -> (u64, u64) {
        let upper = dir_size(&self.container_dir(id).join("upper"));
        let log = std::fs::metadata(self.log_path(id))
            .map(|m| m.len())
            .unwrap_or(0);
        (upper, log)
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<Value> {
        let layers = self.meta.layers()?;
        let layer_size: HashMap<String, i64> = layers
            .iter()
            .map(|l| (l.chain_id.clone(), l.size))
            .collect();
        let layers_size: i64 = layers.iter().map(|l| l.size).sum();
        let containers = self.containers();
        let mut users: HashMap<String, i64> = HashMap::new();
        for c in &containers {
            *users.entry(c.rec().image_id.clone()).or_default() += 1;
        }
        let images = self.images.list()?;
        // A layer shared by several images counts as shared for each.
        let mut layer_refs: HashMap<&str, usize> = HashMap::new();
        for img in &images {
            for c in &img.row.chain_ids {
                *layer_refs.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut image_json = Vec::new();
        let mut image_size: HashMap<String, i64> = HashMap::new();
        for img in &images {
            let size: i64 = img
                .row
                .chain_ids
                .iter()
                .filter_map(|c| layer_size.get(c))
                .sum();
            let shared: i64 = img
                .row
                .chain_ids
                .iter()
                .filter(|c| layer_refs.get(c.as_str()).copied().unwrap_or(0) > 1)
                .filter_map(|c| layer_size.get(c))
                .sum();
            image_size.insert(img.id().to_string(), size);
            let (tags, digests) = self.images.references(img.id())?;
            image_json.push(json!({
                "Containers": users.get(img.id()).copied().unwrap_or(0),
                "Created": img.config.created_unix(),
                "Id": img.id(),
                "Labels": img.config.config.as_ref().and_then(|c| c.labels.clone()),
                "ParentId": img.row.parent.clone().unwrap_or_default(),
                "RepoDigests": digests.iter().map(|r| r.familiar_string()).collect::<Vec<_>>(),
                "RepoTags": tags.iter().map(|r| r.familiar_string()).collect::<Vec<_>>(),
                "SharedSize": shared,
                "Size": size,
                "VirtualSize": size,
            }));
        }
        let mut container_json = Vec::new();
        for c in &containers {
            let mut s = serde_json::to_value(self.summary(c)).unwrap_or(Value::Null);
            let (upper, log) = self.container_bytes(&c.id);
            let rw = (upper + log) as i64;
            let image = image_size.get(&c.rec().image_id).copied().unwrap_or(0);
            s["SizeRw"] = json!(rw);
            s["SizeRootFs"] = json!(rw + image);
            container_json.push(s);
        }
        let mut vol_refs: HashMap<String, i64> = HashMap::new();
        for c in &containers {
            for m in c.rec().mounts.iter().filter(|m| m.kind == "volume") {
                *vol_refs.entry(m.name.clone()).or_default() += 1;
            }
        }
        let volumes: Vec<Value> = self
            .volumes()?
            .iter()
            .map(|v| {
                let size = dir_size(&self.volume_path(&v.name)) as i64;
                let refs = vol_refs.get(&v.name).copied().unwrap_or(0);
                volume_json(self, v, Some((size, refs)))
            })
            .collect();
        Ok(json!({
            "LayersSize": layers_size,
            "Images": image_json,
            "Containers": container_json,
            "Volumes": volumes,
            "BuildCache": [],
            "BuilderSize": 0,
        }))
    }

    /// `POST /containers/prune`: removes stopped containers.
    pub async fn prune_containers(self: &Arc<Self>, f: &PruneFilter) -> Result<Value> {
        let mut deleted = Vec::new();
        let mut bytes = 0u64;
        for c in self.containers() {
            let (status, created, labels) = {
                let r = c.rec();
                (
                    r.state.status,
                    created_secs(&r.created),
                    r.config.labels.clone().unwrap_or_default(),
                )
            };
            if status.is_active() || !f.selects(created, &labels) {
                continue;
            }
            let (upper, log) = self.container_bytes(&c.id);
            match self.remove(&c, false).await {
                Ok(()) => {
                    bytes += upper + log;
                    deleted.push(c.id.clone());
                }
                Err(e) => tracing::debug!(id = %c.id, "prune keeps container: {e}"),
            }
        }
        Ok(json!({
            "ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": bytes,
        }))
    }

    /// `POST /images/prune`: dangling images (or, with `all`, every image
    /// no container uses).
    pub fn prune_images(&self, all: bool, f: &PruneFilter) -> Result<Value> {
        let before: HashMap<String, i64> = self
            .meta
            .layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let used: HashSet<String> = self
            .containers()
            .iter()
            .map(|c| c.rec().image_id.clone())
            .collect();
        let mut items = Vec::new();
        for img in self.images.list()? {
            let id = img.id().to_string();
            if used.contains(&id) {
                continue;
            }
            let tags = self.meta.tags_of(&id)?;
            if !all && !tags.is_empty() {
                continue;
            }
            let labels = img
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let created = img.config.created_unix();
            if !f.selects(created, &labels) {
                continue;
            }
            let names = if tags.is_empty() {
                vec![id.clone()]
            } else {
                tags
            };
            for n in names {
                // Parents go with the image, as in dockerd's prune.
                match self
                    .images
                    .delete(&n, false, true, &|i| self.image_users(i))
                {
                    Ok(out) => items.extend(out.items),
                    Err(e) => {
                        tracing::debug!(image = %n, "prune keeps image: {e}");
                        break;
                    }
                }
            }
        }
        let _ = self.images.gc_layers();
        let after: HashSet<String> = self
            .meta
            .layers()?
            .into_iter()
            .map(|l| l.chain_id)
            .collect();
        let bytes: i64 = before
            .iter()
            .filter(|(c, _)| !after.contains(*c))
            .map(|(_, s)| *s)
            .sum();
        Ok(json!({
            "ImagesDeleted": if items.is_empty() { Value::Null } else { json!(items) },
            "SpaceReclaimed": bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_values() {
        let now = chrono::Utc::now().timestamp();
        let h = parse_until("1h").unwrap();
        assert!((now - 3600 - h).abs() <= 1);
        let m = parse_until("1h30m").unwrap();
        assert!((now - 5400 - m).abs() <= 1);
        assert_eq!(parse_until("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_until("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(parse_until("bogus"), None);
        let f = PruneFilter {
            until: Some(100),
            labels: vec!["a=1".into()],
            not_labels: vec!["keep".into()],
        };
        let l = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(f.selects(50, &l(&[("a", "1")])));
        assert!(!f.selects(150, &l(&[("a", "1")])));
        assert!(!f.selects(50, &l(&[("a", "1"), ("keep", "")])));
        assert!(!f.selects(50, &l(&[])));
    }
}
