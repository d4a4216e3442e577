//! The virtual-clock loop: a heap of timed events (arrivals, agents accepting offers after
//! their response time, chats ending after their handle time, customers giving up,
//! shifts starting and ending) feeds the real [`Router`], whose own timers run at its
//! `next_deadline`; the commands it returns are carried out here the way the hub and
//! scripted agents would. Only time and fates are recorded; `measure` does the figures.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::input::{Arrival, Routing, SimAgent};
use super::measure::{AgentTime, ChatRecord, Fate, Recorded};
use crate::router::{AgentStatus, Command, NewConversation, OfferId, Router};

#[derive(Debug)]
enum Event {
    ShiftStart(usize),
    ShiftEnd(usize),
    Arrive(usize),
    Accept {
        agent: usize,
        offer: OfferId,
    },
    GiveUp(usize),
    /// The chat's handle time is over; `assigned_at` is the assignment it ends, so an end left
    /// over from an assignment undone (`Unassigned`) is ignored.
    End {
        chat: usize,
        assigned_at: u64,
    },
}

/// A heap entry: earliest first, then in scheduling order.
#[derive(Debug)]
struct Timed {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatState {
    NotYet,
    Waiting,
    Assigned { agent: usize, at: u64 },
    Done,
}

/// An agent's clock while the run goes on.
#[derive(Debug, Default)]
struct AgentClock {
    on_shift_since: Option<u64>,
    holding: u32,
    time: AgentTime,
}

impl AgentClock {
    /// Adds the time since `from` to the available (and, when holding, busy) totals.
    fn settle(&mut self, now: u64) {
        if let Some(since) = self.on_shift_since {
            let span = now.saturating_sub(since);
            self.time.available_ms += span;
            if self.holding > 0 {
                self.time.busy_ms += span;
            }
            self.on_shift_since = Some(now);
        }
    }
}

/// One run: the router, the heap and what happened so far.
struct Sim<'a> {
    traffic: &'a [Arrival],
    response_ms: u64,
    router: Router,
    heap: BinaryHeap<Reverse<Timed>>,
    seq: u64,
    now: u64,
    chats: Vec<ChatState>,
    fates: Vec<Fate>,
    topic_of: Vec<usize>,
    agent_index: HashMap<String, usize>,
    clocks: Vec<AgentClock>,
    agents_set_away: u32,
    /// Chats in the queue (arrived, not yet assigned, not given up).
    waiting: usize,
}

/// Replays `traffic` through the router built from `routing`, with `agents`, on a
/// virtual clock. Agents answer every offer after the chat's `response_ms`, or
/// `response_ms` when it has none.
pub fn run(
    routing: &Routing,
    agents: &[SimAgent],
    traffic: &[Arrival],
    response_ms: u64,
) -> Recorded {
    let mut sim = Sim {
        traffic,
        response_ms,
        router: Router::new(routing.router.clone()),
        heap: BinaryHeap::with_capacity(traffic.len() * 2 + agents.len() * 2),
        seq: 0,
        now: 0,
        chats: vec![ChatState::NotYet; traffic.len()],
        fates: vec![Fate::Unserved; traffic.len()],
        topic_of: traffic
            .iter()
            .map(|a| {
                routing
                    .topics
                    .iter()
                    .position(|t| t.name == a.topic)
                    .unwrap_or(0)
            })
            .collect(),
        agent_index: HashMap::new(),
        clocks: (0..agents.len()).map(|_| AgentClock::default()).collect(),
        agents_set_away: 0,
        waiting: 0,
    };
    for (i, agent) in agents.iter().enumerate() {
        sim.agent_index.insert(agent.profile.id.clone(), i);
        let commands = sim.router.upsert_agent(0, agent.profile.clone());
        sim.carry_out(commands);
        let shift = agent
            .shift
            .map_or((0, None), |s| (s.from_ms, Some(s.to_ms)));
        sim.schedule(shift.0, Event::ShiftStart(i));
        if let Some(to) = shift.1 {
            sim.schedule(to, Event::ShiftEnd(i));
        }
    }
    for (i, arrival) in traffic.iter().enumerate() {
        sim.schedule(arrival.at_ms, Event::Arrive(i));
    }
    sim.run_to_end(agents);
    let end = sim.now;
    for clock in &mut sim.clocks {
        clock.settle(end);
    }
    Recorded {
        chats: sim
            .fates
            .iter()
            .zip(&sim.topic_of)
            .map(|(fate, topic)| ChatRecord {
                topic: *topic,
                fate: *fate,
            })
            .collect(),
        agents: sim.clocks.iter().map(|c| c.time).collect(),
        end_ms: end,
        agents_set_away: sim.agents_set_away,
    }
}

impl Sim<'_> {
    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Timed {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn run_to_end(&mut self, agents: &[SimAgent]) {
        loop {
            let next_event = self.heap.peek().map(|Reverse(t)| t.at);
            let timer = match (next_event, self.router.next_deadline()) {
                (None, None) => break,
                // Nothing left but router timers (held-back queue updates): done.
                (None, Some(_)) if self.waiting == 0 => break,
                // The router's own timers first at equal times, as the hub's task wakes
                // for them before it reads what arrived at the same instant.
                (event, Some(timer)) if event.is_none_or(|e| timer <= e) => Some(timer),
                _ => None,
            };
            match timer {
                Some(timer) => {
                    self.now = self.now.max(timer);
                    let commands = self.router.tick(self.now);
                    self.carry_out(commands);
                }
                None => {
                    let Some(Reverse(timed)) = self.heap.pop() else {
                        break;
                    };
                    self.now = self.now.max(timed.at);
                    self.handle(timed.event, agents);
                }
            }
        }
    }

    fn handle(&mut self, event: Event, agents: &[SimAgent]) {
        let now = self.now;
        let commands = match event {
            Event::ShiftStart(i) => {
                self.clocks[i].on_shift_since = Some(now);
                self.router
                    .set_status(now, &agents[i].profile.id, AgentStatus::Available)
            }
            Event::ShiftEnd(i) => {
                self.clocks[i].settle(now);
                self.clocks[i].on_shift_since = None;
                // Away: keeps its chats to the end, takes no new ones.
                self.router
                    .set_status(now, &agents[i].profile.id, AgentStatus::Away)
            }
            Event::Arrive(i) => {
                let arrival = &self.traffic[i];
                self.set_state(i, ChatState::Waiting);
                if let Some(patience) = arrival.patience_ms {
                    self.schedule(now.saturating_add(patience), Event::GiveUp(i));
                }
                self.router.enqueue(
                    now,
                    NewConversation {
                        id: conversation_id(i),
                        topic: arrival.topic.clone(),
                        waiting_since_ms: now,
                        preferred_agent: None,
                    },
                )
            }
            Event::Accept { agent, offer } => {
                // Refused when the offer is gone (expired, or the customer gave up).
                self.router
                    .accept(now, &agents[agent].profile.id, &offer)
                    .unwrap_or_default()
            }
            Event::GiveUp(i) => {
                if self.chats[i] != ChatState::Waiting {
                    return;
                }
                self.set_state(i, ChatState::Done);
                self.fates[i] = Fate::Abandoned {
                    wait_ms: now.saturating_sub(self.traffic[i].at_ms),
                };
                self.router.close(now, &conversation_id(i))
            }
            Event::End {
                chat: i,
                assigned_at,
            } => {
                let ChatState::Assigned { agent, at } = self.chats[i] else {
                    return;
                };
                if at != assigned_at {
                    return;
                }
                self.set_state(i, ChatState::Done);
                self.release(agent);
                self.router.close(now, &conversation_id(i))
            }
        };
        self.carry_out(commands);
    }

    /// Moves a chat to `state`, keeping the count of waiting chats.
    fn set_state(&mut self, chat: usize, state: ChatState) {
        if self.chats[chat] == ChatState::Waiting {
            self.waiting -= 1;
        }
        if state == ChatState::Waiting {
            self.waiting += 1;
        }
        self.chats[chat] = state;
    }

    /// The agent no longer holds one of its chats.
    fn release(&mut self, agent: usize) {
        let clock = &mut self.clocks[agent];
        clock.settle(self.now);
        clock.holding = clock.holding.saturating_sub(1);
    }

    fn carry_out(&mut self, commands: Vec<Command>) {
        let now = self.now;
        for command in commands {
            match command {
                Command::Offer {
                    offer_id,
                    agent,
                    conversation,
                    ..
                } => {
                    if let (Some(&agent), Some(i)) =
                        (self.agent_index.get(&agent), chat_index(&conversation))
                    {
                        let response = self.traffic[i].response_ms.unwrap_or(self.response_ms);
                        self.schedule(
                            now.saturating_add(response),
                            Event::Accept {
                                agent,
                                offer: offer_id,
                            },
                        );
                    }
                }
                Command::Assign {
                    agent,
                    conversation,
                    ..
                } => {
                    let (Some(&agent), Some(i)) =
                        (self.agent_index.get(&agent), chat_index(&conversation))
                    else {
                        continue;
                    };
                    if self.chats[i] == ChatState::Waiting {
                        self.fates[i] = Fate::Answered {
                            wait_ms: now.saturating_sub(self.traffic[i].at_ms),
                        };
                    }
                    self.set_state(i, ChatState::Assigned { agent, at: now });
                    let clock = &mut self.clocks[agent];
                    clock.settle(now);
                    clock.holding += 1;
                    let end = now.saturating_add(self.traffic[i].handle_ms);
                    self.schedule(
                        end,
                        Event::End {
                            chat: i,
                            assigned_at: now,
                        },
                    );
                }
                Command::Unassigned {
                    agent,
                    conversation,
                } => {
                    // Not made by this model (no agent drops), handled for completeness:
                    // the chat waits again and its end is dropped.
                    if let (Some(&agent), Some(i)) =
                        (self.agent_index.get(&agent), chat_index(&conversation))
                    {
                        self.release(agent);
                        self.set_state(i, ChatState::Waiting);
                    }
                }
                Command::Abandon { conversation } => {
                    if let Some(i) = chat_index(&conversation) {
                        self.schedule(now, Event::GiveUp(i));
                    }
                }
                Command::AgentAway { .. } => self.agents_set_away += 1,
                _ => {}
            }
        }
    }
}

fn conversation_id(index: usize) -> String {
    format!("c{index}")
}

fn chat_index(conversation: &str) -> Option<usize> {
    conversation.strip_prefix('c')?.parse().ok()
}
