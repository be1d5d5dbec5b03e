//! The `natter` binary: parse configuration, set up logging, bind, serve.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use natter::config::{Config, Settings};
use natter::store::StoreChoice;
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
    /// Import the XML chat archive of the PHP chat natter grows out of (docs/migrating.md); natter must not be running
    ImportXml {
        /// The archive's top folder (date folders and one-to-one folders at any depth)
        dir: PathBuf,
        /// The configured host site whose users the archive's user ids are; without it, local accounts `xml-<id>`
        #[arg(long)]
        site: Option<String>,
        /// Group titles, lines of `mass = title` [default: `mass N`]
        #[arg(long)]
        titles: Option<PathBuf>,
        /// Base URL that relative `headpic` paths are resolved against [default: relative ones are dropped]
        #[arg(long)]
        headpic_base: Option<String>,
        /// Say what would be imported, write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Move this deployment from its SQLite data folder onto PostgreSQL: users, sessions, rooms, every event, cursors kept valid (docs/operations.md); natter must not be running
    MigrateStore {
        /// The SQLite data folder to copy [default: the configured data_dir]
        #[arg(long)]
        from: Option<PathBuf>,
        /// The PostgreSQL database to fill, which must hold no deployment yet: a postgres:// URL [default: the configured `store`, when it is one]
        #[arg(long)]
        to: Option<String>,
        /// Rows read and written per batch
        #[arg(long, default_value_t = natter::store::migrate::DEFAULT_BATCH_ROWS)]
        batch_rows: usize,
    },
    /// Write every room back in the XML archive's layout into DIR (new or empty); natter must not be running
    ExportXml {
        dir: PathBuf,
        /// The host site whose users get their site ids in the archive
        #[arg(long)]
        site: Option<String>,
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
    let settings = file.overlay(cli.settings);
    let allow_unsafe_commit = settings.postgres_allow_unsafe_commit.unwrap_or(false);
    let config = Config::from_settings(settings)?;
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
            if !matches!(config.store, StoreChoice::Sqlite) {
                anyhow::bail!(
                    "backup copies the SQLite data folder; back a PostgreSQL store up with pg_dump"
                );
            }
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
        Command::ImportXml {
            dir,
            site,
            titles,
            headpic_base,
            dry_run,
        } => {
            check_site(&config, site.as_deref())?;
            let store = open_store(&config).await?;
            let options = natter::archive::import::ImportOptions {
                dir,
                site,
                titles: match titles {
                    Some(path) => natter::archive::import::read_titles(&path)?,
                    None => Default::default(),
                },
                headpic_base,
                dry_run,
                max_message_chars: config.chat.max_message_chars,
            };
            let summary = natter::archive::import::import(store, options).await?;
            print_import_summary(&summary, dry_run);
            Ok(())
        }
        Command::ExportXml { dir, site } => {
            check_site(&config, site.as_deref())?;
            let store = open_store(&config).await?;
            let done = natter::archive::export::export(store, &dir, site.as_deref()).await?;
            println!(
                "exported {} rooms and {} direct conversations, {} messages, into {} files under {}",
                done.rooms,
                done.direct,
                done.messages,
                done.files,
                dir.display()
            );
            Ok(())
        }
        Command::MigrateStore {
            from,
            to,
            batch_rows,
        } => {
            let to = match to {
                Some(url) => StoreChoice::from_setting(Some(&url), allow_unsafe_commit)?,
                None => config.store.clone(),
            };
            let StoreChoice::Postgres(to) = to else {
                anyhow::bail!(
                    "migrate-store needs the PostgreSQL database to fill: --to postgres://… (or a postgres:// `store` setting)"
                );
            };
            let mut options = natter::store::migrate::MigrateOptions::new(
                from.unwrap_or_else(|| config.data_dir.clone()),
                to,
            );
            options.batch_rows = batch_rows;
            // The crash test's hook (tests/api/migrate_store.rs).
            options.crash_after_batches = std::env::var("NATTER_TEST_CRASH_AFTER_BATCHES")
                .ok()
                .and_then(|n| n.parse().ok());
            print_migration(
                &options.clone(),
                natter::store::migrate::migrate_store(options).await?,
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

/// The configured store, for a command that runs while natter does not
/// (a SQLite folder's lock refuses a second natter), opened as the
/// server opens it.
async fn open_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn natter::store::Store>> {
    Ok(config.store.open(&config.data_dir).await?)
}

/// Refuses a `--site` the configuration does not name.
fn check_site(config: &Config, site: Option<&str>) -> anyhow::Result<()> {
    if let Some(site) = site
        && !config.chat.sites.iter().any(|s| s.id == site)
    {
        anyhow::bail!(
            "--site {site}: no host site of that id is configured ([[sites]] in natter.toml)"
        );
    }
    Ok(())
}

fn print_migration(
    options: &natter::store::migrate::MigrateOptions,
    outcome: natter::store::migrate::Outcome,
) {
    use natter::store::migrate::Outcome;
    let to = natter::store::postgres::redacted(&options.to.url);
    match outcome {
        Outcome::AlreadyDone { deployment_id, at } => println!(
            "{to} already holds this deployment (id {deployment_id:016x}), copied from {} at {}: nothing to do",
            options.from.display(),
            utc_time(at)
        ),
        Outcome::Copied(summary) => {
            let counts: Vec<String> = summary
                .tables
                .iter()
                .map(|t| format!("{} {}", t.label, t.rows))
                .collect();
            println!(
                "migrated {} into {to} in {:.1} s: {}",
                options.from.display(),
                summary.seconds,
                counts.join(", ")
            );
            println!(
                "deployment id {:016x} and cursor key kept: sessions and cursors stay valid; start natter with --store {to}",
                summary.deployment_id
            );
        }
    }
}

/// `YYYY-MM-DD hh:mm:ss UTC` of milliseconds since the epoch.
fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        natter::archive::utc_date(ms),
        secs.div_euclid(3600).rem_euclid(24),
        secs.div_euclid(60).rem_euclid(60),
        secs.rem_euclid(60)
    )
}

fn print_import_summary(s: &natter::archive::import::Summary, dry_run: bool) {
    let verb = if dry_run { "would import" } else { "imported" };
    println!(
        "{verb} {} chats from {} files in {:.1} s: users {} new, {} known; rooms {} new, direct conversations {} new",
        s.chats,
        s.files,
        s.seconds,
        s.users_created,
        s.users_found,
        s.rooms_created,
        s.direct_created
    );
    if dry_run {
        println!("messages in the archive: {}", s.messages_found);
    } else {
        println!(
            "messages: {} imported, {} imported before, {} changed in the archive since (left as they were)",
            s.messages_imported, s.messages_already, s.messages_conflicting
        );
        if s.messages_from_leavers > 0 {
            println!(
                "messages of people who have left their room since: {} (not added)",
                s.messages_from_leavers
            );
        }
    }
    if !s.skipped.is_empty() {
        println!("skipped ({}):", s.skipped.len());
        for skip in &s.skipped {
            println!("  {}: {}", skip.place, skip.reason);
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
