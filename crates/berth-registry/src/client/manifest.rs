//! Manifests as registries serve them: Docker v2 schema 2 and OCI image
//! manifests, Docker manifest lists and OCI indexes, parsed and checked
//! before anything they name is fetched, and platform selection.

use serde::{Deserialize, Serialize};

use super::ClientError;

/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (non-distributable) layer.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI layers.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The `Accept` header of manifest requests: every kind we read.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest manifest read (the distribution registry's own limit is 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;
/// Largest image config read.
pub const MAX_CONFIG: u64 = 16 << 20;
/// Most layers accepted in one image (overlay stacks stop well before).
pub const MAX_LAYERS: usize = 500;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Length in bytes.
    pub size: i64,
    /// Platform (index entries only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Platform>,
    /// Other fields, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A platform of an index entry or a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v7`, `v8`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
    /// Other fields (`os.version`, `os.features`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Platform {
    /// This machine's platform (Docker's default for pulls).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            architecture: arch.into(),
            os: "linux".into(),
            ..Default::default()
        }
    }

    /// Parses `--platform` (`os[/arch[/variant]]`), Docker's normalizations
    /// included (`x86_64` is `amd64`, `aarch64` is `arm64`).
    pub fn parse(s: &str) -> Result<Platform, ClientError> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let bad = || {
            ClientError::BadRequest(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]]"
            ))
        };
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let host = Platform::host();
        let arch = match parts.get(1).copied().unwrap_or(&host.architecture) {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            "i386" => "386",
            a => a,
        }
        .to_string();
        let mut variant = parts.get(2).map(|v| v.to_string());
        // arm64's only variant is v8, so it is the same as none.
        if arch == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: arch,
            variant,
            ..Default::default()
        })
    }

    fn matches(&self, want: &Platform) -> bool {
        if self.os != want.os || self.architecture != want.architecture {
            return false;
        }
        let norm = |v: Option<&str>| match (self.architecture.as_str(), v) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_string),
        };
        match &want.variant {
            None => true,
            Some(w) => norm(self.variant.as_deref()).as_deref() == Some(w.as_str()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (Docker v2 schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Its media type.
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// The image config.
    pub config: Descriptor,
    /// Layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// A manifest list or image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIndex {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Its media type.
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// One entry per platform (and attestations).
    pub manifests: Vec<Descriptor>,
}

/// Either kind of manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image.
    Image(ImageManifest),
    /// A list of images by platform.
    Index(ImageIndex),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Checks a digest is `sha256:` and 64 lower-case hex digits.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn check_descriptor(what: &str, d: &Descriptor, max: u64) -> Result<(), ClientError> {
    if !valid_digest(&d.digest) {
        return Err(ClientError::BadManifest(format!(
            "{what} has an invalid digest {:?}",
            d.digest
        )));
    }
    if d.size < 0 || d.size as u64 > max {
        return Err(ClientError::BadManifest(format!(
            "{what} {} has an invalid size {}",
            d.digest, d.size
        )));
    }
    Ok(())
}

/// Parses and checks a manifest. `content_type` is the response's
/// Content-Type, used when the body does not name its media type.
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest, ClientError> {
    if bytes.len() > MAX_MANIFEST {
        return Err(ClientError::BadManifest(format!(
            "manifest of {} bytes is larger than the {MAX_MANIFEST} allowed",
            bytes.len()
        )));
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| ClientError::BadManifest(format!("manifest is not valid JSON: {e}")))?;
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    let mt = if probe.media_type.is_empty() {
        ct
    } else {
        probe.media_type.as_str()
    };
    if probe.schema_version == 1 || mt.contains("manifest.v1+") && !mt.contains("oci") {
        return Err(ClientError::BadManifest(
            "Docker Image manifest v1 (schema 1) is not supported; push the image again with a current client".into(),
        ));
    }
    if probe.schema_version != 2 {
        return Err(ClientError::BadManifest(format!(
            "unsupported manifest schemaVersion {}",
            probe.schema_version
        )));
    }
    let is_index = match mt {
        DOCKER_LIST | OCI_INDEX => true,
        DOCKER_MANIFEST | OCI_MANIFEST => false,
        // OCI allows the media type to be left out: tell by the shape.
        _ => probe.manifests.is_some() && probe.config.is_none(),
    };
    let bad_json =
        |e: serde_json::Error| ClientError::BadManifest(format!("invalid manifest: {e}"));
    if is_index {
        let idx: ImageIndex = serde_json::from_slice(bytes).map_err(bad_json)?;
        for d in &idx.manifests {
            check_descriptor("manifest list entry", d, MAX_MANIFEST as u64)?;
        }
        Ok(Manifest::Index(idx))
    } else {
        let m: ImageManifest = serde_json::from_slice(bytes).map_err(bad_json)?;
        check_descriptor("config", &m.config, MAX_CONFIG)?;
        if m.layers.len() > MAX_LAYERS {
            return Err(ClientError::BadManifest(format!(
                "manifest has {} layers, more than the {MAX_LAYERS} allowed",
                m.layers.len()
            )));
        }
        for l in &m.layers {
            // Layers may be large but never beyond what a file can hold.
            check_descriptor("layer", l, i64::MAX as u64)?;
            if !is_layer_type(&l.media_type) {
                return Err(ClientError::BadManifest(format!(
                    "layer {} has unsupported media type {:?}",
                    l.digest, l.media_type
                )));
            }
        }
        Ok(Manifest::Image(m))
    }
}

/// Whether berth can unpack a layer of this media type.
pub fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        DOCKER_LAYER_GZIP
            | DOCKER_LAYER_TAR
            | DOCKER_LAYER_FOREIGN
            | OCI_LAYER_TAR
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
}

/// Picks the entry for `want` from an index, as Docker does: os and
/// architecture must match; a variant, when asked for, too. Attestation
/// entries (`unknown/unknown`) never match.
pub fn select<'a>(idx: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor, ClientError> {
    let mut candidates = idx
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.matches(want)));
    let first = candidates.next();
    // Without a variant asked for, an entry without variant is preferred.
    let best = if want.variant.is_none() {
        idx.manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.matches(want) && p.variant.is_none())
            })
            .or(first)
    } else {
        first
    };
    best.ok_or_else(|| {
        ClientError::NotFound(format!(
            "no matching manifest for {want} in the manifest list entries"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c'),
            d('e')
        )
    }

    #[test]
    fn platform_selection() {
        let Manifest::Index(idx) = parse(index_json().as_bytes(), "").unwrap() else {
            panic!("not an index")
        };
        let pick = |p: &str| select(&idx, &Platform::parse(p).unwrap()).map(|x| x.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), d('b'));
        assert_eq!(pick("linux/arm/v7").unwrap(), d('a'));
        assert_eq!(pick("linux/arm64").unwrap(), d('c'));
        assert_eq!(pick("linux/aarch64/v8").unwrap(), d('c'));
        let e = pick("linux/s390x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Platform::parse("linux//x").is_err());
    }

    #[test]
    fn image_manifest_checks() {
        let ok = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":5}},"layers":[{{"mediaType":"{OCI_LAYER_ZSTD}","digest":"{}","size":7}}]}}"#,
            d('a'),
            d('b')
        );
        assert!(matches!(parse(ok.as_bytes(), ""), Ok(Manifest::Image(_))));
        let bad_digest = ok.replace(&d('b'), "sha256:../../etc");
        assert!(parse(bad_digest.as_bytes(), "").is_err());
        let neg = ok.replace("\"size\":7", "\"size\":-1");
        assert!(parse(neg.as_bytes(), "").is_err());
        let odd = ok.replace(OCI_LAYER_ZSTD, "text/plain");
        assert!(parse(odd.as_bytes(), "").is_err());
        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, "").is_err());
        assert!(parse(b"not json", "").is_err());
        // No mediaType field: decided by Content-Type.
        let bare = ok.replace(&format!("\"mediaType\":\"{OCI_MANIFEST}\","), "");
        assert!(matches!(
            parse(bare.as_bytes(), OCI_MANIFEST),
            Ok(Manifest::Image(_))
        ));
    }
}
