//! The routing task's reach beyond this node: frames for parties go to this node's
//! connections directly and to the other nodes over the router channel; presence
//! follows the nodes' heartbeats; chosen statuses are saved for the next routing node.

use std::collections::HashSet;

use super::{
    bus::{BusMessage, Party},
    task::RoutingTask,
};
use crate::{
    protocol::{AgentStatus, ServerFrame},
    registry::{ConnId, PartyKey},
};

impl RoutingTask {
    /// Sends `frame` to every connection of `party`, at every node.
    pub(super) fn send_to(&self, party: Party, frame: &ServerFrame) -> bool {
        self.send_except(party, frame, None, None)
    }

    /// Sends `frame` to the party's connections but `except` (node, connection); nodes
    /// with connections of the party start hearing `watch` (conversation, from seq).
    pub(super) fn send_except(
        &self,
        party: Party,
        frame: &ServerFrame,
        except: Option<(String, ConnId)>,
        watch: Option<(String, Option<u64>)>,
    ) -> bool {
        let me = self.handle.node_id();
        let key = match &party {
            Party::Agent(id) => PartyKey::Agent(id.clone()),
            Party::Visitor(id) => PartyKey::Visitor(id.clone()),
        };
        let text = frame.to_text();
        let skip = except
            .as_ref()
            .filter(|(node, _)| node == me)
            .map(|(_, conn)| *conn);
        let here = self.deps.registry.push_except(&key, Some(&text), skip);
        if here {
            if let Some((conversation, from_seq)) = &watch {
                let agent = match &party {
                    Party::Agent(id) => Some(id.as_str()),
                    Party::Visitor(_) => None,
                };
                self.deps
                    .conversations
                    .watch_soon(conversation, *from_seq, agent, None);
            }
        }
        let elsewhere = match &party {
            Party::Agent(id) => self
                .presence_of(id)
                .is_some_and(|nodes| nodes.iter().any(|node| node != me)),
            // Visitors are not tracked by node: any node may hold a tab.
            Party::Visitor(_) => true,
        };
        if elsewhere {
            self.handle.publish(&BusMessage::Deliver {
                from: me.to_string(),
                party,
                frame: Some(text.to_string()),
                except,
                watch,
                ack: None,
            });
        }
        here || elsewhere
    }

    /// Nodes with connections of `agent` start hearing `conversation` from `from_seq`
    /// (its `joined`); the node of the tab that accepted gets the accept's `ack` first.
    pub(super) fn watch_for(
        &self,
        agent: &str,
        conversation: &str,
        from_seq: u64,
        ack: Option<crate::conversation::RemoteAck>,
    ) {
        let me = self.handle.node_id();
        if self
            .deps
            .registry
            .count(&PartyKey::Agent(agent.to_string()))
            > 0
        {
            self.deps
                .conversations
                .watch_soon(conversation, Some(from_seq), Some(agent), None);
        }
        if self
            .presence_of(agent)
            .is_some_and(|nodes| nodes.iter().any(|node| node != me))
        {
            self.handle.publish(&BusMessage::Deliver {
                from: me.to_string(),
                party: Party::Agent(agent.to_string()),
                frame: None,
                except: None,
                watch: Some((conversation.to_string(), Some(from_seq))),
                ack,
            });
        }
    }

    /// Remembers an agent's chosen status for whichever node routes next.
    pub(super) fn save_status(&self, agent: &str, status: AgentStatus) {
        let store = self.deps.store.clone();
        let agent = agent.to_string();
        let status = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.deps.tracker.spawn(async move {
            if let Err(err) = store.save_status(&agent, &status).await {
                tracing::debug!(agent_id = %agent, cause = %err, "status not saved");
            }
        });
    }

    /// Follows the live nodes: agents whose every node died are disconnected (grace,
    /// then re-queue); agents a live node reports but this task missed are connected.
    pub(super) fn follow_nodes(&mut self, now: u64, live: Vec<(String, Vec<String>)>) {
        let live_ids: HashSet<&str> = live.iter().map(|(node, _)| node.as_str()).collect();
        let mut gone = Vec::new();
        for (agent, nodes) in self.presence.iter_mut() {
            nodes.retain(|node| live_ids.contains(node.as_str()));
            if nodes.is_empty() {
                gone.push(agent.clone());
            }
        }
        for agent in gone {
            self.presence.remove(&agent);
            tracing::info!(agent_id = %agent, "agent's node is gone: disconnected");
            let commands = self.core.agent_disconnected(now, &agent);
            self.execute(commands);
        }
        for (node, agents) in live {
            for agent in agents {
                let nodes = self.presence.entry(agent.clone()).or_default();
                if nodes.insert(node.clone()) && nodes.len() == 1 {
                    let (_, commands) = self.core.agent_connected(now, &agent);
                    self.execute(commands);
                }
            }
        }
    }

    /// Reads a conversation's record after Redis refused a routing write for it.
    pub(super) fn reconcile(&self, conversation: String) {
        let (store, handle) = (self.deps.store.clone(), self.handle.clone());
        self.deps.tracker.spawn(async move {
            let owner = match store.conversation(&conversation).await {
                Ok(Some(record)) if record.is_open() => Some(record.agent),
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(conversation_id = %conversation, cause = %err, "reconcile: record not read");
                    return;
                }
            };
            handle.tell(super::Msg::Reconciled {
                conversation,
                owner,
            });
        });
    }

    /// Follows the record: a closed conversation is dropped; one owned by an agent this
    /// router did not assign is restored as that agent's; an unowned one is queued.
    pub(super) fn reconciled(
        &mut self,
        now: u64,
        conversation: String,
        owner: Option<Option<String>>,
    ) {
        let believed = self.core.agent_of(&conversation).map(str::to_owned);
        match owner {
            None => {
                let commands = self.core.close(now, &conversation);
                self.execute(commands);
            }
            Some(owner) if owner == believed => {}
            Some(owner) => {
                tracing::info!(conversation_id = %conversation, ?owner, ?believed, "routing follows the stored owner");
                let Some(info) = self.conversations.get(&conversation).cloned() else {
                    return;
                };
                let commands = self.core.close(now, &conversation);
                self.execute(commands);
                self.conversations
                    .insert(conversation.clone(), info.clone());
                match owner {
                    Some(agent) => {
                        self.core.restore_assignment(
                            &agent,
                            &conversation,
                            &info.topic,
                            info.waiting_since_ms,
                        );
                    }
                    None => {
                        let commands = self.queue(info, now);
                        self.execute(commands);
                    }
                }
            }
        }
    }

    pub(super) fn presence_of(&self, agent: &str) -> Option<&HashSet<String>> {
        self.presence.get(agent)
    }
}
