//! A rating given after the close goes on the ticket, and the reports are told of it with
//! the chat's milestones (who owned it at the close) even though the ticket is stored
//! without its transcript (`store::ticket_form`): also when a crash made the rating be
//! told again.

mod common;

use std::sync::Mutex;

use common::store_fixtures::{
    append, connect_store, create_conversation, customer_message, Append,
};
use common::*;
use switchboard::{
    metrics::Metrics,
    protocol::{AgentRef, EventBody, Party, Role},
    store::{AppendOutcome, Requirement, StoreResult, Update},
    tickets::{Ticket, TicketSink, Tickets},
};

/// Keeps every ticket a rating is told with.
#[derive(Default)]
struct RatingsTold(Mutex<Vec<Ticket>>);

impl TicketSink for RatingsTold {
    fn ticket_stored<'a>(
        &'a self,
        _ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }

    fn rating_attached<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>> {
        if let Ok(mut told) = self.0.lock() {
            told.push(ticket.clone());
        }
        Box::pin(async { Ok(()) })
    }
}

fn joined_agents(ticket: &Ticket) -> Vec<String> {
    ticket
        .transcript
        .iter()
        .filter_map(|event| match &event.body {
            EventBody::Joined { agent } => Some(agent.id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_rating_is_told_with_the_milestones_also_when_told_again() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    let (id, visitor) = ("c_rated", "v_rated");
    create_conversation(&store, id, visitor).await;
    let ann = AgentRef {
        id: "ann".into(),
        name: "Ann".into(),
    };
    let items = [
        Append::event(EventBody::Joined { agent: ann.clone() })
            .updating(Update::Agent(Some("ann".into()))),
        Append::event(customer_message(visitor, "thanks")),
        Append::closing(
            Party {
                role: Role::Agent,
                id: "ann".into(),
                name: Some("Ann".into()),
            },
            "t_rated",
        ),
    ];
    let outcomes = append(&store, id, &items).await;
    assert_eq!(outcomes.last(), Some(&AppendOutcome::Stored(4)));

    let sink = std::sync::Arc::new(RatingsTold::default());
    let tickets = Tickets::new(store.clone(), Metrics::new(), false).with_sink(sink.clone());
    tickets.flush(id).await.expect("flush");
    let rating = Append::event(EventBody::Rating {
        score: 4,
        comment: None,
    })
    .requiring(Requirement::ClosedUnrated);
    assert_eq!(
        append(&store, id, &[rating]).await,
        [AppendOutcome::Stored(5)]
    );

    // Put on the ticket, then told again (as after a crash between the two).
    tickets.attach_rating(id).await.expect("rating attached");
    tickets.attach_rating(id).await.expect("rating told again");
    let told = sink.0.lock().expect("sink").clone();
    assert_eq!(told.len(), 2, "{told:?}");
    for ticket in &told {
        assert_eq!(ticket.rating.as_ref().map(|r| r.score), Some(4));
        assert_eq!(joined_agents(ticket), ["ann"], "the milestones: {ticket:?}");
    }
    let whole = store
        .ticket("t_rated")
        .await
        .expect("read")
        .expect("stored");
    let whole: serde_json::Value = serde_json::from_str(&whole).expect("JSON");
    assert_eq!(whole["rating"]["score"], 4, "{whole}");
    assert_eq!(
        whole["transcript"].as_array().map(Vec::len),
        Some(5),
        "the whole chat, the rating included: {whole}"
    );
}
