//! Measurements: latency percentiles, process memory and CPU from /proc,
//! and the report printed at the end of a run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Summarises samples given in microseconds.
    pub fn from_micros(mut samples: Vec<u32>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            f64::from(samples[i]) / 1000.0
        };
        Latency {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Memory of a process, from /proc/<pid>/status, in KiB.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// The servers' memory added up: the RSS of a cluster is that of all its
/// nodes. Peaks are added too, so with several processes the peak is an
/// upper bound (their peaks need not coincide). `None` without pids or
/// when one cannot be read, so a figure never silently covers fewer nodes.
pub fn memory(pids: &[u32]) -> Option<Memory> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(Memory::default(), |sum, &pid| {
        let m = process_memory(pid)?;
        Some(Memory {
            rss_kib: sum.rss_kib + m.rss_kib,
            peak_rss_kib: sum.peak_rss_kib + m.peak_rss_kib,
        })
    })
}

/// Reads VmRSS and VmHWM of `pid`.
fn process_memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_rss_kib: field("VmHWM:")?,
    })
}

/// CPU time (user + system) a process has used, from /proc/<pid>/stat,
/// together with its direct children: nginx serves from worker processes
/// under its master, natter from threads of one process.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let Some(pid) = pid else {
        return stat_cpu("/proc/self/stat");
    };
    let own = stat_cpu(&format!("/proc/{pid}/stat"))?;
    let children = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            (stat_field(&stat, 1)? == pid.to_string()).then(|| stat_cpu_of(&stat))?
        });
    Some(own + children.sum::<Duration>())
}

/// CPU time of several servers together (each with its children): a
/// cluster's cost per delivery is what all its nodes spent. `None`
/// without pids or when one cannot be read.
pub fn cpu_time_of(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_time(Some(pid))).sum()
}

/// CPU time of this process's threads named `name` (as `ps -L` shows
/// them): a server that runs inside the generator on threads of its own.
pub fn thread_cpu_time(name: &str) -> Option<Duration> {
    let threads = std::fs::read_dir("/proc/self/task").ok()?;
    let named = threads.flatten().filter_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            stat_cpu_of(&stat)
        })?
    });
    Some(named.sum())
}

fn stat_cpu(path: &str) -> Option<Duration> {
    stat_cpu_of(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime of a stat line. Linux reports them in clock ticks, 100
/// per second on every common build.
fn stat_cpu_of(stat: &str) -> Option<Duration> {
    let utime: u64 = stat_field(stat, 11)?.parse().ok()?;
    let stime: u64 = stat_field(stat, 12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The `index`-th field after the command name of a stat line (0 is the
/// state, 1 the parent's pid). The name may hold spaces and parentheses;
/// the fields restart after its last ')'.
fn stat_field(stat: &str, index: usize) -> Option<&str> {
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(index)
}

/// What one scenario measured. Fields that do not apply stay `None`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub clients: usize,
    pub rooms: usize,
    pub duration_s: f64,
    pub messages_sent: u64,
    pub messages_acked: u64,
    pub deliveries_expected: Option<u64>,
    pub deliveries_received: Option<u64>,
    pub lost: Option<u64>,
    pub duplicated: Option<u64>,
    pub errors: u64,
    pub delivery_latency: Option<Latency>,
    pub ack_latency: Option<Latency>,
    /// With several servers: deliveries answered by the node the message
    /// was sent to, and by another (woken over the bus), which is the
    /// cluster's own cost. Absent for one server, so its JSON is as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_node_latency: Option<Latency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_node_latency: Option<Latency>,
    pub deliveries_per_s: Option<f64>,
    pub acks_per_s: Option<f64>,
    pub round_trips_per_s: Option<f64>,
    pub page_latency: Option<Latency>,
    pub server_rss_kib: Option<u64>,
    pub server_peak_rss_kib: Option<u64>,
    pub server_kib_per_waiting_poll: Option<f64>,
    /// Server RSS growth per connection that has sent nothing (`idle`).
    pub server_kib_per_connection: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// Server CPU time (user + system) over the measured span.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` over the deliveries received: what one costs.
    #[serde(default)]
    pub server_cpu_us_per_delivery: Option<f64>,
    pub generator_cpu_percent: Option<f64>,
    pub notes: Vec<String>,
}

impl Report {
    /// Sets `server_cpu_us_per_delivery` from the server's CPU time and
    /// the deliveries received, where both were measured.
    pub fn count_cpu_per_delivery(&mut self) {
        if let (Some(cpu_s), Some(received)) = (self.server_cpu_s, self.deliveries_received)
            && received > 0
        {
            self.server_cpu_us_per_delivery = Some(cpu_s * 1e6 / received as f64);
        }
    }

    /// Prints the report as an aligned two-column table.
    pub fn print_table(&self) {
        let value = serde_json::to_value(self).expect("report serialises");
        println!("== {}", self.scenario);
        if let Some(map) = value.as_object() {
            for (key, v) in map {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::Object(inner) => {
                        let parts: Vec<String> =
                            inner.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        println!("  {key:<28} {}", parts.join("  "));
                    }
                    serde_json::Value::Array(notes) => {
                        for n in notes {
                            println!("  {key:<28} {}", n.as_str().unwrap_or_default());
                        }
                    }
                    other => println!("  {key:<28} {other}"),
                }
            }
        }
    }
}

/// Measures CPU use of this process and the server over a span of time.
pub struct CpuMeter {
    server: ServerCpu,
    wall: std::time::Instant,
    own: Option<Duration>,
    server_start: Option<Duration>,
}

/// Where a meter reads the server's CPU time.
#[derive(Clone)]
enum ServerCpu {
    /// Processes of their own (and their children), if pids were given.
    Processes(Vec<u32>),
    /// Threads of this process with this name.
    Threads(&'static str),
}

impl ServerCpu {
    fn read(&self) -> Option<Duration> {
        match self {
            ServerCpu::Processes(pids) => cpu_time_of(pids),
            ServerCpu::Threads(name) => thread_cpu_time(name),
        }
    }
}

impl CpuMeter {
    /// A meter over the servers `pids` (all nodes of a cluster, added up;
    /// none: only the generator's own CPU).
    pub fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter::reading(ServerCpu::Processes(pids.to_vec()))
    }

    /// A meter whose server is this process's threads named `name`. The
    /// generator's own figure then includes them.
    pub fn for_threads(name: &'static str) -> CpuMeter {
        CpuMeter::reading(ServerCpu::Threads(name))
    }

    fn reading(server: ServerCpu) -> CpuMeter {
        let server_start = server.read();
        CpuMeter {
            server,
            wall: std::time::Instant::now(),
            own: cpu_time(None),
            server_start,
        }
    }

    /// Fills the CPU fields of `report` with percentages of one core.
    pub fn finish(self, report: &mut Report) {
        let wall = self.wall.elapsed().as_secs_f64();
        // A process tree or a set of threads can lose a member mid-run
        // (an nginx worker that exits): its time then goes down, not up.
        let pct = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.checked_sub(before?)?.as_secs_f64() / wall * 100.0)
        };
        report.generator_cpu_percent = pct(self.own, cpu_time(None));
        let server_now = self.server.read();
        report.server_cpu_percent = pct(self.server_start, server_now);
        report.server_cpu_s = self
            .server_start
            .zip(server_now)
            .and_then(|(before, after)| after.checked_sub(before))
            .map(|spent| spent.as_secs_f64());
    }
}
