//! A [`Report`] as CSV (RFC 4180): a header line, then one line per bucket and group,
//! then one `total` line per group over the whole period. Columns are the JSON's
//! figures flattened; an absent figure (no data, no survey of that kind) is an empty
//! field. Text fields are quoted when they hold a comma, quote or line break, and one
//! starting with `=`, `+`, `-` or `@` gets a leading `'` so a spreadsheet does not run
//! it as a formula.

use std::collections::BTreeSet;

use super::{time::format_iso, Figures, Report, Stat};

const STATS: [&str; 4] = ["wait_ms", "first_response_ms", "handle_ms", "resolution_ms"];

/// The CSV text of a report.
pub fn render(report: &Report) -> String {
    // Away reasons seen anywhere get a column each.
    let reasons: BTreeSet<&str> = report
        .totals
        .iter()
        .filter_map(|f| f.agent_time.as_ref())
        .flat_map(|t| t.away_by_reason.keys().map(String::as_str))
        .collect();
    let mut header: Vec<String> = [
        "row",
        "bucket_start",
        "bucket_end",
        "group",
        "started",
        "answered",
        "abandoned_in_queue",
        "transferred",
        "escalated",
        "handled",
        "owned_at_close",
    ]
    .map(String::from)
    .to_vec();
    for stat in STATS {
        for part in ["count", "p50", "p90", "mean"] {
            header.push(format!("{stat}_{part}"));
        }
    }
    for target in ["sla_wait", "sla_first_response"] {
        for part in ["met", "missed", "pct_met"] {
            header.push(format!("{target}_{part}"));
        }
    }
    header.extend(["csat_responses", "csat_response_rate_pct", "csat_mean"].map(String::from));
    header.extend((1..=5).map(|s| format!("csat_{s}")));
    header.extend(
        [
            "nps_responses",
            "nps_response_rate_pct",
            "nps_score",
            "nps_promoters",
            "nps_passives",
            "nps_detractors",
            "nps_mean",
        ]
        .map(String::from),
    );
    header.extend((0..=10).map(|s| format!("nps_{s}")));
    header.extend(
        [
            "available_ms",
            "busy_ms",
            "occupancy_pct",
            "away_ms",
            "wrap_up_ms",
        ]
        .map(String::from),
    );
    header.extend(reasons.iter().map(|r| format!("away_{r}_ms")));
    let mut out = line(&header);
    for bucket in &report.buckets {
        for figures in &bucket.groups {
            out.push_str(&line(&row(
                "bucket",
                bucket.start,
                bucket.end,
                figures,
                &reasons,
            )));
        }
    }
    for figures in &report.totals {
        out.push_str(&line(&row(
            "total",
            report.from,
            report.to,
            figures,
            &reasons,
        )));
    }
    out
}

fn row(kind: &str, start: u64, end: u64, f: &Figures, reasons: &BTreeSet<&str>) -> Vec<String> {
    let int = |n: u64| n.to_string();
    let opt_int = |n: Option<u64>| n.map(int).unwrap_or_default();
    let num = |x: Option<f64>| x.map(|x| format!("{x:.3}")).unwrap_or_default();
    let c = &f.chats;
    let mut cells = vec![
        kind.to_string(),
        format_iso(start),
        format_iso(end),
        text(&f.group),
        int(c.started),
        int(c.answered),
        int(c.abandoned_in_queue),
        int(c.transferred),
        int(c.escalated),
        int(c.handled),
        int(c.owned_at_close),
    ];
    let stats: [&Stat; 4] = [
        &f.wait_ms,
        &f.first_response_ms,
        &f.handle_ms,
        &f.resolution_ms,
    ];
    for stat in stats {
        cells.extend([
            int(stat.count),
            opt_int(stat.p50),
            opt_int(stat.p90),
            num(stat.mean),
        ]);
    }
    for target in [&f.sla.wait, &f.sla.first_response] {
        cells.extend([int(target.met), int(target.missed), num(target.pct_met)]);
    }
    match &f.csat {
        Some(csat) => {
            cells.extend([
                int(csat.responses),
                num(csat.response_rate_pct),
                num(csat.mean),
            ]);
            cells.extend((1..=5).map(|s| opt_int(csat.distribution.get(&s.to_string()).copied())));
        }
        None => cells.extend(std::iter::repeat_n(String::new(), 3 + 5)),
    }
    match &f.nps {
        Some(nps) => {
            cells.extend([
                int(nps.responses),
                num(nps.response_rate_pct),
                num(nps.score),
                int(nps.promoters),
                int(nps.passives),
                int(nps.detractors),
                num(nps.mean),
            ]);
            cells.extend((0..=10).map(|s| opt_int(nps.distribution.get(&s.to_string()).copied())));
        }
        None => cells.extend(std::iter::repeat_n(String::new(), 7 + 11)),
    }
    match &f.agent_time {
        Some(t) => {
            cells.extend([
                int(t.available_ms),
                int(t.busy_ms),
                num(t.occupancy_pct),
                int(t.away_ms),
                int(t.wrap_up_ms),
            ]);
            cells.extend(
                reasons
                    .iter()
                    .map(|r| int(t.away_by_reason.get(*r).copied().unwrap_or(0))),
            );
        }
        None => cells.extend(std::iter::repeat_n(String::new(), 5 + reasons.len())),
    }
    cells
}

/// A text cell made safe for spreadsheets (see the module head).
fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn line(cells: &[String]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_are_quoted_and_defused() {
        let cells = ["a,b", "say \"hi\"", "plain", "line\nbreak"].map(String::from);
        assert_eq!(
            super::line(&cells),
            "\"a,b\",\"say \"\"hi\"\"\",plain,\"line\nbreak\"\r\n"
        );
        assert_eq!(super::text("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(super::text("billing"), "billing");
    }
}
