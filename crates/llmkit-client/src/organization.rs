//! The organisation usage and cost reports on `HttpClient` (`GET /organization/costs`,
//! `GET /organization/usage/completions`): every page of a query, followed through
//! `next_page`, with the same headers, retries and error hints as chat.
//!
//! These endpoints take an admin key: the caller builds this client from a `ClientConfig`
//! that holds one.

use llmkit_types::{CostsResult, UsageBucket, UsageCompletionsResult, UsagePage, UsageQuery};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::error::ClientError;
use crate::http::HttpClient;

/// Pages followed at most for one query: far more than any date range needs (a year of daily
/// buckets is 12 pages of 31), so that a server whose cursor never ends cannot loop us.
const MAX_PAGES: usize = 1_000;
/// Buckets asked for per page: the most each endpoint allows for daily buckets.
const COMPLETIONS_PAGE: u32 = 31;
const COSTS_PAGE: u32 = 180;

impl HttpClient {
    /// `GET /organization/usage/completions`: every bucket of `query`, all pages. A `limit`
    /// left unset asks for the most daily buckets a page may hold.
    pub async fn usage_completions(
        &self,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket<UsageCompletionsResult>>, ClientError> {
        self.all_pages(
            "organization/usage/completions",
            query,
            COMPLETIONS_PAGE,
            "the completions usage",
        )
        .await
    }

    /// `GET /organization/costs`: every bucket of `query`, all pages.
    pub async fn costs(
        &self,
        query: &UsageQuery,
    ) -> Result<Vec<UsageBucket<CostsResult>>, ClientError> {
        self.all_pages("organization/costs", query, COSTS_PAGE, "the costs")
            .await
    }

    async fn all_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &UsageQuery,
        page_size: u32,
        what: &str,
    ) -> Result<Vec<UsageBucket<T>>, ClientError> {
        let mut query = query.clone();
        query.limit = query.limit.or(Some(page_size));
        let mut buckets = Vec::new();
        for _ in 0..MAX_PAGES {
            let url = format!("{path}?{}", encode(&query));
            let page: UsagePage<T> = self
                .execute(Method::GET, &url, None, None, what)
                .await?
                .body;
            buckets.extend(page.data);
            if !page.has_more {
                return Ok(buckets);
            }
            match page.next_page {
                Some(next) if Some(&next) != query.page.as_ref() && !next.is_empty() => {
                    query.page = Some(next);
                }
                _ => {
                    return Err(ClientError::InvalidInput(format!(
                        "{what}: the server said there are more pages but gave no new \
                         `next_page` cursor"
                    )));
                }
            }
        }
        Err(ClientError::InvalidInput(format!(
            "{what}: the server kept answering `has_more` after {MAX_PAGES} pages"
        )))
    }
}

/// The query string, percent-encoded.
fn encode(query: &UsageQuery) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in query.pairs() {
        out.append_pair(name, &value);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_with_repeated_array_names() {
        let mut q = UsageQuery::daily(0, 86_400, "model");
        q.group_by.push("project_id".into());
        q.page = Some("a b/c=".into());
        assert_eq!(
            encode(&q),
            "start_time=0&end_time=86400&bucket_width=1d&group_by=model&group_by=project_id\
             &page=a+b%2Fc%3D"
        );
    }
}
