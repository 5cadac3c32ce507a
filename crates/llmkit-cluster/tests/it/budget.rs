//! Budgets across replicas: concurrent reservations through two pools never pass the
//! budget, settling moves reservations to spend, and a dead replica's reservation expires.

use llmkit_cluster::{LedgerEntry, PeriodLimits, Periods, PgReservation};
use llmkit_store::LedgerRow;

use crate::support::{now, pg, pg_url, unique};

fn periods() -> Periods {
    Periods {
        day: "2026-12-06".into(),
        month: "2026-12".into(),
    }
}

#[tokio::test]
async fn concurrent_reservations_on_two_replicas_never_pass_the_budget() {
    let Some(url) = pg_url() else { return };
    let (a, b) = (pg(&url).await, pg(&url).await);
    let scope = unique("budget");
    let limits = PeriodLimits {
        daily_usd: Some(1.0),
        monthly_usd: Some(5.0),
    };
    // 32 concurrent requests, each reserving a tenth of the budget, over two replicas.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (scope, limits) = (scope.clone(), limits);
        tasks.push(tokio::spawn(async move {
            store
                .reserve(&scope, &periods(), &limits, 0.1, now())
                .await
                .unwrap()
        }));
    }
    let mut granted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            PgReservation::Granted(id) => granted.push(id),
            PgReservation::Refused { period, limit, .. } => {
                assert_eq!((period, limit), ("daily", 1.0));
                refused += 1;
            }
        }
    }
    // 10 × 0.1 may round to just above 1.0 in floating point: 9 or 10 fit, never 11.
    assert!(
        (9..=10).contains(&granted.len()),
        "{} granted",
        granted.len()
    );
    assert_eq!(granted.len() + refused, 32);
    let [(spent, reserved), _] = a.spend(&scope, &periods()).await.unwrap();
    assert_eq!(spent, 0.0);
    assert!((reserved - 0.1 * granted.len() as f64).abs() < 1e-9);

    // Settling with the real cost (half the estimate) frees the rest for new requests.
    let entries: Vec<LedgerEntry> = granted
        .iter()
        .map(|id| LedgerEntry {
            request_id: unique("req"),
            scope: Some(scope.clone()),
            periods: periods(),
            reservation: Some(*id),
            row: LedgerRow {
                ts: now(),
                model: "gpt-4o-mini".into(),
                backend: "openai".into(),
                command: "serve".into(),
                cost_usd: 0.05,
                status: 200,
                ..Default::default()
            },
        })
        .collect();
    assert_eq!(b.settle_batch(&entries).await.unwrap(), granted.len());
    let [(spent, reserved), (month_spent, _)] = a.spend(&scope, &periods()).await.unwrap();
    assert!((spent - 0.05 * granted.len() as f64).abs() < 1e-9);
    assert!(reserved.abs() < 1e-9, "{reserved}");
    assert!((month_spent - spent).abs() < 1e-9);
    assert!(matches!(
        a.reserve(&scope, &periods(), &limits, 0.4, now())
            .await
            .unwrap(),
        PgReservation::Granted(_)
    ));
}

#[tokio::test]
async fn a_dead_replicas_reservation_expires_and_release_frees_at_once() {
    let Some(url) = pg_url() else { return };
    let store = pg(&url).await;
    let scope = unique("stale");
    let limits = PeriodLimits {
        daily_usd: Some(1.0),
        monthly_usd: None,
    };
    let t = now();
    // Reserved 11 minutes ago by a replica that never settled it.
    let PgReservation::Granted(_) = store
        .reserve(&scope, &periods(), &limits, 0.9, t - 660.0)
        .await
        .unwrap()
    else {
        panic!("first reservation refused")
    };
    // Now it no longer counts.
    let PgReservation::Granted(id) = store
        .reserve(&scope, &periods(), &limits, 0.9, t)
        .await
        .unwrap()
    else {
        panic!("a stale reservation still counted")
    };
    assert!(matches!(
        store
            .reserve(&scope, &periods(), &limits, 0.2, t)
            .await
            .unwrap(),
        PgReservation::Refused { .. }
    ));
    store.release(id).await.unwrap();
    assert!(matches!(
        store
            .reserve(&scope, &periods(), &limits, 0.2, t)
            .await
            .unwrap(),
        PgReservation::Granted(_)
    ));
}
