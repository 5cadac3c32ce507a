//! The Responses API's streamed events (`response.created`, `response.output_text.delta`, ...)
//! and `ResponseAccumulator`, which folds them into the response a non-streamed call returns.
//!
//! An event type llmkit does not know, or a known one whose fields do not decode, is kept as
//! raw JSON (`ResponseStreamEvent::Other`) rather than failing the stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::responses::{
    ContentItem, ItemContent, MessageItem, ReasoningItem, ResponseItem, SummaryPart,
};
use crate::responses_object::{ResponseObject, ResponseStatus};

/// One event of a streamed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseStreamEvent {
    #[serde(rename = "response.created")]
    Created {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.queued")]
    Queued {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.completed")]
    Completed {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.failed")]
    Failed {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.incomplete")]
    Incomplete {
        response: ResponseObject,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        #[serde(default)]
        output_index: usize,
        item: ResponseItem,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        #[serde(default)]
        output_index: usize,
        item: ResponseItem,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        #[serde(default)]
        content_index: usize,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        #[serde(default)]
        content_index: usize,
        #[serde(default)]
        text: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        #[serde(default)]
        summary_index: usize,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        #[serde(default)]
        summary_index: usize,
        #[serde(default)]
        text: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        #[serde(default)]
        item_id: String,
        #[serde(default)]
        output_index: usize,
        #[serde(default)]
        arguments: String,
        #[serde(default)]
        sequence_number: u64,
    },
    /// A stream-level error (`{"type": "error", "code", "message", "param"}`).
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: String,
        #[serde(default)]
        param: Option<String>,
        #[serde(default)]
        sequence_number: u64,
    },
    /// Any other event (content parts added, web search progress, ...), kept verbatim.
    #[serde(untagged)]
    Other(Value),
}

impl ResponseStreamEvent {
    /// The event's `type` as sent.
    pub fn kind(&self) -> &str {
        match self {
            Self::Created { .. } => "response.created",
            Self::Queued { .. } => "response.queued",
            Self::InProgress { .. } => "response.in_progress",
            Self::Completed { .. } => "response.completed",
            Self::Failed { .. } => "response.failed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::RefusalDelta { .. } => "response.refusal.delta",
            Self::ReasoningSummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            Self::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::Error { .. } => "error",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Whether this event ends the stream (`response.completed`, `.failed`, `.incomplete`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed { .. } | Self::Failed { .. } | Self::Incomplete { .. }
        )
    }

    /// Whether the event carries output the user sees (text, refusal, reasoning summary,
    /// function-call arguments, an output item), as opposed to the opening status events.
    pub fn has_content(&self) -> bool {
        match self {
            Self::OutputTextDelta { delta, .. }
            | Self::RefusalDelta { delta, .. }
            | Self::ReasoningSummaryTextDelta { delta, .. }
            | Self::FunctionCallArgumentsDelta { delta, .. } => !delta.is_empty(),
            Self::OutputItemAdded { .. } | Self::OutputItemDone { .. } => true,
            _ => false,
        }
    }

    /// The response an event carries (created, in progress, and the terminal ones).
    pub fn response(&self) -> Option<&ResponseObject> {
        match self {
            Self::Created { response, .. }
            | Self::Queued { response, .. }
            | Self::InProgress { response, .. }
            | Self::Completed { response, .. }
            | Self::Failed { response, .. }
            | Self::Incomplete { response, .. } => Some(response),
            _ => None,
        }
    }
}

/// Folds stream events into a [`ResponseObject`].
///
/// The terminal event carries the whole response, which wins; the items and deltas seen on
/// the way are the fallback for a server whose terminal event leaves `output` empty, and for
/// a stream that ended early (`finish` then reports it `incomplete`).
#[derive(Debug, Default)]
pub struct ResponseAccumulator {
    base: Option<ResponseObject>,
    items: Vec<Option<ResponseItem>>,
    final_response: Option<ResponseObject>,
}

impl ResponseAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, event: &ResponseStreamEvent) {
        use ResponseStreamEvent as E;
        match event {
            E::Completed { response, .. }
            | E::Failed { response, .. }
            | E::Incomplete { response, .. } => self.final_response = Some(response.clone()),
            E::Created { response, .. }
            | E::Queued { response, .. }
            | E::InProgress { response, .. } => self.base = Some(response.clone()),
            E::OutputItemAdded {
                output_index, item, ..
            }
            | E::OutputItemDone {
                output_index, item, ..
            } => *self.slot(*output_index) = Some(item.clone()),
            E::OutputTextDelta {
                output_index,
                delta,
                ..
            } => push_text(self.slot(*output_index), delta),
            E::ReasoningSummaryTextDelta {
                output_index,
                summary_index,
                delta,
                ..
            } => push_summary(self.slot(*output_index), *summary_index, delta),
            E::FunctionCallArgumentsDelta {
                output_index,
                delta,
                ..
            } => {
                if let Some(ResponseItem::FunctionCall(c)) = self.slot(*output_index) {
                    c.arguments.push_str(delta);
                }
            }
            _ => {}
        }
    }

    /// The response: the terminal event's, with the streamed items filled in when it has none.
    pub fn finish(self) -> ResponseObject {
        let streamed: Vec<ResponseItem> = self.items.into_iter().flatten().collect();
        match self.final_response {
            Some(mut r) => {
                if r.output.is_empty() {
                    r.output = streamed;
                }
                r
            }
            None => {
                let mut r = self.base.unwrap_or_default();
                r.output = streamed;
                r.status = ResponseStatus::Incomplete;
                r
            }
        }
    }

    fn slot(&mut self, index: usize) -> &mut Option<ResponseItem> {
        // A server's index is trusted only within reason, so that a bad one cannot make the
        // accumulator allocate without bound.
        let index = index.min(self.items.len().max(1024));
        if self.items.len() <= index {
            self.items.resize(index + 1, None);
        }
        &mut self.items[index]
    }
}

fn push_text(slot: &mut Option<ResponseItem>, delta: &str) {
    let item = slot.get_or_insert_with(|| {
        ResponseItem::Message(MessageItem {
            content: ItemContent::Parts(Vec::new()),
            ..MessageItem::default()
        })
    });
    let ResponseItem::Message(m) = item else {
        return;
    };
    if let ItemContent::Text(s) = &m.content {
        let first = output_text(s.clone());
        m.content = ItemContent::Parts(vec![first]);
    }
    if let ItemContent::Parts(parts) = &mut m.content {
        match parts.last_mut() {
            Some(ContentItem::OutputText { text, .. }) => text.push_str(delta),
            _ => parts.push(output_text(delta.to_string())),
        }
    }
}

fn push_summary(slot: &mut Option<ResponseItem>, index: usize, delta: &str) {
    let item = slot.get_or_insert_with(|| ResponseItem::Reasoning(ReasoningItem::default()));
    let ResponseItem::Reasoning(r) = item else {
        return;
    };
    let index = index.min(r.summary.len());
    if r.summary.len() == index {
        r.summary.push(SummaryPart::new(""));
    }
    r.summary[index].text.push_str(delta);
}

fn output_text(text: String) -> ContentItem {
    ContentItem::OutputText {
        text,
        annotations: Vec::new(),
        logprobs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(v: Value) -> ResponseStreamEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn known_and_unknown_events_decode() {
        let e = ev(
            json!({"type": "response.output_text.delta", "item_id": "m", "output_index": 0,
                          "content_index": 0, "delta": "Hi", "sequence_number": 4, "logprobs": []}),
        );
        assert!(
            matches!(e, ResponseStreamEvent::OutputTextDelta { ref delta, .. } if delta == "Hi")
        );
        assert!(e.has_content());
        let e = ev(json!({"type": "response.web_search_call.searching", "item_id": "ws"}));
        assert!(matches!(e, ResponseStreamEvent::Other(_)));
        assert_eq!(e.kind(), "response.web_search_call.searching");
        // A known type whose fields do not decode is kept too, not an error.
        let e = ev(json!({"type": "response.output_text.delta", "delta": 5}));
        assert!(matches!(e, ResponseStreamEvent::Other(_)));
        let e =
            ev(json!({"type": "error", "code": "server_error", "message": "boom", "param": null}));
        assert!(matches!(e, ResponseStreamEvent::Error { ref message, .. } if message == "boom"));
        let e = ev(
            json!({"type": "response.completed", "response": {"id": "r", "status": "completed"}}),
        );
        assert!(e.is_terminal() && e.response().is_some());
    }

    #[test]
    fn the_accumulator_folds_deltas_when_the_final_event_is_missing() {
        let mut acc = ResponseAccumulator::new();
        for e in [
            json!({"type": "response.created", "response": {"id": "r1", "status": "in_progress", "model": "m"}}),
            json!({"type": "response.output_item.added", "output_index": 0,
                   "item": {"type": "reasoning", "id": "rs", "summary": []}}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "thin"}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "king"}),
            json!({"type": "response.output_item.added", "output_index": 1,
                   "item": {"type": "message", "role": "assistant", "content": []}}),
            json!({"type": "response.output_text.delta", "output_index": 1, "delta": "Hel"}),
            json!({"type": "response.output_text.delta", "output_index": 1, "delta": "lo"}),
            json!({"type": "response.output_item.added", "output_index": 2,
                   "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{\"a\":"}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "1}"}),
        ] {
            acc.push(&ev(e));
        }
        let r = acc.finish();
        assert_eq!(r.id, "r1");
        assert_eq!(r.status, ResponseStatus::Incomplete);
        assert_eq!(r.output_text(), "Hello");
        assert_eq!(r.reasoning_summary(), "thinking");
        assert_eq!(r.function_calls()[0].arguments, "{\"a\":1}");
    }

    #[test]
    fn the_terminal_event_wins() {
        let mut acc = ResponseAccumulator::new();
        acc.push(&ev(
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": "partial"}),
        ));
        acc.push(&ev(json!({"type": "response.completed", "response": {"id": "r", "status": "completed",
            "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "whole", "annotations": []}]}]}})));
        let r = acc.finish();
        assert_eq!(r.output_text(), "whole");
        assert_eq!(r.status, ResponseStatus::Completed);
        // A huge index does not allocate without bound.
        let mut acc = ResponseAccumulator::new();
        acc.push(&ev(json!({"type": "response.output_text.delta", "output_index": 1_000_000_000u64, "delta": "x"})));
        assert_eq!(acc.finish().output_text(), "x");
    }
}
