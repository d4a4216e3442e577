//! `switchboard simulate`: reads the inputs named by the flags, runs one setup (two with
//! `--compare`) and renders the table or the JSON. The binary prints what it returns.

use std::path::Path;
use std::time::Instant;

use super::input::{agents_from_file, traffic_from_file, Routing};
use super::report::{self, Labelled, Output};
use super::{history, simulate, Behaviour, SimError};

pub use crate::config::SimulateArgs;

/// Runs `simulate` as the flags say; the text to print (table or JSON).
pub async fn run_command(args: &SimulateArgs) -> Result<String, SimError> {
    let routing = Routing::from_toml(&args.config)?;
    let agents = agents_from_file(&args.agents)?;
    let traffic = match (&args.traffic, &args.from_redis) {
        (Some(path), _) => traffic_from_file(path, &routing)?,
        (None, Some(url)) => {
            let (Some(from), Some(to)) = (&args.from, &args.to) else {
                return Err(SimError::Usage("--from-redis needs --from and --to".into()));
            };
            let from_ms = history::parse_date(from, false).map_err(SimError::Usage)?;
            let to_ms = history::parse_date(to, true).map_err(SimError::Usage)?;
            if from_ms >= to_ms {
                return Err(SimError::Usage(format!(
                    "--from {from} is not before --to {to}"
                )));
            }
            history::traffic_from_redis(url, from_ms, to_ms, &routing).await?
        }
        (None, None) => {
            return Err(SimError::Usage(
                "--traffic or --from-redis is needed".into(),
            ))
        }
    };
    let behaviour = Behaviour {
        response_ms: args.response_ms,
        first_reply_ms: args.first_reply_ms,
    };
    // The second setup is read before anything runs, so a bad file fails at once.
    let compare = match &args.compare {
        None => None,
        Some(path) => {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            Some(match extension {
                "toml" => (
                    Routing::from_toml(path)?,
                    agents.clone(),
                    label(path, &args.agents),
                ),
                "json" => (
                    routing.clone(),
                    agents_from_file(path)?,
                    label(&args.config, path),
                ),
                _ => {
                    return Err(SimError::Usage(format!(
                        "--compare {}: a .toml routing config or a .json agents file",
                        path.display()
                    )))
                }
            })
        }
    };
    let started = Instant::now();
    let a = Labelled {
        label: label(&args.config, &args.agents),
        summary: simulate(&routing, &agents, &traffic, behaviour)?,
    };
    let b = match compare {
        None => None,
        Some((routing_b, agents_b, label_b)) => Some(Labelled {
            label: label_b,
            summary: simulate(&routing_b, &agents_b, &traffic, behaviour)?,
        }),
    };
    let elapsed = started.elapsed();
    let output = Output {
        chats: traffic.len(),
        a,
        b,
    };
    if args.json {
        serde_json::to_string_pretty(&output)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| SimError::Usage(format!("cannot write JSON: {e}")))
    } else {
        Ok(format!(
            "{}\n(simulated in {:.2} s)\n",
            report::text(&output),
            elapsed.as_secs_f64()
        ))
    }
}

fn label(config: &Path, agents: &Path) -> String {
    let name = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    format!("{} + {}", name(config), name(agents))
}
