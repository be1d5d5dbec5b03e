//! The HTTP stack's floor: connections natter has accepted that have sent
//! nothing yet (a browser's pre-opened socket, or a poll's connection in
//! the moment between two requests). What each costs the server is what
//! any waiting poll costs before natter holds anything for it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpSocket;

use crate::conn::source_for;
use crate::stats::{Report, memory};

/// How long the server gets to accept and set up the last connection;
/// well under its header read timeout (20 s by default), after which it
/// closes connections that sent nothing.
const SETTLE: Duration = Duration::from_secs(2);
/// Connections opened at once.
const WAVE: usize = 256;

/// Opens `clients` connections, sends nothing, and reads the server's RSS
/// before and after.
pub async fn run(server: SocketAddr, pids: &[u32], clients: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(
        !pids.is_empty(),
        "the idle scenario needs --server-pid to read the server's memory"
    );
    let rss = || memory(pids).context("cannot read the server's memory from /proc");
    let before = rss()?;
    let started = Instant::now();
    // Connections open in concurrent waves: one after another, the first
    // would reach the server's header read timeout before the last opened.
    let mut held = Vec::with_capacity(clients);
    for wave in (0..clients).collect::<Vec<_>>().chunks(WAVE) {
        let mut opening = tokio::task::JoinSet::new();
        for &i in wave {
            opening.spawn(async move {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(source_for(i), 0))?;
                socket
                    .connect(server)
                    .await
                    .with_context(|| format!("connection {i}"))
            });
        }
        while let Some(opened) = opening.join_next().await {
            held.push(opened??);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = rss()?;
    let per_connection = (after.rss_kib as f64 - before.rss_kib as f64) / clients.max(1) as f64;
    Ok(Report {
        scenario: "idle".into(),
        clients,
        duration_s: started.elapsed().as_secs_f64(),
        server_rss_kib: Some(after.rss_kib),
        server_peak_rss_kib: Some(after.peak_rss_kib),
        server_kib_per_connection: Some(per_connection),
        notes: vec![format!(
            "server RSS {} KiB before, {} KiB with {clients} idle connections",
            before.rss_kib, after.rss_kib
        )],
        ..Report::default()
    })
}
