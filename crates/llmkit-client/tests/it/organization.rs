//! The organisation reports against the mock: every page followed, totals equal to what was
//! served, and every query the mock received and every page it answered valid under
//! OpenAI's spec (as vendored in `llmkit-types/tests/fixtures`).

use llmkit_client::{ClientError, HttpClient};
use llmkit_testkit::{MockConfig, MockServer, OrgConfig};
use llmkit_types::{ChatCompletionRequest, ChatMessage, DAY_SECS, UsageQuery};
use serde_json::Value;

use crate::responses_contract::{spec, validate};
use crate::support::{client, fast_config};

const ADMIN: &str = "sk-admin-test-key-0000";
const KEY: &str = "sk-test-key-0000";

async fn mock() -> MockServer {
    MockServer::start(MockConfig {
        api_key: Some(KEY.into()),
        org: OrgConfig {
            admin_key: Some(ADMIN.into()),
            ..OrgConfig::default()
        },
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

fn today() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now / DAY_SECS * DAY_SECS
}

/// Sends chats and returns the (input, output) tokens they used.
async fn chat(api: &HttpClient, model: &str, n: usize) -> (u64, u64) {
    let mut used = (0, 0);
    for i in 0..n {
        let req = ChatCompletionRequest::new(model, vec![ChatMessage::user(format!("hi {i}"))]);
        let usage = api.chat(&req).await.unwrap().body.usage.unwrap();
        used.0 += usage.prompt_tokens;
        used.1 += usage.completion_tokens;
    }
    used
}

#[tokio::test]
async fn reports_follow_every_page_and_add_up_to_what_was_served() {
    let mock = mock().await;
    let api = client(fast_config(&mock.url(), 0).api_key(KEY));
    let admin = client(fast_config(&mock.url(), 0).api_key(ADMIN));
    let (mini_in, mini_out) = chat(&api, "gpt-4o-mini", 3).await;
    chat(&api, "gpt-4o", 1).await;

    // Five days, two buckets a page: three pages.
    let start = today() - 4 * DAY_SECS;
    let mut usage_q = UsageQuery::daily(start, today() + DAY_SECS, "model");
    usage_q.limit = Some(2);
    let buckets = admin.usage_completions(&usage_q).await.unwrap();
    assert_eq!(buckets.len(), 5);
    assert!(buckets[..4].iter().all(|b| b.results.is_empty()));
    let mini = buckets[4]
        .results
        .iter()
        .find(|r| r.model.as_deref() == Some("gpt-4o-mini"))
        .unwrap();
    assert_eq!((mini.input_tokens, mini.output_tokens), (mini_in, mini_out));
    assert_eq!(mini.num_model_requests, 3);
    assert_eq!(buckets[4].results.len(), 2);

    let mut costs_q = UsageQuery::daily(start, today() + DAY_SECS, "line_item");
    costs_q.limit = Some(2);
    let costs = admin.costs(&costs_q).await.unwrap();
    assert_eq!(costs.len(), 5);
    let mini_cost: f64 = costs[4]
        .results
        .iter()
        .filter(|r| r.line_item_model() == Some("gpt-4o-mini"))
        .map(|r| r.amount.value)
        .sum();
    let expected = (mini_in as f64 * 0.15 + mini_out as f64 * 0.60) / 1e6;
    assert!(
        (mini_cost - expected).abs() < 1e-12,
        "{mini_cost} vs {expected}"
    );

    // Every query llmkit sent names only the spec's parameters, with values it allows, and
    // every page the mock answers for them is a valid `UsageResponse`.
    let org: Vec<Value> = mock
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/organization/"))
        .collect();
    assert_eq!(org.len(), 6, "three pages of each report");
    for r in &org {
        let path = r["path"].as_str().unwrap().trim_start_matches("/v1");
        let query = r["query"].as_str().unwrap();
        check_query(path, query);
        let page = admin
            .get_json(&format!("{}?{query}", path.trim_start_matches('/')))
            .await
            .unwrap()
            .body;
        let errors = validate("UsageResponse", &page);
        assert!(errors.is_empty(), "{path}?{query}: {errors:?}\n{page:#}");
    }
}

#[tokio::test]
async fn the_reports_take_the_admin_key_and_not_the_api_key() {
    let mock = mock().await;
    let api = client(fast_config(&mock.url(), 0).api_key(KEY));
    let q = UsageQuery::daily(today(), today() + DAY_SECS, "model");
    let err = api.usage_completions(&q).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Api { status: 401, .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "the key leaks: {shown}");
    let admin = client(fast_config(&mock.url(), 0).api_key(ADMIN));
    assert!(admin.usage_completions(&q).await.is_ok());
}

/// Panics unless every `name=value` of `query` is a parameter of `GET {path}` in the spec
/// that its value fits, and the required ones are all there.
fn check_query(path: &str, query: &str) {
    let params = spec()["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path} is not in the vendored spec"));
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    for p in params.iter().filter(|p| p["required"] == true) {
        assert!(
            pairs.iter().any(|(n, _)| p["name"] == n.as_str()),
            "GET {path}?{query} lacks {}",
            p["name"]
        );
    }
    for (name, value) in &pairs {
        let param = params
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("`{name}` is not a parameter of GET {path}"));
        let mut schema = &param["schema"];
        if schema["type"] == "array" {
            schema = &schema["items"];
        }
        if schema["type"] == "integer" {
            assert!(value.parse::<i64>().is_ok(), "{name}={value}");
        }
        if let Some(allowed) = schema["enum"].as_array() {
            assert!(
                allowed.iter().any(|a| a == value.as_str()),
                "{name}={value} is not one of {allowed:?}"
            );
        }
    }
}
