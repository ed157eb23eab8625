//! `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an OCI image index
//! of the manifests of `<name>` whose `subject` is `<digest>`, each with
//! its `artifactType` (for an image manifest without one, its config's
//! media type) and annotations. Filtering by `artifactType` is announced
//! with `OCI-Filters-Applied`. Never 404: no referrers is an empty index.

use axum::body::Body;
use axum::http::{header, HeaderName};
use axum::response::Response;
use serde_json::{json, Value};

use super::blobs::parse_digest;
use super::errors::ApiError;
use super::manifests::{Manifest, OCI_INDEX};
use super::storage::blocking;
use super::Ctx;

pub(crate) async fn list(ctx: &Ctx, name: &str, digest: &str) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let filter = ctx.param("artifactType").map(str::to_owned);
    let (st, n, f) = (ctx.st.store.clone(), name.to_owned(), filter.clone());
    let descriptors = blocking(move || {
        let mut out = Vec::new();
        for d in st.referrers(&n, &subject)? {
            // The index may outlive a manifest deleted midway: skip those.
            let Some(media_type) = st.revision(&n, &d)? else {
                continue;
            };
            let Some(bytes) = st.read_blob(&d)? else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
                continue;
            };
            let artifact_type = m
                .artifact_type
                .clone()
                .filter(|t| !t.is_empty())
                .or_else(|| m.config.as_ref().map(|c| c.media_type.clone()));
            if f.is_some() && artifact_type != f {
                continue;
            }
            let mut desc = json!({
                "mediaType": media_type,
                "digest": d.to_string(),
                "size": bytes.len(),
            });
            if let Some(t) = artifact_type {
                desc["artifactType"] = Value::String(t);
            }
            if let Some(a) = m.annotations.filter(|a| !a.is_empty()) {
                desc["annotations"] = json!(a);
            }
            out.push(desc);
        }
        Ok(out)
    })
    .await?;
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
    });
    let mut resp = Response::builder().header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        resp = resp.header(
            HeaderName::from_static("oci-filters-applied"),
            "artifactType",
        );
    }
    Ok(resp.body(Body::from(body.to_string())).expect("response"))
}
