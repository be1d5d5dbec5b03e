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

/// Reads VmRSS and VmHWM of `pid`.
pub fn memory(pid: u32) -> Option<Memory> {
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

/// CPU time (user + system) a process has used, from /proc/<pid>/stat.
/// Linux reports it in clock ticks, 100 per second on every common build.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; fields restart after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
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
    server_pid: Option<u32>,
    wall: std::time::Instant,
    own: Option<Duration>,
    server: Option<Duration>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            server_pid,
            wall: std::time::Instant::now(),
            own: cpu_time(None),
            server: server_pid.and_then(|p| cpu_time(Some(p))),
        }
    }

    /// Fills the CPU fields of `report` with percentages of one core.
    pub fn finish(self, report: &mut Report) {
        let wall = self.wall.elapsed().as_secs_f64();
        let pct = |before: Option<Duration>, after: Option<Duration>| {
            Some((after? - before?).as_secs_f64() / wall * 100.0)
        };
        report.generator_cpu_percent = pct(self.own, cpu_time(None));
        let server_now = self.server_pid.and_then(|p| cpu_time(Some(p)));
        report.server_cpu_percent = pct(self.server, server_now);
        report.server_cpu_s = self
            .server
            .zip(server_now)
            .map(|(before, after)| (after - before).as_secs_f64());
    }
}
