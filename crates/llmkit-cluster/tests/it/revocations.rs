//! Key revocations reach the other replica over pub/sub within a second.

use std::time::{Duration, Instant};

use llmkit_cluster::{KeyEvent, Revocations};

use crate::support::{redis_url, unique};

#[tokio::test]
async fn a_revocation_on_one_replica_reaches_the_other_within_a_second() {
    let Some(url) = redis_url() else { return };
    let a = Revocations::connect(&url, Duration::from_millis(500))
        .await
        .unwrap();
    let b = Revocations::connect(&url, Duration::from_millis(500))
        .await
        .unwrap();
    let mut events = b.subscribe(Duration::from_millis(100));
    // The first event after subscribing says: re-read everything.
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(KeyEvent::Resync));
    let id = unique("key");
    let start = Instant::now();
    a.publish(&KeyEvent::Revoked { id: id.clone() })
        .await
        .unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(1), events.recv())
            .await
            .expect("no event within 1 s");
        if ev == Some(KeyEvent::Revoked { id: id.clone() }) {
            break;
        }
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    eprintln!("revocation reached the other replica in {took:?}");
}
