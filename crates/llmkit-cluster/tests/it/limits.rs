//! Limits in Redis hold across replicas: two connections share one window, tokens are
//! refunded, concurrency slots are leased, and a Redis that is down is reported as such.

use std::time::{Duration, Instant};

use llmkit_cluster::{LimitDecision, Limits, RedisLimits};

use crate::support::{redis_url, unique};

async fn limiter(url: &str, lease_ttl: Duration) -> RedisLimits {
    RedisLimits::connect(url, Duration::from_millis(500), lease_ttl)
        .await
        .unwrap()
}

fn allowed(d: &LimitDecision) -> bool {
    matches!(d, LimitDecision::Allowed { .. })
}

#[tokio::test]
async fn two_replicas_share_one_request_window() {
    let Some(url) = redis_url() else { return };
    let a = limiter(&url, Duration::from_secs(30)).await;
    let b = limiter(&url, Duration::from_secs(30)).await;
    let scope = unique("rpm");
    let limits = Limits {
        rpm: Some(10),
        ..Default::default()
    };
    let mut tasks = Vec::new();
    for i in 0..30 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            l.admit(&scope, &limits, 1, &format!("r{i}")).await.unwrap()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            LimitDecision::Allowed {
                remaining_requests, ..
            } => {
                ok += 1;
                assert!(remaining_requests.unwrap() < 10);
            }
            LimitDecision::Refused(r) => {
                assert_eq!((r.kind, r.limit, r.oversize), ("rpm", 10, false));
                assert!(r.retry_after > Duration::ZERO && r.retry_after <= Duration::from_secs(60));
            }
        }
    }
    assert_eq!(ok, 10, "10 per minute over both replicas, not 20");
}

#[tokio::test]
async fn tokens_are_charged_refunded_and_an_oversized_request_is_told_so() {
    let Some(url) = redis_url() else { return };
    let l = limiter(&url, Duration::from_secs(30)).await;
    let scope = unique("tpm");
    let limits = Limits {
        tpm: Some(100),
        ..Default::default()
    };
    let first = l.admit(&scope, &limits, 40, "a").await.unwrap();
    let LimitDecision::Allowed {
        bucket,
        remaining_tokens,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(remaining_tokens, Some(60));
    assert!(allowed(&l.admit(&scope, &limits, 40, "b").await.unwrap()));
    let LimitDecision::Refused(r) = l.admit(&scope, &limits, 40, "c").await.unwrap() else {
        panic!("a third 40 fit in 100")
    };
    assert_eq!((r.kind, r.oversize), ("tpm", false));
    // The first request used 10 of its 40: 30 come back.
    assert_eq!(l.refund_tokens(&scope, bucket, 30).await.unwrap(), 30);
    assert!(allowed(&l.admit(&scope, &limits, 40, "c").await.unwrap()));
    let LimitDecision::Refused(r) = l.admit(&scope, &limits, 101, "d").await.unwrap() else {
        panic!("101 tokens passed a 100 TPM limit")
    };
    assert!(r.oversize);
}

#[tokio::test]
async fn concurrency_slots_are_leased_released_and_expire() {
    let Some(url) = redis_url() else { return };
    let l = limiter(&url, Duration::from_millis(400)).await;
    let scope = unique("conc");
    let limits = Limits {
        max_concurrent: Some(2),
        ..Default::default()
    };
    assert!(allowed(&l.admit(&scope, &limits, 1, "a").await.unwrap()));
    assert!(allowed(&l.admit(&scope, &limits, 1, "b").await.unwrap()));
    let LimitDecision::Refused(r) = l.admit(&scope, &limits, 1, "c").await.unwrap() else {
        panic!("a third slot of two")
    };
    assert_eq!(r.kind, "concurrency");
    l.release(&scope, "a").await.unwrap();
    assert!(allowed(&l.admit(&scope, &limits, 1, "c").await.unwrap()));
    // The replica holding b and c dies: their leases run out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(allowed(&l.admit(&scope, &limits, 1, "d").await.unwrap()));
    assert!(allowed(&l.admit(&scope, &limits, 1, "e").await.unwrap()));
}

#[tokio::test]
async fn redis_going_down_is_unavailable_and_coming_back_works_again() {
    let Some(url) = redis_url() else { return };
    let proxy = llmkit_testkit::TcpProxy::start(llmkit_testkit::host_port(&url).unwrap())
        .await
        .unwrap();
    let l = limiter(&proxy.via(&url), Duration::from_secs(30)).await;
    let scope = unique("down");
    let limits = Limits {
        rpm: Some(100),
        ..Default::default()
    };
    assert!(allowed(&l.admit(&scope, &limits, 1, "a").await.unwrap()));
    proxy.cut().await;
    let start = Instant::now();
    let err = l.admit(&scope, &limits, 1, "b").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    proxy.restore().await;
    let start = Instant::now();
    loop {
        match l.admit(&scope, &limits, 1, "c").await {
            Ok(d) => {
                assert!(allowed(&d));
                break;
            }
            Err(e) => assert!(start.elapsed() < Duration::from_secs(10), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A Redis that is not there at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisLimits::connect(
        &format!("redis://127.0.0.1:{port}/"),
        Duration::from_millis(300),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.hint().unwrap().contains("Redis"));
}
