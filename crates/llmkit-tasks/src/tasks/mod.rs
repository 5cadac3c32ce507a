//! One module per task; each is a plain `async fn` over a [`crate::TaskRunner`].

pub(crate) mod classify;
pub(crate) mod extract;
pub(crate) mod qa;
pub(crate) mod summarize;
pub(crate) mod translate;
pub(crate) mod write;

use crate::chunk::chunk_text;
use crate::runner::TaskRunner;

/// The part of `text` that fits `budget` tokens (the first chunk) and whether it was cut.
pub(crate) fn fit(runner: &TaskRunner, text: &str, budget: usize) -> (String, bool) {
    if runner.tokens(text) <= budget {
        return (text.to_string(), false);
    }
    let first = chunk_text(text, runner.token_counter(), budget, 0)
        .into_iter()
        .next()
        .unwrap_or_default();
    (first, true)
}
