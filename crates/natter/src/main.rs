//! The `natter` binary: parse configuration, set up logging, bind, serve.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use natter::config::{Config, Settings};
use tracing_subscriber::EnvFilter;

/// natter — self-hosted web instant chat. Run without a command to serve.
#[derive(Parser)]
#[command(name = "natter", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file [default: natter.toml, if present]
    #[arg(long, env = "NATTER_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat API (the default).
    Serve,
    /// Copy the data folder's database, consistently, into a new folder DEST while natter runs (or not)
    Backup {
        /// A new folder for the copy; start natter with `--data-dir DEST` to restore
        dest: PathBuf,
    },
}

/// A fan-out answers thousands of polls per message, each allocating its
/// answer; glibc's malloc spent ~17% of the server's CPU on that under
/// load (arena locks, consolidation) and kept freed memory in per-thread
/// arenas. mimalloc is faster here and returns memory more readily.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // First, before the runtime and the rest allocate: pages already made
    // huge stay huge.
    let small_pages = small_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(small_pages))
}

async fn run(small_pages: std::io::Result<()>) -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => Settings::from_file(path)?,
        None if std::path::Path::new("natter.toml").exists() => {
            Settings::from_file(std::path::Path::new("natter.toml"))?
        }
        None => Settings::default(),
    };
    let config = Config::from_settings(file.overlay(cli.settings))?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log)?)
        .with_target(false)
        // Colour codes only for a person at a terminal, never in a file
        // or a pipe.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    if let Err(e) = small_pages {
        tracing::warn!(error = %e, "could not turn transparent huge pages off");
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Backup { dest } => {
            let copy = natter::store::sqlite::backup(&config.data_dir, &dest)?;
            println!(
                "backed up {} into {}: {} users, {} rooms, {} events, {} bytes, checked",
                config.data_dir.display(),
                dest.display(),
                copy.users,
                copy.rooms,
                copy.events,
                copy.bytes
            );
            Ok(())
        }
        Command::Serve => {
            // Each waiting poll holds a socket: allow as many as the system does.
            match rlimit::increase_nofile_limit(u64::MAX) {
                Ok(limit) => {
                    tracing::debug!(open_files.limit = limit, "raised the open-files limit")
                }
                Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
            }
            let listener = bind(config.listen)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
            natter::serve(listener, config, natter::server::shutdown_signal()).await
        }
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks the
/// kernel for them, and then the first byte touched in a 2 MiB stretch of
/// heap makes all of it resident. A waiting poll is a few KiB of buffers
/// and state spread over the heap, so with huge pages the server's RSS
/// counted every byte ever allocated for a connection, touched or not:
/// an idle connection measured 18.5 KiB with them and 10.6–10.9 KiB
/// without (`natter-bench idle`, docs/performance.md), with no change in
/// latency.
fn small_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_thp_disable(true)?;
    Ok(())
}

/// Binds with a listen backlog of 4096 (the kernel caps it at somaxconn),
/// so thousands of clients reconnecting at once after a restart are queued,
/// not dropped into SYN retries.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
