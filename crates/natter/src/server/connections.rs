//! How many connections the server holds, in all and per source, so one
//! host cannot take every socket (and file handle) for itself.
//!
//! A connection is counted from accept until its task ends. Past the
//! per-source cap a new connection from that source is answered
//! `429 too_many_connections` and closed; past the total cap, which
//! stays below the open-files limit so the store and the listener always
//! have handles, every new client gets `503 server_full`. Trusted proxies
//! carry many clients on few connections, so only the total cap counts
//! them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;
use crate::source::{Source, TrustedProxies};

/// The node's connection counts.
pub struct ConnectionGate {
    per_source_cap: usize,
    total_cap: usize,
    trusted: TrustedProxies,
    counts: Mutex<Counts>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_source: HashMap<Source, usize>,
}

/// Why a connection was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The source holds its share already.
    SourceFull,
    /// The server holds all it can.
    ServerFull,
}

impl Refusal {
    /// The reason's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::SourceFull => "source_full",
            Refusal::ServerFull => "server_full",
        }
    }

    /// The whole answer, written straight to the socket.
    pub fn answer(&self) -> &'static [u8] {
        match self {
            Refusal::SourceFull => {
                b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: 10\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\nconnection: close\r\ncontent-length: 97\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many open connections from your address\"}}"
            }
            Refusal::ServerFull => SERVER_FULL,
        }
    }
}

/// The answer when the server cannot take another client.
pub const SERVER_FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: 5\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\nconnection: close\r\ncontent-length: 80\r\n\r\n{\"error\":{\"code\":\"server_full\",\"message\":\"the server cannot take more clients\"}}";

/// One admitted connection; dropping it gives its place back.
pub struct Admitted {
    gate: Arc<ConnectionGate>,
    source: Option<Source>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.metrics.connections_open.dec();
        let mut counts = self.gate.counts.lock().expect("counts poisoned");
        counts.total -= 1;
        if let Some(source) = self.source
            && let Some(n) = counts.by_source.get_mut(&source)
        {
            *n -= 1;
            if *n == 0 {
                counts.by_source.remove(&source);
            }
        }
    }
}

impl ConnectionGate {
    /// `per_source_cap` 0 means no per-source cap.
    pub fn new(
        per_source_cap: usize,
        total_cap: usize,
        trusted: TrustedProxies,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(ConnectionGate {
            per_source_cap,
            total_cap,
            trusted,
            counts: Mutex::new(Counts::default()),
            metrics,
        })
    }

    /// Counts a new connection from `peer`, or says why it is refused.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refusal> {
        let admitted = self.try_admit(peer);
        match &admitted {
            Ok(_) => {
                self.metrics.connections_open.inc();
            }
            Err(refusal) => self.metrics.connection_refused(refusal.name()),
        }
        admitted
    }

    fn try_admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refusal> {
        let mut counts = self.counts.lock().expect("counts poisoned");
        if counts.total >= self.total_cap {
            return Err(Refusal::ServerFull);
        }
        let source =
            (self.per_source_cap > 0 && !self.trusted.trusts(peer)).then(|| Source::of(peer));
        if let Some(source) = source {
            let n = counts.by_source.entry(source).or_insert(0);
            if *n >= self.per_source_cap {
                return Err(Refusal::SourceFull);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(Admitted {
            gate: self.clone(),
            source,
        })
    }
}

/// The total cap for an open-files limit: the limit less a reserve for
/// the store's files, the listener, logs and the refusal handle.
pub fn total_cap_for(open_files: u64) -> usize {
    let reserve = (open_files / 4).clamp(8, 256);
    open_files.saturating_sub(reserve).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_source_and_in_all() {
        let gate = ConnectionGate::new(2, 3, TrustedProxies::loopback(), Arc::default());
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::SourceFull));
        let _other = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refusal::ServerFull));
        drop(first);
        let _again = gate.admit(a).unwrap();
    }

    #[test]
    fn trusted_proxies_have_no_per_source_cap() {
        let gate = ConnectionGate::new(1, 100, TrustedProxies::loopback(), Arc::default());
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..10).map(|_| gate.admit(proxy).unwrap()).collect();
        assert_eq!(held.len(), 10);
    }

    #[test]
    fn the_total_cap_keeps_a_reserve() {
        assert_eq!(total_cap_for(48), 36);
        assert_eq!(total_cap_for(1_048_576), 1_048_320);
        assert_eq!(total_cap_for(4), 1);
    }
}
