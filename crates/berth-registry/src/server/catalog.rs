//! `GET /v2/_catalog[?n=&last=]`: the repositories holding manifests,
//! paginated like tags; with authentication, only those the caller may
//! pull from.

use axum::response::Response;
use serde_json::json;

use super::auth::Actions;
use super::errors::ApiError;
use super::storage::blocking;
use super::tags::{page_response, paginate};
use super::Ctx;

pub(crate) async fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let st = ctx.st.store.clone();
    let mut repos = blocking(move || st.repositories()).await?;
    if let Some(auth) = &ctx.st.auth {
        let account = ctx.who.account.as_deref();
        repos.retain(|r| auth.rule_actions(account, r).contains(Actions::PULL));
    }
    let (page, link) = paginate(ctx, repos, "/v2/_catalog")?;
    Ok(page_response(json!({ "repositories": page }), link))
}
