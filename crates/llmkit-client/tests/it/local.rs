//! The local backend answers like an OpenAI server (needs the model files; skipped with a
//! message when absent, failed under `LLMKIT_REQUIRE_MODELS=1`).

use futures::StreamExt;
use llmkit_client::{Backend, LocalBackend};
use llmkit_local::{Embedder, LoadOptions, LocalModel};
use llmkit_testkit::fixtures::require_model;
use llmkit_types::{
    ChatCompletionRequest, ChatMessage, ChunkAccumulator, CompletionRequest, EmbeddingRequest,
    EmbeddingVector, FinishReason,
};

const CHAT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const EMBED_MODEL: &str = "all-MiniLM-L6-v2";

/// The backend, or `None` (after a `SKIP` line) when the model files are absent.
#[track_caller]
fn backend() -> Option<Backend> {
    let chat = require_model(CHAT_MODEL)?;
    let embed = require_model(EMBED_MODEL)?;
    let model = LocalModel::load(&chat, &LoadOptions::default()).expect("chat model loads");
    let embedder = Embedder::load(&embed).expect("embedder loads");
    Some(Backend::Local(LocalBackend::new(
        Some(model),
        Some(embedder),
    )))
}

fn request() -> ChatCompletionRequest {
    ChatCompletionRequest::new(
        "local",
        vec![ChatMessage::user(
            "What is the capital of France? Answer in one sentence.",
        )],
    )
    .temperature(0.0)
    .max_tokens(24)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_stream_agree_at_temperature_zero() {
    let Some(backend) = backend() else { return };
    assert_eq!(backend.kind(), "local");
    assert!(backend.name().starts_with("local:"), "{}", backend.name());

    let resp = backend.chat(&request()).await.expect("chat");
    let text = resp.body.text().to_string();
    assert!(!text.trim().is_empty());
    assert!(
        resp.body.id.starts_with("chatcmpl-local-"),
        "{}",
        resp.body.id
    );
    assert_eq!(resp.body.object, "chat.completion");
    let usage = resp.body.usage.clone().expect("usage");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert!(matches!(
        resp.body.finish_reason(),
        Some(FinishReason::Stop | FinishReason::Length)
    ));

    let mut stream = backend.chat_stream(&request()).await.expect("stream");
    let mut acc = ChunkAccumulator::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.object, "chat.completion.chunk");
        acc.push(&chunk);
        chunks += 1;
    }
    assert!(stream.meta().ttft.is_some());
    let streamed = acc.finish();
    assert!(chunks > 3, "only {chunks} chunks");
    assert_eq!(streamed.text(), text, "stream and non-stream differ");
    assert_eq!(streamed.usage, Some(usage));
    assert_eq!(streamed.finish_reason(), resp.body.finish_reason());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_embeddings_models_and_dropping_a_stream() {
    let Some(backend) = backend() else { return };

    let mut req = CompletionRequest::new("local", "The capital of France is");
    req.max_tokens = Some(8);
    req.temperature = Some(0.0);
    let resp = backend.completions(&req).await.expect("completion");
    assert_eq!(resp.body.choices.len(), 1);
    assert!(
        resp.body
            .usage
            .as_ref()
            .is_some_and(|u| u.completion_tokens > 0)
    );

    let mut emb = EmbeddingRequest::new("local:minilm", vec!["a cat".into(), "a dog".into()]);
    let resp = backend.embeddings(&emb).await.expect("embeddings");
    assert_eq!(resp.body.data.len(), 2);
    assert!(matches!(&resp.body.data[0].embedding, EmbeddingVector::Float(v) if v.len() == 384));
    assert!(resp.body.usage.prompt_tokens > 0);
    emb.encoding_format = Some("base64".into());
    emb.dimensions = Some(128);
    let resp = backend.embeddings(&emb).await.expect("base64 embeddings");
    // 128 floats are 512 bytes: ceil(512 / 3) * 4 = 684 base64 characters.
    assert!(matches!(&resp.body.data[1].embedding, EmbeddingVector::Base64(s) if s.len() == 684));

    // The window and token counts come from the GGUF itself (template + own tokenizer).
    assert_eq!(backend.context_window(), Some(8192));
    let msgs = [
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hello there"),
    ];
    let local = backend.count_chat_tokens("local", &msgs);
    let generated = backend.chat(&request()).await.expect("chat");
    assert!(local > 4, "{local}");
    let asked = backend.count_chat_tokens("local", &request().messages);
    assert_eq!(
        Some(asked as u64),
        generated.body.usage.as_ref().map(|u| u.prompt_tokens)
    );

    let models = backend.models().await.expect("models");
    assert_eq!(models.body.data.len(), 2);

    // Dropping a stream after one chunk must not block the next request for long.
    let mut long = request();
    long.max_tokens = Some(400);
    let mut stream = backend.chat_stream(&long).await.expect("stream");
    let _ = stream.next().await;
    drop(stream);
    let started = std::time::Instant::now();
    let resp = backend
        .chat(&request().max_tokens(4))
        .await
        .expect("next chat");
    assert!(!resp.body.text().is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the dropped stream kept generating: {:?}",
        started.elapsed()
    );
}
