//! `ClusterError`: every way the shared stores fail, each with a hint.

use std::path::PathBuf;

/// A failure of PostgreSQL, Redis or the local spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// PostgreSQL could not be reached or a pooled connection could not be had in time.
    #[error("PostgreSQL is unavailable: {0}")]
    PgUnavailable(String),

    /// PostgreSQL answered with an error.
    #[error("PostgreSQL error: {0}")]
    Pg(#[from] tokio_postgres::Error),

    /// The database's schema is newer than this build knows.
    #[error("the PostgreSQL schema has version {found}, newer than this llmkit knows ({known})")]
    SchemaTooNew { found: i32, known: i32 },

    /// Redis could not be reached or did not answer in time.
    #[error("Redis is unavailable: {0}")]
    RedisUnavailable(String),

    /// Redis answered with an error.
    #[error("Redis error: {0}")]
    Redis(String),

    /// The URL could not be parsed.
    #[error("invalid {what} URL: {message}")]
    BadUrl { what: &'static str, message: String },

    /// The local ledger spool could not be written or read.
    #[error("the ledger spool {} failed: {source}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stored value could not be decoded.
    #[error("stored data could not be decoded: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ClusterError {
    /// A one-line suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::PgUnavailable(_) => {
                "check that PostgreSQL runs and that the `store` URL in [gateway] names it (scripts/services.sh starts one for development)".to_string()
            }
            Self::SchemaTooNew { .. } => {
                "upgrade llmkit on every replica, or point [gateway] store at another database".to_string()
            }
            Self::RedisUnavailable(_) => {
                "check that Redis runs and that the `redis` URL in [gateway] names it (scripts/services.sh starts one for development)".to_string()
            }
            Self::BadUrl { what, .. } => format!(
                "write the {what} URL as {}",
                if *what == "PostgreSQL" {
                    "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                } else {
                    "redis://HOST[:PORT][/DB]"
                }
            ),
            Self::Spool { .. } => {
                "check the free space and permissions of the gateway's state directory".to_string()
            }
            Self::Pg(_) | Self::Redis(_) | Self::Decode(_) => return None,
        })
    }

    /// True when the service could not be reached (a degraded mode applies), as opposed
    /// to an answer that was an error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::PgUnavailable(_) | Self::RedisUnavailable(_) => true,
            Self::Pg(e) => e.is_closed() || e.as_db_error().is_none(),
            _ => false,
        }
    }

    pub(crate) fn from_redis(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            Self::RedisUnavailable(e.to_string())
        } else {
            Self::Redis(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reachability_error_has_a_hint() {
        for e in [
            ClusterError::PgUnavailable("x".into()),
            ClusterError::RedisUnavailable("x".into()),
            ClusterError::SchemaTooNew { found: 9, known: 1 },
            ClusterError::BadUrl {
                what: "Redis",
                message: "x".into(),
            },
        ] {
            assert!(e.hint().is_some(), "{e}");
            assert!(!e.to_string().contains("hint"), "{e}");
        }
        assert!(ClusterError::PgUnavailable("x".into()).is_unavailable());
        assert!(!ClusterError::Redis("x".into()).is_unavailable());
    }
}
