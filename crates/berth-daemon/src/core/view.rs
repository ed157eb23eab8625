//! The API's views of containers: inspect and list entries.

use std::collections::BTreeMap;

use berth_api::container::{ContainerInspect, ContainerState, ContainerSummary, GraphDriver};
use berth_api::units::human_duration;
use serde_json::json;

use super::container::{Container, Record, Status};
use super::Daemon;

fn since(rfc3339: &str) -> std::time::Duration {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

/// The `Status` column text: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Running => {
            let up = human_duration(since(&r.state.started_at).as_secs_f64());
            match &r.state.health {
                Some(h) => format!("Up {up} ({})", super::health::status_suffix(h)),
                None => format!("Up {up}"),
            }
        }
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(since(&r.state.started_at).as_secs_f64())
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(since(&r.state.finished_at).as_secs_f64())
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(since(&r.state.finished_at).as_secs_f64())
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

impl Daemon {
    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, c: &Container) -> ContainerInspect {
        let r = c.snapshot();
        let dir = self.container_dir(&r.id);
        let lowers = self
            .images
            .lower_dirs_from(r.top_chain.as_deref())
            .map(|l| {
                l.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let mut gd = BTreeMap::new();
        gd.insert("LowerDir".to_string(), lowers);
        gd.insert(
            "UpperDir".to_string(),
            dir.join("upper").display().to_string(),
        );
        gd.insert(
            "WorkDir".to_string(),
            dir.join("work").display().to_string(),
        );
        gd.insert(
            "MergedDir".to_string(),
            dir.join("rootfs").display().to_string(),
        );
        ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: ContainerState {
                status: r.state.status.as_str().into(),
                running: r.state.status == Status::Running || r.state.status == Status::Paused,
                paused: r.state.status == Status::Paused,
                restarting: r.state.status == Status::Restarting,
                oom_killed: r.state.oom_killed,
                dead: r.state.status == Status::Dead,
                pid: r.state.pid,
                exit_code: r.state.exit_code,
                error: r.state.error.clone(),
                started_at: r.state.started_at.clone(),
                finished_at: r.state.finished_at.clone(),
                health: r
                    .state
                    .health
                    .as_ref()
                    .and_then(|h| serde_json::to_value(h).ok()),
            },
            image: r.image_id.clone(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            log_path: if r.host_config.log_config.kind == "none" {
                String::new()
            } else {
                self.log_path(&r.id).display().to_string()
            },
            name: format!("/{}", r.name),
            restart_count: r.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: Some(self.execs.of(&r.id)).filter(|v| !v.is_empty()),
            host_config: r.host_config.clone(),
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: Some(gd),
            },
            size_rw: None,
            size_root_fs: None,
            mounts: r.mounts.iter().map(|m| m.to_json(self)).collect(),
            config: r.config.clone(),
            network_settings: self.network_settings(&r),
        }
    }

    /// One entry of `GET /containers/json`.
    pub fn summary(&self, c: &Container) -> ContainerSummary {
        let r = c.snapshot();
        let mut command = vec![r.path.clone()];
        command.extend(r.args.iter().cloned());
        ContainerSummary {
            id: r.id.clone(),
            names: vec![format!("/{}", r.name)],
            image: r.image_name.clone(),
            image_id: r.image_id.clone(),
            command: command.join(" "),
            created: chrono::DateTime::parse_from_rfc3339(&r.created)
                .map(|t| t.timestamp())
                .unwrap_or(0),
            ports: self.port_summaries(&r),
            size_rw: None,
            size_root_fs: None,
            labels: r.config.labels.clone().unwrap_or_default(),
            state: r.state.status.as_str().into(),
            status: status_text(&r),
            host_config: json!({"NetworkMode": r.host_config.network_mode}),
            network_settings: self.network_summary(&r),
            mounts: r.mounts.iter().map(|m| m.to_json(self)).collect(),
        }
    }
}
