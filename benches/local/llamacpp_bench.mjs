// Decode benchmark for llama.cpp (through node-llama-cpp), the counterpart of
// llmkit-local's `bench_decode` example: same GGUF, same raw prompt, same thread
// count, greedy decoding. Prints one JSON line with the same fields.
//
// Usage: node llamacpp_bench.mjs MODEL.gguf [--threads N] [--tokens N] [--repeat N]
// (--repeat N: the prompt N times over, separated by spaces, to time prompt processing)
import fs from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

// Must stay identical to PROMPT in crates/llmkit-local/examples/bench_decode.rs.
const PROMPT = "Once upon a time, in a small village at the edge of a great forest, there lived";

function parseArgs(argv) {
    const args = { model: null, threads: 2, tokens: 128, repeat: 1 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--threads" || a === "--tokens" || a === "--repeat") {
            const v = Number(argv[++i]);
            if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
            args[a.slice(2)] = v;
        } else if (a.startsWith("--")) {
            throw new Error(`unknown option ${a}`);
        } else {
            args.model = a;
        }
    }
    if (!args.model) throw new Error("missing MODEL.gguf");
    return args;
}

/** A field of /proc/self/status in MB (VmHWM is the peak resident set size); 0 where unavailable. */
function procStatusMb(field) {
    try {
        const line = fs
            .readFileSync("/proc/self/status", "utf8")
            .split("\n")
            .find((l) => l.startsWith(`${field}:`));
        return line ? Math.round((parseInt(line.slice(field.length + 1), 10) / 1024) * 10) / 10 : 0;
    } catch {
        return 0;
    }
}

const round1 = (x) => Math.round(x * 10) / 10;

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (err) {
    console.error(`${err.message}\nusage: node llamacpp_bench.mjs MODEL.gguf [--threads N] [--tokens N] [--repeat N]`);
    process.exit(2);
}

// The node runtime and the native addon before any model is loaded: subtract to compare with a native binary.
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const baselineRssMb = procStatusMb("VmRSS");

const loadStart = performance.now();
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
// Passing threads explicitly matters: with the default threading the context hung on a 2-core machine.
const contextSize = Math.max(512, 32 * args.repeat + args.tokens + 64);
const context = await model.createContext({ contextSize, batchSize: 512, threads: args.threads });
const sequence = context.getSequence();
const loadMs = performance.now() - loadStart;

const promptIds = model.tokenize(Array(args.repeat).fill(PROMPT).join(" "), false);
const started = performance.now();
let first = null;
let completion = 0;
for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
    first ??= performance.now();
    if (model.isEogToken(token)) break;
    completion++;
    if (completion >= args.tokens) break;
}
const done = performance.now();
first ??= done;
const decodeS = (done - first) / 1000;

console.log(
    JSON.stringify({
        model: path.basename(args.model),
        engine: "llama.cpp",
        node_llama_cpp_threads: args.threads,
        llama_cpp: llama.llamaCppRelease.release,
        load_ms: round1(loadMs),
        ttft_ms: round1(first - started),
        decode_tok_s: round1(decodeS > 0 ? (completion - 1) / decodeS : 0),
        prompt_tokens: promptIds.length,
        completion_tokens: completion,
        peak_rss_mb: procStatusMb("VmHWM"),
        baseline_rss_mb: baselineRssMb,
    }),
);

await context.dispose();
await model.dispose();
await llama.dispose();
