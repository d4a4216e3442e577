//! The durable floor in the reports (issue 19): the hub against the relay that stores each
//! message in Redis before forwarding it, as ratios of throughput, latency and the CPU
//! the server side spends per delivered message. The durable floor's own lines are the
//! usual ones of [`super::LoadFigures`]; this module owns the comparison.

use serde::Serialize;

use super::LoadFigures;

/// The hub's figures over the durable floor's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DurableRatios {
    /// Hub delivered/s ÷ durable floor delivered/s (1.0 = as fast as the durable floor).
    pub throughput: f64,
    /// Hub message latency ÷ durable floor message latency.
    pub p50_latency: f64,
    pub p99_latency: f64,
    /// CPU per delivered message of the hub, Redis and Redis's reaped children (its AOF
    /// rewrites), in µs: what storing and relaying one message costs the hub's side.
    /// `None` unless the hub run sampled both the hub and Redis.
    pub hub_server_cpu_us: Option<f64>,
    /// The same for the durable floor: its relay's threads, Redis and Redis's children.
    /// `None` unless the durable floor sampled Redis.
    pub durable_server_cpu_us: Option<f64>,
    /// `hub_server_cpu_us ÷ durable_server_cpu_us` (1.0 = as cheap as the durable floor).
    pub server_cpu: Option<f64>,
}

impl DurableRatios {
    pub fn of(hub: &LoadFigures, durable: &LoadFigures) -> DurableRatios {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let hub_server_cpu_us = server_cpu_us(hub, &["hub", "redis"]);
        let durable_server_cpu_us = server_cpu_us(durable, &["relay", "redis"]);
        DurableRatios {
            throughput: ratio(hub.messages.per_sec, durable.messages.per_sec),
            p50_latency: ratio(hub.latency.message.p50_ms, durable.latency.message.p50_ms),
            p99_latency: ratio(hub.latency.message.p99_ms, durable.latency.message.p99_ms),
            hub_server_cpu_us,
            durable_server_cpu_us,
            server_cpu: match (hub_server_cpu_us, durable_server_cpu_us) {
                (Some(h), Some(d)) if d > 0.0 => Some(h / d),
                _ => None,
            },
        }
    }

    /// One line for the terminal (and the HTML report).
    pub fn text(&self) -> String {
        let cpu = match (
            self.hub_server_cpu_us,
            self.durable_server_cpu_us,
            self.server_cpu,
        ) {
            (Some(h), Some(d), Some(r)) => format!(
                "; server CPU per message {h:.1} µs (hub+redis+children) vs {d:.1} µs (relay+redis+children): {r:.2}×"
            ),
            (Some(h), Some(d), None) => format!(
                "; server CPU per message {h:.1} µs (hub+redis+children) vs {d:.1} µs (relay+redis+children): no ratio (a run shorter than the 1 s CPU samples)"
            ),
            _ => "; server CPU per message n/a (needs --hub-pid and --redis-pid)".into(),
        };
        format!(
            "hub vs durable floor: throughput {:.2}×, p50 latency {:.2}×, p99 latency {:.2}×{cpu}",
            self.throughput, self.p50_latency, self.p99_latency
        )
    }
}

/// CPU per delivered message, in µs, of the named processes (or thread subsets) of a
/// load, each with its reaped children; `None` when one of them was not sampled.
fn server_cpu_us(f: &LoadFigures, names: &[&str]) -> Option<f64> {
    let delivered = f.messages.delivered;
    if delivered == 0 {
        return None;
    }
    let mut seconds = 0.0;
    for name in names {
        let p = f.processes.iter().find(|p| p.name == *name)?;
        seconds += p.cpu_s + p.children_cpu_s;
    }
    Some(seconds * 1e6 / delivered as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        floor::durable::{DurableFloor, JournalFigures},
        procfs::ProcSummary,
        report::Report,
        scenario::Scenario,
        verify::Verdict,
    };

    use crate::report::tests::process;

    fn load(label: &str, delivered: u64, per_sec: f64, processes: Vec<ProcSummary>) -> LoadFigures {
        let mut f = LoadFigures {
            label: label.into(),
            processes,
            ..LoadFigures::default()
        };
        f.messages.delivered = delivered;
        f.messages.per_sec = per_sec;
        f.latency.message.p50_ms = per_sec / 100_000.0;
        f.latency.message.p99_ms = 1.0;
        f
    }

    fn hub() -> LoadFigures {
        load(
            "hub",
            1_000_000,
            60_000.0,
            vec![
                process("hub", None, 11.7, 0.0),
                process("redis", None, 7.0, 2.8),
                process("harness", None, 11.4, 0.0),
            ],
        )
    }

    fn durable() -> LoadFigures {
        load(
            "durable floor",
            2_000_000,
            100_000.0,
            vec![
                process("harness+relay", None, 28.0, 0.0),
                process("relay", Some("floor-relay"), 10.0, 0.0),
                process("redis", None, 5.0, 1.0),
            ],
        )
    }

    #[test]
    fn server_cpu_is_hub_or_relay_plus_redis_and_its_children() {
        let r = DurableRatios::of(&hub(), &durable());
        assert!((r.throughput - 0.6).abs() < 1e-9, "{r:?}");
        assert!((r.p50_latency - 0.6).abs() < 1e-9, "{r:?}");
        // Hub 11.7 + Redis 7.0 + 2.8 over 1 M; relay 10 + Redis 5 + 1 over 2 M.
        assert!((r.hub_server_cpu_us.expect("hub side") - 21.5).abs() < 1e-9);
        assert!((r.durable_server_cpu_us.expect("durable side") - 8.0).abs() < 1e-9);
        assert!((r.server_cpu.expect("ratio") - 21.5 / 8.0).abs() < 1e-9);
        assert_eq!(
            r.text(),
            "hub vs durable floor: throughput 0.60×, p50 latency 0.60×, p99 latency 1.00×; \
             server CPU per message 21.5 µs (hub+redis+children) vs 8.0 µs \
             (relay+redis+children): 2.69×"
        );
        // Without Redis sampled in the durable run there is no CPU ratio.
        let mut unsampled = durable();
        unsampled.processes.retain(|p| p.name != "redis");
        let r = DurableRatios::of(&hub(), &unsampled);
        assert_eq!((r.durable_server_cpu_us, r.server_cpu), (None, None));
        assert!(r.text().ends_with("n/a (needs --hub-pid and --redis-pid)"));
    }

    #[test]
    fn a_run_report_carries_the_durable_floor_beside_the_floor() {
        let verdict = Verdict::default();
        let mut report = Report::for_run(
            Scenario::default(),
            0,
            "lt1".into(),
            hub(),
            Some(load("floor", 2_000_000, 150_000.0, Vec::new())),
            &verdict,
        );
        let journal = JournalFigures {
            appended: 2_000_000,
            stored: 2_000_000,
            pipelines: 100_000,
            streams: 200,
            deleted: true,
            appendonly: Some("yes".into()),
            appendfsync: Some("everysec".into()),
            ..JournalFigures::default()
        };
        report.set_durable_floor(Ok(DurableFloor {
            figures: durable(),
            journal,
        }));
        let text = report.text_summary();
        assert!(text.contains("[floor] delivered"), "{text}");
        assert!(text.contains("[durable floor] delivered 2000000"), "{text}");
        assert!(
            text.contains("durable: 2000000 frames appended in 100000 pipelines (20.0 per pipeline), 0 failed; 2000000 entries in Redis's 200 streams at the end (XLEN), then deleted; Redis appendonly yes, appendfsync everysec"),
            "{text}"
        );
        assert!(text.contains("hub vs floor: throughput 0.40×"), "{text}");
        assert!(
            text.contains("hub vs durable floor: throughput 0.60×"),
            "{text}"
        );
        assert!(
            text.contains("redis 2.5 µs (+0.5 µs in its children)"),
            "the durable floor's CPU line: {text}"
        );
        let json = report.to_json().expect("json");
        for field in [
            "\"floor\"",
            "\"ratios\"",
            "\"durable_floor\"",
            "\"durable_journal\"",
            "\"durable_ratios\"",
        ] {
            assert!(json.contains(field), "{field} missing");
        }
        let html = report.to_html();
        assert!(html.contains("<h2>durable floor</h2>"));
        assert!(html.contains("hub vs durable floor"));

        let mut skipped =
            Report::for_run(Scenario::default(), 0, "lt2".into(), hub(), None, &verdict);
        skipped.set_durable_floor(Err("skipped: no --redis-url".into()));
        assert!(skipped
            .text_summary()
            .contains("durable floor: skipped: no --redis-url"));
        assert!(skipped.durable_ratios.is_none());
    }
}
