//! `GatewayError`: why the gateway could not start or a key command failed. Errors of a
//! single request are OpenAI error bodies (`api_error::ApiError`), not this type.

use std::net::SocketAddr;

use llmkit_client::ClientError;
use llmkit_store::StoreError;

/// A failure to start the gateway or to manage keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The upstream client could not be built.
    #[error("upstream: {0}")]
    Client(Box<ClientError>),

    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// No key has this id (or it is revoked, for `rotate`).
    #[error("no live key with id `{0}`")]
    UnknownKey(String),

    /// PostgreSQL or Redis (the replicas' shared state) failed.
    #[error(transparent)]
    Cluster(#[from] llmkit_cluster::ClusterError),

    /// The shared state needs Tokio's multi-threaded runtime.
    #[error("the gateway's shared store needs the multi-threaded Tokio runtime")]
    Runtime,

    /// A route names no upstream.
    #[error("the route of model `{0}` has no upstream")]
    EmptyRoute(String),

    /// A key's settings are unusable.
    #[error("invalid key settings: {0}")]
    InvalidKey(String),
}

impl From<ClientError> for GatewayError {
    fn from(e: ClientError) -> Self {
        Self::Client(Box::new(e))
    }
}

impl GatewayError {
    /// A one-line suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Bind { .. } => Some(
                "another process may use the port: pick another with --port, or --port 0 for any free one"
                    .to_string(),
            ),
            Self::Client(e) => e.hint(),
            Self::Store(e) => e.hint(),
            Self::Cluster(e) => e.hint(),
            Self::Runtime => Some(
                "build the runtime with tokio::runtime::Builder::new_multi_thread()".to_string(),
            ),
            Self::UnknownKey(_) => Some("`llmkit keys list` shows the keys".to_string()),
            Self::EmptyRoute(_) => Some(
                "list at least one profile for it in `[gateway.routes]`, or remove the route"
                    .to_string(),
            ),
            Self::InvalidKey(_) => Some(
                "names must not be empty; budgets are positive USD amounts; limits are at least 1"
                    .to_string(),
            ),
        }
    }

    /// True when the user's input is at fault (not a run-time failure).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::UnknownKey(_)
                | Self::InvalidKey(_)
                | Self::EmptyRoute(_)
                | Self::Cluster(llmkit_cluster::ClusterError::BadUrl { .. })
        )
    }
}
