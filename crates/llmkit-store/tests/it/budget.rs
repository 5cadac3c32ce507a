//! Budgets under concurrency: eight writers with their own connections (as eight processes
//! would have) never overshoot the limit by more than one request.

use std::sync::{Arc, Barrier};

use llmkit_store::{Budgets, LedgerRow, Reservation, Store, now_secs};

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
