//! The ledger spool: rows that could not reach PostgreSQL, appended to a local JSONL file
//! (flushed to disk before the append returns) and replayed when it is back.
//!
//! A replica killed mid-append leaves at most one torn last line; it is skipped on read,
//! and every complete line is replayed. Replays are idempotent (the ledger is unique by
//! request id), so a crash between a replay and the spool's truncation counts nothing twice.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::ClusterError;
use crate::pg_ledger::LedgerEntry;

/// A local append-only file of ledger entries waiting for PostgreSQL.
#[derive(Debug, Clone)]
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: std::io::Error) -> ClusterError {
        ClusterError::Spool {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `entries`, one JSON line each, and syncs the file.
    pub fn append(&self, entries: &[LedgerEntry]) -> Result<(), ClusterError> {
        if entries.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        f.write_all(&buf).map_err(|e| self.err(e))?;
        f.sync_data().map_err(|e| self.err(e))
    }

    /// Every complete entry in the file (none when it does not exist). Lines that do not
    /// parse (a torn last line) are skipped and counted.
    pub fn read(&self) -> Result<(Vec<LedgerEntry>, usize), ClusterError> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        let mut skipped = 0;
        for line in BufReader::new(f).split(b'\n') {
            let line = line.map_err(|e| self.err(e))?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice(&line) {
                Ok(e) => out.push(e),
                Err(_) => skipped += 1,
            }
        }
        Ok((out, skipped))
    }

    /// Empties the file once its entries are in PostgreSQL.
    pub fn clear(&self) -> Result<(), ClusterError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}
