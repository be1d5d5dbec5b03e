//! The network edge: accepts connections, serves HTTP/1.1 with a header
//! read timeout (a client that trickles headers cannot pin a task), and
//! shuts down gracefully — waiting polls are answered first, then open
//! connections get a bounded time to finish. Connections are counted in
//! all and per source (`connections.rs`).

mod connections;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use self::connections::{ConnectionGate, Refusal};
use crate::bus::Bus;
use crate::bus::local::LocalBus;
use crate::bus::redis::RedisBus;
use crate::chat::Chat;
use crate::config::Config;
use crate::http;
use crate::http::Peer;
use crate::store::Store;
use axum::http::Request;
use hyper::body::Incoming;
use tower::ServiceExt;

/// Builds the node from `config` and serves on `listener` until `shutdown`
/// completes. Tests call this with a listener on port 0.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = config.store.open(&config.data_dir).await?;
    let bus: Arc<dyn Bus> = match &config.bus {
        Some(url) => {
            let channel = config
                .bus_channel
                .clone()
                .unwrap_or_else(|| format!("natter:{:016x}:bus", store.deployment_id()));
            RedisBus::start(url.as_str(), &config.bus_tls, channel)?
        }
        None => {
            if matches!(config.store, crate::store::StoreChoice::Postgres(_)) {
                tracing::warn!(
                    "on PostgreSQL without a bus: this must be the only node on this database (give every node the same --bus for a cluster)"
                );
            }
            Arc::new(LocalBus::new())
        }
    };
    // Only now is it true: the store is locked (SQLite) or reachable
    // (PostgreSQL), checked and migrated, and the bus's settings usable.
    tracing::info!(
        listen = %listener.local_addr()?,
        store = %config.store,
        data_dir = %config.data_dir.display(),
        "natter is serving"
    );
    let chat = Chat::new(store, bus, config.hub.clone(), config.chat.clone());
    let app = http::app(chat.clone(), &config);

    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut reserve = FdReserve::new();
    let total_cap = config.max_connections.unwrap_or_else(|| {
        let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        connections::total_cap_for(open_files)
    });
    let gate = ConnectionGate::new(
        config.max_connections_per_source,
        total_cap,
        config.trusted_proxies.clone(),
        chat.metrics().clone(),
    );
    // Refused connections being closed gently, at most this many at once.
    let refusals = Arc::new(tokio::sync::Semaphore::new(256));
    let metrics_server = match config.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, chat.metrics().clone()).await?),
        None => None,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admitted = match gate.admit(peer.ip()) {
                        Ok(admitted) => admitted,
                        Err(refusal) => {
                            refuse(stream, &refusal, &refusals);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    // Every request learns its connection's peer, for
                    // per-source limits.
                    let app = app.clone().map_request(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(Peer(peer));
                        request
                    });
                    let service = TowerToHyperService::new(app);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        drop(admitted);
                    });
                }
                Err(e) => accept_failed(e, &listener, &mut reserve).await,
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if let Some(task) = metrics_server {
        task.abort();
    }
    tracing::info!("shutting down: answering waiting polls");
    chat.hub().shutdown();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace_secs = config.shutdown_grace.as_secs(), "connections still open after the grace period");
        }
    }
    Ok(())
}

/// Serves `/metrics`, unauthenticated, on its own address (one only the
/// operator's network reaches).
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
    tracing::info!(metrics.listen = %listener.local_addr()?, "serving metrics");
    let app = http::metrics_app(metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    }))
}

/// Answers a connection the gate turned away, without reading from it.
///
/// Closing a socket that still holds unread request bytes sends a reset,
/// which can destroy the answer before the client reads it; so the
/// answer is followed by a half-close and a short drain of what the
/// client sent (at most 64 KiB for 500 ms, a bounded number of such
/// closes at once; past that the socket is simply dropped).
fn refuse(stream: tokio::net::TcpStream, refusal: &Refusal, gentle: &Arc<tokio::sync::Semaphore>) {
    let _ = stream.try_write(refusal.answer());
    tracing::debug!(?refusal, "refused a connection");
    let Ok(permit) = gentle.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let Ok(socket) = stream.into_std() else {
            return;
        };
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let Ok(stream) = tokio::net::TcpStream::from_std(socket) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        let (mut drained, mut buf) = (0, [0u8; 4096]);
        while drained < 64 * 1024 {
            match tokio::time::timeout_at(deadline, stream.readable()).await {
                Ok(Ok(())) => match stream.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => drained += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                },
                _ => break,
            }
        }
    });
}

/// A failed accept never stops the server. Running out of file handles is
/// the usual cause under load: then one waiting client is told so and shut
/// out (see [`FdReserve`]), the loop backs off so it does not spin, and the
/// connections already held keep their service.
async fn accept_failed(e: std::io::Error, listener: &TcpListener, reserve: &mut FdReserve) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    let out_of_files = matches!(e.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE);
    if out_of_files {
        reserve.refuse_one(listener).await;
    } else {
        tracing::warn!(error = %e, "accept failed; backing off");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// One file handle kept in reserve. When the process runs out of handles,
/// a client would otherwise wait in the listen backlog until it gives up;
/// releasing the reserve lets the server accept that client, answer
/// `503` with a JSON error, close, and take the reserve back.
struct FdReserve(Option<std::fs::File>);

impl FdReserve {
    fn new() -> Self {
        FdReserve(std::fs::File::open("/dev/null").ok())
    }

    async fn refuse_one(&mut self, listener: &TcpListener) {
        self.0 = None;
        let accepted = tokio::time::timeout(Duration::from_millis(10), listener.accept()).await;
        if let Ok(Ok((stream, _))) = accepted {
            let _ = stream.try_write(connections::SERVER_FULL);
            drop(stream);
            tracing::warn!("out of file handles: refused a connection");
        }
        *self = FdReserve::new();
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
