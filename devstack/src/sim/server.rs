//! The accept loop: hyper HTTP/1 connections, so that a fault can close a connection without
//! an answer (axum's `serve` cannot), then the axum router.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::faults::DropMode;
use super::{KindApp, Shared};

/// Returned to hyper to close the connection without a response.
#[derive(Debug)]
pub(crate) struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    kind: KindApp,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "simulator accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (router, shared, kind) = (router.clone(), shared.clone(), kind.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        handle(req, router.clone(), shared.clone(), kind.clone())
                    });
                    // Errors here are the client going away or an injected drop.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn handle(
    req: Request<Incoming>,
    router: Router,
    shared: Arc<Shared>,
    kind: KindApp,
) -> Result<Response<Body>, DroppedConnection> {
    let path = req.uri().path().to_string();
    if path.starts_with("/_sim/") || !kind.is_data_path(&path) {
        return Ok(route(router, req).await);
    }
    let fault = {
        let f = shared.faults().next_request(Instant::now());
        let mut rec = shared.rec();
        rec.stats.requests += 1;
        if f.drop.is_some() {
            rec.stats.dropped += 1;
        } else if f.status.is_some() {
            rec.stats.faulted += 1;
        }
        f
    };
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    match fault.drop {
        Some(DropMode::BeforeProcessing) => return Err(DroppedConnection),
        Some(DropMode::AfterProcessing) => {
            let _ = route(router, req).await;
            return Err(DroppedConnection);
        }
        None => {}
    }
    if let Some((status, retry_after)) = fault.status {
        return Ok(kind.fault_response(status, retry_after.as_deref()));
    }
    Ok(route(router, req).await)
}

async fn route(router: Router, req: Request<Incoming>) -> Response<Body> {
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}
