//! The tool loop against the in-process mock's `MOCK_TOOLS:` scripts: command tools run
//! with the model's arguments, results go back, parallel calls, the chain limit, malformed
//! arguments, a hanging tool, declined calls.

use std::sync::Mutex;
use std::time::Duration;

use llmkit_client::{Backend, ClientConfig, HttpClient, Pipeline, RequestInfo};
use llmkit_testkit::{MOCK_TOOLS, MockConfig, MockServer};
use llmkit_tools::{Approval, Approve, CommandSpec, ToolError, ToolLoop, Toolbox};
use llmkit_types::{ChatCompletionRequest, ChatMessage, Role};
use serde_json::json;

fn pipeline(mock: &MockServer) -> Pipeline {
    let client = HttpClient::new(
        ClientConfig::new(format!("{}/v1", mock.url()))
            .api_key("sk-test")
            .max_retries(0),
    )
    .unwrap();
    Pipeline::new(Backend::Http(client), RequestInfo::default())
}

fn tool(name: &str, command: &str, timeout_ms: u64) -> CommandSpec {
    CommandSpec {
        name: name.into(),
        description: Some(format!("the {name} tool")),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}),
        command: command.into(),
        timeout: Duration::from_millis(timeout_ms),
    }
}

async fn toolbox(tools: &[CommandSpec]) -> Toolbox {
    let mut t = Toolbox::new();
    for spec in tools {
        t.add_command(spec.clone()).await.unwrap();
    }
    t
}

fn request(script: serde_json::Value) -> ChatCompletionRequest {
    ChatCompletionRequest::new(
        "gpt-4o-mini",
        vec![ChatMessage::user(format!("{MOCK_TOOLS} {script}"))],
    )
}

fn looper(toolbox: &Toolbox, max_calls: usize) -> ToolLoop<'_> {
    ToolLoop {
        toolbox,
        max_calls,
        approval: Approval::Never,
        approver: None,
        observer: None,
    }
}

// The weather tool prints its stdin back with a prefix: the result shows what it was sent.
const WEATHER: &str = "printf 'sunny: '; cat";

#[tokio::test]
async fn parallel_calls_run_and_their_results_reach_the_model() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let tb = toolbox(&[tool("weather", WEATHER, 5000)]).await;
    let script = json!([[{"name": "weather", "arguments": {"city": "Paris"}},
                         {"name": "weather", "arguments": {"city": "Oslo"}}]]);
    let mut transcript = Vec::new();
    let done = looper(&tb, 10)
        .run(&pipeline(&mock), request(script), &mut transcript)
        .await
        .unwrap();
    assert_eq!((done.steps, done.calls), (2, 2));
    assert_eq!(
        done.result.response.text(),
        r#"tool results: sunny: {"city":"Paris"} | sunny: {"city":"Oslo"}"#
    );
    // The assistant's call turn, then one result per call, in order.
    let roles: Vec<&Role> = transcript.iter().map(|m| &m.role).collect();
    assert_eq!(roles, [&Role::Assistant, &Role::Tool, &Role::Tool]);
    // The second request carried the tool definitions and both results.
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1]["body"]["tools"][0]["function"]["name"], "weather");
    assert_eq!(reqs[1]["body"]["messages"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_chain_limit_stops_the_loop() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let tb = toolbox(&[tool("weather", WEATHER, 5000)]).await;
    let step = json!([{"name": "weather", "arguments": {"city": "Rome"}}]);
    let script = json!([step, step, step, step, step]);
    let mut transcript = Vec::new();
    let e = looper(&tb, 3)
        .run(&pipeline(&mock), request(script), &mut transcript)
        .await
        .unwrap_err();
    assert!(matches!(e, ToolError::TooManyCalls { limit: 3 }), "{e}");
    assert!(e.hint().unwrap().contains("--max-tool-calls"));
    // Three calls ran and were kept; the fourth was never made.
    assert_eq!(
        transcript.iter().filter(|m| m.role == Role::Tool).count(),
        3
    );
}

#[tokio::test]
async fn malformed_arguments_go_back_to_the_model_at_most_twice() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let tb = toolbox(&[tool("weather", WEATHER, 5000)]).await;
    // Bad JSON, then a schema mismatch, then a good call: the loop recovers.
    let script = json!([[{"name": "weather", "arguments": "{city: Paris"}],
                        [{"name": "weather", "arguments": {"town": "Paris"}}],
                        [{"name": "weather", "arguments": {"city": "Paris"}}]]);
    let mut transcript = Vec::new();
    let done = looper(&tb, 10)
        .run(&pipeline(&mock), request(script), &mut transcript)
        .await
        .unwrap();
    let text = done.result.response.text();
    assert!(text.contains("not valid JSON"), "{text}");
    assert!(text.contains("do not match its schema"), "{text}");
    assert!(text.ends_with(r#"sunny: {"city":"Paris"}"#), "{text}");
    // A third malformed call ends the loop.
    let bad = json!([{"name": "nope"}]);
    let e = looper(&tb, 10)
        .run(
            &pipeline(&mock),
            request(json!([bad, bad, bad, bad])),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ToolError::MalformedArguments { count: 3, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn a_hanging_or_failing_tool_is_an_error_result_not_a_crash() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let tb = toolbox(&[
        tool("hang", "sleep 60", 300),
        tool("fail", "echo broken >&2; exit 4", 5000),
    ])
    .await;
    let script = json!([[{"name": "hang", "arguments": {"city": "x"}},
                         {"name": "fail", "arguments": {"city": "x"}}]]);
    let started = std::time::Instant::now();
    let done = looper(&tb, 10)
        .run(&pipeline(&mock), request(script), &mut Vec::new())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = done.result.response.text();
    assert!(text.contains("error: the tool `hang` timed out"), "{text}");
    assert!(
        text.contains("error: the tool `fail` failed (exit status 4): broken"),
        "{text}"
    );
}

struct Recorder(Mutex<Vec<String>>, bool);

impl Approve for Recorder {
    fn approve(&self, tool: &str, _arguments: &str, _destructive: bool) -> bool {
        self.0.lock().unwrap().push(tool.to_string());
        self.1
    }
}

#[tokio::test]
async fn a_declined_call_is_not_run_and_the_model_is_told() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let tb = toolbox(&[tool(
        "weather",
        &format!("touch {}; cat", marker.display()),
        5000,
    )])
    .await;
    let script = json!([[{"name": "weather", "arguments": {"city": "Paris"}}]]);
    let no = Recorder(Mutex::new(Vec::new()), false);
    let l = ToolLoop {
        approval: Approval::Always,
        approver: Some(&no),
        ..looper(&tb, 10)
    };
    let done = l
        .run(&pipeline(&mock), request(script.clone()), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(*no.0.lock().unwrap(), ["weather"]);
    assert!(!marker.exists());
    assert!(done.result.response.text().contains("declined"));
    // Command tools are not destructive: `Destructive` does not ask for them.
    let yes = Recorder(Mutex::new(Vec::new()), true);
    let l = ToolLoop {
        approval: Approval::Destructive,
        approver: Some(&yes),
        ..looper(&tb, 10)
    };
    l.run(&pipeline(&mock), request(script), &mut Vec::new())
        .await
        .unwrap();
    assert!(yes.0.lock().unwrap().is_empty());
    assert!(marker.exists());
}

#[tokio::test]
async fn a_missing_command_is_refused_when_the_tool_is_added() {
    let mut tb = Toolbox::new();
    let e = tb
        .add_command(tool("x", "/no/such/program --flag", 1000))
        .await
        .unwrap_err();
    assert!(matches!(e, ToolError::Command { .. }), "{e}");
    let e = tb
        .add_command(tool("dup", "cat", 1000))
        .await
        .and(tb.add_command(tool("dup", "cat", 1000)).await)
        .unwrap_err();
    assert!(matches!(e, ToolError::Duplicate(_)), "{e}");
}
