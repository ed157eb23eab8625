//! `GET /containers/{id}/attach/ws`: attach over a websocket, as dockerd's
//! `wsContainersAttach`: never multiplexed (stdout and stderr arrive as
//! they are written), output in binary frames (API ≥ 1.28), the payload of
//! every text or binary frame from the client is stdin, and a close frame
//! ends the attach. Before API 1.42 all three streams are attached whatever
//! the query says; from 1.42 on `stdin`, `stdout` and `stderr` choose.
//! `logs`, `stream` and `detachKeys` work as on the hijacked attach.

use std::io;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_api::version::ApiVersion;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::attach::{api_version, prepare, run_session, AttachRequest, Sink, Source};
use super::{Query, RequestedVersion};
use crate::core::Daemon;
use crate::error::Result;

/// Client frames as stdin bytes.
struct WsSource(SplitStream<WebSocket>);

impl Source for WsSource {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.0.next().await? {
                Ok(Message::Binary(b)) => return Some(b),
                Ok(Message::Text(t)) => return Some(Bytes::copy_from_slice(t.as_str().as_bytes())),
                Ok(Message::Close(_)) | Err(_) => return None,
                // Pings are answered by the websocket layer itself.
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
            }
        }
    }
}

/// Output as binary frames.
struct WsSink(SplitSink<WebSocket, Message>);

impl Sink for WsSink {
    async fn send(&mut self, data: Bytes) -> io::Result<()> {
        self.0
            .send(Message::Binary(data))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let _ = self.0.close().await;
    }
}

pub(super) async fn attach_ws(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    version: Option<Extension<RequestedVersion>>,
    q: Query,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let version = api_version(version.as_ref().map(|v| &v.0));
    let streams = if version >= ApiVersion(1, 42) {
        (q.flag("stdin"), q.flag("stdout"), q.flag("stderr"))
    } else {
        (true, true, true)
    };
    // The container is looked up first: a missing one is a 404 whatever
    // the request looks like.
    let AttachRequest { session, .. } = prepare(&d, &id, &q, streams, true, version).await?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(ws.on_upgrade(move |socket| async move {
        let (tx, rx) = socket.split();
        run_session(session, WsSource(rx), WsSink(tx), false).await;
    }))
}
