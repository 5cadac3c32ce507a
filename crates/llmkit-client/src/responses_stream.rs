//! `ResponseStream`: a streamed Responses API call as typed events, with the stall timeout and
//! transparent retry before the first content event, as `ChatStream` does for chat.
//!
//! The opening status events (`response.created`, `response.in_progress`) are held back until
//! the first content event, so a retry early in the stream never shows two beginnings. The
//! stream ends after a terminal event (`response.completed`, `.failed`, `.incomplete`) or a
//! `data: [DONE]` some compatible servers add; an `error` event ends it with an error.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use llmkit_types::{
    ApiErrorBody, ChunkTranslator, ErrorResponse, ResponseAccumulator, ResponseObject,
    ResponseStreamEvent,
};
use serde_json::Value;

use crate::error::{ClientError, truncate_raw};
use crate::http::{BodyStream, HttpClient, ResponseMeta, body_error, exhausted};
use crate::sse::{SseEvent, SseParser};
use crate::stream::{ChatStream, StreamEvent};

/// A stream of Responses API events. Yields at most one error, then ends. Dropping it closes
/// the connection (a response in background mode keeps running: cancel it by id).
pub struct ResponseStream {
    inner: Pin<Box<dyn Stream<Item = Item> + Send>>,
    meta: ResponseMeta,
}

/// What the inner stream produces.
enum Item {
    Meta(ResponseMeta),
    Event(Box<ResponseStreamEvent>),
    Error(ClientError),
}

impl ResponseStream {
    /// Metadata of the attempt being read (as [`ChatStream::meta`]).
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Reads the whole stream and folds it into the response a non-streamed call returns.
    pub async fn collect_response(mut self) -> Result<(ResponseObject, ResponseMeta), ClientError> {
        let mut acc = ResponseAccumulator::new();
        while let Some(event) = self.next().await {
            acc.push(&event?);
        }
        Ok((acc.finish(), self.meta))
    }

    /// The same answer as chat chunks (see [`ChunkTranslator`]); a `response.failed` event
    /// becomes the stream's error.
    pub(crate) fn into_chat_stream(self) -> ChatStream {
        let meta = self.meta.clone();
        let state = (self.inner, ChunkTranslator::new(), VecDeque::new());
        let inner = futures::stream::unfold(state, |(mut inner, mut tr, mut queue)| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    return Some((ev, (inner, tr, queue)));
                }
                match inner.next().await? {
                    Item::Meta(m) => queue.push_back(StreamEvent::Meta(m)),
                    Item::Error(e) => queue.push_back(StreamEvent::Error(e)),
                    Item::Event(ev) => {
                        if let ResponseStreamEvent::Failed { response, .. } = ev.as_ref() {
                            queue.push_back(StreamEvent::Error(failed_error(response, None)));
                            continue;
                        }
                        for chunk in tr.push(&ev) {
                            queue.push_back(StreamEvent::Chunk(Box::new(chunk)));
                        }
                    }
                }
            }
        });
        ChatStream::from_events(inner, meta)
    }

    pub(crate) fn from_http(state: ResponseStreamState, meta: ResponseMeta) -> Self {
        let inner = futures::stream::unfold(state, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        });
        Self {
            inner: Box::pin(inner),
            meta,
        }
    }
}

impl Stream for ResponseStream {
    type Item = Result<ResponseStreamEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Item::Meta(m))) => self.meta = m,
                Poll::Ready(Some(Item::Event(e))) => return Poll::Ready(Some(Ok(*e))),
                Poll::Ready(Some(Item::Error(e))) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The error a failed response amounts to: an API error with the response's own code and
/// message (so that the usual hints apply), never retried, since the model already ran.
pub(crate) fn failed_error(r: &ResponseObject, request_id: Option<String>) -> ClientError {
    let (code, message) = match &r.error {
        Some(e) => (e.code.clone(), e.message.clone()),
        None => (
            "server_error".to_string(),
            "the response failed".to_string(),
        ),
    };
    let message = if message.is_empty() {
        format!("response {} failed", r.id)
    } else {
        message
    };
    ClientError::Api {
        retry_after: None,
        rate_limit: None,
        status: 200,
        error: Some(ApiErrorBody {
            message,
            kind: Some("response_failed".into()),
            param: None,
            code: Some(Value::String(code)),
        }),
        request_id,
        raw: truncate_raw(&serde_json::to_string(&r.error).unwrap_or_default()),
    }
}

/// The state of a streamed Responses call across attempts.
pub(crate) struct ResponseStreamState {
    client: HttpClient,
    url: String,
    body: Bytes,
    stream: Option<BodyStream>,
    parser: SseParser,
    pending: VecDeque<Item>,
    held: Vec<ResponseStreamEvent>,
    content_started: bool,
    done: bool,
    attempt: u32,
    started: Instant,
    meta: ResponseMeta,
}

impl ResponseStreamState {
    pub(crate) fn new(
        client: HttpClient,
        url: String,
        body: Bytes,
        (stream, meta): (BodyStream, ResponseMeta),
        attempt: u32,
        started: Instant,
    ) -> Self {
        Self {
            client,
            url,
            body,
            stream: Some(stream),
            parser: SseParser::new(),
            pending: VecDeque::new(),
            held: Vec::new(),
            content_started: false,
            done: false,
            attempt,
            started,
            meta,
        }
    }

    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let stall = self.client.stall_timeout();
            let Some(stream) = self.stream.as_mut() else {
                self.done = true;
                continue;
            };
            let mut events = Vec::new();
            let mut ended = false;
            match tokio::time::timeout(stall, stream.next()).await {
                Err(_) => {
                    self.fail(ClientError::StreamStalled { after: stall }).await;
                    continue;
                }
                Ok(Some(Ok(bytes))) => self.parser.feed(&bytes, &mut events),
                Ok(Some(Err(e))) => {
                    self.fail(body_error(&e)).await;
                    continue;
                }
                Ok(None) => {
                    self.parser.finish(&mut events);
                    ended = true;
                }
            }
            if let Some(err) = self.handle_events(&events) {
                self.fail(err).await;
                continue;
            }
            if ended && !self.done {
                let err = ClientError::Stream(if self.content_started {
                    "the stream was cut off before the response completed: the answer is incomplete"
                        .into()
                } else {
                    "the stream ended before any content or a completed response".into()
                });
                self.fail(err).await;
            }
        }
    }

    /// Applies parsed events; returns the first error instead of applying later events.
    fn handle_events(&mut self, events: &[SseEvent]) -> Option<ClientError> {
        for ev in events {
            if self.done {
                break;
            }
            match interpret_event(ev, self.meta.status) {
                Interpreted::Done => self.finish_ok(),
                Interpreted::Error(mut e) => {
                    if let ClientError::Api { request_id, .. } = &mut e {
                        request_id.clone_from(&self.meta.request_id);
                    }
                    return Some(e);
                }
                Interpreted::Event(event) => {
                    let terminal = event.is_terminal();
                    self.push_event(*event);
                    if terminal {
                        self.finish_ok();
                    }
                }
            }
        }
        None
    }

    fn push_event(&mut self, event: ResponseStreamEvent) {
        if self.content_started {
            self.pending.push_back(Item::Event(Box::new(event)));
            return;
        }
        if !event.has_content() && !event.is_terminal() {
            self.held.push(event);
            return;
        }
        self.content_started = true;
        self.meta.ttft = Some(self.started.elapsed());
        self.pending.push_back(Item::Meta(self.meta.clone()));
        for held in self.held.drain(..) {
            self.pending.push_back(Item::Event(Box::new(held)));
        }
        self.pending.push_back(Item::Event(Box::new(event)));
    }

    fn finish_ok(&mut self) {
        for held in self.held.drain(..) {
            self.pending.push_back(Item::Event(Box::new(held)));
        }
        self.meta.latency = self.started.elapsed();
        self.pending.push_back(Item::Meta(self.meta.clone()));
        self.done = true;
        self.stream = None;
    }

    /// Handles a failure: retries if no content was shown yet, else ends with the error.
    async fn fail(&mut self, err: ClientError) {
        self.stream = None;
        self.parser = SseParser::new();
        if self.content_started || !err.is_retryable() {
            self.end_with(err);
            return;
        }
        if self.attempt > self.client.max_retries() {
            let e = exhausted(err, self.attempt);
            self.end_with(e);
            return;
        }
        tokio::time::sleep(self.client.backoff_for(self.attempt - 1)).await;
        self.held.clear();
        match self
            .client
            .open_stream(&self.url, &self.body, &mut self.attempt, self.started)
            .await
        {
            Ok((stream, meta)) => {
                self.stream = Some(stream);
                self.meta = meta;
                self.pending.push_back(Item::Meta(self.meta.clone()));
            }
            Err(e) => self.end_with(e),
        }
    }

    fn end_with(&mut self, err: ClientError) {
        self.pending.push_back(Item::Error(err));
        self.done = true;
        self.stream = None;
    }
}

/// What one SSE event of a Responses stream means.
enum Interpreted {
    Event(Box<ResponseStreamEvent>),
    Done,
    Error(ClientError),
}

fn interpret_event(ev: &SseEvent, status: u16) -> Interpreted {
    let data = ev.data.trim();
    if data == "[DONE]" {
        return Interpreted::Done;
    }
    let api_error = |error: Option<ApiErrorBody>| {
        Interpreted::Error(ClientError::Api {
            retry_after: None,
            rate_limit: None,
            status,
            error,
            request_id: None,
            raw: truncate_raw(data),
        })
    };
    let value: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(_) if ev.event.as_deref() == Some("error") => return api_error(None),
        Err(source) => {
            return Interpreted::Error(ClientError::Decode {
                what: "a stream event".into(),
                raw: truncate_raw(data),
                source,
            });
        }
    };
    // `{"error": {...}}` without a type: a proxy's or compatible server's error object.
    if value.get("type").is_none() && value.get("error").is_some() {
        return api_error(ErrorResponse::parse_lenient(data.as_bytes()));
    }
    match serde_json::from_value::<ResponseStreamEvent>(value) {
        Ok(ResponseStreamEvent::Error {
            code,
            message,
            param,
            ..
        }) => api_error(Some(ApiErrorBody {
            message,
            kind: None,
            param: param.map(Value::String),
            code: code.map(Value::String),
        })),
        Ok(event) => Interpreted::Event(Box::new(event)),
        Err(source) => Interpreted::Error(ClientError::Decode {
            what: "a stream event".into(),
            raw: truncate_raw(data),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str, event: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn interprets_events_errors_and_done() {
        assert!(matches!(
            interpret_event(&ev("[DONE]", None), 200),
            Interpreted::Done
        ));
        let e = interpret_event(
            &ev(
                r#"{"type":"error","code":"server_error","message":"boom","param":null}"#,
                Some("error"),
            ),
            200,
        );
        assert!(
            matches!(e, Interpreted::Error(ClientError::Api { ref error, .. }) if error.as_ref().unwrap().message == "boom")
        );
        let e = interpret_event(&ev(r#"{"error":{"message":"nope"}}"#, None), 200);
        assert!(matches!(e, Interpreted::Error(ClientError::Api { .. })));
        let e = interpret_event(&ev("{broken", None), 200);
        assert!(matches!(e, Interpreted::Error(ClientError::Decode { .. })));
        let e = interpret_event(&ev(r#"{"type":"response.new_thing","x":1}"#, None), 200);
        assert!(
            matches!(e, Interpreted::Event(ref b) if matches!(**b, ResponseStreamEvent::Other(_)))
        );
    }

    #[test]
    fn a_failed_response_keeps_its_code() {
        let r: ResponseObject = serde_json::from_value(serde_json::json!({
            "id": "resp_1", "status": "failed",
            "error": {"code": "rate_limit_exceeded", "message": "slow down"}
        }))
        .unwrap();
        let e = failed_error(&r, Some("req_1".into()));
        let ClientError::Api { error, .. } = &e else {
            panic!("{e:?}")
        };
        let body = error.as_ref().unwrap();
        assert_eq!(body.code_str().as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(body.message, "slow down");
    }
}
