//! Budgets under concurrency: eight writers with their own connections (as eight processes
//! would have) never overshoot the limit by more than one request.

use std::sync::{Arc, Barrier};

use llmkit_client::{Accounting, ClientError, ModelCatalog, Outcome, RequestInfo};
use llmkit_store::{
    AccountingConfig, Budgets, LedgerRow, Reservation, Store, StoreAccounting, now_secs,
};
use llmkit_types::{ChatCompletionRequest, ChatMessage, Usage};

#[test]
fn eight_concurrent_writers_never_overshoot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    drop(Store::open(&path).unwrap());
    let budgets = Budgets {
        daily_usd: Some(1.0),
        monthly_usd: Some(5.0),
    };
    let estimate = 0.07;
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                barrier.wait();
                let mut granted = 0;
                loop {
                    match store.reserve(&budgets, estimate).unwrap() {
                        Reservation::Granted(id) => {
                            granted += 1;
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            // The actual cost is at most the estimate (it counted max_tokens).
                            let actual = estimate * (0.5 + 0.5 * f64::from((i + granted) % 2));
                            store.record(LedgerRow {
                                ts: now_secs(),
                                backend: "http".into(),
                                model: "gpt-4o".into(),
                                command: "test".into(),
                                cost_usd: actual,
                                status: 200,
                                reservation: Some(id),
                                ..LedgerRow::default()
                            });
                        }
                        Reservation::Refused {
                            period,
                            spent,
                            limit,
                        } => {
                            assert_eq!(period, "daily");
                            assert!(spent <= limit + estimate, "{spent} > {limit}");
                            break;
                        }
                    }
                }
                store.flush().unwrap();
                granted
            })
        })
        .collect();
    let granted: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let store = Store::open(&path).unwrap();
    let (today, _) = store.spent_today_and_month().unwrap();
    assert!(granted > 10, "granted {granted}");
    assert!(
        today <= 1.0 + estimate,
        "spent {today} with {granted} requests"
    );
    // A writer stops at its first refusal, which counts the other writers' outstanding
    // reservations at their estimate; those may then settle for less. So with 8 writers the
    // final spend can fall short of the limit by up to 8 estimates, never more.
    assert!(today > 1.0 - 8.0 * estimate, "stopped too early: {today}");
    // Every reservation was settled: a request that fits what is left is granted.
    let left = 5.0 - store.spent_today_and_month().unwrap().1;
    assert!(matches!(
        store
            .reserve(
                &Budgets {
                    daily_usd: None,
                    monthly_usd: Some(5.0)
                },
                left - 0.001
            )
            .unwrap(),
        Reservation::Granted(_)
    ));
}

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
                        model: "gpt-4o",
                        usage: Some(&usage),
                        latency: std::time::Duration::from_millis(3),
                        status: 200,
                        cache_hit: false,
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
