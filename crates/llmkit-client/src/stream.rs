//! `ChatStream`: streamed chat chunks with stall detection and transparent retry before the first content token.
//!
//! Chunks that carry no content (the role-only first chunk) are held back until the first
//! content chunk arrives, so that a retry after a failure early in the stream never shows the
//! consumer two beginnings.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use llmkit_types::{
    ChatCompletionChunk, ChatCompletionResponse, ChunkAccumulator, ChunkChoice, Delta,
    ErrorResponse, FunctionCallDelta, ToolCallDelta,
};

use crate::error::{ClientError, truncate_raw};
use crate::http::{BodyStream, HttpClient, ResponseMeta, body_error, exhausted};
use crate::sse::{SseEvent, SseParser, StreamItem, has_content, interpret_chat_event};

/// A stream of chat completion chunks. Ends after `[DONE]`; yields at most one error, then
/// ends. Dropping it cancels the request.
pub struct ChatStream {
    inner: Pin<Box<dyn Stream<Item = StreamEvent> + Send>>,
    meta: ResponseMeta,
}

/// What the inner stream produces: chunks, errors, and updates of the metadata.
pub(crate) enum StreamEvent {
    Meta(ResponseMeta),
    Chunk(Box<ChatCompletionChunk>),
    Error(ClientError),
}

impl ChatStream {
    /// Metadata of the attempt that is being (or was) read: request id, status, attempts,
    /// rate limits; `ttft` once the first content token arrived, `latency` once the stream
    /// ended.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Reads the whole stream and folds it into the response a non-streamed call returns.
    pub async fn collect_response(
        mut self,
    ) -> Result<(ChatCompletionResponse, ResponseMeta), ClientError> {
        let mut acc = ChunkAccumulator::new();
        while let Some(chunk) = self.next().await {
            acc.push(&chunk?);
        }
        Ok((acc.finish(), self.meta))
    }

    pub(crate) fn from_events(
        inner: impl Stream<Item = StreamEvent> + Send + 'static,
        meta: ResponseMeta,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            meta,
        }
    }

    /// Puts a chunk already read from this stream back in front of it.
    pub(crate) fn prepend(self, chunk: ChatCompletionChunk) -> Self {
        let first = futures::stream::once(std::future::ready(StreamEvent::Chunk(Box::new(chunk))));
        Self::from_events(first.chain(self.inner), self.meta)
    }

    /// Keeps `hold` alive until the stream is dropped (a pool's in-flight count).
    pub(crate) fn holding(self, hold: impl Send + 'static) -> Self {
        let inner = self.inner.map(move |ev| {
            let _ = &hold;
            ev
        });
        Self::from_events(inner, self.meta)
    }

    pub(crate) fn from_http(state: HttpStreamState, meta: ResponseMeta) -> Self {
        let inner = futures::stream::unfold(state, |mut st| async move {
            let ev = st.next_event().await?;
            Some((ev, st))
        });
        Self::from_events(inner, meta)
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatCompletionChunk, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(StreamEvent::Meta(m))) => self.meta = m,
                Poll::Ready(Some(StreamEvent::Chunk(c))) => return Poll::Ready(Some(Ok(*c))),
                Poll::Ready(Some(StreamEvent::Error(e))) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The state of a streamed HTTP chat call across attempts.
pub(crate) struct HttpStreamState {
    client: HttpClient,
    url: String,
    body: Bytes,
    stream: Option<BodyStream>,
    parser: SseParser,
    pending: VecDeque<StreamEvent>,
    held: Vec<ChatCompletionChunk>,
    content_started: bool,
    done: bool,
    attempt: u32,
    started: Instant,
    meta: ResponseMeta,
}

impl HttpStreamState {
    pub(crate) fn new(
        client: HttpClient,
        url: String,
        body: Bytes,
        stream: BodyStream,
        meta: ResponseMeta,
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

    async fn next_event(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
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
                    "the stream was cut off before [DONE]: the answer is incomplete".into()
                } else {
                    "the stream ended before any content or [DONE]".into()
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
            match interpret_chat_event(ev, self.meta.status) {
                StreamItem::Done => self.finish_ok(),
                StreamItem::Error(mut e) => {
                    if let ClientError::Api { request_id, .. } = &mut e {
                        request_id.clone_from(&self.meta.request_id);
                    }
                    return Some(e);
                }
                StreamItem::Chunk(chunk) => self.push_chunk(*chunk),
            }
        }
        None
    }

    fn push_chunk(&mut self, chunk: ChatCompletionChunk) {
        if self.content_started {
            self.pending.push_back(StreamEvent::Chunk(Box::new(chunk)));
            return;
        }
        if !has_content(&chunk) {
            self.held.push(chunk);
            return;
        }
        self.content_started = true;
        self.meta.ttft = Some(self.started.elapsed());
        self.pending.push_back(StreamEvent::Meta(self.meta.clone()));
        for held in self.held.drain(..) {
            self.pending.push_back(StreamEvent::Chunk(Box::new(held)));
        }
        self.pending.push_back(StreamEvent::Chunk(Box::new(chunk)));
    }

    fn finish_ok(&mut self) {
        for held in self.held.drain(..) {
            self.pending.push_back(StreamEvent::Chunk(Box::new(held)));
        }
        self.meta.latency = self.started.elapsed();
        self.pending.push_back(StreamEvent::Meta(self.meta.clone()));
        self.done = true;
        // Dropping the body here ends the exchange at once.
        self.stream = None;
    }

    /// Handles a failure: retries if no content was shown yet, else ends with the error.
    async fn fail(&mut self, err: ClientError) {
        self.stream = None;
        self.parser = SseParser::new();
        let max = self.client.max_retries();
        if self.content_started || !err.is_retryable() {
            self.end_with(err);
            return;
        }
        if self.attempt > max {
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
                self.pending.push_back(StreamEvent::Meta(self.meta.clone()));
            }
            Err(e) => self.end_with(e),
        }
    }

    fn end_with(&mut self, err: ClientError) {
        self.pending.push_back(StreamEvent::Error(err));
        self.done = true;
        self.stream = None;
    }
}

/// Turns a JSON body sent in answer to a streamed request into the SSE text of the same
/// answer, or the error it carries.
pub(crate) fn json_body_as_sse(bytes: &[u8]) -> Result<String, ClientError> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes)
        && map.contains_key("error")
        && !map.contains_key("choices")
    {
        return Err(ClientError::Api {
            retry_after: None,
            rate_limit: None,
            status: 200,
            error: ErrorResponse::parse_lenient(bytes),
            request_id: None,
            raw: truncate_raw(&String::from_utf8_lossy(bytes)),
        });
    }
    let resp: ChatCompletionResponse =
        serde_json::from_slice(bytes).map_err(|source| ClientError::Decode {
            what: "the chat completion".into(),
            raw: truncate_raw(&String::from_utf8_lossy(bytes)),
            source,
        })?;
    let mut out = String::new();
    for chunk in response_to_chunks(&resp) {
        if let Ok(json) = serde_json::to_string(&chunk) {
            out.push_str("data: ");
            out.push_str(&json);
            out.push_str("\n\n");
        }
    }
    out.push_str("data: [DONE]\n\n");
    Ok(out)
}

/// The chunks a streamed call would have produced for `resp`: one per choice, then usage.
pub(crate) fn response_to_chunks(resp: &ChatCompletionResponse) -> Vec<ChatCompletionChunk> {
    let base = |choices: Vec<ChunkChoice>| ChatCompletionChunk {
        id: resp.id.clone(),
        object: "chat.completion.chunk".into(),
        created: resp.created,
        model: resp.model.clone(),
        choices,
        usage: None,
        system_fingerprint: resp.system_fingerprint.clone(),
        service_tier: resp.service_tier.clone(),
        extra: Default::default(),
    };
    let mut out = Vec::new();
    for c in &resp.choices {
        let tool_calls = c.message.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, tc)| ToolCallDelta {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    id: Some(tc.id.clone()),
                    kind: Some(tc.kind.clone()),
                    function: Some(FunctionCallDelta {
                        name: Some(tc.function.name.clone()),
                        arguments: Some(tc.function.arguments.clone()),
                    }),
                })
                .collect()
        });
        out.push(base(vec![ChunkChoice {
            index: c.index,
            delta: Delta {
                role: Some(c.message.role.clone()),
                content: c.message.content.clone(),
                refusal: c.message.refusal.clone(),
                tool_calls,
                extra: c.message.extra.clone(),
            },
            finish_reason: c.finish_reason.clone(),
            logprobs: c.logprobs.clone(),
        }]));
    }
    if resp.usage.is_some() {
        let mut last = base(Vec::new());
        last.usage.clone_from(&resp.usage);
        out.push(last);
    }
    out
}
