//! What nodes tell each other about routing, on the router channel (`sb:{router}:bus`,
//! one slot on a cluster): requests to the routing node and its answers, and the
//! routing node's frames for clients on other nodes. Nodes only: clients never see
//! these (their wire is `protocol`).
//!
//! Pub/sub loses messages while a node's feed is down. Nothing here is the record: a
//! lost request times out as `unavailable` (the client may retry), a lost frame is a
//! lost hint (offers are re-made, queue positions repeated), and a node taking routing
//! over rebuilds from Redis and from the nodes' heartbeats.

use serde::{Deserialize, Serialize};

use super::{QueuedConversation, Target};
use crate::{
    conversation::RemoteAck,
    error::{Error, ErrorCode},
    protocol::AgentStatus,
    registry::ConnId,
    router::RouterStats,
    store::AgentRecord,
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusMessage {
    /// To the routing node.
    Request {
        from: String,
        id: u64,
        request: Request,
    },
    /// From the routing node to the node that asked.
    Reply { to: String, id: u64, reply: Reply },
    /// A frame for a party's connections on every node but `from`.
    Deliver {
        from: String,
        party: Party,
        /// The frame's text, ready to send.
        frame: Option<String>,
        /// Skip this connection (the tab that accepted gets its ack, not `taken`).
        except: Option<(String, ConnId)>,
        /// Nodes with connections of the party start hearing this conversation, from
        /// this seq on (an offer: from what comes next).
        watch: Option<(String, Option<u64>)>,
        /// With a `joined`'s watch: the accept's ack, owed to a tab at its node, sent
        /// there before the `joined` (which the watch may read from the stream first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<crate::conversation::RemoteAck>,
    },
    /// An agent profile changed or was removed (`None`): every node's directory follows.
    Agent {
        from: String,
        id: String,
        record: Option<Box<AgentRecord>>,
    },
    /// A node routes now (or gave routing up: `epoch` 0). Others re-announce.
    Leader { node: String, epoch: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    Agent(String),
    Visitor(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    AgentConnected {
        agent: String,
        node: String,
    },
    /// The node's last tab of the agent closed.
    AgentGone {
        agent: String,
        node: String,
    },
    SetStatus {
        agent: String,
        status: AgentStatus,
        #[serde(default)]
        reason: Option<String>,
    },
    UpsertAgent {
        record: Box<AgentRecord>,
    },
    RemoveAgent {
        agent: String,
    },
    Enqueue {
        conversation: Box<QueuedConversation>,
    },
    Accept {
        agent: String,
        offer_id: String,
        ack: Option<RemoteAck>,
    },
    Decline {
        agent: String,
        offer_id: String,
    },
    Claim {
        conversation: String,
        agent: String,
    },
    Closed {
        conversation: String,
    },
    Transfer {
        conversation: String,
        requester: String,
        target: Target,
        note: Option<String>,
    },
    CustomerPresence {
        conversation: String,
        present: bool,
    },
    Online,
    Stats,
    Queued {
        limit: usize,
    },
    Waiting {
        topic: String,
    },
}

impl Request {
    /// Whether asking twice does no harm: such a request is asked again when the
    /// routing node did not answer (it may be changing hands).
    pub fn is_repeatable(&self) -> bool {
        matches!(
            self,
            Request::AgentConnected { .. }
                | Request::SetStatus { .. }
                | Request::Online
                | Request::Stats
                | Request::Queued { .. }
                | Request::Waiting { .. }
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Connected {
        status: AgentStatus,
        conversations: Vec<String>,
    },
    Status {
        result: Result<AgentStatus, WireError>,
    },
    Done {
        result: Result<(), WireError>,
    },
    Accepted {
        result: Result<(String, u64), WireError>,
    },
    Online {
        staffing: super::Staffing,
    },
    Stats {
        stats: Box<RouterStats>,
    },
    Queued {
        queued: Vec<String>,
    },
    Waiting {
        waiting: usize,
    },
}

/// An [`Error`] on its way between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    code: String,
    message: String,
}

impl From<Error> for WireError {
    fn from(err: Error) -> Self {
        WireError {
            code: err.code().as_str().to_string(),
            message: err.to_string(),
        }
    }
}

impl From<WireError> for Error {
    fn from(err: WireError) -> Self {
        let code = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
        ]
        .into_iter()
        .find(|code| code.as_str() == err.code);
        match code {
            Some(ErrorCode::BadRequest) => Error::bad_request(err.message),
            Some(ErrorCode::Forbidden) => Error::forbidden(err.message),
            Some(ErrorCode::NotFound) => Error::not_found(err.message),
            Some(ErrorCode::Conflict) => Error::conflict(err.message),
            _ => Error::Unavailable,
        }
    }
}

pub fn wire<T>(result: crate::error::Result<T>) -> Result<T, WireError> {
    result.map_err(WireError::from)
}
