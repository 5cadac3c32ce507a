//! Decode benchmark: loads a GGUF model, generates 128 tokens greedily from a fixed prompt, and
//! prints one JSON line with load time, time to first token, decode speed and peak memory.
//!
//! Usage: `bench_decode MODEL.gguf [--threads N] [--no-requant] [--tokens N] [--parallel N]
//! [--repeat N]` (`--parallel N`: N identical requests at once, reporting their aggregate speed;
//! `--repeat N`: the prompt N times over, separated by spaces, to time prompt processing), or
//! `bench_decode MODEL.gguf --convert-q8` to write (or find) the model's Q8_0 conversion and
//! print its path, or `bench_decode MODEL.gguf --second-turn [--history N]` to time the first
//! token of a second chat turn over an N-token history (default 1000) with the KV prefix cache
//! against the cold prefill of the same prompt, in one process.

// A benchmark or example: a failed unwrap ends the run, which is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, ExitCode};
use std::time::Instant;

use llmkit_local::{ChatTurn, GenerateRequest, KvCache, LoadOptions, LocalModel};

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
    second_turn: bool,
    history: usize,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!(
                "{msg}\nusage: bench_decode MODEL.gguf [--threads N] [--no-requant] [--tokens N] [--parallel N] [--repeat N] | --second-turn [--history N] | --convert-q8"
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
    if args.second_turn {
        return second_turn(args, &model, &opts);
    }

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

/// The KV prefix cache's size for `--second-turn` (the CLI's default cap).
const KV_CACHE_BYTES: usize = 256 << 20;

/// Milliseconds from the call to the first streamed piece of `req` on `model`, and the output.
fn time_to_first_token(
    model: &LocalModel,
    req: &GenerateRequest,
) -> Result<(f64, llmkit_local::GenerateOutput), llmkit_local::LocalError> {
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let out = model.generate(req, &mut |_| {
        first.get_or_insert_with(Instant::now);
        true
    })?;
    let first = first.unwrap_or_else(Instant::now);
    Ok(((first - started).as_secs_f64() * 1000.0, out))
}

/// `--second-turn`: a chat history of about `args.history` tokens (a system prompt and
/// exchanges about a made-up handbook), its first answer, then the second turn's question.
/// The second turn runs twice: on a model with the KV prefix cache, which kept the first
/// turn's state, and on one without (a cold prefill of the same prompt). Both answers must be
/// equal. `model` is the cold one; a second copy with the cache is loaded here.
fn second_turn(
    args: &Args,
    model: &LocalModel,
    opts: &LoadOptions,
) -> Result<serde_json::Value, llmkit_local::LocalError> {
    let cached_opts = LoadOptions {
        kv_cache: Some(KvCache::new(KV_CACHE_BYTES)),
        ..opts.clone()
    };
    let path = std::path::Path::new(&args.model);
    let warm = if args.no_requant {
        LocalModel::load_unconverted(path, &cached_opts)?
    } else {
        LocalModel::load(path, &cached_opts)?
    };
    let mut history = vec![ChatTurn::system(
        "You are the help desk of the Harbour Street library. Answer from the handbook \
         excerpts the user quotes, briefly and exactly.",
    )];
    let topics = [
        "opening hours",
        "membership",
        "loans",
        "renewals",
        "fines",
        "reading rooms",
        "printing",
        "study carrels",
        "children's corner",
        "archives",
        "events",
        "donations",
    ];
    let mut i = 0;
    while model.count_chat_tokens(&history)? + 60 < args.history {
        let topic = topics[i % topics.len()];
        history.push(ChatTurn::user(format!(
            "Handbook section {n}, {topic}: the rules on {topic} were revised in spring; staff \
             at the front desk explain them, members can read the full text online, and \
             exceptions need a written request to the head librarian. What changed about {topic}?",
            n = i + 1
        )));
        history.push(ChatTurn::assistant(format!(
            "Section {n} says the rules on {topic} were revised in spring. The front desk \
             explains them and exceptions need a written request.",
            n = i + 1
        )));
        i += 1;
    }
    history.push(ChatTurn::user(
        "Summarise what the handbook says about loans.",
    ));
    let greedy = |messages: Vec<ChatTurn>| GenerateRequest {
        messages,
        max_tokens: Some(args.tokens.min(16)),
        temperature: Some(0.0),
        ..Default::default()
    };
    // The first turn, on the cached model: its state is what the second turn reuses.
    let (first_ttft_ms, first) = time_to_first_token(&warm, &greedy(history.clone()))?;
    history.push(ChatTurn::assistant(first.text));
    history.push(ChatTurn::user("And what about renewals?"));
    let req = greedy(history);
    let (cold_ms, cold) = time_to_first_token(model, &req)?;
    let before = warm.kv_cache_stats().unwrap_or_default();
    let (warm_ms, reused_out) = time_to_first_token(&warm, &req)?;
    let after = warm.kv_cache_stats().unwrap_or_default();
    Ok(serde_json::json!({
        "model": model.name(),
        "threads": args.threads.unwrap_or_else(candle_core::utils::get_num_threads),
        "prompt_tokens": cold.prompt_tokens,
        "reused_tokens": after.reused_tokens - before.reused_tokens,
        "first_turn_ttft_ms": round1(first_ttft_ms),
        "cold_ttft_ms": round1(cold_ms),
        "warm_ttft_ms": round1(warm_ms),
        "ratio": (warm_ms / cold_ms * 1000.0).round() / 1000.0,
        "same_answer": cold == reused_out,
        "kv_cache_mb": round1(after.bytes as f64 / 1048576.0),
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
    let mut second_turn = false;
    let mut history = 1000;
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
            "--history" => {
                let v = it.next().ok_or("--history needs a value")?;
                history = v.parse::<usize>().map_err(|e| format!("--history: {e}"))?;
            }
            "--second-turn" => second_turn = true,
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
        second_turn,
        history: history.max(50),
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
