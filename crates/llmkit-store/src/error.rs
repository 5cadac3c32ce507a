//! `StoreError`: every way the store fails, naming the database file and with a hint.

use std::path::PathBuf;

/// A store failure. Corruption is its own variant: the file is never recreated silently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an llmkit SQLite database, or SQLite reports damage.
    #[error("the store {} is not a valid SQLite database (corrupt or a different file)", path.display())]
    Corrupt { path: PathBuf },

    /// The file could not be opened or created.
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The schema is newer than this build knows.
    #[error("the store {} has schema version {found}, newer than this llmkit knows ({known})", path.display())]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },

    /// A migration failed.
    #[error("migrating the store {} failed: {message}", path.display())]
    Migration { path: PathBuf, message: String },

    /// The file could not be written: the disk is full, or the file may not grow (a quota, a
    /// file-size limit), or the device failed. SQLite rolled the transaction back.
    #[error("cannot write the store {}: {message}", path.display())]
    Unwritable { path: PathBuf, message: String },

    /// A SQLite call failed.
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A stored value could not be decoded.
    #[error("store data could not be decoded: {0}")]
    Decode(#[from] serde_json::Error),

    /// The background ledger writer could not write rows.
    #[error("the usage ledger could not be written: {0}")]
    Ledger(String),

    /// No session matches the given name or id.
    #[error("no session named or with id `{0}`")]
    NoSession(String),

    /// Writing an export failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// A one-line suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Corrupt { path } => format!(
                "llmkit left the file untouched: move it aside (e.g. `mv {0} {0}.bad`) to start a new store, or point LLMKIT_STORE elsewhere",
                path.display()
            ),
            Self::Open { .. } => {
                "check the directory's permissions, or set LLMKIT_STORE / the `store` config key"
                    .to_string()
            }
            Self::TooNew { .. } => {
                "upgrade llmkit, or point LLMKIT_STORE at another file".to_string()
            }
            Self::Migration { .. } => "back up the file and report the error".to_string(),
            Self::Unwritable { .. } => "free space on the disk that holds it (or lift the quota), \
                 or point LLMKIT_STORE elsewhere, and run again: what was committed is intact"
                .to_string(),
            Self::NoSession(_) => "`llmkit sessions list` shows the sessions".to_string(),
            Self::Ledger(_) => {
                "another process may hold the store for a long time; run the command again"
                    .to_string()
            }
            Self::Sqlite(_) | Self::Decode(_) | Self::Write { .. } => return None,
        })
    }

    /// True for SQLite's "disk full" and I/O errors: the file could not be written.
    pub(crate) fn is_unwritable(e: &rusqlite::Error) -> bool {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
        )
    }

    /// True for SQLite's "database is damaged / not a database" errors.
    pub(crate) fn is_corruption(e: &rusqlite::Error) -> bool {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }
}
