//! The long-poll delivery scenarios: readers wait in rooms, senders send,
//! and every delivery is checked (per-room sequence continuity) and timed
//! (the send time travels in the message text).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::conn::source_for;
use crate::route::{Client, Servers};
use crate::setup::{self, Account};
use crate::stats::{CpuMeter, Latency, Report, cpu_time, memory};

/// Users, rooms and memberships for a run, created once.
pub struct Population {
    pub prefix: String,
    pub rooms: Vec<i64>,
    pub readers: Vec<Account>,
    pub senders: Vec<Account>,
}

impl Population {
    /// Reader `i` is in room `i % rooms`. With no more senders than rooms
    /// every sender joins (and sends round-robin to) every room; with more,
    /// sender `i` keeps to room `i % rooms`. On several servers reader
    /// and sender `i` are set up through server `i % n`.
    pub async fn create(
        servers: &Servers,
        rooms: usize,
        readers: usize,
        senders: usize,
    ) -> anyhow::Result<Population> {
        let senders_in_every_room = senders <= rooms;
        let prefix = setup::run_prefix();
        eprintln!(
            "setting up {readers} readers, {senders} senders, {rooms} rooms (prefix {prefix})"
        );
        let owner = setup::accounts(servers, &format!("{prefix}o"), 1).await?;
        let room_ids = setup::rooms(servers, &owner[0], &prefix, rooms).await?;
        let reader_accounts = setup::accounts(servers, &format!("{prefix}r"), readers).await?;
        let sender_accounts = setup::accounts(servers, &format!("{prefix}s"), senders).await?;
        let mut memberships = Vec::new();
        for (i, a) in reader_accounts.iter().enumerate() {
            memberships.push((a.clone(), room_ids[i % rooms]));
        }
        for (i, a) in sender_accounts.iter().enumerate() {
            if senders_in_every_room {
                memberships.extend(room_ids.iter().map(|r| (a.clone(), *r)));
            } else {
                memberships.push((a.clone(), room_ids[i % rooms]));
            }
        }
        setup::join(servers, memberships).await?;
        let retried = crate::conn::RETRIED.load(Ordering::Relaxed);
        if retried > 0 {
            eprintln!("  {retried} setup calls were answered 503 and tried again");
        }
        Ok(Population {
            prefix,
            rooms: room_ids,
            readers: reader_accounts,
            senders: sender_accounts,
        })
    }
}

/// How senders send.
#[derive(Clone, Copy, Debug)]
pub enum Plan {
    /// A fixed total rate across all senders for a time.
    Rate { per_second: f64, duration: Duration },
    /// Each sender sends its next message as soon as the last is acked.
    Flood { duration: Duration },
    /// Exactly this many messages, as fast as acks come.
    Count { messages: u64 },
}

/// What each step of the senders' plan does to a room: send a message,
/// or change one message the sender sent first (its "anchor"), so edits
/// and reactions can be measured in the same shape as messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Change {
    #[default]
    Message,
    /// Edit the anchor; the new text carries the send time.
    Edit,
    /// Toggle the sender's reaction on the anchor. Reactions carry no
    /// text, so their delivery is timed from the event's `ts` (when the
    /// server stored it, in ms): a slightly smaller figure than
    /// send-to-delivery.
    Reaction,
}

impl Change {
    /// Whether readers count an event of this type as a delivery.
    fn counts(self, kind: &str) -> bool {
        match self {
            Change::Message => kind == "message",
            Change::Edit => kind == "message_edited",
            Change::Reaction => kind == "reaction_added" || kind == "reaction_removed",
        }
    }
}

/// One measured run over a population.
pub struct Run<'a> {
    /// What senders do at each step.
    pub change: Change,
    /// The nodes readers and senders spread over (one for a single server).
    pub servers: Servers,
    /// The servers' processes, whose memory and CPU are added up.
    pub server_pids: &'a [u32],
    pub population: &'a Population,
    /// How many of the population's readers connect (the first N).
    pub clients: usize,
    pub plan: Plan,
    /// How long readers may take to catch up after the last send.
    pub drain: Duration,
    pub name: String,
    /// Server RSS to count memory per poll from; measured at the start of
    /// the run when not given (S3 gives the RSS before its first step, so
    /// feeds loaded by earlier steps count too).
    pub baseline_rss_kib: Option<u64>,
    /// Added to each client's index when choosing its source address, so
    /// consecutive runs do not reuse ports still in TIME_WAIT.
    pub source_offset: usize,
    /// Readers (the first N) that also send typing notices while the
    /// senders send (the typing scenario).
    pub typers: usize,
    /// Readers (the first N) whose polls watch their room, as a page
    /// with the room open does (presence and typing of a big room reach
    /// only them).
    pub watchers: usize,
    /// Joins, leaves, arrivals and reconnects beside the run (big-room).
    pub churn: Option<Arc<crate::churn::Churn>>,
    /// Every reader drops its connection this long after sending starts
    /// and comes back within a second, as after a restart (big-room).
    pub storm_after: Option<Duration>,
    /// The `timeout` each poll asks for: S1's 5 s, or the SDK's 30 s
    /// where answers without news matter (big-room).
    pub poll_timeout_s: u64,
    /// Where this run meets the other generators, and the point's name:
    /// once its clients are connected, it waits for theirs before it
    /// reads the servers' memory and starts sending.
    pub barrier: Option<(crate::barrier::Barrier, String)>,
}

#[derive(Deserialize)]
pub(crate) struct Answer {
    events: Vec<EventIn>,
    cursor: String,
}

#[derive(Deserialize)]
pub(crate) struct EventIn {
    #[serde(rename = "type")]
    kind: String,
    seq: i64,
    ts: Option<i64>,
    text: Option<String>,
}

impl EventIn {
    /// When a message was sent, in microseconds since the run's epoch: the
    /// senders put it in the text (on several servers followed by
    /// `@<node>`, the server it was sent to).
    fn sent_us(&self) -> Option<u64> {
        let text = self.text.as_deref()?;
        text.split_once('@').map_or(text, |(us, _)| us).parse().ok()
    }

    /// The server a message was sent to, when the run has several: a
    /// delivery by another one came over the bus.
    fn sent_on(&self) -> Option<usize> {
        self.text.as_deref()?.split_once('@')?.1.parse().ok()
    }
}

impl Answer {
    /// Sequence number and send time of each timed message in the answer.
    pub(crate) fn message_times(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.events
            .iter()
            .filter(|e| e.kind == "message")
            .filter_map(|e| Some((e.seq, e.sent_us()?)))
    }
}

#[derive(Default)]
struct ReaderResult {
    /// Polls answered 200, and of them those with no counted delivery.
    answers: u64,
    empty_answers: u64,
    /// Whether the storm dropped this reader's waiting poll, and from
    /// then to its next delivery.
    stormed: bool,
    back_after_storm: Option<Duration>,
    received: u64,
    duplicated: u64,
    gaps: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    /// With several servers, the same latencies split by whether the poll
    /// was answered by the node the message was sent to.
    same_node_us: Vec<u32>,
    cross_node_us: Vec<u32>,
    last_delivery: Option<Instant>,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// At most this many clients connect and take their first cursor at once,
/// so a ramp of thousands is not a storm of half-open connections. Several
/// generators meeting at a barrier share it, so a cluster sees the same
/// storm as one server from one generator.
const CONNECTING_AT_ONCE: usize = 500;

/// Shared state between senders and readers.
struct Shared {
    /// Makes client message ids unique across the runs over one population.
    run_tag: u64,
    epoch: Instant,
    /// The wall clock at `epoch`, in ms, for timing events by their `ts`.
    epoch_wall_ms: i64,
    change: Change,
    /// How many servers the run spreads over: above one, messages carry
    /// the node they were sent to.
    nodes: usize,
    /// Per room: acknowledged messages, final once `sending_done`.
    acked: Vec<AtomicU64>,
    sending_done: std::sync::atomic::AtomicBool,
    ready: AtomicUsize,
    connecting: tokio::sync::Semaphore,
    churn: Option<Arc<crate::churn::Churn>>,
    poll_timeout_s: u64,
    /// Wakes every waiting reader for the storm; `storm_at` says when.
    storm: tokio::sync::Notify,
    storm_at: std::sync::OnceLock<Instant>,
    /// The drain is over: readers stop where they are and report.
    give_up: tokio::sync::Notify,
    given_up: std::sync::atomic::AtomicBool,
    /// The first few distinct error messages, for the report.
    error_samples: std::sync::Mutex<Vec<String>>,
}

fn note_error(shared: &Shared, message: String) {
    let mut samples = shared.error_samples.lock().expect("samples poisoned");
    if samples.len() < 5 && !samples.contains(&message) {
        samples.push(message);
    }
}

impl Run<'_> {
    pub async fn execute(self) -> anyhow::Result<Report> {
        let pop = self.population;
        let mut report = Report {
            scenario: self.name.clone(),
            clients: self.clients,
            rooms: pop.rooms.len(),
            ..Report::default()
        };
        let retried_before = crate::conn::RETRIED.load(Ordering::Relaxed);
        let baseline = self
            .baseline_rss_kib
            .or_else(|| memory(self.server_pids).map(|m| m.rss_kib));
        let shared = Arc::new(Shared {
            run_tag: RUNS.fetch_add(1, Ordering::Relaxed),
            epoch: Instant::now(),
            epoch_wall_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            change: self.change,
            nodes: self.servers.len(),
            acked: pop.rooms.iter().map(|_| AtomicU64::new(0)).collect(),
            sending_done: false.into(),
            ready: AtomicUsize::new(0),
            connecting: tokio::sync::Semaphore::new(
                self.barrier.as_ref().map_or(CONNECTING_AT_ONCE, |(b, _)| {
                    (CONNECTING_AT_ONCE / b.parties()).max(1)
                }),
            ),
            churn: self.churn.clone(),
            poll_timeout_s: self.poll_timeout_s,
            storm: tokio::sync::Notify::new(),
            storm_at: std::sync::OnceLock::new(),
            give_up: tokio::sync::Notify::new(),
            given_up: false.into(),
            error_samples: Default::default(),
        });

        // Readers connect, take a cursor, and start waiting.
        let mut readers = Vec::with_capacity(self.clients);
        for (i, account) in pop.readers.iter().take(self.clients).enumerate() {
            let shared = shared.clone();
            let token = account.token.clone();
            let room_slot = i % pop.rooms.len();
            let reader = Reader {
                servers: self.servers.clone(),
                index: i,
                source: source_for(i + self.source_offset),
                token,
                room_slot,
                watch: (i < self.watchers).then(|| pop.rooms[room_slot]),
                // Spread over a second, as full-jitter backoff spreads
                // clients after a restart.
                storm_delay: Duration::from_millis((i as u64).wrapping_mul(2_654_435_761) % 1000),
                // Past the addresses of this run's readers and of every
                // run before it (each run starts past the last one's).
                storm_source: source_for(
                    i + self.source_offset + 4 * crate::conn::CONNECTIONS_PER_SOURCE,
                ),
            };
            readers.push(tokio::spawn(async move { read_loop(reader, shared).await }));
        }
        let connect_deadline = Instant::now() + Duration::from_secs(120);
        while shared.ready.load(Ordering::Relaxed) < self.clients
            && Instant::now() < connect_deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let connected = shared.ready.load(Ordering::Relaxed);
        if connected < self.clients {
            report.notes.push(format!(
                "only {connected} of {} clients connected",
                self.clients
            ));
        }
        if let Some((barrier, point)) = &self.barrier {
            barrier.meet(point).await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let (Some(base), Some(now)) = (baseline, memory(self.server_pids)) {
            report.server_rss_kib = Some(now.rss_kib);
            if connected > 0 {
                report.server_kib_per_waiting_poll =
                    Some((now.rss_kib.saturating_sub(base)) as f64 / connected as f64);
            }
        }

        // Senders, and typers beside them.
        let meter = CpuMeter::start(self.server_pids);
        let node_cpu_before: Vec<_> = self
            .server_pids
            .iter()
            .map(|&pid| cpu_time(Some(pid)))
            .collect();
        let typing_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (typed, typers) = crate::typing::start(
            self.servers.first(),
            pop.readers
                .iter()
                .take(self.typers)
                .map(|a| a.token.clone())
                .collect(),
            pop.rooms[0],
            self.source_offset + self.clients,
            typing_stop.clone(),
        );
        let send_started = Instant::now();
        let churn_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn_task = self.churn.clone().map(|churn| {
            tokio::spawn(churn.run(
                self.servers.first(),
                self.source_offset + self.clients + self.typers + 1,
                churn_stop.clone(),
            ))
        });
        if let Some(after) = self.storm_after {
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                shared.storm_at.set(Instant::now()).ok();
                shared.storm.notify_waiters();
            });
        }
        let next = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        for (i, account) in pop.senders.iter().enumerate() {
            let (shared, next) = (shared.clone(), next.clone());
            let token = account.token.clone();
            let rooms = pop.rooms.clone();
            let prefix = pop.prefix.clone();
            let (servers, plan) = (self.servers.clone(), self.plan);
            let sender_count = pop.senders.len();
            senders.push(tokio::spawn(async move {
                send_loop(
                    servers,
                    source_for(i),
                    token,
                    rooms,
                    i,
                    sender_count,
                    prefix,
                    plan,
                    next,
                    shared,
                )
                .await
            }));
        }
        let mut acks_us = Vec::new();
        for s in senders {
            let (sent, errors, latencies) = s.await??;
            report.messages_sent += sent;
            report.errors += errors;
            acks_us.extend(latencies);
        }
        let send_time = send_started.elapsed();
        churn_stop.store(true, Ordering::Relaxed);
        if let (Some(task), Some(churn)) = (churn_task, &self.churn) {
            let _ = task.await;
            report.notes.push(
                churn
                    .counts
                    .summary(churn.per_second, send_time.as_secs_f64()),
            );
            report.errors += churn.counts.errors.load(Ordering::Relaxed);
        }
        typing_stop.store(true, Ordering::Relaxed);
        for t in typers {
            let _ = t.await;
        }
        if self.typers > 0 {
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            report.notes.push(format!(
                "{} typers sent {} typing notices ({} announced, {} errors) in {:.1} s",
                self.typers,
                load(&typed.sent),
                load(&typed.announced),
                load(&typed.errors),
                send_time.as_secs_f64()
            ));
            report.errors += load(&typed.errors);
        }
        shared.sending_done.store(true, Ordering::Release);
        report.messages_acked = shared.acked.iter().map(|a| a.load(Ordering::Relaxed)).sum();

        // Readers finish once they have everything, or at the drain deadline.
        let give_up_at = Instant::now() + self.drain + Duration::from_secs(15);
        {
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(give_up_at.into()).await;
                shared.given_up.store(true, Ordering::Release);
                shared.give_up.notify_waiters();
            });
        }
        let mut results = Vec::new();
        for r in readers {
            match r.await {
                Ok(result) => results.push(result),
                Err(_) => report.errors += 1,
            }
        }
        meter.finish(&mut report);
        if self.server_pids.len() > 1 {
            let spent: Vec<String> = self
                .server_pids
                .iter()
                .zip(node_cpu_before)
                .map(|(pid, before)| match (before, cpu_time(Some(*pid))) {
                    (Some(before), Some(after)) => {
                        format!("{pid} {:.2} s", after.saturating_sub(before).as_secs_f64())
                    }
                    _ => format!("{pid} unreadable"),
                })
                .collect();
            report
                .notes
                .push(format!("server CPU by process: {}", spent.join(", ")));
        }
        if self.servers.len() > 1 {
            report.notes.push(self.servers.describe());
        }

        let mut expected = 0u64;
        for (slot, acked) in shared.acked.iter().enumerate() {
            let readers_here = (0..self.clients)
                .filter(|i| i % pop.rooms.len() == slot)
                .count() as u64;
            expected += acked.load(Ordering::Relaxed) * readers_here;
        }
        let received: u64 = results.iter().map(|r| r.received).sum();
        let answers: u64 = results.iter().map(|r| r.answers).sum();
        let empty: u64 = results.iter().map(|r| r.empty_answers).sum();
        if self.watchers > 0 || self.churn.is_some() {
            report.notes.push(format!(
                "{answers} answers for {received} deliveries ({:.3} per delivery), {empty} of them with no message; {} of the readers watching the room",
                answers as f64 / received.max(1) as f64,
                self.watchers.min(self.clients)
            ));
        }
        if self.storm_after.is_some() {
            let back: Vec<Duration> = results.iter().filter_map(|r| r.back_after_storm).collect();
            let slowest = back.iter().max().copied().unwrap_or_default();
            report.notes.push(format!(
                "storm: {} of {} readers had their waiting poll dropped and came back within 1 s; {} of them had a message again, the last {:.2} s after the storm",
                results.iter().filter(|r| r.stormed).count(),
                results.len(),
                back.len(),
                slowest.as_secs_f64()
            ));
        }
        let last = results.iter().filter_map(|r| r.last_delivery).max();
        report.deliveries_expected = Some(expected);
        report.deliveries_received = Some(received);
        report.count_cpu_per_delivery();
        report.lost = Some(expected.saturating_sub(received));
        report.duplicated = Some(results.iter().map(|r| r.duplicated).sum());
        let gaps: u64 = results.iter().map(|r| r.gaps).sum();
        if gaps > 0 {
            report
                .notes
                .push(format!("{gaps} sequence gaps seen by readers"));
        }
        report.errors += results.iter().map(|r| r.errors).sum::<u64>();
        for sample in shared
            .error_samples
            .lock()
            .expect("samples poisoned")
            .iter()
        {
            report.notes.push(format!("error: {sample}"));
        }
        let span = last
            .map_or(send_time, |l| l.duration_since(send_started))
            .max(send_time);
        report.duration_s = span.as_secs_f64();
        report.deliveries_per_s = Some(received as f64 / span.as_secs_f64());
        report.acks_per_s = Some(report.messages_acked as f64 / send_time.as_secs_f64());
        if self.servers.len() > 1 {
            let same: Vec<u32> = results
                .iter_mut()
                .flat_map(|r| std::mem::take(&mut r.same_node_us))
                .collect();
            let cross: Vec<u32> = results
                .iter_mut()
                .flat_map(|r| std::mem::take(&mut r.cross_node_us))
                .collect();
            // Runs with no readers (S4) have neither.
            report.same_node_latency = (!same.is_empty()).then(|| Latency::from_micros(same));
            report.cross_node_latency = (!cross.is_empty()).then(|| Latency::from_micros(cross));
        }
        let latencies: Vec<u32> = results.into_iter().flat_map(|r| r.latencies_us).collect();
        report.delivery_latency = Some(Latency::from_micros(latencies));
        report.ack_latency = Some(Latency::from_micros(acks_us));
        if let Some(m) = memory(self.server_pids) {
            report.server_peak_rss_kib = Some(m.peak_rss_kib);
        }
        let retried = crate::conn::RETRIED.load(Ordering::Relaxed) - retried_before;
        if retried > 0 {
            report.notes.push(format!(
                "{retried} calls were answered 503 (try again shortly) and tried again a second later"
            ));
        }
        Ok(report)
    }
}

/// One reader: where it connects from, whose session it polls with.
struct Reader {
    servers: Servers,
    /// Which reader of the run it is: it starts on server `index % n`.
    index: usize,
    source: std::net::IpAddr,
    token: String,
    room_slot: usize,
    /// The room its polls watch, if any.
    watch: Option<i64>,
    /// How long after the storm it comes back, and from where: another
    /// address, as after a restart clients come from their own (here the
    /// address the reader left would still hold its old port in
    /// TIME_WAIT, and finding free ports there cost the generator more
    /// than the server spent on the storm).
    storm_delay: Duration,
    storm_source: std::net::IpAddr,
}

async fn read_loop(reader: Reader, shared: Arc<Shared>) -> ReaderResult {
    let Reader {
        source,
        token,
        room_slot,
        ..
    } = &reader;
    let (mut source, room_slot) = (*source, *room_slot);
    let mut client = Client::new(reader.servers.clone(), reader.index, source);
    let mut result = ReaderResult::default();
    let connecting = shared.connecting.acquire().await.expect("semaphore open");
    if let Err(e) = client.connect().await {
        result.errors += 1;
        note_error(&shared, format!("connect failed: {e:#}"));
        return result;
    }
    let first = match client.pick().await {
        Ok((_, conn)) => {
            conn.json(Method::GET, "/api/v1/events", Some(token), None)
                .await
        }
        Err(e) => Err(e),
    };
    let mut cursor = match first {
        Ok(v) => v["cursor"].as_str().unwrap_or_default().to_owned(),
        Err(e) => {
            result.errors += 1;
            note_error(&shared, format!("first poll failed: {e:#}"));
            return result;
        }
    };
    drop(connecting);
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let watch = reader
        .watch
        .map(|room| format!("&watch={room}"))
        .unwrap_or_default();
    let mut last_seq: Option<i64> = None;
    let mut stormed = false;
    let hard_stop = Instant::now() + Duration::from_secs(3600);
    loop {
        if shared.sending_done.load(Ordering::Acquire)
            && result.received >= shared.acked[room_slot].load(Ordering::Relaxed)
        {
            break;
        }
        if Instant::now() > hard_stop || shared.given_up.load(Ordering::Acquire) {
            break;
        }
        let path = format!(
            "/api/v1/events?cursor={cursor}&timeout={}{watch}",
            shared.poll_timeout_s
        );
        // A reader busy with an answer when the storm broke takes part
        // as soon as it is done.
        let storm_missed = !stormed && shared.storm_at.get().is_some();
        let (node, conn) = match client.pick().await {
            Ok(picked) => picked,
            Err(e) => {
                result.errors += 1;
                note_error(&shared, format!("reconnect failed: {e:#}"));
                return result;
            }
        };
        let polled = tokio::select! {
            polled = conn.call(Method::GET, &path, Some(token), None), if !storm_missed => Some(polled),
            () = shared.storm.notified(), if !stormed => None,
            () = std::future::ready(()), if storm_missed => None,
            () = shared.give_up.notified() => break,
        };
        let Some(polled) = polled else {
            // The storm: the connection is dropped with the poll waiting
            // on it, and the reader comes back later with its cursor.
            stormed = true;
            result.stormed = true;
            source = reader.storm_source;
            client.drop_all(source);
            tokio::time::sleep(reader.storm_delay).await;
            if let Err(e) = client.connect().await {
                result.errors += 1;
                note_error(&shared, format!("reconnect failed: {e:#}"));
                return result;
            }
            continue;
        };
        let (status, body) = match polled {
            Ok(r) => r,
            Err(e) => {
                result.errors += 1;
                note_error(&shared, format!("poll failed: {e:#}"));
                // Reconnect and resume from the same cursor.
                client.forget(node);
                tokio::time::sleep(Duration::from_millis(100)).await;
                if client.reopen(node).await.is_err() {
                    return result;
                }
                continue;
            }
        };
        let now = Instant::now();
        if status != StatusCode::OK {
            result.errors += 1;
            note_error(&shared, format!("poll answered {status}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let Ok(answer) = serde_json::from_slice::<Answer>(&body) else {
            result.errors += 1;
            continue;
        };
        result.answers += 1;
        let received_before = result.received;
        for e in answer.events {
            if let Some(last) = last_seq {
                if e.seq <= last {
                    result.duplicated += 1;
                    continue;
                }
                if e.seq > last + 1 {
                    result.gaps += 1;
                }
            }
            last_seq = Some(e.seq);
            if !shared.change.counts(&e.kind) {
                continue;
            }
            result.received += 1;
            result.last_delivery = Some(now);
            let sent_us = match shared.change {
                Change::Reaction => {
                    e.ts.map(|ts| (ts - shared.epoch_wall_ms).max(0) as u64 * 1000)
                }
                _ => e.sent_us(),
            };
            if let Some(sent_us) = sent_us {
                let now_us = now.duration_since(shared.epoch).as_micros() as u64;
                let latency = now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32;
                result.latencies_us.push(latency);
                match e.sent_on() {
                    Some(sent_on) if sent_on == node => result.same_node_us.push(latency),
                    Some(_) => result.cross_node_us.push(latency),
                    None => {}
                }
            }
        }
        if result.received == received_before {
            result.empty_answers += 1;
        } else if stormed && result.back_after_storm.is_none() {
            result.back_after_storm = shared.storm_at.get().map(|at| now.duration_since(*at));
        }
        cursor = answer.cursor;
        if shared.churn.as_ref().is_some_and(|c| c.take_reconnect()) {
            // Churn: this reader drops its connection and resumes.
            client.drop_all(source);
            tokio::time::sleep(Duration::from_millis(200)).await;
            if client.connect().await.is_err() {
                return result;
            }
            if let Some(churn) = &shared.churn {
                churn.counts.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    servers: Servers,
    source: std::net::IpAddr,
    token: String,
    rooms: Vec<i64>,
    sender: usize,
    sender_count: usize,
    prefix: String,
    plan: Plan,
    next: Arc<AtomicU64>,
    shared: Arc<Shared>,
) -> anyhow::Result<(u64, u64, Vec<u32>)> {
    let mut client = Client::new(servers, sender, source);
    client.connect().await?;
    let started = Instant::now();
    let (mut sent, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    // With fewer senders than rooms every sender covers all rooms; with
    // more, sender i keeps to room i % rooms (it joined only that one).
    let own_room = (sender_count > rooms.len()).then(|| sender % rooms.len());
    // Edits and reactions change one message per room, sent first.
    let mut anchors = vec![0i64; rooms.len()];
    let mut reacted = vec![false; rooms.len()];
    if shared.change != Change::Message {
        for (slot, room) in rooms.iter().enumerate() {
            if own_room.is_some_and(|own| own != slot) {
                continue;
            }
            let body = json!({"client_msg_id": format!("{prefix}-{}-anchor-{sender}", shared.run_tag), "text": "anchor"});
            let sent = client
                .pick()
                .await?
                .1
                .json(
                    Method::POST,
                    &format!("/api/v1/rooms/{room}/messages"),
                    Some(&token),
                    Some(body),
                )
                .await?;
            anchors[slot] = sent["message"]["seq"].as_i64().unwrap_or_default();
        }
    }
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        match plan {
            Plan::Rate {
                per_second,
                duration,
            } => {
                let due = started + Duration::from_secs_f64(k as f64 / per_second);
                if due >= started + duration {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
            }
            Plan::Flood { duration } => {
                if started.elapsed() >= duration {
                    break;
                }
            }
            Plan::Count { messages } => {
                if k >= messages {
                    break;
                }
            }
        }
        let slot = own_room.unwrap_or(k as usize % rooms.len());
        let (node, conn) = client.pick().await?;
        let send_at = Instant::now();
        let micros = send_at.duration_since(shared.epoch).as_micros();
        let text = if shared.nodes > 1 {
            format!("{micros}@{node}")
        } else {
            micros.to_string()
        };
        let room = rooms[slot];
        let (method, path, body, done) = match shared.change {
            Change::Message => (
                Method::POST,
                format!("/api/v1/rooms/{room}/messages"),
                Some(
                    json!({"client_msg_id": format!("{prefix}-{}-{k}", shared.run_tag), "text": text}),
                ),
                StatusCode::CREATED,
            ),
            Change::Edit => (
                Method::PATCH,
                format!("/api/v1/rooms/{room}/messages/{}", anchors[slot]),
                Some(json!({"text": text})),
                StatusCode::OK,
            ),
            Change::Reaction => {
                reacted[slot] = !reacted[slot];
                let method = if reacted[slot] {
                    Method::PUT
                } else {
                    Method::DELETE
                };
                let path = format!(
                    "/api/v1/rooms/{room}/messages/{}/reactions/%F0%9F%91%8D",
                    anchors[slot]
                );
                (method, path, None, StatusCode::OK)
            }
        };
        sent += 1;
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let mut answer = conn
            .call(method.clone(), &path, Some(&token), body.clone())
            .await;
        if answer.is_err() {
            // The server closes keep-alive connections that sat idle past
            // its header timeout. Reconnect and retry: the same client
            // message id makes the retry safe, as it is for any client.
            answer = client
                .reopen(node)
                .await?
                .call(method, &path, Some(&token), body)
                .await;
        }
        match answer {
            Ok((status, _)) if status == done => {
                shared.acked[slot].fetch_add(1, Ordering::Relaxed);
                latencies.push(send_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Ok((status, _)) => {
                errors += 1;
                note_error(&shared, format!("send answered {status}"));
            }
            Err(e) => {
                errors += 1;
                note_error(&shared, format!("send failed: {e}"));
                client.reopen(node).await?;
            }
        }
    }
    Ok((sent, errors, latencies))
}
