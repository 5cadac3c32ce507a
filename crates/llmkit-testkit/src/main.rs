//! The `llmkit-mock` binary: command-line flags to `MockConfig`, the "listening on" line, and a
//! clean exit on ctrl-c or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use llmkit_testkit::{Fault, MockConfig, MockServer, OrgConfig};

/// A deterministic fake OpenAI-compatible server for tests and benchmarks (not a real backend).
#[derive(Debug, Parser)]
#[command(name = "llmkit-mock", version)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Require this API key (`Authorization: Bearer KEY` or `api-key: KEY`).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Delay before each response starts, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
    /// Pace streamed chunks at this many tokens per second.
    #[arg(long, value_name = "N", value_parser = positive_f64)]
    tokens_per_sec: Option<f64>,
    /// Requests-per-minute limit.
    #[arg(long, value_name = "N")]
    rpm: Option<u32>,
    /// Tokens-per-minute limit.
    #[arg(long, value_name = "N")]
    tpm: Option<u32>,
    /// Probability (0..=1) that a request fails with one of --faults.
    #[arg(long, default_value_t = 0.0, value_name = "P", value_parser = probability)]
    fault_rate: f64,
    /// Fault kinds to draw from.
    #[arg(
        long,
        default_value = "500,503,429,reset,stall,truncate,badjson",
        value_name = "LIST",
        value_parser = fault_list
    )]
    faults: FaultList,
    /// Seed of the fault draws, for reproducible runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Append one JSON line per request to this file.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// How long batches stay in progress, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    batch_delay_ms: u64,
    /// How long fine-tuning jobs take to succeed, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    finetune_delay_ms: u64,
    /// Answer /v1/responses with 404, like a compatible server without the Responses API.
    #[arg(long)]
    no_responses: bool,
    /// Reject `response_format: json_schema` like a server that takes only `text` and
    /// `json_object`: with 400 (vLLM's wording, the default) or 500 (llama.cpp's).
    #[arg(
        long,
        value_name = "STATUS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "400",
        value_parser = ["400", "500"]
    )]
    no_json_schema: Option<String>,
    /// Reject streamed requests that carry `stream_options` (400), like older servers.
    #[arg(long)]
    no_stream_options: bool,
    /// Reject requests that carry `tools` (400), like a server without tool calling.
    #[arg(long)]
    no_tools: bool,
    /// Polls a background response takes before it is done.
    #[arg(long, default_value_t = 2, value_name = "N")]
    response_polls: u32,
    /// Require this admin key for /v1/organization/costs and /v1/organization/usage/*.
    #[arg(long, value_name = "KEY")]
    admin_key: Option<String>,
    /// The costs report bills this fraction more than was served (0.05: 5% more).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", value_parser = drift)]
    org_cost_drift: f64,
    /// The organisation reports also hold this never-served model, on the current day.
    #[arg(long, value_name = "NAME")]
    org_extra_model: Option<String>,
}

#[derive(Debug, Clone)]
struct FaultList(Vec<Fault>);

fn fault_list(s: &str) -> Result<FaultList, String> {
    Fault::parse_list(s)
        .map(FaultList)
        .map_err(|e| e.to_string())
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a probability between 0 and 1")),
    }
}

fn drift(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > -1.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a fraction above -1 (0.05 bills 5% more)"
        )),
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

impl From<Args> for MockConfig {
    fn from(a: Args) -> Self {
        MockConfig {
            port: a.port,
            api_key: a.api_key,
            latency_ms: a.latency_ms,
            tokens_per_sec: a.tokens_per_sec,
            rpm: a.rpm,
            tpm: a.tpm,
            fault_rate: a.fault_rate,
            faults: a.faults.0,
            seed: a.seed,
            log: a.log,
            batch_delay_ms: a.batch_delay_ms,
            finetune_delay_ms: a.finetune_delay_ms,
            no_responses: a.no_responses,
            no_json_schema: a.no_json_schema.and_then(|s| s.parse().ok()),
            no_stream_options: a.no_stream_options,
            no_tools: a.no_tools,
            response_polls: a.response_polls,
            org: OrgConfig {
                admin_key: a.admin_key,
                cost_drift: a.org_cost_drift,
                extra_model: a.org_extra_model,
            },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cfg = MockConfig::from(Args::parse());
    let server = match MockServer::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("llmkit-mock: cannot start: {e}\nhint: is the port already in use?");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "listening on {}", server.url()).and_then(|()| out.flush());
    drop(out);
    if let Err(e) = printed {
        eprintln!("llmkit-mock: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    wait_for_signal().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on ctrl-c or, on Unix, SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
