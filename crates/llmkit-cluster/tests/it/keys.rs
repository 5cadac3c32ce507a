//! Virtual keys in PostgreSQL: round trip, revoke, rotate, as the SQLite store does them.

use llmkit_store::VirtualKey;

use crate::support::{pg, pg_url, unique};

#[tokio::test]
async fn keys_round_trip_revoke_and_rotate() {
    let Some(url) = pg_url() else { return };
    let store = pg(&url).await;
    let key = VirtualKey {
        id: unique("key"),
        name: "app".into(),
        models: vec!["gpt-4o-mini".into()],
        budget_daily_usd: Some(1.5),
        rpm: Some(60),
        tpm: None,
        max_concurrent: Some(4),
        created: 10.0,
        expires: Some(20.0),
        revoked: None,
    };
    store.key_insert(&key, &[7; 32]).await.unwrap();
    let (got, hash) = store.key_get(&key.id).await.unwrap().unwrap();
    assert_eq!(got, key);
    assert_eq!(hash, vec![7; 32]);
    assert!(store.key_rotate(&key.id, &[8; 32]).await.unwrap());
    assert_eq!(
        store.key_get(&key.id).await.unwrap().unwrap().1,
        vec![8; 32]
    );
    assert!(store.key_revoke(&key.id, 12.0).await.unwrap());
    assert!(!store.key_rotate(&key.id, &[9; 32]).await.unwrap());
    assert!(!store.key_revoke(&unique("nope"), 12.0).await.unwrap());
    let listed = store.key_list().await.unwrap();
    let mine = listed.iter().find(|k| k.id == key.id).unwrap();
    assert_eq!(mine.revoked, Some(12.0));
    assert!(store.key_get(&unique("nope")).await.unwrap().is_none());
    assert_eq!(
        store.schema_version().await.unwrap(),
        llmkit_cluster::PG_SCHEMA_VERSION
    );
}

#[tokio::test]
async fn two_replicas_migrating_at_once_both_start() {
    let Some(url) = pg_url() else { return };
    let (a, b) = tokio::join!(pg(&url), pg(&url));
    assert_eq!(
        a.schema_version().await.unwrap(),
        b.schema_version().await.unwrap()
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_with_a_hint() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = llmkit_cluster::PgStore::connect(
        &format!("postgres://llmkit@127.0.0.1:{port}/llmkit"),
        &llmkit_cluster::PgOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.hint().unwrap().contains("services.sh"));
    let bad = llmkit_cluster::PgStore::connect("postgres://[", &Default::default())
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("invalid PostgreSQL URL"), "{bad}");
}
