//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<tag-or-digest>`.
//!
//! A pushed manifest is kept byte for byte, with the `Content-Type` it was
//! pushed with (served back as is). Before it is stored it must be: at most
//! 4 MiB (413 otherwise), JSON of a known type (OCI image manifest or index,
//! Docker schema 2 manifest or manifest list) whose `mediaType`, if any,
//! agrees with the `Content-Type`, with `schemaVersion` 2; every blob it
//! names (config, layers) must be in the repository and every manifest an
//! index names too — else MANIFEST_BLOB_UNKNOWN, one error per missing
//! digest. A `subject` may name a manifest not (yet) pushed; it is recorded
//! for the referrers API and acknowledged with `OCI-Subject`. Pushing by
//! digest checks the digest (DIGEST_INVALID) and may add tags with
//! `?tag=` (answered with `OCI-Tag`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::blobs::{parse_digest, DIGEST_HEADER};
use super::errors::ApiError;
use super::names::{valid_tag, Algo, Digest};
use super::storage::blocking;
use super::Ctx;
use crate::RegistryError;

/// The spec asks registries to take manifests of at least 4 MiB; larger
/// ones are refused before they are read whole.
pub(crate) const MAX_MANIFEST: usize = 4 << 20;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A tag or a digest, as the URL says.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(r: &str) -> Result<Reference, ApiError> {
    if r.contains(':') {
        return Ok(Reference::Digest(parse_digest(r)?));
    }
    if !valid_tag(r) {
        return Err(ApiError::tag_invalid(r));
    }
    Ok(Reference::Tag(r.to_owned()))
}

/// A descriptor, as far as the registry reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) urls: Vec<String>,
}

/// The fields of any manifest the registry needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub(crate) schema_version: Option<i64>,
    pub(crate) media_type: Option<String>,
    pub(crate) artifact_type: Option<String>,
    pub(crate) config: Option<Descriptor>,
    pub(crate) layers: Option<Vec<Descriptor>>,
    pub(crate) manifests: Option<Vec<Descriptor>>,
    pub(crate) subject: Option<Descriptor>,
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// The blobs (config and layers) an image manifest names; layers with
    /// `urls` (foreign layers) are fetched from elsewhere, not from us.
    pub(crate) fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().flatten().filter(|l| l.urls.is_empty()))
    }

    /// The manifests an index names.
    pub(crate) fn children(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter().flatten()
    }
}

pub(crate) async fn handle(
    ctx: &Ctx,
    name: &str,
    reference: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let r = parse_reference(reference)?;
    match ctx.method {
        Method::PUT => put(ctx, name, r, body).await,
        Method::DELETE => delete(ctx, name, r).await,
        _ => get(ctx, name, reference, r).await,
    }
}

async fn get(ctx: &Ctx, name: &str, reference: &str, r: Reference) -> Result<Response, ApiError> {
    let (st, n) = (ctx.st.store.clone(), name.to_owned());
    let found = blocking(move || {
        if !st.repo_exists(&n) {
            return Ok(Err(false));
        }
        let d = match r {
            Reference::Digest(d) => d,
            Reference::Tag(t) => match st.tag(&n, &t)? {
                Some(d) => d,
                None => return Ok(Err(true)),
            },
        };
        let Some(media_type) = st.revision(&n, &d)? else {
            return Ok(Err(true));
        };
        match st.read_blob(&d)? {
            Some(bytes) => Ok(Ok((d, media_type, bytes))),
            None => Ok(Err(true)),
        }
    })
    .await?;
    let (d, media_type, bytes) = match found {
        Ok(x) => x,
        Err(false) => return Err(ApiError::name_unknown(name)),
        Err(true) => return Err(ApiError::manifest_unknown(reference)),
    };
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, media_type)
        .header(DIGEST_HEADER, d.to_string())
        .header(header::ETAG, format!("\"{d}\""))
        .header(header::CONTENT_LENGTH, bytes.len());
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    Ok(resp.body(body).expect("response"))
}

/// Bytes of an oversized manifest read (and dropped) before the 413, so
/// that the client, still sending, gets to read the answer.
const DRAIN_LIMIT: usize = 64 << 20;

/// Reads at most [`MAX_MANIFEST`] bytes; more is 413.
async fn read_limited(ctx: &Ctx, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!("manifest larger than {MAX_MANIFEST} bytes"),
        )
    };
    let announced = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut out = Vec::with_capacity(announced.unwrap_or(4096).min(MAX_MANIFEST as u64) as usize);
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::manifest_invalid(format!("reading the body: {e}")))?;
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_MANIFEST {
            out.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_MANIFEST {
        return Err(too_big());
    }
    Ok(out)
}

/// The media type to store: the pushed `Content-Type` (parameters dropped),
/// checked against the manifest's `mediaType`; when the client sent none
/// (or a generic one), the `mediaType`, else what the shape says.
fn media_type_of(ctx: &Ctx, m: &Manifest) -> Result<String, ApiError> {
    let sent = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|v| !v.is_empty() && v != "application/json" && v != "application/octet-stream");
    let t = match (sent, &m.media_type) {
        (Some(s), Some(mt)) if &s != mt => {
            return Err(ApiError::manifest_invalid(format!(
                "Content-Type {s} differs from the manifest's mediaType {mt}"
            )))
        }
        (Some(s), _) => s,
        (None, Some(mt)) => mt.clone(),
        (None, None) if m.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    match t.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if m.config.is_none() {
                return Err(ApiError::manifest_invalid(
                    "an image manifest needs a config",
                ));
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            if m.manifests.is_none() {
                return Err(ApiError::manifest_invalid("an index needs manifests"));
            }
        }
        t if t.starts_with("application/vnd.docker.distribution.manifest.v1") => {
            return Err(ApiError::manifest_invalid(
                "Docker schema 1 manifests are not supported",
            ))
        }
        other => {
            return Err(ApiError::manifest_invalid(format!(
                "unsupported manifest media type {other}"
            )))
        }
    }
    if m.schema_version != Some(2) {
        return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
    }
    Ok(t)
}

async fn put(ctx: &Ctx, name: &str, r: Reference, body: Body) -> Result<Response, ApiError> {
    let bytes = read_limited(ctx, body).await?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("not a manifest: {e}")))?;
    let media_type = media_type_of(ctx, &m)?;
    let d = match &r {
        Reference::Digest(want) => {
            let got = Digest::of(want.algo(), &bytes);
            if &got != want {
                return Err(
                    ApiError::digest_invalid("manifest digest did not match its content")
                        .detail(json!({ "digest": want.to_string(), "computed": got.to_string() })),
                );
            }
            got
        }
        Reference::Tag(_) => Digest::of(Algo::Sha256, &bytes),
    };
    let mut tags: Vec<String> = Vec::new();
    if let Reference::Tag(t) = &r {
        tags.push(t.clone());
    }
    for (k, v) in &ctx.query {
        if k == "tag" {
            if !valid_tag(v) {
                return Err(ApiError::tag_invalid(v));
            }
            tags.push(v.clone());
        }
    }
    let mut blobs = Vec::new();
    for desc in m.blobs() {
        blobs.push(descriptor_digest(desc)?);
    }
    let mut children = Vec::new();
    for desc in m.children() {
        children.push(descriptor_digest(desc)?);
    }
    let subject = m.subject.as_ref().map(descriptor_digest).transpose()?;

    let (st, n, dd, sub, tg, mt) = (
        ctx.st.store.clone(),
        name.to_owned(),
        d.clone(),
        subject.clone(),
        tags.clone(),
        media_type,
    );
    let missing = blocking(move || {
        // Held so that gc cannot sweep a blob between this check and the
        // manifest naming it; touching the blobs restarts their grace time.
        let _lock = st.lock_shared()?;
        let mut missing = Vec::new();
        for b in &blobs {
            if st.repo_blob(&n, b)?.is_none() || !st.touch_blob(b)? {
                missing.push(b.clone());
            }
        }
        for c in &children {
            if st.revision(&n, c)?.is_none() || !st.touch_blob(c)? {
                missing.push(c.clone());
            }
        }
        if !missing.is_empty() {
            return Ok(missing);
        }
        st.write_blob(&dd, &bytes)?;
        st.put_revision(&n, &dd, &mt)?;
        if let Some(s) = &sub {
            st.add_referrer(&n, s, &dd)?;
        }
        for t in &tg {
            st.put_tag(&n, t, &dd)?;
        }
        Ok::<_, RegistryError>(Vec::new())
    })
    .await?;
    if !missing.is_empty() {
        return Err(ApiError::manifest_blob_unknown(&missing));
    }
    let mut resp = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{d}"))
        .header(DIGEST_HEADER, d.to_string())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(s) = &subject {
        resp = resp.header(HeaderName::from_static("oci-subject"), s.to_string());
    }
    if matches!(r, Reference::Digest(_)) {
        for t in &tags {
            resp = resp.header(HeaderName::from_static("oci-tag"), t.as_str());
        }
    }
    Ok(resp.body(Body::empty()).expect("response"))
}

fn descriptor_digest(desc: &Descriptor) -> Result<Digest, ApiError> {
    Digest::parse(&desc.digest).ok_or_else(|| {
        ApiError::manifest_invalid(format!(
            "descriptor digest {:?} is not a supported digest",
            desc.digest
        ))
    })
}

/// Deleting by tag removes the tag; by digest, the manifest, every tag
/// pointing to it and its referrers entry.
async fn delete(ctx: &Ctx, name: &str, r: Reference) -> Result<Response, ApiError> {
    let (st, n) = (ctx.st.store.clone(), name.to_owned());
    let reference = match &r {
        Reference::Tag(t) => t.clone(),
        Reference::Digest(d) => d.to_string(),
    };
    let found = blocking(move || {
        if !st.repo_exists(&n) {
            return Ok(None);
        }
        match r {
            Reference::Tag(t) => Ok(Some(st.delete_tag(&n, &t)?)),
            Reference::Digest(d) => {
                if st.revision(&n, &d)?.is_none() {
                    return Ok(Some(false));
                }
                // Tags first: a crash midway leaves a manifest without
                // tags, never a tag to nothing.
                for t in st.tags(&n)? {
                    if st.tag(&n, &t)?.as_ref() == Some(&d) {
                        st.delete_tag(&n, &t)?;
                    }
                }
                if let Some(bytes) = st.read_blob(&d)? {
                    let subject = serde_json::from_slice::<Manifest>(&bytes)
                        .ok()
                        .and_then(|m| m.subject)
                        .and_then(|s| Digest::parse(&s.digest));
                    if let Some(s) = subject {
                        st.remove_referrer(&n, &s, &d)?;
                    }
                }
                st.delete_revision(&n, &d)?;
                Ok(Some(true))
            }
        }
    })
    .await?;
    match found {
        None => Err(ApiError::name_unknown(name)),
        Some(false) => Err(ApiError::manifest_unknown(&reference)),
        Some(true) => Ok(Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(header::CONTENT_LENGTH, 0)
            .body(Body::empty())
            .expect("response")),
    }
}
