//! Parser properties (issue 15): arbitrary and mutated frames — random JSON of the right
//! and wrong shapes for every frame type, random bytes, truncated UTF-8 — thrown at
//! `protocol::Inbound::parse`. It never panics, and every frame whose `req` is readable
//! (a string of at most 64 characters in a JSON object) either parses with that `req` or
//! fails keeping it, so its error can be matched to the request.

#[allow(dead_code)]
#[path = "common/frames.rs"]
mod frames;

use frames::*;
use proptest::prelude::*;
use switchboard::protocol::Inbound;

/// The property every text must satisfy.
fn check(text: &str) -> Result<(), TestCaseError> {
    let expected = readable_req(text);
    match Inbound::parse(text) {
        Ok(inbound) => prop_assert_eq!(inbound.req, expected, "parsed {:?}", text),
        Err(failure) => {
            prop_assert!(
                !failure.message.is_empty(),
                "an empty reason for {:?}",
                text
            );
            prop_assert_eq!(failure.req, expected, "the req of {:?}", text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn frame_shaped_json_keeps_its_req(frame in frame_object()) {
        check(&frame.to_string())?;
    }

    #[test]
    fn plausible_frames_parse_or_fail_with_their_req(frame in plausible_frame(), req in "[a-z0-9]{1,64}") {
        let mut frame = frame;
        frame["req"] = req.clone().into();
        let text = frame.to_string();
        check(&text)?;
        if let Ok(inbound) = Inbound::parse(&text) {
            prop_assert_eq!(inbound.req.as_deref(), Some(req.as_str()));
        }
    }

    #[test]
    fn mutated_frames_never_panic(frame in prop_oneof![plausible_frame(), frame_object()], mutations in proptest::collection::vec(mutation(), 1..4)) {
        check(&mutate(&frame.to_string(), &mutations))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn any_json_never_panics(value in json_value()) {
        check(&value.to_string())?;
    }

    #[test]
    fn truncated_utf8_never_panics(text in "\\PC{1,40}", cut in any::<usize>()) {
        let frame = serde_json::json!({"type": "message", "req": "r1", "conversation_id": "c_1", "text": text}).to_string();
        let bytes = frame.as_bytes();
        let cut = cut % (bytes.len() + 1);
        check(&String::from_utf8_lossy(&bytes[..cut]))?;
    }
}
