//! `POST /commit` (`docker commit`) and `GET /containers/{id}/changes`
//! (`docker diff`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_api::container::{CommitResponse, ContainerCreateBody, FilesystemChange};
use berth_api::reference::validate_tag;
use berth_api::Reference;

use super::Query;
use crate::core::commit::CommitOptions;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

/// dockerd's `RepoTagReference`: no repo means no tag; a repo without a
/// tag gets `latest`.
fn repo_tag(repo: &str, tag: &str) -> Result<Option<Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let bad = |e: berth_api::ReferenceError| DaemonError::BadRequest(e.to_string());
    let r = Reference::parse_normalized(repo).map_err(bad)?;
    if r.digest().is_some() {
        return Err(DaemonError::BadRequest(
            "cannot import digest reference".into(),
        ));
    }
    if !tag.is_empty() {
        validate_tag(tag).map_err(bad)?;
        return Ok(Some(r.with_tag(tag).map_err(bad)?));
    }
    if r.tag().is_some() {
        return Ok(Some(r));
    }
    Ok(Some(r.with_tag("latest").map_err(bad)?))
}

/// `pause` is on unless given and false (API ≥ 1.13), as in dockerd.
fn pause_of(q: &Query) -> bool {
    match q.get("pause").map(|v| v.trim().to_ascii_lowercase()) {
        None => true,
        Some(v) if v.is_empty() => true,
        Some(v) => !matches!(v.as_str(), "0" | "no" | "false" | "none"),
    }
}

pub(super) async fn commit(
    State(d): State<Arc<Daemon>>,
    q: Query,
    body: Bytes,
) -> Result<(StatusCode, Json<CommitResponse>)> {
    // The docker CLI sends no body; an empty or `null` one means "the
    // container's config".
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Option<ContainerCreateBody>>(&body)
            .map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))?
            .map(|b| b.config)
    };
    let reference = repo_tag(q.get("repo").unwrap_or(""), q.get("tag").unwrap_or(""))?;
    let c = d.container(q.get("container").unwrap_or(""))?;
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause: pause_of(&q),
        changes: q.all("changes"),
        config,
    };
    let id = d.commit(&c, opts).await?;
    Ok((StatusCode::CREATED, Json(CommitResponse { id })))
}

pub(super) async fn changes(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Option<Vec<FilesystemChange>>>> {
    let c = d.container(&id)?;
    let list = d.changes(&c).await?;
    // dockerd answers `null` for a container without changes.
    Ok(Json((!list.is_empty()).then(|| {
        list.into_iter()
            .map(|ch| FilesystemChange {
                path: ch.path,
                kind: ch.kind as u8,
            })
            .collect()
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_pause() {
        assert!(repo_tag("", "x").unwrap().is_none());
        assert_eq!(
            repo_tag("img", "").unwrap().unwrap().familiar_string(),
            "img:latest"
        );
        assert_eq!(
            repo_tag("img", "v1").unwrap().unwrap().familiar_string(),
            "img:v1"
        );
        assert!(repo_tag("Bad Name", "").is_err());
        assert!(repo_tag("img", "bad tag").is_err());
        let q = |s: &str| Query(berth_api::query::pairs(s));
        assert!(pause_of(&q("")));
        assert!(pause_of(&q("pause=")));
        assert!(pause_of(&q("pause=1")));
        assert!(!pause_of(&q("pause=0")));
        assert!(!pause_of(&q("pause=false")));
    }
}
