//! Batch-runner checkpoints: job records (`batch_jobs`) and finished-but-unwritten rows
//! (`batch_rows`), so that `llmkit batch` resumes after a crash with no row lost or repeated.
//!
//! The protocol the runner follows: a finished row is saved here (`batch_save_rows`) before
//! it is appended to the output file; after appending a run of whole lines the runner
//! records the new line count and drops those rows in one transaction
//! (`batch_commit_written`). On resume the output is cut back to the recorded line count
//! and the saved rows are written again.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::Store;
use crate::error::StoreError;
use crate::ledger::now_secs;

/// One batch job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchJob {
    pub id: String,
    pub created: f64,
    pub updated: f64,
    pub input_path: String,
    pub output_path: String,
    /// `running`, `interrupted`, `stopped` (cost cap), `done`, `failed`.
    pub status: String,
    /// The remote batch ids (`--via openai-batch`), as JSON.
    pub remote_id: Option<String>,
    /// The options the job was started with (JSON), so `batch resume` can rebuild them.
    pub meta: Option<String>,
    /// Output lines known to be complete in the output file.
    pub rows_written: u64,
    /// Rows in the input, once the whole input has been read.
    pub total_rows: Option<u64>,
    /// Spend of the rows already written, in USD.
    pub spent_usd: f64,
    /// Rows written as errors.
    pub rows_failed: u64,
    /// A last message (why the job stopped).
    pub message: Option<String>,
}

/// A finished row waiting to be written: its output line (JSON, no newline) and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub index: u64,
    pub line: String,
    pub cost_usd: f64,
    pub failed: bool,
}

impl Store {
    /// Creates the job if it does not exist yet; returns the stored record either way.
    pub fn batch_create_job(
        &self,
        id: &str,
        input_path: &str,
        output_path: &str,
        meta: &str,
    ) -> Result<BatchJob, StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO batch_jobs (id, created, updated, input_path, output_path, status, meta)
                 VALUES (?1, ?2, ?2, ?3, ?4, 'running', ?5)",
                params![id, now, input_path, output_path, meta],
            )?;
            Ok(())
        })?;
        self.batch_job(id)?
            .ok_or_else(|| StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// The job with this id (or the only job whose id starts with it).
    pub fn batch_job(&self, id: &str) -> Result<Option<BatchJob>, StoreError> {
        let conn = self.conn();
        let exact = conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM batch_jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
            .map_err(|e| self.map_err(e))?;
        if exact.is_some() || id.is_empty() {
            return Ok(exact);
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM batch_jobs WHERE id LIKE ?1 || '%' LIMIT 2"
        ))?;
        let found: Vec<BatchJob> = stmt
            .query_map([id], job_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(if found.len() == 1 {
            found.into_iter().next()
        } else {
            None
        })
    }

    /// Every job, newest first.
    pub fn batch_jobs(&self) -> Result<Vec<BatchJob>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM batch_jobs ORDER BY updated DESC"
        ))?;
        let rows = stmt
            .query_map([], job_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Saves finished rows (replacing any earlier copy) in one transaction.
    ///
    /// The ledger rows queued so far (those of the requests behind these rows) are written
    /// first: a process killed after the checkpoint commits would otherwise lose the
    /// spend of rows it will never send again.
    pub fn batch_save_rows(&self, job: &str, rows: &[BatchRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.flush()?;
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO batch_rows (job_id, row_index, status, attempts, result, cost_usd)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            )?;
            for r in rows {
                let status = if r.failed { "failed" } else { "done" };
                stmt.execute(params![
                    job,
                    to_i64(r.index),
                    status,
                    r.line,
                    r.cost_usd
                ])?;
            }
            Ok(())
        })
    }

    /// The saved rows not yet written, by index.
    pub fn batch_pending_rows(&self, job: &str) -> Result<Vec<BatchRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT row_index, result, cost_usd, status FROM batch_rows
             WHERE job_id = ?1 ORDER BY row_index",
        )?;
        let rows = stmt
            .query_map([job], |r| {
                Ok(BatchRow {
                    index: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    line: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    cost_usd: r.get(2)?,
                    failed: r.get::<_, String>(3)? == "failed",
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records that the output now holds `rows_written` whole lines, adds the spend and
    /// failures of the newly written rows and drops their saved copies, atomically.
    pub fn batch_commit_written(
        &self,
        job: &str,
        rows_written: u64,
        spent_add: f64,
        failed_add: u64,
    ) -> Result<(), StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "UPDATE batch_jobs SET rows_written = ?2, spent_usd = spent_usd + ?3,
                 rows_failed = rows_failed + ?4, updated = ?5 WHERE id = ?1",
                params![
                    job,
                    to_i64(rows_written),
                    spent_add,
                    to_i64(failed_add),
                    now
                ],
            )?;
            tx.execute(
                "DELETE FROM batch_rows WHERE job_id = ?1 AND row_index < ?2",
                params![job, to_i64(rows_written)],
            )?;
            Ok(())
        })
    }

    /// Forgets a job and its checkpointed rows (`eval run --fresh`); false when there was
    /// no such job. The usage ledger keeps its entries: money spent stays spent.
    pub fn batch_delete_job(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM batch_rows WHERE job_id = ?1", params![id])?;
            Ok(tx.execute("DELETE FROM batch_jobs WHERE id = ?1", params![id])? > 0)
        })
    }

    /// Rewinds the job to `rows_written` lines (the output file had fewer than recorded).
    pub fn batch_rewind(&self, job: &str, rows_written: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE batch_jobs SET rows_written = ?2 WHERE id = ?1",
                params![job, to_i64(rows_written)],
            )?;
            Ok(())
        })
    }

    /// Sets the status and the last message.
    pub fn batch_set_status(
        &self,
        job: &str,
        status: &str,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "UPDATE batch_jobs SET status = ?2, message = ?3, updated = ?4 WHERE id = ?1",
                params![job, status, message, now],
            )?;
            Ok(())
        })
    }

    /// Records the input's row count once it has been read to the end.
    pub fn batch_set_total(&self, job: &str, total: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE batch_jobs SET total_rows = ?2 WHERE id = ?1",
                params![job, to_i64(total)],
            )?;
            Ok(())
        })
    }

    /// Records the remote batch ids (`--via openai-batch`), as JSON.
    pub fn batch_set_remote(&self, job: &str, remote: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE batch_jobs SET remote_id = ?2 WHERE id = ?1",
                params![job, remote],
            )?;
            Ok(())
        })
    }
}

const JOB_COLUMNS: &str = "id, created, updated, input_path, output_path, status, remote_id, meta, \
     rows_written, total_rows, spent_usd, rows_failed, message";

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchJob> {
    Ok(BatchJob {
        id: r.get(0)?,
        created: r.get(1)?,
        updated: r.get(2)?,
        input_path: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        output_path: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        status: r.get(5)?,
        remote_id: r.get(6)?,
        meta: r.get(7)?,
        rows_written: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        total_rows: r
            .get::<_, Option<i64>>(9)?
            .and_then(|v| u64::try_from(v).ok()),
        spent_usd: r.get(10)?,
        rows_failed: u64::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
        message: r.get(12)?,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checkpointed_then_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let job = store.batch_create_job("j1", "in", "out", "{}").unwrap();
        assert_eq!(job.rows_written, 0);
        assert_eq!(job.status, "running");
        let row = |i: u64| BatchRow {
            index: i,
            line: format!("{{\"id\":{i}}}"),
            cost_usd: 0.5,
            failed: i == 1,
        };
        store
            .batch_save_rows("j1", &[row(0), row(1), row(2)])
            .unwrap();
        assert_eq!(store.batch_pending_rows("j1").unwrap().len(), 3);
        store.batch_commit_written("j1", 2, 1.0, 1).unwrap();
        let pending = store.batch_pending_rows("j1").unwrap();
        assert_eq!(pending, vec![row(2)]);
        let job = store.batch_job("j").unwrap().unwrap();
        assert_eq!(
            (job.rows_written, job.spent_usd, job.rows_failed),
            (2, 1.0, 1)
        );
        // Creating again keeps the progress.
        let again = store.batch_create_job("j1", "in", "out", "{}").unwrap();
        assert_eq!(again.rows_written, 2);
        store.batch_set_status("j1", "done", Some("ok")).unwrap();
        store.batch_set_total("j1", 3).unwrap();
        let listed = store.batch_jobs().unwrap();
        assert_eq!(listed[0].total_rows, Some(3));
        assert_eq!(listed[0].message.as_deref(), Some("ok"));
        // Deleting forgets the job and its rows: creating it again starts from zero.
        assert!(store.batch_delete_job("j1").unwrap());
        assert!(!store.batch_delete_job("j1").unwrap());
        assert!(store.batch_job("j1").unwrap().is_none());
        let fresh = store.batch_create_job("j1", "in", "out", "{}").unwrap();
        assert_eq!(fresh.rows_written, 0);
        assert!(store.batch_pending_rows("j1").unwrap().is_empty());
    }
}
