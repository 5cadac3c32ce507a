//! Budget reservations: a request's estimated cost is reserved atomically before it is sent
//! (spent + outstanding + estimate must fit every limit) and settled with the actual cost
//! when its ledger row is written, so concurrent processes cannot overshoot by more than
//! the error of one estimate.

use rusqlite::params;

use crate::db::Store;
use crate::error::StoreError;
use crate::ledger::now_secs;

/// A reservation older than this belongs to a process that died; it no longer counts.
const STALE_SECS: f64 = 600.0;

/// Spending limits in USD over local calendar periods.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budgets {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
}

impl Budgets {
    pub fn is_empty(&self) -> bool {
        self.daily_usd.is_none() && self.monthly_usd.is_none()
    }
}

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// Reserved under this id (settle it through the ledger row's `reservation`).
    Granted(i64),
    /// A limit would be exceeded: what was spent (settled + outstanding) and the limit.
    Refused {
        period: &'static str,
        spent: f64,
        limit: f64,
    },
}

impl Store {
    /// Reserves `estimate_usd` against the budgets in one `BEGIN IMMEDIATE` transaction.
    pub fn reserve(&self, budgets: &Budgets, estimate_usd: f64) -> Result<Reservation, StoreError> {
        self.reserve_scoped(None, budgets, estimate_usd)
    }

    /// Reserves `estimate_usd` against budgets that count only one scope's spend: the
    /// ledger rows whose `profile` is `scope` (the gateway writes a virtual key's id there)
    /// and that scope's outstanding reservations. With no scope every row and every
    /// reservation counts, as for the CLI's own budgets.
    pub fn reserve_scoped(
        &self,
        scope: Option<&str>,
        budgets: &Budgets,
        estimate_usd: f64,
    ) -> Result<Reservation, StoreError> {
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "DELETE FROM budget_reservations WHERE ts < ?1",
                [now - STALE_SECS],
            )?;
            // `?1 IS NULL` selects everything when no scope is given.
            let outstanding: f64 = tx.query_row(
                "SELECT COALESCE(SUM(amount_usd), 0.0) FROM budget_reservations
                 WHERE ?1 IS NULL OR scope = ?1",
                [scope],
                |r| r.get(0),
            )?;
            let periods = [
                ("daily", budgets.daily_usd, "start of day"),
                ("monthly", budgets.monthly_usd, "start of month"),
            ];
            for (period, limit, modifier) in periods {
                let Some(limit) = limit else { continue };
                let spent: f64 = tx.query_row(
                    "SELECT COALESCE(SUM(cost_usd), 0.0) FROM ledger
                     WHERE ts >= CAST(strftime('%s', 'now', 'localtime', ?1, 'utc') AS REAL)
                       AND (?2 IS NULL OR profile = ?2)",
                    params![modifier, scope],
                    |r| r.get(0),
                )?;
                if spent + outstanding + estimate_usd > limit {
                    return Ok(Reservation::Refused {
                        period,
                        spent: spent + outstanding,
                        limit,
                    });
                }
            }
            tx.execute(
                "INSERT INTO budget_reservations (ts, amount_usd, scope) VALUES (?1, ?2, ?3)",
                params![now, estimate_usd, scope],
            )?;
            Ok(Reservation::Granted(tx.last_insert_rowid()))
        })
    }

    /// Drops a reservation without a ledger row (the request never started).
    pub fn release(&self, id: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM budget_reservations WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Spend in the current local day and month (settled only).
    pub fn spent_today_and_month(&self) -> Result<(f64, f64), StoreError> {
        self.flush()?;
        let conn = self.conn();
        let q = |m: &str| -> rusqlite::Result<f64> {
            conn.query_row(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM ledger
                 WHERE ts >= CAST(strftime('%s', 'now', 'localtime', ?1, 'utc') AS REAL)",
                [m],
                |r| r.get(0),
            )
        };
        Ok((q("start of day")?, q("start of month")?))
    }
}
