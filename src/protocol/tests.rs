//! The protocol's unit tests: parsing, serialization, what customers see.

use serde_json::Value;

use super::*;

fn party(id: &str) -> Party {
    Party {
        role: Role::Customer,
        id: id.into(),
        name: Some("Ann \"the\" \u{e9}\\".into()),
    }
}

/// One event body of every kind, with texts that need escaping.
fn every_kind_of_body() -> Vec<EventBody> {
    vec![
        EventBody::Message {
            from: party("v_1"),
            text: "line\nbreak \"quoted\" \u{1F600} </script>".into(),
            client_msg_id: Some("m-1".into()),
            attachment: None,
        },
        EventBody::Message {
            from: party("v_2"),
            text: "no id".into(),
            client_msg_id: None,
            attachment: None,
        },
        EventBody::Joined {
            agent: AgentRef {
                id: "alice".into(),
                name: "Alice".into(),
            },
        },
        EventBody::Left {
            agent: AgentRef {
                id: "bob".into(),
                name: "Bob".into(),
            },
            reason: LeftReason::Transferred,
        },
        EventBody::Transfer {
            from_agent: "alice".into(),
            to_agent: None,
            to_topic: Some("billing".into()),
            note: Some("tier 2".into()),
        },
        EventBody::Note {
            from: party("alice"),
            text: "internal".into(),
        },
        EventBody::Closed {
            by: party("v_1"),
            resolution: "resolved".into(),
            ticket_id: "t_9".into(),
        },
        EventBody::Rating {
            score: 5,
            comment: None,
        },
    ]
}

/// One event of every kind, as stored: the event and its stored form.
fn every_kind_of_event() -> Vec<(Event, String)> {
    every_kind_of_body()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let event = Event {
                conversation_id: "c_\"odd\"\\id".into(),
                seq: 1 + 1000 * i as u64,
                ts: 1_763_790_000_123 + i as u64,
                body,
            };
            let stored = StoredEvent::json(event.ts, &event.body).expect("serializes");
            (event, stored)
        })
        .collect()
}

/// The spliced frame is byte for byte the frame serialized from the event, for every
/// kind and for texts that need escaping.
#[test]
fn frame_spliced_from_stored_form_equals_serialized_frame() {
    for (event, stored) in every_kind_of_event() {
        let spliced = StoredEvent::event_frame(&event.conversation_id, event.seq, &stored)
            .expect("stored form starts with ts");
        assert_eq!(spliced, event.frame_text());
        let stored_back: StoredEvent = serde_json::from_str(&stored).expect("parses");
        assert_eq!(stored_back.body, event.body);
    }
}

/// A `history` page spliced from stored forms is byte for byte the ack serialized from
/// the parsed events, for each audience: staff see every event as stored, customers
/// never a note or a rating, and a transfer without its note.
#[test]
fn history_page_spliced_from_stored_forms_equals_serialized_ack() {
    for audience in [Audience::Staff, Audience::Customer] {
        let mut page = HistoryPage::default();
        let mut typed = Vec::new();
        for (event, stored) in every_kind_of_event() {
            let entry =
                StoredEvent::page_json(&event.conversation_id, event.seq, &stored, audience);
            match event.clone().visible_to(audience) {
                Some(visible) => {
                    let PageEntry::Visible(json) = entry else {
                        panic!("{audience:?} sees {event:?}: {entry:?}");
                    };
                    page.events.push(json);
                    typed.push(visible);
                }
                None => assert_eq!(entry, PageEntry::Hidden, "{audience:?}: {event:?}"),
            }
        }
        let count = if audience == Audience::Staff { 8 } else { 6 };
        assert_eq!(typed.len(), count, "{audience:?}");
        for more in [false, true] {
            page.more = more;
            let serialized = ServerFrame::ack(
                "r\"1\"".into(),
                AckBody {
                    events: Some(typed.clone()),
                    more: Some(more),
                    ..AckBody::default()
                },
            )
            .to_text();
            assert_eq!(page.ack_text("r\"1\""), serialized, "{audience:?}");
        }
    }
    // An empty page, and a stored form that does not parse.
    let empty = ServerFrame::ack(
        "r2".into(),
        AckBody {
            events: Some(Vec::new()),
            more: Some(false),
            ..AckBody::default()
        },
    );
    assert_eq!(HistoryPage::default().ack_text("r2"), empty.to_text());
    for audience in [Audience::Staff, Audience::Customer] {
        assert_eq!(
            StoredEvent::page_json("c_1", 3, r#"{"kind":"message"}"#, audience),
            PageEntry::Unreadable
        );
    }
}

#[test]
fn splice_refuses_an_unexpected_stored_form() {
    assert_eq!(
        StoredEvent::event_frame("c_1", 2, r#"{"kind":"x","ts":1}"#),
        None
    );
}

#[test]
fn router_vocabulary_is_spelled_as_the_protocol_says() {
    let frame = ServerFrame::OfferRevoked {
        offer_id: "o_1".into(),
        reason: RevokeReason::Withdrawn,
    };
    assert_eq!(
        frame.to_text().as_str(),
        r#"{"type":"offer_revoked","offer_id":"o_1","reason":"expired"}"#
    );
    let status: AgentStatus = serde_json::from_str(r#""away""#).expect("parses");
    assert_eq!(status, AgentStatus::Away);
    assert!(serde_json::from_str::<AgentStatus>(r#""busy""#).is_err());
    let failed = ServerFrame::TransferFailed {
        conversation_id: "c".into(),
        reason: TransferFailReason::Declined,
    };
    assert!(failed
        .to_text()
        .as_str()
        .ends_with(r#""reason":"declined"}"#));
}

#[test]
fn a_seq_ack_written_by_hand_equals_the_serialized_one() {
    for req in [
        "r1",
        "",
        "a \"quoted\" \\ req\n\u{1}\u{e9}\u{1F600}</script>",
    ] {
        for ts in [None, Some(0), Some(1_733_400_000_123)] {
            for seq in [1, u64::MAX] {
                let body = AckBody {
                    seq: Some(seq),
                    ts,
                    ..AckBody::default()
                };
                let serialized = serde_json::to_string(&ServerFrame::ack(req.into(), body.clone()))
                    .expect("serialize");
                let text = ServerFrame::ack(req.into(), body).to_text();
                assert_eq!(text.as_str(), serialized, "req {req:?}, ts {ts:?}");
            }
        }
    }
    // Any other field takes serde's way, in full.
    let body = AckBody {
        seq: Some(3),
        conversation_id: Some("c_1".into()),
        ..AckBody::default()
    };
    assert!(body.seq_only().is_none());
    let serialized =
        serde_json::to_string(&ServerFrame::ack("r".into(), body.clone())).expect("serialize");
    assert_eq!(
        serialized,
        r#"{"type":"ack","req":"r","conversation_id":"c_1","seq":3}"#
    );
    assert_eq!(ack_text("r", &body).as_str(), serialized);
    assert_eq!(
        ServerFrame::ack("r".into(), body).to_text().as_str(),
        serialized
    );
}

#[test]
fn parses_message_with_req() {
    let inbound = Inbound::parse(
        r#"{"type":"message","req":"r2","conversation_id":"c_1","text":"hi","client_msg_id":"m-1"}"#,
    )
    .expect("valid frame");
    assert_eq!(inbound.req.as_deref(), Some("r2"));
    assert!(matches!(inbound.frame, ClientFrame::Message { .. }));
}

#[test]
fn message_fast_path_agrees_with_the_general_parse() {
    let frames = [
        r#"{"type":"message","req":"r2","conversation_id":"c_1","text":"h\u00e9 \"x\"","client_msg_id":"m-1","extra":1}"#,
        r#"{"conversation_id":"c_1","text":"hi","type":"message"}"#,
        r#"{"type":"message","req":null,"conversation_id":"c_1","text":"hi","client_msg_id":null}"#,
        // A file with no text, and a file with text (issue 18): `text` may be left out;
        // a message with neither is refused later, by the session's text check.
        r#"{"type":"message","conversation_id":"c_1","attachment":"a_1"}"#,
        r#"{"type":"message","conversation_id":"c_1","text":"see","attachment":"a_1"}"#,
        r#"{"type":"message","conversation_id":"c_1"}"#,
    ];
    for text in frames {
        let fast = Inbound::parse_message(text).expect("fast path takes it");
        let general = Inbound::parse_general(text).expect("parses");
        assert_eq!(fast.req, general.req, "{text}");
        assert_eq!(
            format!("{:?}", fast.frame),
            format!("{:?}", general.frame),
            "{text}"
        );
    }
    let long_req = format!(
        r#"{{"type":"message","req":"{}","conversation_id":"c","text":"t"}}"#,
        "x".repeat(65)
    );
    for refused in [
        long_req.as_str(),
        r#"{"type":"typing","conversation_id":"c_1","on":true}"#,
        r#"{"type":"message","type":"message","conversation_id":"c","text":"t"}"#,
    ] {
        assert!(Inbound::parse_message(refused).is_none(), "{refused}");
    }
    assert!(Inbound::parse(&long_req).is_err());
}

#[test]
fn unknown_type_keeps_req() {
    let failure = Inbound::parse(r#"{"type":"dance","req":"r1"}"#).expect_err("unknown type");
    assert_eq!(failure.req.as_deref(), Some("r1"));
}

#[test]
fn malformed_json_is_rejected() {
    assert!(Inbound::parse("{nope").is_err());
    assert!(Inbound::parse("[1,2]").is_err());
    assert!(Inbound::parse(r#"{"req":"r1"}"#).is_err());
}

#[test]
fn overlong_req_is_rejected() {
    let req = "x".repeat(65);
    let frame = format!(r#"{{"type":"ping","req":"{req}"}}"#);
    assert!(Inbound::parse(&frame).is_err());
}

#[test]
fn event_serializes_flat() {
    let event = Event {
        conversation_id: "c_9f2".into(),
        seq: 5,
        ts: 1,
        body: EventBody::Message {
            from: Party {
                role: Role::Customer,
                id: "v_1a".into(),
                name: Some("Ann".into()),
            },
            text: "Hi".into(),
            client_msg_id: None,
            attachment: None,
        },
    };
    let text = ServerFrame::Event(event.clone()).to_text();
    assert_eq!(
        event.frame_text(),
        text,
        "the borrowed form is the same frame"
    );
    let value: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["type"], "event");
    assert_eq!(value["kind"], "message");
    assert_eq!(value["seq"], 5);
    assert_eq!(value["from"]["name"], "Ann");
}

#[test]
fn customers_never_see_notes_or_transfer_notes() {
    let note = Event {
        conversation_id: "c".into(),
        seq: 2,
        ts: 1,
        body: EventBody::Note {
            from: Party {
                role: Role::Agent,
                id: "alice".into(),
                name: None,
            },
            text: "internal".into(),
        },
    };
    assert!(note.clone().visible_to(Audience::Customer).is_none());
    let transfer = Event {
        body: EventBody::Transfer {
            from_agent: "alice".into(),
            to_agent: Some("bob".into()),
            to_topic: None,
            note: Some("secret".into()),
        },
        ..note
    };
    let seen = transfer.visible_to(Audience::Customer).expect("visible");
    assert!(matches!(seen.body, EventBody::Transfer { note: None, .. }));
}

/// Issue 19: `echo` is optional (on by default) for both roles, and a message ack
/// carries `ts` only when one was set.
#[test]
fn hello_echo_defaults_on_and_ack_ts_is_optional() {
    let hello = |text: &str| match Inbound::parse(text).map(|inbound| inbound.frame) {
        Ok(ClientFrame::Hello(hello)) => hello,
        other => panic!("not a hello: {other:?}"),
    };
    assert!(hello(r#"{"type":"hello","role":"customer"}"#).echo);
    assert!(!hello(r#"{"type":"hello","role":"agent","token":"t","echo":false}"#).echo);
    assert!(hello(r#"{"type":"hello","role":"customer","echo":true}"#).echo);
    assert!(Inbound::parse(r#"{"type":"hello","role":"customer","echo":"no"}"#).is_err());

    let ack = |ts: Option<u64>| {
        let body = AckBody {
            seq: Some(5),
            ts,
            ..AckBody::default()
        };
        ServerFrame::ack("r1".into(), body).to_text().to_string()
    };
    assert_eq!(ack(None), r#"{"type":"ack","req":"r1","seq":5}"#);
    assert_eq!(
        ack(Some(1_763_790_000_123)),
        r#"{"type":"ack","req":"r1","seq":5,"ts":1763790000123}"#
    );
}
