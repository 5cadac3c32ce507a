//! The mock server's configuration: `MockConfig` and the injectable `Fault` kinds.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Everything that shapes how a [`crate::MockServer`] behaves.
///
/// `Default` gives a quiet, fast, fault-free server on a free port.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, requests must carry this key (`Authorization: Bearer` or `api-key`).
    pub api_key: Option<String>,
    /// Delay before any response starts (time to first byte).
    pub latency_ms: u64,
    /// Pace of streamed content chunks; `None` sends them as fast as possible.
    pub tokens_per_sec: Option<f64>,
    /// Requests-per-minute limit, enforced with a continuously refilled bucket.
    pub rpm: Option<u32>,
    /// Tokens-per-minute limit (prompt estimate + `max_tokens`), same bucket kind.
    pub tpm: Option<u32>,
    /// Probability in `[0, 1]` that a request fails with one of `faults`.
    pub fault_rate: f64,
    /// Fault kinds to choose from (uniformly) when a request is picked to fail.
    pub faults: Vec<Fault>,
    /// Seed of the fault RNG, so that a run is reproducible.
    pub seed: u64,
    /// Append one JSON line per request to this file.
    pub log: Option<PathBuf>,
    /// How long a batch stays `in_progress` before it completes.
    pub batch_delay_ms: u64,
    /// How long a fine-tuning job takes from creation to `succeeded` (validation, queue and
    /// training each take their share).
    pub finetune_delay_ms: u64,
    /// Answer every `/v1/responses` path with 404, as a compatible server without the
    /// Responses API does.
    pub no_responses: bool,
    /// Reject chat requests with `response_format: json_schema` with this status (400 as
    /// vLLM words it, 500 as llama.cpp does), like a server that takes only `text` and
    /// `json_object`; its `json_object` answers then follow a schema quoted in the system
    /// message.
    pub no_json_schema: Option<u16>,
    /// Reject streamed chat requests that carry `stream_options` (400).
    pub no_stream_options: bool,
    /// Reject chat requests that carry `tools` (400), like a server without tool calling.
    pub no_tools: bool,
    /// How many polls (`GET /v1/responses/{id}`) a background response takes: it is
    /// `queued`, then `in_progress` on the last poll before it is done.
    pub response_polls: u32,
    /// The organisation usage and cost reports: their key and planted faults.
    pub org: OrgConfig,
}

/// How `/v1/organization/costs` and `/v1/organization/usage/completions` answer. They
/// report what the server actually served; these settings plant the faults a
/// reconciliation must find.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgConfig {
    /// When set, the reports need this admin key (and `api_key` does not open them).
    pub admin_key: Option<String>,
    /// The costs report bills this fraction more than the served tokens cost (0.05: 5%).
    pub cost_drift: f64,
    /// The reports also hold this model, never served, in the bucket of the current day.
    pub extra_model: Option<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            port: 0,
            api_key: None,
            latency_ms: 0,
            tokens_per_sec: None,
            rpm: None,
            tpm: None,
            fault_rate: 0.0,
            faults: Fault::ALL.to_vec(),
            seed: 0,
            log: None,
            batch_delay_ms: 0,
            finetune_delay_ms: 0,
            no_responses: false,
            no_json_schema: None,
            no_stream_options: false,
            no_tools: false,
            response_polls: 2,
            org: OrgConfig::default(),
        }
    }
}

/// A failure the server can inject instead of a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 500 with an OpenAI `server_error` body.
    S500,
    /// 503 with an OpenAI `server_error` body ("overloaded").
    S503,
    /// 429 `rate_limit_exceeded` with short `Retry-After` / `retry-after-ms`.
    S429,
    /// The connection is reset (RST) before any byte of the response is sent.
    Reset,
    /// Status and headers (and for streams the role chunk) are sent, then nothing.
    Stall,
    /// The body stops part-way and the connection is cut.
    Truncate,
    /// A 200 `application/json` whose body is not JSON (for streams: a bad SSE event).
    BadJson,
}

impl Fault {
    /// Every fault kind, in the order of their names in `--faults`.
    pub const ALL: [Fault; 7] = [
        Fault::S500,
        Fault::S503,
        Fault::S429,
        Fault::Reset,
        Fault::Stall,
        Fault::Truncate,
        Fault::BadJson,
    ];

    /// The name used on the command line, in logs and in `x-mock-fault`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::S500 => "500",
            Fault::S503 => "503",
            Fault::S429 => "429",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Truncate => "truncate",
            Fault::BadJson => "badjson",
        }
    }

    /// Parses a comma-separated list such as `500,reset,stall`; empty items are skipped.
    pub fn parse_list(list: &str) -> Result<Vec<Fault>, FaultParseError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Fault::from_str)
            .collect()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of the known kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault kind `{0}`\nhint: use one of 500, 503, 429, reset, stall, truncate, badjson"
)]
pub struct FaultParseError(pub String);

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| FaultParseError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("BadJSON".parse::<Fault>(), Ok(Fault::BadJson));
        assert!("404".parse::<Fault>().is_err());
    }

    #[test]
    fn fault_list_parses_and_rejects() {
        assert_eq!(
            Fault::parse_list("500, reset,,stall").unwrap(),
            vec![Fault::S500, Fault::Reset, Fault::Stall]
        );
        let err = Fault::parse_list("500,boom").unwrap_err();
        assert!(err.to_string().contains("hint:"));
    }

    #[test]
    fn default_is_quiet() {
        let c = MockConfig::default();
        assert_eq!(c.port, 0);
        assert_eq!(c.fault_rate, 0.0);
        assert!(c.api_key.is_none() && c.rpm.is_none() && c.log.is_none());
    }
}
