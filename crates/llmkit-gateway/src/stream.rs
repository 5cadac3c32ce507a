//! Streamed chat answers as server-sent events.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::StreamExt;
use llmkit_client::Pipeline;
use llmkit_types::ChatCompletionRequest;

use crate::api_error::ApiError;
use crate::overhead::with_overhead;

/// A streamed answer as server-sent events: each upstream chunk as one `data:` event,
/// then `data: [DONE]`. The usage chunk is passed on only when the caller asked for it
/// (the gateway always asks upstream, for the ledger). A failure after the first byte is
/// sent as an error event, since the status line has gone already.
pub(crate) async fn stream_chat(
    pipeline: &Pipeline,
    req: ChatCompletionRequest,
    started: Instant,
) -> Result<Response, ApiError> {
    let wants_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let stream = pipeline
        .chat_stream(&req)
        .await
        .map_err(|e| ApiError::from_client(&e))?;
    let latency = stream.meta().latency;
    let events = stream
        .filter_map(move |item| {
            let event = match item {
                Ok(chunk) if !wants_usage && chunk.choices.is_empty() && chunk.usage.is_some() => {
                    None
                }
                Ok(chunk) => serde_json::to_string(&chunk).ok().map(sse),
                Err(e) => Some(sse(ApiError::from_client(&e).body().to_string())),
            };
            futures::future::ready(event.map(Ok::<Bytes, std::convert::Infallible>))
        })
        .chain(futures::stream::once(futures::future::ready(Ok(
            Bytes::from_static(b"data: [DONE]\n\n"),
        ))));
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| Response::new(Body::empty()));
    Ok(with_overhead(resp, started, latency))
}

fn sse(data: String) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}
