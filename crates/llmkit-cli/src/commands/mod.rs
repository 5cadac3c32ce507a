//! One module per subcommand; each exposes `run`.

pub mod ask;
pub mod complete;
pub mod config;
pub mod embed;
pub mod models;
pub mod tokens;
mod request;
