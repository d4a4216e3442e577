//! The printout: a plain aligned text table of one run, or of two side by side with each
//! figure as "A → B"; and the JSON form (`--json`) for scripts and tests.

use serde::{Deserialize, Serialize};

use super::measure::{Figures, Summary};

/// One run and what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labelled {
    /// What the run was made of (config and agents files).
    pub label: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// What `simulate --json` prints: run `a`, and `b` with `--compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub chats: usize,
    pub a: Labelled,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<Labelled>,
}

/// A duration for people: `850 ms`, `12.5 s`, `4.0 min`, `1.5 h`.
pub fn duration(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{s:.1} s"),
        10_000..60_000 => format!("{s:.0} s"),
        60_000..3_600_000 => format!("{:.1} min", s / 60.0),
        _ => format!("{:.1} h", s / 3600.0),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1} %"))
}

fn wait(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), duration)
}

const HEADER: [&str; 9] = [
    "topic",
    "chats",
    "answered",
    "abandoned",
    "wait p50",
    "wait p90",
    "wait mean",
    "SLA wait",
    "SLA 1st reply",
];
const OCCUPANCY: &str = "occupancy";

/// The cells of one row, after the topic name.
fn cells(f: &Figures) -> Vec<String> {
    vec![
        f.chats.to_string(),
        f.answered.to_string(),
        format!("{:.1} %", f.abandoned_pct),
        wait(f.wait_p50_ms),
        wait(f.wait_p90_ms),
        wait(f.wait_mean_ms),
        percent(f.sla_wait_pct),
        percent(f.sla_first_response_pct),
        percent(f.occupancy_pct),
    ]
}

/// The table of one run, or of two (each figure "A → B") when `b` is given.
pub fn text(output: &Output) -> String {
    let mut out = String::new();
    let a = &output.a;
    out.push_str(&format!("A: {}\n", a.label));
    if let Some(b) = &output.b {
        out.push_str(&format!("B: {}\n", b.label));
    }
    out.push_str(&format!(
        "{} chats over {}, {} agents{}\n\n",
        output.chats,
        duration(a.summary.simulated_ms),
        a.summary.agents,
        output
            .b
            .as_ref()
            .map(|b| format!(" → {}", b.summary.agents))
            .unwrap_or_default(),
    ));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    header.push(OCCUPANCY.into());
    rows.push(header);
    let pairs = a
        .summary
        .topics
        .iter()
        .chain(std::iter::once(&a.summary.overall))
        .enumerate();
    for (i, fa) in pairs {
        let mut row = vec![fa.topic.clone()];
        match &output.b {
            None => row.extend(cells(fa)),
            Some(b) => {
                let fb = b
                    .summary
                    .topics
                    .get(i)
                    .filter(|f| f.topic == fa.topic)
                    .unwrap_or(&b.summary.overall);
                for (x, y) in cells(fa).into_iter().zip(cells(fb)) {
                    row.push(if x == y { x } else { format!("{x} → {y}") });
                }
            }
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for run in std::iter::once(a).chain(output.b.as_ref()) {
        if run.summary.agents_set_away > 0 {
            out.push_str(&format!(
                "\nwarning ({}): the router set agents away {} times for missed offers\n",
                run.label, run.summary.agents_set_away
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(1_260), "1.3 s");
        assert_eq!(duration(40_000), "40 s");
        assert_eq!(duration(240_000), "4.0 min");
        assert_eq!(duration(5_400_000), "1.5 h");
    }
}
