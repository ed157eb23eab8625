//! `HEAD/GET/PUT /containers/{id}/archive` (`docker cp`) and
//! `GET /containers/{id}/export`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::Query;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_of(q: &Query) -> Result<String> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(DaemonError::BadRequest(
            "bad parameter: 'path' cannot be empty".into(),
        )),
    }
}

fn with_stat(mut resp: Response, stat: &crate::core::archive::PathStat) -> Response {
    if let Ok(v) = HeaderValue::from_str(&stat.header()) {
        resp.headers_mut().insert(STAT_HEADER, v);
    }
    resp
}

pub(super) async fn head(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let path = path_of(&q)?;
    let c = d.container(&id)?;
    let stat = d.archive_stat(&c, &path, &id).await?;
    Ok(with_stat(StatusCode::OK.into_response(), &stat))
}

/// A blocking writer into a response body.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) async fn get(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let path = path_of(&q)?;
    let c = d.container(&id)?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let stat = d.archive_get(&c, &path, &id, ChannelWriter(tx)).await?;
    let resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        channel_body(rx),
    )
        .into_response();
    Ok(with_stat(resp, &stat))
}

/// The receiving end of a [`ChannelWriter`] as a response body.
fn channel_body(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

pub(super) async fn export(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = d.container(&id)?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    d.export(&c, ChannelWriter(tx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        channel_body(rx),
    )
        .into_response())
}

pub(super) async fn put(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    body: Body,
) -> Result<Response> {
    let path = path_of(&q)?;
    let c = d.container(&id)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    d.archive_put(&c, &path, &id, q.flag("copyUIDGID"), reader)
        .await?;
    Ok(StatusCode::OK.into_response())
}
