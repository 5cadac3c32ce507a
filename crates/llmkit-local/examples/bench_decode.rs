//! Decode benchmark: loads a GGUF model, generates 128 tokens greedily from a fixed prompt, and
//! prints one JSON line with load time, time to first token, decode speed and peak memory.
//!
//! Usage: `bench_decode MODEL.gguf [--threads N] [--no-requant] [--tokens N] [--parallel N]
//! [--repeat N]` (`--parallel N`: N identical requests at once, reporting their aggregate speed;
//! `--repeat N`: the prompt N times over, separated by spaces, to time prompt processing), or
//! `bench_decode MODEL.gguf --convert-q8` to write (or find) the model's Q8_0 conversion and
//! print its path.

// A benchmark or example: a failed unwrap ends the run, which is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, ExitCode};
use std::time::Instant;

use llmkit_local::{GenerateRequest, LoadOptions, LocalModel};

const PROMPT: &str =
    "Once upon a time, in a small village at the edge of a great forest, there lived";

struct Args {
    model: String,
    threads: Option<usize>,
    no_requant: bool,
    convert_q8: bool,
    tokens: u32,
    parallel: usize,
    repeat: usize,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!(
                "{msg}\nusage: bench_decode MODEL.gguf [--threads N] [--no-requant] [--tokens N] [--parallel N] [--repeat N] | --convert-q8"
            );
            return ExitCode::from(2);
        }
    };
    if args.convert_q8 {
        let opts = LoadOptions {
            on_notice: Some(std::sync::Arc::new(|m: &str| eprintln!("note: {m}"))),
            ..Default::default()
        };
        return match llmkit_local::convert_to_q8_0(std::path::Path::new(&args.model), &opts) {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    // The native llama engine takes the thread count from LoadOptions; candle (other models)
    // reads it from the environment once, at first use, and setting the variable from inside
    // would need `unsafe`, so run a child process with it set as well.
    if let Some(n) = args.threads
        && std::env::var("CANDLE_NUM_THREADS").ok() != Some(n.to_string())
    {
        return reexec_with_threads(n);
    }
    match run(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<serde_json::Value, llmkit_local::LocalError> {
    let opts = LoadOptions {
        on_notice: Some(std::sync::Arc::new(|m: &str| eprintln!("note: {m}"))),
        threads: args.threads,
        ..Default::default()
    };
    let path = std::path::Path::new(&args.model);
    let start = Instant::now();
    let model = if args.no_requant {
        LocalModel::load_unconverted(path, &opts)?
    } else {
        LocalModel::load(path, &opts)?
    };
    let load_ms = start.elapsed().as_secs_f64() * 1000.0;

    let req = GenerateRequest {
        raw_prompt: Some(vec![PROMPT; args.repeat].join(" ")),
        max_tokens: Some(args.tokens),
        temperature: Some(0.0),
        ..Default::default()
    };
    if args.parallel > 1 {
        return Ok(run_parallel(&model, &req, args.parallel, load_ms));
    }
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let out = model.generate(&req, &mut |_| {
        first.get_or_insert_with(Instant::now);
        true
    })?;
    let done = Instant::now();
    let first = first.unwrap_or(done);
    let ttft_ms = (first - started).as_secs_f64() * 1000.0;
    let decode_s = (done - first).as_secs_f64();
    let decoded = out.completion_tokens.saturating_sub(1);
    let decode_tok_s = if decode_s > 0.0 {
        f64::from(decoded) / decode_s
    } else {
        0.0
    };
    Ok(serde_json::json!({
        "model": model.name(),
        "requant": !args.no_requant,
        "threads": args.threads.unwrap_or_else(candle_core::utils::get_num_threads),
        "load_ms": round1(load_ms),
        "ttft_ms": round1(ttft_ms),
        "decode_tok_s": round1(decode_tok_s),
        "prompt_tokens": out.prompt_tokens,
        "completion_tokens": out.completion_tokens,
        "peak_rss_mb": peak_rss_mb(),
    }))
}

/// Runs `n` copies of `req` at once and reports their aggregate decode speed.
fn run_parallel(
    model: &LocalModel,
    req: &GenerateRequest,
    n: usize,
    load_ms: f64,
) -> serde_json::Value {
    let started = Instant::now();
    let outputs: Vec<Result<u32, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    model
                        .generate(req, &mut |_| true)
                        .map(|o| o.completion_tokens)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a request panicked".into()))
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let tokens: u32 = outputs.iter().filter_map(|r| r.as_ref().ok()).sum();
    let errors: Vec<&String> = outputs.iter().filter_map(|r| r.as_ref().err()).collect();
    let stats = model.batch_stats();
    serde_json::json!({
        "model": model.name(),
        "parallel": n,
        "load_ms": round1(load_ms),
        "completion_tokens": tokens,
        "wall_s": round1(wall),
        "aggregate_tok_s": round1(f64::from(tokens) / wall),
        "batched_steps": stats.map(|s| s.batched_steps),
        "steps": stats.map(|s| s.steps),
        "max_batch": stats.map(|s| s.max_batch),
        "errors": errors,
        "peak_rss_mb": peak_rss_mb(),
    })
}

fn parse_args() -> Result<Args, String> {
    let mut model = None;
    let mut threads = None;
    let mut no_requant = false;
    let mut convert_q8 = false;
    let mut parallel = 1;
    let mut tokens = 128;
    let mut repeat = 1;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--threads" => {
                let v = it.next().ok_or("--threads needs a value")?;
                threads = Some(v.parse::<usize>().map_err(|e| format!("--threads: {e}"))?);
            }
            "--tokens" => {
                let v = it.next().ok_or("--tokens needs a value")?;
                tokens = v.parse::<u32>().map_err(|e| format!("--tokens: {e}"))?;
            }
            "--parallel" => {
                let v = it.next().ok_or("--parallel needs a value")?;
                parallel = v.parse::<usize>().map_err(|e| format!("--parallel: {e}"))?;
            }
            "--repeat" => {
                let v = it.next().ok_or("--repeat needs a value")?;
                repeat = v.parse::<usize>().map_err(|e| format!("--repeat: {e}"))?;
            }
            "--no-requant" => no_requant = true,
            "--convert-q8" => convert_q8 = true,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => model = Some(other.to_string()),
        }
    }
    Ok(Args {
        model: model.ok_or("missing MODEL.gguf")?,
        threads: threads.filter(|&n| n > 0),
        no_requant,
        convert_q8,
        tokens,
        parallel: parallel.max(1),
        repeat: repeat.max(1),
    })
}

fn reexec_with_threads(n: usize) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("error: cannot find this executable to set the thread count: {err}");
            return ExitCode::FAILURE;
        }
    };
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("CANDLE_NUM_THREADS", n.to_string())
        .env("RAYON_NUM_THREADS", n.to_string())
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(err) => {
            eprintln!("error: cannot re-run with CANDLE_NUM_THREADS={n}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Peak resident set size (VmHWM) in MB, from /proc; 0 where unavailable.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    round1(kb / 1024.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
