//! The versioned schema: each entry is one migration, applied in order and never edited
//! once released (add a new one instead).

use rusqlite_migration::{M, Migrations};

/// Version 1: sessions, messages, the usage ledger and the response cache.
const V1: &str = "
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE,
    kind TEXT NOT NULL DEFAULT 'chat',
    model TEXT,
    system TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX messages_by_session ON messages(session_id, id);
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    profile TEXT,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    session_id TEXT,
    batch_job TEXT,
    command TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    cache_hit INTEGER NOT NULL
);
CREATE INDEX ledger_by_ts ON ledger(ts);
CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
);
";

/// Version 2: context management (running summary, first message still in context) and
/// budget reservations.
const V2: &str = "
ALTER TABLE sessions ADD COLUMN summary TEXT;
ALTER TABLE sessions ADD COLUMN context_from INTEGER NOT NULL DEFAULT 0;
CREATE TABLE budget_reservations (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    amount_usd REAL NOT NULL
);
";

/// Version 3: checkpoints for the batch runner (reserved; written by `llmkit batch`).
const V3: &str = "
CREATE TABLE batch_jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    input_path TEXT,
    output_path TEXT,
    status TEXT NOT NULL,
    remote_id TEXT,
    meta TEXT
);
CREATE TABLE batch_rows (
    job_id TEXT NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
    row_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    PRIMARY KEY (job_id, row_index)
);
";

/// Version 4: batch-runner progress (lines written, rows seen, spend) and per-row cost.
const V4: &str = "
ALTER TABLE batch_jobs ADD COLUMN rows_written INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batch_jobs ADD COLUMN total_rows INTEGER;
ALTER TABLE batch_jobs ADD COLUMN spent_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE batch_jobs ADD COLUMN rows_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batch_jobs ADD COLUMN message TEXT;
ALTER TABLE batch_rows ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
";

/// Version 5: ledger rows whose model had no known price are marked, so that `usage` shows
/// their cost as unknown instead of summing them as free.
const V5: &str = "
ALTER TABLE ledger ADD COLUMN cost_unknown INTEGER NOT NULL DEFAULT 0;
";

/// Version 6: the gateway's virtual keys (a public id and the SHA-256 of the secret, never
/// the secret itself), and budget reservations scoped to one key, so that a key's budget
/// counts only its own spend and its own outstanding reservations.
const V6: &str = "
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    models TEXT NOT NULL DEFAULT '',
    budget_daily_usd REAL,
    created REAL NOT NULL,
    expires REAL,
    revoked REAL
);
ALTER TABLE budget_reservations ADD COLUMN scope TEXT;
CREATE INDEX ledger_by_profile_ts ON ledger(profile, ts);
";

/// Version 7: per-key rate limits of the gateway's virtual keys (requests and tokens per
/// minute, concurrent requests); NULL is no limit, so keys made before keep working as they did.
const V7: &str = "
ALTER TABLE keys ADD COLUMN rpm INTEGER;
ALTER TABLE keys ADD COLUMN tpm INTEGER;
ALTER TABLE keys ADD COLUMN max_concurrent INTEGER;
";

/// Version 8: ledger rows whose tokens llmkit counted itself (a stream that ended before its
/// usage chunk) are marked, so that they are known as counts, not the backend's own figures.
const V8: &str = "
ALTER TABLE ledger ADD COLUMN tokens_counted INTEGER NOT NULL DEFAULT 0;
";

/// Version 9: the features a server rejected (`json_schema`, `stream_options`, the
/// Responses API), per base URL, so that later runs send it the fallback at once instead of a
/// request it refuses. A row is forgotten by deleting it (`llmkit store capabilities --forget`).
const V9: &str = "
CREATE TABLE missing_features (
    base_url TEXT NOT NULL,
    feature TEXT NOT NULL,
    status INTEGER NOT NULL,
    message TEXT NOT NULL,
    learned REAL NOT NULL,
    PRIMARY KEY (base_url, feature)
);
";

/// Version 10: tool turns in conversations: an assistant message's tool calls (JSON, as
/// OpenAI sends them) and the call a `tool` message answers.
const V10: &str = "
ALTER TABLE messages ADD COLUMN tool_calls TEXT;
ALTER TABLE messages ADD COLUMN tool_call_id TEXT;
";

/// Version 11: attachments of a message (its image, file and audio parts as JSON, as the
/// API takes them), so a conversation sends them again on later turns.
const V11: &str = "
ALTER TABLE messages ADD COLUMN attachments TEXT;
";

/// Version 12: a message's own extra fields (JSON), such as the encrypted reasoning items
/// an assistant turn hands back to the Responses API on the next turn.
const V12: &str = "
ALTER TABLE messages ADD COLUMN extra TEXT;
";

/// Version 13: the upstream that served a gateway request (a route's upstream by its
/// profile name, or `default`), so spend can be split per upstream.
const V13: &str = "
ALTER TABLE ledger ADD COLUMN upstream TEXT;
";

const ALL: [&str; 13] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13];

/// The schema version this build writes.
pub const LATEST_VERSION: usize = ALL.len();

/// Every migration, oldest first.
pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(ALL.iter().map(|sql| M::up(sql)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }
}
