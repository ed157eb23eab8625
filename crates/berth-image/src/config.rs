//! The image config blob (OCI image config / Docker image JSON). Its sha256
//! is the image ID, so the bytes are stored verbatim and parsed leniently.

use std::collections::BTreeMap;

use berth_api::container::ContainerConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `rootfs` of the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFsConfig {
    /// Always "layers".
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layer tars, bottom first.
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction that made the layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// CPU architecture ("amd64").
    pub architecture: String,
    /// Operating system ("linux").
    pub os: String,
    /// CPU variant ("v8").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// RFC 3339 creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// What a container of this image runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// Docker's legacy record of the build container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    /// Docker's legacy build container ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Docker's version that built the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// Layers.
    pub rootfs: RootFsConfig,
    /// How each layer was made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields berth does not interpret (kept so the bytes round-trip).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Serialises as the canonical bytes that are hashed into the image ID.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("config serialises")
    }

    /// The creation time as Unix seconds (0 when absent or unparsable).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config() {
        let raw = r#"{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},
            "created":"2024-01-01T00:00:00Z","history":[{"created":"2024-01-01T00:00:00Z","created_by":"x","empty_layer":true}],
            "os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"moby.buildkit":1}"#;
        let c: ImageConfig = serde_json::from_str(raw).unwrap();
        assert_eq!(c.rootfs.diff_ids, vec!["sha256:aa"]);
        assert_eq!(c.config.clone().unwrap().cmd.unwrap().0, vec!["sh"]);
        assert!(c.history[0].empty_layer);
        assert_eq!(c.created_unix(), 1704067200);
        assert!(c.extra.contains_key("moby.buildkit"));
    }
}
