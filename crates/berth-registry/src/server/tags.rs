//! `GET /v2/<name>/tags/list[?n=&last=]`, and the pagination it shares with
//! the catalog: results in byte order, `last` excluded, at most `n`, and a
//! `Link: <…?n=N&last=X>; rel="next"` header while more remain.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::errors::ApiError;
use super::storage::blocking;
use super::Ctx;

/// One page of `items` (sorted), and the `Link` to the next one.
pub(crate) fn paginate(
    ctx: &Ctx,
    items: Vec<String>,
    path: &str,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let n = match ctx.param("n") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::unsupported(StatusCode::BAD_REQUEST, "n must be a non-negative integer")
                .detail(json!({ "n": v }))
        })?),
    };
    let last = ctx.param("last").filter(|l| !l.is_empty());
    let mut rest = items
        .into_iter()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .peekable();
    let page: Vec<String> = match n {
        Some(n) => rest.by_ref().take(n).collect(),
        None => rest.by_ref().collect(),
    };
    let link = match (n, page.last()) {
        (Some(n), Some(l)) if n > 0 && rest.peek().is_some() => {
            Some(format!("<{path}?n={n}&last={l}>; rel=\"next\""))
        }
        _ => None,
    };
    Ok((page, link))
}

/// A JSON 200, with the `Link` header when there is a next page.
pub(crate) fn page_response(body: serde_json::Value, link: Option<String>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(l) = link.and_then(|l| l.parse().ok()) {
        resp.headers_mut().insert(header::LINK, l);
    }
    resp
}

pub(crate) async fn list(ctx: &Ctx, name: &str) -> Result<Response, ApiError> {
    let (st, n) = (ctx.st.store.clone(), name.to_owned());
    let tags = blocking(move || {
        if !st.repo_exists(&n) {
            return Ok(None);
        }
        st.tags(&n).map(Some)
    })
    .await?
    .ok_or_else(|| ApiError::name_unknown(name))?;
    let (page, link) = paginate(ctx, tags, &format!("/v2/{name}/tags/list"))?;
    Ok(page_response(json!({ "name": name, "tags": page }), link))
}
