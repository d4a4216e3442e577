//! A page of a conversation's history as `history` answers it, spliced from the events'
//! stored forms as the live path's `event` frames are: a reconnecting client's catch-up
//! and the history a console opens with are read back without parsing each stored event
//! into its type and serializing it again. Only an event whose customer view differs
//! from the stored one (a transfer's note taken out) goes through its type.

use serde::{de::value::StrDeserializer, Deserialize};

use super::{
    event::{self, Audience, Event, StoredEvent},
    FrameText, Role,
};

/// One event of a page: the JSON object `Event` serializes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJson(String);

impl EventJson {
    /// The event's JSON, spliced from its stored form: the same text as serializing the
    /// parsed event. `None` when the stored form does not start with its `ts`.
    fn spliced(conversation_id: &str, seq: u64, stored: &str) -> Option<EventJson> {
        event::splice("{", conversation_id, seq, stored).map(EventJson)
    }

    /// The event's JSON, serialized from its type.
    fn of(event: &Event) -> Option<EventJson> {
        serde_json::to_string(event).ok().map(EventJson)
    }

    /// Bytes on the wire.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Appends `events` to `text` as a JSON array.
    pub fn push_array(text: &mut String, events: &[EventJson]) {
        text.reserve(2 + events.iter().map(|e| e.len() + 1).sum::<usize>());
        text.push('[');
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&event.0);
        }
        text.push(']');
    }
}

/// What `audience` sees of a stored event, told from the stored form alone where it can
/// be: the kind follows the `ts` at the start of every stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredView {
    /// As stored.
    Same,
    /// Not at all.
    Hidden,
    /// Through its type: the view differs from the stored form, or the form is not the
    /// one expected.
    Parse,
}

impl StoredView {
    fn of(stored: &str, audience: Audience) -> StoredView {
        if audience == Audience::Staff {
            return StoredView::Same;
        }
        match stored_kind(stored) {
            Some("message" | "joined" | "left" | "closed") => StoredView::Same,
            Some("note" | "rating") => StoredView::Hidden,
            _ => StoredView::Parse,
        }
    }
}

/// What follows the kind's opening quote in a stored form
/// `{"ts":<digits>,"kind":"<kind>",…}`: the kind and the fields after it.
fn from_kind(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix("{\"ts\":")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.strip_prefix(",\"kind\":\"")
}

/// The `kind` of a stored form `{"ts":<digits>,"kind":"<kind>",…}`.
fn stored_kind(stored: &str) -> Option<&str> {
    from_kind(stored)?.split_once('"').map(|(kind, _)| kind)
}

impl StoredEvent {
    /// The author's role when the event stored as `stored` is a message, read from the
    /// stored form's start (`{"ts":<digits>,"kind":"message","from":{"role":"<role>"`, the
    /// order every stored message is written in) without parsing the rest. `None` for
    /// any other event, and for a form not laid out so.
    pub fn message_author(stored: &str) -> Option<Role> {
        let rest = from_kind(stored)?.strip_prefix("message\",\"from\":{\"role\":\"")?;
        let (role, _) = rest.split_once('"')?;
        Role::deserialize(StrDeserializer::<serde::de::value::Error>::new(role)).ok()
    }

    /// What `audience` sees of the event stored as `stored` at `seq`, as page JSON.
    pub fn page_json(
        conversation_id: &str,
        seq: u64,
        stored: &str,
        audience: Audience,
    ) -> PageEntry {
        let view = StoredView::of(stored, audience);
        if view == StoredView::Hidden {
            return PageEntry::Hidden;
        }
        if view == StoredView::Same {
            if let Some(json) = EventJson::spliced(conversation_id, seq, stored) {
                return PageEntry::Visible(json);
            }
        }
        let Ok(parsed) = serde_json::from_str::<StoredEvent>(stored) else {
            return PageEntry::Unreadable;
        };
        match parsed
            .into_event(conversation_id, seq)
            .visible_to(audience)
            .map(|event| EventJson::of(&event))
        {
            None => PageEntry::Hidden,
            Some(Some(json)) => PageEntry::Visible(json),
            Some(None) => PageEntry::Unreadable,
        }
    }
}

/// One stored event on its way into a page.
#[derive(Debug, PartialEq, Eq)]
pub enum PageEntry {
    Visible(EventJson),
    /// Not for this audience.
    Hidden,
    /// A stored form that does not parse.
    Unreadable,
}

/// The events of a `history` answer, oldest first, and whether more follow.
#[derive(Debug, Default)]
pub struct HistoryPage {
    pub events: Vec<EventJson>,
    pub more: bool,
}

impl HistoryPage {
    /// The `ack` answering `history` request `req`: the same text as an `ack` with
    /// `events` and `more` serialized from the parsed events.
    pub fn ack_text(&self, req: &str) -> FrameText {
        let req = serde_json::to_string(req).unwrap_or_else(|_| "\"\"".into());
        let bytes: usize = self.events.iter().map(|e| e.len() + 1).sum();
        let mut text = String::with_capacity(48 + req.len() + bytes);
        text.push_str("{\"type\":\"ack\",\"req\":");
        text.push_str(&req);
        text.push_str(",\"events\":");
        EventJson::push_array(&mut text, &self.events);
        text.push_str(",\"more\":");
        text.push_str(if self.more { "true" } else { "false" });
        text.push('}');
        text.into()
    }
}
