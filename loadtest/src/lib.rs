//! Switchboard's load-test harness: simulated customers and agents that speak only the
//! public wire protocol (`docs/protocol.md`), measured with HDR histograms, checked for
//! loss and duplicates conversation by conversation as chats end, and compared against a
//! raw relay floor run with the same load shape.
//!
//! Map of the modules:
//!
//! - [`scenario`]: the load shape (TOML file and/or flags), validated once.
//! - [`pacer`]: when a simulated sender may send its next message (rate and window).
//! - [`payload`]: message texts that carry their send time and id, padded to size.
//! - [`wire`]: the frames the harness sends and the ones it reads, as serde types.
//! - [`ws`]: one WebSocket connection with typed send/receive.
//! - [`admin`]: the REST calls that create and delete the run's agents.
//! - [`hubs`]: one hub or several nodes: which client connects where, and where next.
//! - [`failover`]: killing one node mid-run and timing how its clients come back.
//! - [`customer`], [`agent`]: the two simulators.
//! - [`shared`]: what every simulated client of one run shares.
//! - [`metrics`]: latency histograms (overall and per second) and counters.
//! - [`verify`]: what every client saw and stored, and the loss/duplicate check, run as
//!   each conversation's records come in.
//! - [`floor`]: the minimal pair relay and its load, the baseline every run is compared to;
//!   [`floor::durable`]: the same relay storing each frame in Redis first (issue 19).
//! - [`procfs`]: RSS and CPU of a local process from `/proc`; the fd limit.
//! - [`progress`]: the live progress line.
//! - [`report`]: the JSON report and the self-contained HTML one.
//! - [`run`], [`idle`]: the `run` and `idle` subcommands as library calls.
//! - [`record`]: a scripted run on a schedule, written in the simulator's format with the
//!   observed waits (`switchboard simulate` is checked against it, issue 17).
//! - [`abuse`]: the `abuse` subcommand: attacks from some loopback addresses while a
//!   legitimate chat runs from another, one file per attack (issue 15).
//!
//! The harness shares the machine with the hub it measures, so the per-frame path is kept
//! cheap: hash maps there use rustc-hash's Fx hasher (the keys are the harness's own ids
//! and the hub's seqs, never chosen by an attacker; SipHash was ~4 % of the harness's
//! CPU at saturation), and the common frames skip serde's tagged-enum buffering
//! ([`wire::In::parse`]).

#![warn(rust_2018_idioms)]
#![deny(clippy::dbg_macro)]

pub mod abuse;
pub mod admin;
pub mod agent;
pub mod customer;
pub mod failover;
pub mod floor;
pub mod hubs;
pub mod idle;
pub mod metrics;
pub mod pacer;
pub mod payload;
pub mod procfs;
pub mod progress;
pub mod quiet;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shared;
pub mod tickets;
pub mod verify;
pub mod wire;
pub mod ws;

pub use run::{run, FloorRedis, HubTarget, RunOptions, RunOutcome};
pub use scenario::Scenario;
