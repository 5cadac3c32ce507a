//! Sessions, ledger and cache across reopenings and concurrent writers.

use std::sync::Arc;

use llmkit_store::{LedgerRow, Store, UsageFilter, UsageGroup, cache_key, now_secs};
use llmkit_types::{ChatCompletionRequest, ChatCompletionResponse, ChatMessage};

#[test]
fn sessions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    let id = {
        let store = Store::open(&path).unwrap();
        let s = store
            .create_session(Some("work"), "chat", Some("gpt-4o"), Some("be brief"))
            .unwrap();
        store.add_message(&s.id, "user", "hello").unwrap();
        store.add_message(&s.id, "assistant", "hi!").unwrap();
        s.id
    };
    let store = Store::open(&path).unwrap();
    let s = store.get_session("work").unwrap();
    assert_eq!(s.id, id);
    assert_eq!(s.system.as_deref(), Some("be brief"));
    assert_eq!(store.get_session(&id[..6]).unwrap().id, id);
    let m = store.messages(&id).unwrap();
    assert_eq!(
        m.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["hello", "hi!"]
    );
    assert_eq!(store.latest_session().unwrap().unwrap().id, id);
    // /save under a taken name moves the name.
    let other = store.create_session(None, "ask", None, None).unwrap();
    store.rename_session(&other.id, "work").unwrap();
    assert_eq!(store.get_session("work").unwrap().id, other.id);
    assert!(store.delete_session(&id).unwrap());
    assert!(store.messages(&id).unwrap().is_empty());
    assert!(store.find_session(&id).unwrap().is_none());
}

#[test]
fn ledger_is_flushed_on_drop_and_aggregated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    {
        let store = Store::open(&path).unwrap();
        for (model, cost, upstream) in [
            ("a", 0.5, Some("azure")),
            ("b", 0.25, None),
            ("a", 0.25, Some("default")),
        ] {
            store.record(LedgerRow {
                ts: now_secs(),
                backend: "http".into(),
                upstream: upstream.map(String::from),
                model: model.into(),
                command: "ask".into(),
                prompt_tokens: 10,
                completion_tokens: 5,
                cost_usd: cost,
                status: 200,
                ..LedgerRow::default()
            });
        }
    }
    let store = Store::open(&path).unwrap();
    let total = store
        .usage(&UsageFilter::default(), UsageGroup::Total)
        .unwrap();
    assert_eq!(total[0].requests, 3);
    assert_eq!(total[0].prompt_tokens, 30);
    assert!((total[0].cost_usd - 1.0).abs() < 1e-9);
    let by_model = store
        .usage(&UsageFilter::default(), UsageGroup::Model)
        .unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(by_model[0].key, "a");
    // The upstream that served each row is kept and grouped by (`-` for none).
    let by_upstream = store
        .usage(&UsageFilter::default(), UsageGroup::Upstream)
        .unwrap();
    let keys: Vec<(&str, u64)> = by_upstream
        .iter()
        .map(|r| (r.key.as_str(), r.requests))
        .collect();
    assert_eq!(keys, [("-", 1), ("azure", 1), ("default", 1)]);
    let rows = store.ledger_rows(&UsageFilter::default()).unwrap();
    let upstreams: Vec<Option<&str>> = rows.iter().map(|r| r.upstream.as_deref()).collect();
    assert_eq!(upstreams, [Some("azure"), None, Some("default")]);
    let future = UsageFilter {
        since: Some(now_secs() + 3600.0),
        until: None,
    };
    assert_eq!(store.usage(&future, UsageGroup::Day).unwrap().len(), 0);
    assert!(store.local_time_to_secs("2025-01-31").unwrap().is_some());
    assert!(store.local_time_to_secs("yesterday-ish").unwrap().is_none());
}

#[test]
fn one_commands_usage_per_profile_and_its_recent_failures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("llmkit.db")).unwrap();
    let rows = [
        ("serve", Some("k1"), 200, 0.5),
        ("serve", Some("k2"), 502, 0.0),
        ("serve", Some("k1"), 200, 0.25),
        ("ask", None, 500, 1.0),
        ("serve", Some("k2"), 0, 0.0),
    ];
    for (i, (command, profile, status, cost)) in rows.into_iter().enumerate() {
        store.record(LedgerRow {
            ts: now_secs(),
            profile: profile.map(str::to_string),
            backend: "http".into(),
            model: format!("m{i}"),
            command: command.into(),
            prompt_tokens: 10,
            cost_usd: cost,
            status,
            ..LedgerRow::default()
        });
    }
    let by_key = store
        .usage_of(&UsageFilter::default(), UsageGroup::Profile, Some("serve"))
        .unwrap();
    assert_eq!(
        by_key
            .iter()
            .map(|r| (r.key.as_str(), r.requests, r.errors))
            .collect::<Vec<_>>(),
        [("k1", 2, 0), ("k2", 2, 2)]
    );
    assert!((by_key[0].cost_usd - 0.75).abs() < 1e-9);
    let all = store
        .usage_of(&UsageFilter::default(), UsageGroup::Total, None)
        .unwrap();
    assert_eq!(all[0].requests, 5);
    // Newest first, this command's only, at most `limit`.
    let failed = store.recent_failures(Some("serve"), 10).unwrap();
    assert_eq!(
        failed.iter().map(|r| r.status).collect::<Vec<_>>(),
        [0, 502]
    );
    assert_eq!(store.recent_failures(None, 10).unwrap().len(), 3);
    assert_eq!(store.recent_failures(None, 1).unwrap()[0].model, "m4");
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    drop(Store::open(&path).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Arc::new(Store::open(&path).unwrap());
                let s = store
                    .create_session(Some(&format!("s{t}")), "chat", None, None)
                    .unwrap();
                for i in 0..50 {
                    store
                        .add_message(&s.id, "user", &format!("{t}-{i}"))
                        .unwrap();
                    store.record(LedgerRow {
                        ts: now_secs(),
                        backend: "http".into(),
                        model: "m".into(),
                        command: "chat".into(),
                        prompt_tokens: 1,
                        status: 200,
                        ..LedgerRow::default()
                    });
                }
                store.flush().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let total = store
        .usage(&UsageFilter::default(), UsageGroup::Total)
        .unwrap();
    assert_eq!(total[0].requests, 200);
    for t in 0..4 {
        let s = store.get_session(&format!("s{t}")).unwrap();
        assert_eq!(store.messages(&s.id).unwrap().len(), 50);
    }
}

#[test]
fn cache_round_trip_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let req = ChatCompletionRequest::new("m", vec![ChatMessage::user("q")]).temperature(0.0);
    let key = cache_key(&req);
    let resp = ChatCompletionResponse {
        id: "x".into(),
        model: "m".into(),
        ..ChatCompletionResponse::default()
    };
    assert!(store.cache_lookup(&key, 60.0).unwrap().is_none());
    store.cache_store(&key, "m", &resp).unwrap();
    assert_eq!(store.cache_lookup(&key, 60.0).unwrap().unwrap(), resp);
    assert!(store.cache_lookup(&key, -1.0).unwrap().is_none(), "expired");
    let stats = store.cache_stats(60.0).unwrap();
    assert_eq!((stats.entries, stats.hits), (1, 1));
    assert_eq!(store.cache_clear(None).unwrap(), 1);
    assert_eq!(store.cache_stats(60.0).unwrap().entries, 0);
}
