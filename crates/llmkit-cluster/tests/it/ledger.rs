//! The ledger in PostgreSQL: idempotent batched inserts, the rollup behind `usage`, and
//! the writer's spool while PostgreSQL is down (no row lost, none counted twice).

use std::time::{Duration, Instant};

use llmkit_cluster::{LedgerEntry, LedgerWriter, Periods, Spool, UsageQuery, UsageTotal};
use llmkit_store::LedgerRow;

use crate::support::{now, pg, pg_url, unique};

fn entry(scope: &str, model: &str, tokens: u64) -> LedgerEntry {
    LedgerEntry {
        request_id: unique("req"),
        scope: Some(scope.to_string()),
        periods: Periods {
            day: "2026-12-06".into(),
            month: "2026-12".into(),
        },
        reservation: None,
        row: LedgerRow {
            ts: now(),
            backend: "openai".into(),
            model: model.into(),
            command: "serve".into(),
            prompt_tokens: tokens,
            completion_tokens: 2 * tokens,
            cost_usd: 0.001,
            status: 200,
            ..Default::default()
        },
    }
}

async fn total(store: &llmkit_cluster::PgStore, scope: &str) -> (u64, u64) {
    let rows = store
        .usage(&UsageQuery {
            scope: Some(scope.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    rows.first()
        .map_or((0, 0), |r| (r.requests, r.prompt_tokens))
}

#[tokio::test]
async fn a_replayed_batch_is_counted_once_and_usage_groups() {
    let Some(url) = pg_url() else { return };
    let store = pg(&url).await;
    let scope = unique("ledger");
    let mut batch: Vec<_> = (0..300).map(|i| entry(&scope, "gpt-4o-mini", i)).collect();
    batch.extend((0..5).map(|_| entry(&scope, "gpt-4o", 10)));
    // Some rows name the upstream that served them (the gateway's routes).
    for (i, e) in batch.iter_mut().enumerate().take(100) {
        e.row.upstream = Some(if i % 2 == 0 { "azure" } else { "openai" }.into());
    }
    assert_eq!(store.settle_batch(&batch).await.unwrap(), 305);
    assert_eq!(
        store.settle_batch(&batch).await.unwrap(),
        0,
        "a replay inserts nothing"
    );
    assert_eq!(
        total(&store, &scope).await,
        (305, (0..300).sum::<u64>() + 50)
    );
    let by_model = store
        .usage(&UsageQuery {
            scope: Some(scope.clone()),
            group: UsageTotal::Model,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_model
        .iter()
        .map(|r| (r.key.as_str(), r.requests))
        .collect();
    assert_eq!(names, [("gpt-4o", 5), ("gpt-4o-mini", 300)]);
    let by_upstream = store
        .usage(&UsageQuery {
            scope: Some(scope.clone()),
            group: UsageTotal::Upstream,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_upstream
        .iter()
        .map(|r| (r.key.as_str(), r.requests))
        .collect();
    assert_eq!(names, [("-", 205), ("azure", 50), ("openai", 50)]);
    let later = store
        .usage(&UsageQuery {
            scope: Some(scope.clone()),
            since_day: Some("2026-12-07".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(later.is_empty());
}

#[tokio::test]
async fn rows_written_while_postgres_is_down_are_spooled_and_replayed() {
    let Some(url) = pg_url() else { return };
    let proxy = llmkit_testkit::TcpProxy::start(llmkit_testkit::host_port(&url).unwrap())
        .await
        .unwrap();
    let store = pg(&proxy.via(&url)).await;
    let direct = pg(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("ledger.spool"));
    let writer = LedgerWriter::spawn(store, spool.clone(), Duration::from_millis(200));
    let scope = unique("spool");

    for _ in 0..50 {
        writer.record(entry(&scope, "gpt-4o-mini", 1));
    }
    writer.flush().await;
    assert_eq!(total(&direct, &scope).await.0, 50);

    proxy.cut().await;
    for _ in 0..30 {
        writer.record(entry(&scope, "gpt-4o-mini", 1));
    }
    writer.flush().await;
    let h = writer.health();
    assert_eq!(h.spooled, 30, "{h:?}");
    assert!(h.last_error.is_some());
    assert_eq!(spool.read().unwrap().0.len(), 30);
    assert_eq!(total(&direct, &scope).await.0, 50);

    proxy.restore().await;
    let start = Instant::now();
    while writer.health().spooled > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            writer.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total(&direct, &scope).await.0, 80, "every row, once");
    assert!(!spool.path().exists());
    assert_eq!(writer.health().last_error, None);
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_and_the_rest_replayed() {
    let Some(url) = pg_url() else { return };
    let store = pg(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("ledger.spool"));
    let scope = unique("torn");
    let rows: Vec<_> = (0..3).map(|_| entry(&scope, "gpt-4o-mini", 1)).collect();
    spool.append(&rows).unwrap();
    // A replica killed in the middle of an append.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(spool.path())
        .unwrap();
    f.write_all(br#"{"request_id":"half"#).unwrap();
    drop(f);
    let (read, torn) = spool.read().unwrap();
    assert_eq!((read.len(), torn), (3, 1));
    // A writer started over this spool replays it.
    let writer = LedgerWriter::spawn(store.clone(), spool.clone(), Duration::from_millis(50));
    assert_eq!(writer.health().spooled, 3);
    let start = Instant::now();
    while writer.health().spooled > 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(total(&store, &scope).await.0, 3);
}
