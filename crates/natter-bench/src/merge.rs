//! Adds up the reports of several generator processes that drove one
//! server at the same time (one process holds at most ~19,000 clients).
//!
//! Counts and rates add up. The server is shared, so its memory and CPU
//! are the largest any process saw. Latency percentiles cannot be merged
//! exactly from summaries, but the largest of the processes' p99 is an
//! upper bound of the merged p99 (at most 1% of each process's samples
//! lie above it), and the same holds for every percentile: the merged
//! figures are upper bounds, and the report says so.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::stats::{Latency, Report};

/// Reads `--json` outputs and merges the reports of each scenario.
pub fn run(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let some: Vec<Report> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not the --json output of natter-bench",
                file.display()
            )
        })?;
        reports.extend(some);
    }
    Ok(merge(reports))
}

/// Merges reports that share a scenario name, keeping first-seen order.
/// The ceilings are left out: each process measured its own in-process
/// reference server, and those do not add up to anything.
pub fn merge(reports: Vec<Report>) -> Vec<Report> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Report>> = BTreeMap::new();
    for report in reports {
        if report.scenario.starts_with("ceiling") {
            continue;
        }
        if !groups.contains_key(&report.scenario) {
            order.push(report.scenario.clone());
        }
        groups
            .entry(report.scenario.clone())
            .or_default()
            .push(report);
    }
    order
        .into_iter()
        .filter_map(|name| groups.remove(&name))
        .map(merge_group)
        .collect()
}

fn merge_group(group: Vec<Report>) -> Report {
    let parts = group.len();
    let sum =
        |f: fn(&Report) -> Option<u64>| -> Option<u64> { group.iter().map(f).sum::<Option<u64>>() };
    let sum_f =
        |f: fn(&Report) -> Option<f64>| -> Option<f64> { group.iter().map(f).sum::<Option<f64>>() };
    let max_f = |f: fn(&Report) -> Option<f64>| -> Option<f64> {
        group.iter().filter_map(f).reduce(f64::max)
    };
    let max_u = |f: fn(&Report) -> Option<u64>| -> Option<u64> { group.iter().filter_map(f).max() };
    let latency = |f: fn(&Report) -> Option<&Latency>| -> Option<Latency> {
        group.iter().filter_map(f).cloned().reduce(|a, b| Latency {
            count: a.count + b.count,
            p50_ms: a.p50_ms.max(b.p50_ms),
            p90_ms: a.p90_ms.max(b.p90_ms),
            p99_ms: a.p99_ms.max(b.p99_ms),
            max_ms: a.max_ms.max(b.max_ms),
        })
    };
    let clients: usize = group.iter().map(|r| r.clients).sum();
    // Each process divided the server's growth by its own clients; the
    // largest product is the growth measured last, with everyone connected.
    let growth_kib = max_f(|r| Some(r.server_kib_per_waiting_poll? * r.clients as f64));
    let mut notes = vec![format!(
        "merged from {parts} reports: counts and rates added, server figures the largest seen, latency percentiles upper bounds (the largest of the parts)"
    )];
    notes.extend(group.iter().flat_map(|r| r.notes.iter().cloned()));
    Report {
        scenario: group[0].scenario.clone(),
        clients,
        rooms: group.iter().map(|r| r.rooms).sum(),
        duration_s: group.iter().map(|r| r.duration_s).fold(0.0, f64::max),
        messages_sent: group.iter().map(|r| r.messages_sent).sum(),
        messages_acked: group.iter().map(|r| r.messages_acked).sum(),
        deliveries_expected: sum(|r| r.deliveries_expected),
        deliveries_received: sum(|r| r.deliveries_received),
        lost: sum(|r| r.lost),
        duplicated: sum(|r| r.duplicated),
        errors: group.iter().map(|r| r.errors).sum(),
        delivery_latency: latency(|r| r.delivery_latency.as_ref()),
        ack_latency: latency(|r| r.ack_latency.as_ref()),
        same_node_latency: latency(|r| r.same_node_latency.as_ref()),
        cross_node_latency: latency(|r| r.cross_node_latency.as_ref()),
        deliveries_per_s: sum_f(|r| r.deliveries_per_s),
        acks_per_s: sum_f(|r| r.acks_per_s),
        round_trips_per_s: sum_f(|r| r.round_trips_per_s),
        page_latency: latency(|r| r.page_latency.as_ref()),
        server_rss_kib: max_u(|r| r.server_rss_kib),
        server_peak_rss_kib: max_u(|r| r.server_peak_rss_kib),
        server_kib_per_waiting_poll: growth_kib.map(|g| g / clients.max(1) as f64),
        server_kib_per_connection: None,
        server_cpu_percent: max_f(|r| r.server_cpu_percent),
        // Each part measured the whole server's CPU over its own span.
        server_cpu_s: max_f(|r| r.server_cpu_s),
        server_cpu_us_per_delivery: max_f(|r| r.server_cpu_s)
            .zip(sum(|r| r.deliveries_received))
            .filter(|(_, received)| *received > 0)
            .map(|(cpu_s, received)| cpu_s * 1e6 / received as f64),
        generator_cpu_percent: sum_f(|r| r.generator_cpu_percent),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::merge;
    use crate::stats::{Latency, Report};

    fn part(clients: usize, received: u64, p99_ms: f64, kib_per_poll: f64) -> Report {
        Report {
            scenario: "s3 @ 19000".into(),
            clients,
            deliveries_expected: Some(received),
            deliveries_received: Some(received),
            lost: Some(0),
            duplicated: Some(0),
            delivery_latency: Some(Latency {
                count: received as usize,
                p50_ms: p99_ms / 4.0,
                p90_ms: p99_ms / 2.0,
                p99_ms,
                max_ms: p99_ms * 2.0,
            }),
            deliveries_per_s: Some(received as f64 / 10.0),
            server_rss_kib: Some(500_000),
            server_kib_per_waiting_poll: Some(kib_per_poll),
            server_cpu_percent: Some(20.0),
            generator_cpu_percent: Some(10.0),
            ..Report::default()
        }
    }

    #[test]
    fn each_process_s_own_ceiling_is_left_out() {
        let ceiling = |lost| Report {
            scenario: "ceiling (fan-out)".into(),
            lost: Some(lost),
            ..Report::default()
        };
        let merged = merge(vec![
            ceiling(3),
            part(100, 10, 1.0, 20.0),
            ceiling(0),
            part(100, 10, 1.0, 20.0),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].scenario, "s3 @ 19000");
        assert_eq!(merged[0].clients, 200);
    }

    #[test]
    fn counts_add_up_and_latency_is_bounded_by_the_worst_part() {
        // One server grew by 380,000 KiB while two processes held 19,000
        // clients each: each divided by its own 19,000.
        let merged = merge(vec![
            part(19_000, 1_900, 13.0, 20.0),
            part(19_000, 1_900, 21.0, 20.0),
        ]);
        assert_eq!(merged.len(), 1);
        let m = &merged[0];
        assert_eq!(m.clients, 38_000);
        assert_eq!(m.deliveries_received, Some(3_800));
        assert_eq!(m.lost, Some(0));
        assert_eq!(m.deliveries_per_s, Some(380.0));
        assert_eq!(m.generator_cpu_percent, Some(20.0));
        assert_eq!(m.server_cpu_percent, Some(20.0));
        let latency = m.delivery_latency.as_ref().unwrap();
        assert_eq!(latency.count, 3_800);
        assert_eq!(latency.p99_ms, 21.0);
        assert_eq!(m.server_kib_per_waiting_poll, Some(10.0));
        assert!(m.notes[0].contains("upper bounds"));
    }

    #[test]
    fn a_loss_in_one_part_shows_in_the_sum() {
        let mut lossy = part(100, 10, 1.0, 1.0);
        lossy.lost = Some(3);
        let merged = merge(vec![part(100, 10, 1.0, 1.0), lossy]);
        assert_eq!(merged[0].lost, Some(3));
    }
}
