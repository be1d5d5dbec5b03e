//! natter-bench: drives a running natter over its public API exactly as
//! browsers do — one keep-alive TCP connection per simulated client, each
//! running the long-poll loop with its cursor — and reports delivery
//! latency, lost and duplicated deliveries, throughput and server memory.
//!
//! Every loop is bounded in count and time, and only loopback addresses
//! are ever contacted.

mod archive;
mod barrier;
mod ceiling;
mod churn;
mod conn;
mod fanout;
mod history;
mod idle;
mod merge;
mod nchan;
mod presence;
mod route;
mod setup;
mod stats;
mod typing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::fanout::{Change, Plan, Population, Run};
use crate::route::{Servers, Spread};
use crate::stats::Report;

/// Load generator for natter. Start natter first (scripts/bench.sh does it
/// all), then name a scenario. Give --server-pid to read the server's
/// memory and CPU from /proc. Give several --server (and their
/// --server-pid) to drive the nodes of a cluster.
#[derive(Parser)]
#[command(name = "natter-bench", version)]
struct Cli {
    /// natter's address (loopback only). Repeat it, or separate addresses
    /// by commas, for the nodes of one cluster: smoke, s1, s2, s3 and s4
    /// spread their readers and senders over them (see --spread)
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_delimiter = ',',
        global = true
    )]
    server: Vec<SocketAddr>,
    /// natter's process id, to read its RSS and CPU time. Repeat it (or
    /// separate by commas) for a cluster: memory and CPU add up over all
    #[arg(long, value_delimiter = ',', global = true)]
    server_pid: Vec<u32>,
    /// With several servers: each client keeps to server `i % n`
    /// (sticky), or every poll and every send goes to the next server, as
    /// behind a round-robin balancer with no sticky sessions (each client
    /// then holds a connection to every server: n times the open files)
    #[arg(long, value_enum, default_value_t = Spread::Sticky, global = true)]
    spread: Spread,
    /// Print the report as JSON instead of a table
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of the generator (the server's process has its own).
    /// On a 2-core machine both fight over the same cores either way; the
    /// figures in docs/performance.md use the default
    #[arg(long, default_value_t = 2, global = true)]
    threads: usize,
    /// The HS256 secret of the deployment's `[[sites]]` entry with id
    /// `bench` and issuer `natter-bench`: users then sign in with site
    /// tokens instead of registering (no password hashes, so 100,000
    /// users take minutes)
    #[arg(
        long,
        env = "NATTER_BENCH_SITE_SECRET",
        hide_env_values = true,
        global = true
    )]
    site_secret: Option<String>,
    /// Clients connect from 127.0.0.(1 + N) on: give each of several
    /// generators driving one deployment its own range (S3 at 19,000
    /// clients uses 2 addresses per step, up to 8 over its steps)
    #[arg(long, default_value_t = 0, global = true)]
    first_source: u8,
    /// A directory where several generators meet: each S3 step waits,
    /// once its clients are connected, until --parties processes have
    /// theirs, so the memory read is the whole deployment's
    #[arg(long, global = true)]
    barrier: Option<std::path::PathBuf>,
    /// How many generators meet at --barrier
    #[arg(long, default_value_t = 1, global = true)]
    parties: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Small exact-delivery check for CI: fails unless 0 lost, 0 duplicated, 0 errors.
    Smoke {
        #[arg(long, default_value_t = 50)]
        clients: usize,
        #[arg(long, default_value_t = 200)]
        messages: u64,
        #[arg(long, default_value_t = 2)]
        rooms: usize,
        #[arg(long, default_value_t = 2)]
        senders: usize,
    },
    /// S1: clients wait in one room; messages at a steady rate. Measures delivery latency. Runs `ceiling --fan-out` first.
    S1 {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Messages per second
        #[arg(long, default_value_t = 20.0, value_parser = positive_rate)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Skip the reference run (when several generator processes drive one server)
        #[arg(long)]
        no_ceiling: bool,
        /// What each send does: a new message, or an edit of / a reaction
        /// toggled on one earlier message (the fan-out of changes)
        #[arg(long, value_enum, default_value_t = Change::Message)]
        change: Change,
    },
    /// S2: clients wait in one room; senders send as fast as acks come. Runs `ceiling` first.
    S2 {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 8)]
        senders: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Skip the reference run (when several generator processes drive one server)
        #[arg(long)]
        no_ceiling: bool,
    },
    /// S3: ramp waiting polls in steps over many rooms at a low message rate. Measures memory per poll.
    S3 {
        #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,19000")]
        steps: Vec<usize>,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 1.0, value_parser = positive_rate)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// How long each poll waits (S3 is defined with 5 s; the SDK waits 30 s)
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
        poll_timeout: u64,
    },
    /// S4: many senders over many rooms, durable sends as fast as acks come. Measures acks/s.
    S4 {
        #[arg(long, default_value_t = 200)]
        senders: usize,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// S5: fill one room, then page its history at random points. Measures page latency.
    S5 {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 2000)]
        pages: usize,
        /// Percent of the messages edited before the pages are read
        #[arg(long, default_value_t = 0)]
        edited_percent: u64,
        /// Percent of the messages reacted to before the pages are read
        #[arg(long, default_value_t = 0)]
        reacted_percent: u64,
    },
    /// Typing: S1's room at a slow message rate, run without and then with
    /// typers (one notice per 3 s each). Measures the server CPU the notices cost.
    Typing {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Members of the room who type throughout (among the clients)
        #[arg(long, default_value_t = 100)]
        typers: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Connections that send nothing: the HTTP stack's memory per connection, the floor under S3's per-poll figure.
    Idle {
        /// Connections to open (one generator process holds at most ~19,000)
        #[arg(long, default_value_t = 5000)]
        clients: usize,
    },
    /// Presence in one big room: clients wait, then more members come online one by one. Counts the answers that carry no message.
    Presence {
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// Members who come online during the run
        #[arg(long, default_value_t = 250)]
        arrivals: usize,
        /// Arrivals per second
        #[arg(long, default_value_t = 50.0, value_parser = positive_rate)]
        rate: f64,
    },
    /// One big room: ramp its waiting members in steps; at each step send at each rate while members join, leave, come online and go, and readers reconnect; then a reconnect storm. Run it against a server with a presence grace shorter than the churn's pool cycle.
    BigRoom {
        #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,19000")]
        steps: Vec<usize>,
        /// Message rates to measure at each step
        #[arg(long, value_delimiter = ',', default_value = "1,20")]
        rates: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Joins, leaves, arrivals and reader reconnects per second, all together
        #[arg(long, default_value_t = 50.0)]
        churn: f64,
        /// Waiting readers whose polls watch the room (a page with it open)
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// After the steps, every reader of the last step drops its connection and comes back within a second
        #[arg(long)]
        storm: bool,
    },
    /// Writes a large XML chat archive of the PHP chat (no server needed), for timing `natter import-xml`.
    XmlArchive {
        /// A new folder to write it into
        #[arg(long)]
        out: std::path::PathBuf,
        /// About how much to write
        #[arg(long, default_value_t = 1024)]
        megabytes: u64,
        /// Group chats (each 2,000 messages a day)
        #[arg(long, default_value_t = 40)]
        groups: u64,
        /// One-to-one chats (each 200 messages a day)
        #[arg(long, default_value_t = 40)]
        pairs: u64,
    },
    /// S1's shape against nginx + nchan at --server (scripts/vs-nchan.sh starts it): the peer a long-poll delivery's cost is compared with. Give nginx's master as --server-pid.
    Nchan {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Messages per second
        #[arg(long, default_value_t = 20.0, value_parser = positive_rate)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Adds up the --json reports of several generator processes that drove one server at once.
    Merge {
        /// Files holding `natter-bench --json` output
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// The trivial in-process server every long-poll round trip is bounded by.
    Ceiling {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Hold every poll and answer all of them with a message this many
        /// times a second (S1's shape, on as many server threads as cores)
        /// instead of answering at once
        #[arg(long, value_parser = positive_rate)]
        fan_out: Option<f64>,
        /// Worker threads of the trivial server with --fan-out (default:
        /// one per core, as natter's runtime)
        #[arg(long)]
        server_threads: Option<usize>,
    },
}

/// A message rate: a positive, finite number of messages per second.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text} is not a positive number of messages per second"
        )),
    }
}

/// The machine's cores: the worker threads natter's runtime starts with.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    anyhow::ensure!(
        cli.server.iter().all(|s| s.ip().is_loopback()),
        "natter-bench only drives servers on loopback addresses"
    );
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let servers = Servers::new(cli.server, cli.spread)?.with_site_secret(cli.site_secret);
    conn::set_first_source(cli.first_source);
    let barrier = cli
        .barrier
        .map(|dir| barrier::Barrier::new(dir, cli.parties))
        .transpose()?;
    let spreads = matches!(
        cli.scenario,
        Scenario::Smoke { .. }
            | Scenario::S1 { .. }
            | Scenario::S2 { .. }
            | Scenario::S3 { .. }
            | Scenario::S4 { .. }
    );
    anyhow::ensure!(
        servers.len() == 1 || spreads,
        "only smoke, s1, s2, s3 and s4 spread over several servers; give one --server"
    );
    let (server, pid) = (servers.first(), cli.server_pid.as_slice());
    let run = |population, clients, plan, drain_s, name: &str| Run {
        change: Change::Message,
        servers: servers.clone(),
        server_pids: pid,
        population,
        clients,
        plan,
        drain: Duration::from_secs(drain_s),
        name: name.to_owned(),
        baseline_rss_kib: None,
        source_offset: 0,
        typers: 0,
        watchers: 0,
        churn: None,
        storm_after: None,
        poll_timeout_s: 5,
        barrier: None,
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut failed = false;
    match cli.scenario {
        Scenario::Smoke {
            clients,
            messages,
            rooms,
            senders,
        } => {
            let pop = Population::create(&servers, rooms, clients, senders).await?;
            let report = run(&pop, clients, Plan::Count { messages }, 30, "smoke")
                .execute()
                .await?;
            failed = report.lost != Some(0)
                || report.duplicated != Some(0)
                || report.errors != 0
                || report.messages_acked != messages;
            reports.push(report);
        }
        Scenario::S1 {
            clients,
            rate,
            seconds,
            no_ceiling,
            change,
        } => {
            let seconds = Duration::from_secs(seconds);
            if no_ceiling {
            } else if ceiling::fits(clients) {
                reports.push(ceiling::fan_out(clients, rate, seconds, cores()).await?);
            } else {
                eprintln!(
                    "skipping the fan-out ceiling: {clients} clients and their server do not fit in this process's open files"
                );
            }
            let pop = Population::create(&servers, 1, clients, 1).await?;
            let plan = Plan::Rate {
                per_second: rate,
                duration: seconds,
            };
            let name = match change {
                Change::Message => "s1",
                Change::Edit => "s1-edits",
                Change::Reaction => "s1-reactions",
            };
            let measured = Run {
                change,
                ..run(&pop, clients, plan, 10, name)
            };
            reports.push(measured.execute().await?);
        }
        Scenario::Typing {
            clients,
            typers,
            seconds,
        } => {
            anyhow::ensure!(typers <= clients, "typers are among the clients");
            let pop = Population::create(&servers, 1, clients, 1).await?;
            let plan = Plan::Rate {
                per_second: 1.0,
                duration: Duration::from_secs(seconds),
            };
            let quiet = run(&pop, clients, plan, 10, "typing-none")
                .execute()
                .await?;
            let typing = Run {
                typers,
                source_offset: clients + typers,
                ..run(&pop, clients, plan, 10, "typing")
            }
            .execute()
            .await?;
            let mut typing = typing;
            if let (Some(with), Some(without)) =
                (typing.server_cpu_percent, quiet.server_cpu_percent)
            {
                typing.notes.push(format!(
                    "typing notices cost {:.1}% of one core ({with:.1}% with {typers} typers, {without:.1}% without)",
                    with - without
                ));
            }
            reports.push(quiet);
            reports.push(typing);
        }
        Scenario::S2 {
            clients,
            senders,
            seconds,
            no_ceiling,
        } => {
            if no_ceiling {
            } else if ceiling::fits(clients) {
                reports.push(ceiling::round_trips(clients, Duration::from_secs(seconds)).await?);
            } else {
                eprintln!(
                    "skipping the ceiling: {clients} clients and their server do not fit in this process's open files"
                );
            }
            let pop = Population::create(&servers, 1, clients, senders).await?;
            let plan = Plan::Flood {
                duration: Duration::from_secs(seconds),
            };
            reports.push(run(&pop, clients, plan, 10, "s2").execute().await?);
        }
        Scenario::S3 {
            steps,
            rooms,
            rate,
            seconds,
            poll_timeout,
        } => {
            let most = steps.iter().copied().max().unwrap_or(0);
            let pop = Population::create(&servers, rooms, most, 1.max(rooms.min(10))).await?;
            let before_any = stats::memory(pid).map(|m| m.rss_kib);
            let mut offset = 0;
            for step in steps {
                let plan = Plan::Rate {
                    per_second: rate,
                    duration: Duration::from_secs(seconds),
                };
                let mut step_run = run(&pop, step, plan, 10, &format!("s3 @ {step}"));
                // Memory per poll counts from before the first step, so
                // feeds loaded by earlier steps count too.
                step_run.baseline_rss_kib = before_any;
                step_run.poll_timeout_s = poll_timeout;
                // Each step connects from fresh source addresses: the last
                // step's ports sit in TIME_WAIT for a minute.
                step_run.source_offset = offset;
                step_run.barrier = barrier.clone().map(|b| (b, format!("s3-{step}")));
                offset +=
                    step.div_ceil(conn::CONNECTIONS_PER_SOURCE) * conn::CONNECTIONS_PER_SOURCE;
                reports.push(step_run.execute().await?);
            }
        }
        Scenario::S4 {
            senders,
            rooms,
            seconds,
        } => {
            let pop = Population::create(&servers, rooms, 0, senders).await?;
            let plan = Plan::Flood {
                duration: Duration::from_secs(seconds),
            };
            reports.push(run(&pop, 0, plan, 0, "s4").execute().await?);
        }
        Scenario::S5 {
            messages,
            pages,
            edited_percent,
            reacted_percent,
        } => {
            let changes = history::Changes {
                edited_percent,
                reacted_percent,
            };
            reports.push(history::run(server, pid, messages, pages, changes).await?);
        }
        Scenario::Idle { clients } => {
            reports.push(idle::run(server, pid, clients).await?);
        }
        Scenario::Presence {
            clients,
            arrivals,
            rate,
        } => {
            reports.push(presence::run(server, pid, clients, arrivals, rate).await?);
        }
        Scenario::BigRoom {
            steps,
            rates,
            seconds,
            churn,
            watchers,
            storm,
        } => {
            anyhow::ensure!(
                rates.iter().all(|r| r.is_finite() && *r > 0.0) && churn > 0.0,
                "rates and churn are positive numbers per second"
            );
            let most = steps.iter().copied().max().unwrap_or(0);
            let pop = Population::create(&servers, 1, most, 1).await?;
            let pool = setup::accounts(&servers, &format!("{}c", pop.prefix), 200).await?;
            let before_any = stats::memory(pid).map(|m| m.rss_kib);
            let mut offset = 0;
            let mut runs = Vec::new();
            for &step in &steps {
                for &rate in &rates {
                    runs.push((step, rate, None));
                }
            }
            if storm && let Some(&last) = steps.last() {
                runs.push((last, rates[0], Some(Duration::from_secs(seconds.min(5)))));
            }
            for (step, rate, storm_after) in runs {
                let plan = Plan::Rate {
                    per_second: rate,
                    duration: Duration::from_secs(seconds.max(storm_after.map_or(0, |_| 20))),
                };
                let name = match storm_after {
                    Some(_) => format!("big-room @ {step}, {rate}/s, storm"),
                    None => format!("big-room @ {step}, {rate}/s"),
                };
                let mut step_run = run(&pop, step, plan, 20, &name);
                step_run.baseline_rss_kib = before_any;
                step_run.source_offset = offset;
                step_run.watchers = watchers;
                step_run.storm_after = storm_after;
                step_run.poll_timeout_s = 30;
                step_run.churn = Some(Arc::new(churn::Churn {
                    room: pop.rooms[0],
                    pool: pool.clone(),
                    per_second: churn,
                    reconnect_tickets: 0.into(),
                    counts: Default::default(),
                }));
                offset += (step + 600).div_ceil(conn::CONNECTIONS_PER_SOURCE)
                    * conn::CONNECTIONS_PER_SOURCE;
                let report = step_run.execute().await?;
                failed |= report.lost != Some(0) || report.duplicated != Some(0);
                reports.push(report);
            }
        }
        Scenario::XmlArchive {
            out,
            megabytes,
            groups,
            pairs,
        } => {
            let done = archive::write(&out, megabytes, groups, pairs)?;
            eprintln!(
                "wrote {} messages in {} files, {} MiB, under {}",
                done.messages,
                done.files,
                done.bytes / (1024 * 1024),
                out.display()
            );
            return Ok(());
        }
        Scenario::Nchan {
            clients,
            rate,
            seconds,
        } => {
            let seconds = Duration::from_secs(seconds);
            let report = nchan::s1(server, pid, clients, rate, seconds).await?;
            failed = report.lost != Some(0) || report.duplicated != Some(0) || report.errors > 0;
            reports.push(report);
        }
        Scenario::Merge { files } => {
            reports = merge::run(&files)?;
            failed = reports
                .iter()
                .any(|r| r.lost.unwrap_or(0) > 0 || r.duplicated.unwrap_or(0) > 0);
        }
        Scenario::Ceiling {
            clients,
            seconds,
            fan_out,
            server_threads,
        } => {
            anyhow::ensure!(
                ceiling::fits(clients),
                "{clients} clients and their server do not fit in this process's open files"
            );
            let seconds = Duration::from_secs(seconds);
            let threads = server_threads.unwrap_or_else(cores).max(1);
            reports.push(match fan_out {
                Some(rate) => ceiling::fan_out(clients, rate, seconds, threads).await?,
                None => ceiling::round_trips(clients, seconds).await?,
            });
        }
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            r.print_table();
        }
    }
    if failed {
        anyhow::bail!("deliveries were lost or duplicated, or requests failed");
    }
    Ok(())
}
