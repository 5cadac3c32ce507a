//! llmkit-store: SQLite persistence for sessions, the usage ledger, the cache, budgets and batch checkpoints.
