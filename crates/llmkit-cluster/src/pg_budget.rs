//! Budget reservations in PostgreSQL, atomic across replicas.
//!
//! Each scope (a virtual key's id) has one `llmkit_spend` row per calendar period holding
//! the settled spend and the outstanding reservations. A reservation runs in one
//! transaction that locks the scope's period rows with `SELECT ... FOR UPDATE`, always in
//! (scope, period) order so that it cannot deadlock with another reservation or a ledger
//! settle, checks `spent + reserved + estimate <= limit` for every period, and adds the
//! estimate. A concurrent reservation on another replica waits for the lock and then sees
//! the new total: there is no read-then-write race.

use crate::error::ClusterError;
use crate::pg::PgStore;

/// A reservation older than this belongs to a replica that died; it is released (its
/// amount no longer counts) by the next reservation of the same scope.
pub(crate) const STALE_SECS: f64 = 600.0;

/// The calendar periods a request falls in, named by the caller in its own time zone
/// (e.g. `day:2026-12-06`, `month:2026-12`): this crate reads no clock zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Periods {
    pub day: String,
    pub month: String,
}

impl Periods {
    /// The UTC day and month of `unix_secs`. Replicas may run in different time zones, so
    /// shared budgets count UTC calendar periods.
    pub fn utc(unix_secs: f64) -> Self {
        let days = (unix_secs / 86_400.0).floor() as i64;
        let (y, m, d) = civil_from_days(days);
        Self {
            day: format!("{y:04}-{m:02}-{d:02}"),
            month: format!("{y:04}-{m:02}"),
        }
    }

    /// The period keys in lock order.
    pub(crate) fn keys(&self) -> [String; 2] {
        [format!("day:{}", self.day), format!("month:{}", self.month)]
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`). Written out because no date crate is otherwise needed here and this
/// is the one conversion the budgets make.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Spending limits in USD for one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeriodLimits {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
}

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum PgReservation {
    /// Reserved under this id: pass it with the ledger entry that settles it.
    Granted(i64),
    /// A limit would be exceeded: what is spent and reserved, and the limit.
    Refused {
        period: &'static str,
        spent: f64,
        limit: f64,
    },
}

impl PgStore {
    /// Reserves `estimate_usd` for `scope` in `periods` against `limits`, at `now` (unix s).
    pub async fn reserve(
        &self,
        scope: &str,
        periods: &Periods,
        limits: &PeriodLimits,
        estimate_usd: f64,
        now: f64,
    ) -> Result<PgReservation, ClusterError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let keys = periods.keys();
        tx.execute(
            "INSERT INTO llmkit_spend (scope, period) SELECT $1, p FROM UNNEST($2::TEXT[]) AS p
             ON CONFLICT DO NOTHING",
            &[&scope, &keys.to_vec()],
        )
        .await?;
        let rows = tx
            .query(
                "SELECT period, spent_usd, reserved_usd FROM llmkit_spend
                 WHERE scope = $1 AND period = ANY($2) ORDER BY period FOR UPDATE",
                &[&scope, &keys.to_vec()],
            )
            .await?;
        // With the rows locked, release this scope's reservations of dead replicas.
        let stale = tx
            .query(
                "DELETE FROM llmkit_reservations WHERE scope = $1 AND ts < $2
                 RETURNING periods, amount_usd",
                &[&scope, &(now - STALE_SECS)],
            )
            .await?;
        let mut freed = [0.0f64; 2];
        for r in &stale {
            let ps: Vec<String> = r.get(0);
            let amount: f64 = r.get(1);
            for (i, k) in keys.iter().enumerate() {
                if ps.contains(k) {
                    freed[i] += amount;
                }
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if freed[i] > 0.0 {
                tx.execute(
                    "UPDATE llmkit_spend SET reserved_usd = GREATEST(reserved_usd - $3, 0)
                     WHERE scope = $1 AND period = $2",
                    &[&scope, k, &freed[i]],
                )
                .await?;
            }
        }
        for r in &rows {
            let period: String = r.get(0);
            let (name, limit, idx) = if period == keys[0] {
                ("daily", limits.daily_usd, 0)
            } else {
                ("monthly", limits.monthly_usd, 1)
            };
            let Some(limit) = limit else { continue };
            let used = r.get::<_, f64>(1) + (r.get::<_, f64>(2) - freed[idx]).max(0.0);
            if used + estimate_usd > limit {
                tx.commit().await?;
                return Ok(PgReservation::Refused {
                    period: name,
                    spent: used,
                    limit,
                });
            }
        }
        tx.execute(
            "UPDATE llmkit_spend SET reserved_usd = reserved_usd + $3
             WHERE scope = $1 AND period = ANY($2)",
            &[&scope, &keys.to_vec(), &estimate_usd],
        )
        .await?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO llmkit_reservations (scope, periods, amount_usd, ts)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&scope, &keys.to_vec(), &estimate_usd, &now],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(PgReservation::Granted(id))
    }

    /// Drops a reservation without a ledger row (the request never started).
    pub async fn release(&self, id: i64) -> Result<(), ClusterError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        release_in(&tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The settled spend and the outstanding reservations of `scope` in each period.
    pub async fn spend(
        &self,
        scope: &str,
        periods: &Periods,
    ) -> Result<[(f64, f64); 2], ClusterError> {
        let conn = self.conn().await?;
        let keys = periods.keys();
        let mut out = [(0.0, 0.0); 2];
        for r in conn
            .query(
                "SELECT period, spent_usd, reserved_usd FROM llmkit_spend
                 WHERE scope = $1 AND period = ANY($2)",
                &[&scope, &keys.to_vec()],
            )
            .await?
        {
            let period: String = r.get(0);
            let i = usize::from(period != keys[0]);
            out[i] = (r.get(1), r.get(2));
        }
        Ok(out)
    }
}

/// Deletes reservation `id` and takes its amount off the spend rows it was added to, inside
/// the caller's transaction. Returns the amount (0 when it was already gone).
pub(crate) async fn release_in(
    tx: &deadpool_postgres::Transaction<'_>,
    id: i64,
) -> Result<f64, ClusterError> {
    let Some(r) = tx
        .query_opt(
            "DELETE FROM llmkit_reservations WHERE id = $1 RETURNING scope, periods, amount_usd",
            &[&id],
        )
        .await?
    else {
        return Ok(0.0);
    };
    let scope: String = r.get(0);
    let mut periods: Vec<String> = r.get(1);
    periods.sort();
    let amount: f64 = r.get(2);
    for p in &periods {
        tx.execute(
            "UPDATE llmkit_spend SET reserved_usd = GREATEST(reserved_usd - $3, 0)
             WHERE scope = $1 AND period = $2",
            &[&scope, p, &amount],
        )
        .await?;
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_keys_sort_in_lock_order() {
        let p = Periods {
            day: "2026-12-06".into(),
            month: "2026-12".into(),
        };
        let k = p.keys();
        assert!(k[0] < k[1], "day rows are locked before month rows");
    }

    #[test]
    fn utc_periods() {
        let p = Periods::utc(0.0);
        assert_eq!(
            (p.day.as_str(), p.month.as_str()),
            ("1970-01-01", "1970-01")
        );
        // 2026-12-06T20:35:43Z, and the last second of a leap day.
        assert_eq!(Periods::utc(1_796_589_343.0).day, "2026-12-06");
        assert_eq!(Periods::utc(951_868_799.0).day, "2000-02-29");
        assert_eq!(Periods::utc(951_868_800.0).month, "2000-03");
    }
}
