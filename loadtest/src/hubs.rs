//! The hubs of one run: `--hub URL` or `--hub URL1,URL2,…`, the nodes of one deployment
//! (`docs/protocol.md`, "Several nodes"). It decides which hub each simulated client
//! connects to, and where a client goes when its hub cannot be reached; it opens no
//! connection itself.
//!
//! - Agents and customers are kept on different nodes, so that every message crosses
//!   nodes: agents go round-robin over the hubs at odd positions of the list (1st, 3rd,
//!   …), customers round-robin over those at even positions (2nd, 4th, …). With two
//!   hubs every agent is on the first and every customer on the second; with one hub
//!   everything is on it, as before. (Plain round-robin of both over the whole list
//!   would put some customers on their agent's node: any agent may take any chat.)
//! - Admin REST calls go to the first hub (the run's cleanup tries the others when the
//!   first cannot be reached, e.g. after it was killed).
//! - A client that lost its connection comes back to the hub it was on; when that hub
//!   cannot be reached it tries the next in the list, and stays on whichever answered.

use std::time::Duration;

use anyhow::bail;

use crate::admin::Endpoints;

/// The hubs of a run, in the order given.
#[derive(Debug, Clone)]
pub struct Hubs {
    list: Vec<Endpoints>,
}

/// Connection attempts in a row after which a client gives up on every hub.
pub const MAX_CONNECT_ATTEMPTS: u32 = 12;

impl Hubs {
    /// Parses one base URL or a comma-separated list of them.
    pub fn parse(spec: &str) -> anyhow::Result<Hubs> {
        let list = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Endpoints::new)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if list.is_empty() {
            bail!("--hub names no hub: {spec:?}");
        }
        Ok(Hubs { list })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Hub `index` (taken modulo the number of hubs).
    pub fn get(&self, index: usize) -> &Endpoints {
        &self.list[index % self.list.len()]
    }

    /// Every hub, the first (the admin one) first.
    pub fn all(&self) -> &[Endpoints] {
        &self.list
    }

    /// Where the admin REST calls go.
    pub fn admin(&self) -> &Endpoints {
        &self.list[0]
    }

    /// The hub agent `index` starts on: the 1st, 3rd, 5th… of the list in turn.
    pub fn for_agent(&self, index: usize) -> usize {
        let agent_hubs = self.list.len().div_ceil(2);
        2 * (index % agent_hubs)
    }

    /// The hub customer `index` starts on: the 2nd, 4th, 6th… of the list in turn (the
    /// only one when there is one).
    pub fn for_customer(&self, index: usize) -> usize {
        let customer_hubs = self.list.len() / 2;
        if customer_hubs == 0 {
            return 0;
        }
        2 * (index % customer_hubs) + 1
    }

    /// The hub to try after `index` could not be reached.
    pub fn after(&self, index: usize) -> usize {
        (index + 1) % self.list.len()
    }

    /// After the `failures`-th failed connection attempt in a row: `None` to give up,
    /// else how long to wait before trying the next hub. The hubs of one round are tried
    /// back to back (a killed node refuses at once, the next may well answer); a pause,
    /// growing to 1 s, comes only after a whole round failed.
    pub fn retry_pause(&self, failures: u32) -> Option<Duration> {
        if failures >= MAX_CONNECT_ATTEMPTS {
            return None;
        }
        let per_round = u32::try_from(self.list.len()).unwrap_or(u32::MAX).max(1);
        if failures % per_round != 0 {
            return Some(Duration::ZERO);
        }
        let rounds = u64::from(failures / per_round);
        Some(Duration::from_millis((100 * rounds).min(1000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hub_is_everyone_s() {
        let hubs = Hubs::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(hubs.len(), 1);
        assert_eq!(
            (hubs.for_agent(3), hubs.for_customer(3), hubs.after(0)),
            (0, 0, 0)
        );
        assert_eq!(hubs.admin().http, "http://127.0.0.1:8080");
    }

    #[test]
    fn two_hubs_put_customers_and_agents_apart() {
        let hubs = Hubs::parse("http://a:1, http://b:2/,").expect("valid");
        assert_eq!(hubs.len(), 2);
        for i in 0..5 {
            assert_eq!(hubs.get(hubs.for_agent(i)).http, "http://a:1");
            assert_eq!(hubs.get(hubs.for_customer(i)).http, "http://b:2");
        }
        assert_eq!(hubs.after(1), 0);
        assert_eq!(hubs.admin().http, "http://a:1");
    }

    #[test]
    fn more_hubs_keep_agents_and_customers_apart() {
        let hubs = Hubs::parse("http://a,http://b,http://c").expect("valid");
        let agents: Vec<usize> = (0..4).map(|i| hubs.for_agent(i)).collect();
        let customers: Vec<usize> = (0..4).map(|i| hubs.for_customer(i)).collect();
        assert_eq!(agents, [0, 2, 0, 2]);
        assert_eq!(customers, [1, 1, 1, 1]);
        let hubs = Hubs::parse("http://a,http://b,http://c,http://d").expect("valid");
        let agents: Vec<usize> = (0..3).map(|i| hubs.for_agent(i)).collect();
        let customers: Vec<usize> = (0..3).map(|i| hubs.for_customer(i)).collect();
        assert_eq!(agents, [0, 2, 0]);
        assert_eq!(customers, [1, 3, 1]);
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(Hubs::parse("").is_err());
        assert!(Hubs::parse(" , ").is_err());
        assert!(Hubs::parse("http://a,b:2").is_err());
    }

    #[test]
    fn a_round_of_hubs_is_tried_before_a_pause() {
        let hubs = Hubs::parse("http://a,http://b").expect("valid");
        assert_eq!(hubs.retry_pause(1), Some(Duration::ZERO));
        assert_eq!(hubs.retry_pause(2), Some(Duration::from_millis(100)));
        assert_eq!(hubs.retry_pause(3), Some(Duration::ZERO));
        assert_eq!(hubs.retry_pause(4), Some(Duration::from_millis(200)));
        assert_eq!(hubs.retry_pause(MAX_CONNECT_ATTEMPTS), None);
        let one = Hubs::parse("http://a").expect("valid");
        assert_eq!(one.retry_pause(1), Some(Duration::from_millis(100)));
        assert_eq!(one.retry_pause(30), None);
    }
}
