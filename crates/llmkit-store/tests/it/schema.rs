//! Migrations from an empty file and from every earlier version; corrupt files.

use llmkit_store::{LATEST_VERSION, Store, StoreError};
use rusqlite::Connection;

/// The schema of version N, applied the way a build of that version would have.
fn build_version(path: &std::path::Path, version: usize) {
    let mut conn = Connection::open(path).unwrap();
    llmkit_store::testing::migrate_to(&mut conn, version).unwrap();
}

#[test]
fn migrates_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/llmkit.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    drop(store);
    // Opening again is a no-op.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn migrates_from_each_earlier_version_keeping_data() {
    for v in 1..LATEST_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llmkit.db");
        build_version(&path, v);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO sessions (id, name, kind, created, updated) VALUES ('abc', 'old', 'chat', 1, 1)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO messages (session_id, role, content, created) VALUES ('abc', 'user', 'hi', 1)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO ledger (ts, backend, model, command, prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, status, cache_hit)
                 VALUES (1, 'http', 'gpt-4o', 'ask', 10, 2, 0, 0.5, 3, 200, 0)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST_VERSION, "from v{v}");
        let s = store.get_session("old").unwrap();
        assert_eq!(s.context_from, 0);
        assert_eq!(store.messages(&s.id).unwrap()[0].content, "hi");
        let rows = store.ledger_rows(&Default::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!((rows[0].cost_usd - 0.5).abs() < 1e-9);
    }
}

#[test]
fn a_key_from_v6_has_no_limits_after_v7() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    build_version(&path, 6);
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO keys (id, name, secret_sha256, models, created) VALUES ('k1', 'old', x'00', '', 1)",
            [],
        )
        .unwrap();
    let store = Store::open(&path).unwrap();
    let (key, _) = store.key_get("k1").unwrap().unwrap();
    assert_eq!(key.name, "old");
    assert_eq!((key.rpm, key.tpm, key.max_concurrent), (None, None, None));
}

#[test]
fn a_v8_store_learns_missing_features_after_v9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    build_version(&path, 8);
    let store = Store::open(&path).unwrap();
    assert!(store.missing_features(None).unwrap().is_empty());
    store
        .remember_missing_feature("http://127.0.0.1:8000/v1", "json_schema", 400, "no")
        .unwrap();
    let rows = store
        .missing_features(Some("http://127.0.0.1:8000/v1"))
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].feature, "json_schema");
}

#[test]
fn corrupt_file_is_reported_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    let junk = b"this is not a database, just some text that happens to be here\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(err.hint().unwrap().contains("untouched"));
    assert_eq!(std::fs::read(&path).unwrap(), junk);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no -wal/-shm files were created: {names:?}");
}

#[test]
fn damaged_pages_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    {
        let store = Store::open(&path).unwrap();
        let s = store.create_session(Some("x"), "chat", None, None).unwrap();
        for i in 0..200 {
            store
                .add_message(&s.id, "user", &format!("message {i} {}", "x".repeat(200)))
                .unwrap();
        }
        store.vacuum().unwrap();
    }
    // Keep the header, scribble over the rest.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path)
        .err()
        .expect("a damaged file must not open");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llmkit.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}
