//! `GET /events`: past events from the journal (`since`), then live ones,
//! filtered, one JSON object per chunk; the stream ends at `until`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::Query;
use crate::core::events::{Event, FILTER_KEYS};
use crate::core::logs::parse_time_ns;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn time_param(q: &Query, key: &str) -> Result<Option<i64>> {
    match q.get(key).filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(s) => parse_time_ns(s)
            .map(Some)
            .ok_or_else(|| DaemonError::BadRequest(format!("invalid value for {key}: {s:?}"))),
    }
}

fn line(ev: &Event) -> Bytes {
    let mut v = serde_json::to_vec(&ev.to_json()).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

pub(super) async fn events(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response> {
    let filters = q.filters()?;
    if let Some(k) = filters.unknown_key(FILTER_KEYS) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let since = time_param(&q, "since")?;
    let until = time_param(&q, "until")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_nanos() as i64)
        .unwrap_or(0);
    let sub = d.events.subscribe(since, until);
    let past: Vec<Bytes> = sub
        .past
        .iter()
        .filter(|e| e.matches(&filters))
        .map(|e| line(e))
        .collect();
    let past = futures_util::stream::iter(past.into_iter().map(Ok::<_, std::io::Error>));
    // Live events only while `until` is still ahead.
    let deadline = match until {
        Some(u) if u <= now => None,
        Some(u) => Some(Some(
            tokio::time::Instant::now() + std::time::Duration::from_nanos((u - now) as u64),
        )),
        None => Some(None),
    };
    let live = futures_util::stream::unfold(
        deadline.map(|dl| (sub.live, dl, filters)),
        move |state| async move {
            let (mut rx, dl, filters) = state?;
            loop {
                let next = async {
                    match dl {
                        Some(dl) => tokio::time::timeout_at(dl, rx.recv()).await.ok(),
                        None => Some(rx.recv().await),
                    }
                };
                match next.await {
                    None => return None, // until reached
                    Some(Ok(ev)) => {
                        if until.is_some_and(|u| ev.time_nano > u) {
                            return None;
                        }
                        if ev.matches(&filters) {
                            let b = line(&ev);
                            return Some((Ok::<_, std::io::Error>(b), Some((rx, dl, filters))));
                        }
                    }
                    // A subscriber too slow for the bus loses the oldest
                    // events rather than holding the daemon's memory.
                    Some(Err(RecvError::Lagged(n))) => {
                        tracing::warn!("events subscriber lagged, {n} events dropped");
                    }
                    Some(Err(RecvError::Closed)) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(past.chain(live)),
    )
        .into_response())
}
