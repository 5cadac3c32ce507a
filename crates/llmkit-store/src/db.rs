//! Opening the database (corruption check, pragmas, migrations) and the shared write
//! discipline: `BEGIN IMMEDIATE` transactions retried while another process holds the lock.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use serde_json::{Value, json};

use crate::error::StoreError;
use crate::ledger::LedgerWriter;
use crate::migrations::{LATEST_VERSION, migrations};

/// How long SQLite itself waits for a lock before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a write transaction is retried after `SQLITE_BUSY`.
const WRITE_RETRIES: u32 = 20;

/// The llmkit store: one SQLite file shared by every llmkit process of a user.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    pub(crate) ledger: LedgerWriter,
}

impl Store {
    /// Opens (or creates) the store at `path`, applying pending migrations.
    ///
    /// A file that exists but is not a SQLite database is reported as
    /// [`StoreError::Corrupt`] and left exactly as it was.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut conn = open_connection(path)?;
        migrate(&mut conn, path)?;
        let ledger = LedgerWriter::start(path.to_path_buf());
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            ledger,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let conn = self.conn();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Waits until every queued ledger row is on disk; reports a failed write.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.ledger.flush()
    }

    /// Rebuilds the file to reclaim space (after `cache clear`, say) and drops expired
    /// reservations.
    pub fn vacuum(&self) -> Result<(u64, u64), StoreError> {
        self.flush()?;
        let before = file_size(&self.path);
        {
            let conn = self.conn();
            conn.execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| self.map_err(e))?;
        }
        Ok((before, file_size(&self.path)))
    }

    /// Everything worth keeping as JSON: sessions with their messages, and the ledger.
    pub fn export(&self) -> Result<Value, StoreError> {
        self.flush()?;
        let sessions = self
            .list_sessions()?
            .into_iter()
            .map(|s| self.session_json(&s.session.id))
            .collect::<Result<Vec<_>, _>>()?;
        let ledger = self.ledger_rows(&crate::ledger::UsageFilter::default())?;
        Ok(json!({
            "schema_version": self.schema_version()?,
            "sessions": sessions,
            "ledger": ledger,
        }))
    }

    /// The connection for reads and short writes on the caller's thread.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retrying while the database is busy.
    pub(crate) fn write<T>(
        &self,
        f: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        write_with_retry(&mut conn, f).map_err(|e| match e {
            StoreError::Sqlite(e) => self.map_err(e),
            other => other,
        })
    }

    /// Turns a corruption error into [`StoreError::Corrupt`] naming this file.
    pub(crate) fn map_err(&self, e: rusqlite::Error) -> StoreError {
        map_sqlite(e, &self.path)
    }
}

/// Runs `f` in an immediate transaction on `conn`, retrying on `SQLITE_BUSY`/`LOCKED`.
pub(crate) fn write_with_retry<T>(
    conn: &mut Connection,
    mut f: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        match result {
            Err(StoreError::Sqlite(e)) if is_busy(&e) && attempt < WRITE_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
            }
            other => return other,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub(crate) fn map_sqlite(e: rusqlite::Error, path: &Path) -> StoreError {
    if StoreError::is_corruption(&e) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
        }
    } else if StoreError::is_unwritable(&e) {
        let message = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => "the disk is full".to_string(),
            _ => format!("{e} (a full disk, a quota or a file-size limit?)"),
        };
        StoreError::Unwritable {
            path: path.to_path_buf(),
            message,
        }
    } else {
        StoreError::Sqlite(e)
    }
}

/// Opens one connection with llmkit's pragmas, after checking the file's header so that a
/// foreign or damaged file is refused before SQLite writes anything next to it.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    check_header(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| map_sqlite(e, path))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Another process may hold the lock the set-up needs for a moment (creating the file,
    // switching it to WAL, checkpointing): retry as writes do.
    let mut attempt = 0;
    loop {
        match configure(&conn) {
            Ok(()) => return Ok(conn),
            Err(e) if is_busy(&e) && attempt < WRITE_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
            }
            Err(e) => return Err(map_sqlite(e, path)),
        }
    }
}

/// llmkit's pragmas on a fresh connection.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Reading the schema first finds a damaged first page before any pragma writes.
    let _tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    // Switching the journal mode takes an exclusive lock and does not wait on the busy
    // handler, so with several processes opening at once it can fail with "database is
    // locked". The mode is persistent: set it only when the file is not in WAL yet.
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// A non-empty file must start with SQLite's magic header.
fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    if read == 0 || &header[..read] == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
        })
    }
}

/// Brings the schema to the latest version. Two processes may race on a new file: the
/// loser's migration fails (the tables exist), so it re-reads the version and retries.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let ms = migrations();
    let mut attempt: u32 = 0;
    loop {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| map_sqlite(e, path))?;
        let version = usize::try_from(version).unwrap_or(0);
        if version > LATEST_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known: LATEST_VERSION,
            });
        }
        if version == LATEST_VERSION {
            return Ok(());
        }
        match ms.to_latest(conn) {
            Ok(()) => return Ok(()),
            Err(rusqlite_migration::Error::RusqliteError { err, .. })
                if StoreError::is_corruption(&err) =>
            {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if attempt < 5 => {
                attempt += 1;
                let _ = e;
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            }
            Err(e) => {
                return Err(StoreError::Migration {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
