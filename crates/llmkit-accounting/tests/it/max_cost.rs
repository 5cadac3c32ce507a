//! The accounting step over a real store: `--max-cost` refuses the request that would cross
//! it, and every settled request is one ledger row.

use std::sync::Arc;

use llmkit_accounting::{AccountingConfig, StoreAccounting};
use llmkit_client::{Accounting, ClientError, ModelCatalog, Outcome, RequestInfo};
use llmkit_store::Store;
use llmkit_types::{ChatCompletionRequest, ChatMessage, Usage};

fn request(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest::new(model, vec![ChatMessage::user("hello there")]).max_tokens(1000)
}

#[test]
fn max_cost_refuses_once_spent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let mut cfg = AccountingConfig::new(ModelCatalog::builtin());
    // gpt-4o: $10 per 1M output tokens → 1000 tokens ≈ $0.01 each.
    cfg.max_cost_usd = Some(0.025);
    let acc = StoreAccounting::new(Arc::clone(&store), cfg);
    let info = RequestInfo {
        command: "ask".into(),
        ..RequestInfo::default()
    };
    let usage = Usage::new(5, 1000);
    let mut ok = 0;
    for _ in 0..5 {
        match acc.reserve(&info, &request("gpt-4o")) {
            Ok(t) => {
                ok += 1;
                acc.record(
                    &info,
                    t,
                    &Outcome {
                        backend: "http",
                        upstream: None,
                        model: "gpt-4o",
                        usage: Some(&usage),
                        latency: std::time::Duration::from_millis(3),
                        status: 200,
                        cache_hit: false,
                        tokens_counted: false,
                    },
                );
            }
            Err(ClientError::BudgetExceeded {
                period,
                limit,
                spent,
            }) => {
                assert_eq!(period, "invocation");
                assert!(spent <= limit);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 2);
    assert!(acc.spent() <= 0.025);
    // Local models are free and never refused.
    assert!(acc.reserve(&info, &request("local:smollm2-135m")).is_ok());
    store.flush().unwrap();
    let rows = store.ledger_rows(&Default::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.cost_usd > 0.0));
}
