//! The ordered merge of a remote job's results: every input row written to the output once,
//! in input order, reading the input once across all parts.

use super::*;

/// An output line with its cost.
pub(super) struct Line {
    pub(super) text: String,
    pub(super) cost: f64,
    pub(super) failed: bool,
}

/// Writes rows to the output in input order, reading the input once across all parts.
pub(super) struct Merger {
    pub(super) reader: RowReader,
    pub(super) pending: Option<Row>,
    pub(super) written: u64,
    pub(super) failed: u64,
    pub(super) spent: f64,
}

impl Merger {
    /// Writes every row before `end` that is not in the output yet: rows that could not be
    /// sent get the direct path's error line, the others their result from `batch`.
    pub(super) fn write_until(
        &mut self,
        remote: &Remote<'_>,
        end: u64,
        batch: Option<&Batch>,
        results: &HashMap<u64, Value>,
        out: &mut OutputFile,
    ) -> Result<(), BatchError> {
        let (mut spent_add, mut failed_add, mut since) = (0.0, 0u64, 0u64);
        while self.written < end {
            let row = match self.pending.take() {
                Some(r) => r,
                None => match self.reader.next_row()? {
                    Some(r) => r,
                    None => break,
                },
            };
            if row.index < self.written {
                continue;
            }
            if row.index >= end {
                self.pending = Some(row);
                break;
            }
            let opts = remote.opts;
            // The same messages as the direct path's runner, so both outputs are identical.
            let prepared = match &row.item {
                Err(msg) => Err(msg.clone()),
                Ok(item) => prepare(
                    item,
                    opts.task.as_ref(),
                    &opts.model,
                    &opts.sampling,
                    &opts.input.base_dir(),
                )
                .map_err(|e| format!("line {}: {e}", row.line)),
            };
            let line = match (prepared, batch) {
                (Err(msg), _) => Line {
                    text: error_line(&row, &msg, None, Some("invalid_row".into())),
                    cost: 0.0,
                    failed: true,
                },
                (Ok(p), Some(b)) => remote.result_line(&row, &p.model, b, results.get(&row.index)),
                (Ok(_), None) => Line {
                    text: error_line(&row, "the request was not part of any batch", None, None),
                    cost: 0.0,
                    failed: true,
                },
            };
            out.push(&line.text)?;
            self.written += 1;
            spent_add += line.cost;
            failed_add += u64::from(line.failed);
            since += 1;
            if since >= COMMIT_EVERY {
                self.commit(remote, out, spent_add, failed_add)?;
                (spent_add, failed_add, since) = (0.0, 0, 0);
            }
        }
        if since > 0 {
            self.commit(remote, out, spent_add, failed_add)?;
        }
        Ok(())
    }

    fn commit(
        &mut self,
        remote: &Remote<'_>,
        out: &mut OutputFile,
        spent_add: f64,
        failed_add: u64,
    ) -> Result<(), BatchError> {
        out.flush()?;
        remote
            .store
            .batch_commit_written(&remote.id, self.written, spent_add, failed_add)?;
        self.spent += spent_add;
        self.failed += failed_add;
        let (written, spent) = (self.written, self.spent);
        remote.progress.update(|s| {
            s.written = written;
            s.spent_usd = spent;
        });
        Ok(())
    }
}
