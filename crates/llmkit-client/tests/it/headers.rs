//! What reaches the server: auth, organization and project headers, User-Agent, Azure URLs and `api-key`.

use llmkit_client::{AzureConfig, ClientConfig, HttpClient, USER_AGENT};
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage, EmbeddingRequest};

use crate::support::{client, fast_config};

#[tokio::test]
async fn org_project_auth_and_user_agent_reach_the_server() {
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let c = client(
        fast_config(&mock.url(), 0)
            .api_key("sk-test-abcd1234")
            .organization("org-llmkit")
            .project("proj_42")
            .header("x-trace", "t1"),
    );
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")]);
    let resp = c.chat(&req).await.expect("chat");
    assert!(resp.meta.request_id.is_some(), "mock sends x-request-id");
    let logged = mock.requests();
    let h = &logged[0]["headers"];
    assert_eq!(h["openai-organization"], "org-llmkit");
    assert_eq!(h["openai-project"], "proj_42");
    assert_eq!(h["x-trace"], "t1");
    assert_eq!(h["user-agent"], USER_AGENT);
    let auth = h["authorization"].as_str().unwrap_or_default();
    assert!(
        auth.starts_with("Bearer ") && auth.ends_with("1234"),
        "{auth}"
    );
    assert_eq!(logged[0]["path"], "/v1/chat/completions");
}

#[tokio::test]
async fn azure_urls_and_api_key_header() {
    let mock = MockServer::start(MockConfig {
        api_key: Some("azure-key-9876".into()),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts");
    let cfg = ClientConfig::new(mock.url())
        .api_key("azure-key-9876")
        .azure(AzureConfig::new("2024-10-21"));
    let c = HttpClient::new(cfg).expect("client");
    let req =
        ChatCompletionRequest::new("my-gpt4o-deployment", vec![ChatMessage::user("azure hi")]);
    let resp = c.chat(&req).await.expect("azure chat");
    assert_eq!(resp.body.text(), "azure hi");
    let emb = EmbeddingRequest::new("my-embedder", vec!["a".into()]);
    c.embeddings(&emb).await.expect("azure embeddings");

    let logged = mock.requests();
    assert_eq!(
        logged[0]["path"],
        "/openai/deployments/my-gpt4o-deployment/chat/completions"
    );
    assert_eq!(logged[0]["query"], "api-version=2024-10-21");
    assert_eq!(
        logged[1]["path"],
        "/openai/deployments/my-embedder/embeddings"
    );
    let h = &logged[0]["headers"];
    assert!(h.get("authorization").is_none(), "{h}");
    assert!(
        h["api-key"].as_str().unwrap_or_default().ends_with("9876"),
        "{h}"
    );
}

#[test]
fn debug_output_never_contains_the_key() {
    let cfg = ClientConfig::new("http://localhost:1/v1").api_key("sk-never-shown-0000");
    assert!(!format!("{cfg:?}").contains("sk-never-shown"));
    let c = HttpClient::new(cfg).expect("client");
    assert!(!format!("{c:?}").contains("sk-never-shown"));
}

#[tokio::test]
async fn a_pipelines_prompt_cache_key_reaches_the_server_unless_the_request_sets_one() {
    use futures::StreamExt;
    use llmkit_client::{Backend, Pipeline, RequestInfo};
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let c = client(fast_config(&mock.url(), 0).api_key("sk-test-abcd1234"));
    let pipe = Pipeline::new(Backend::Http(c), RequestInfo::default())
        .with_prompt_cache_key("llmkit-session-s1");
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")]);
    pipe.chat(&req).await.expect("chat");
    let mut stream = pipe.chat_stream(&req).await.expect("stream");
    while stream.next().await.is_some() {}
    let mut own = req.clone();
    own.extra.insert("prompt_cache_key".into(), "mine".into());
    pipe.chat(&own).await.expect("chat");
    let keys: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r["body"]["prompt_cache_key"].clone())
        .collect();
    assert_eq!(
        keys,
        ["llmkit-session-s1", "llmkit-session-s1", "mine"].map(serde_json::Value::from)
    );
    // The caller's request is left as it was.
    assert!(!req.extra.contains_key("prompt_cache_key"));
}
