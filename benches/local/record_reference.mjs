// Records llama.cpp reference data (tokenizer ids and greedy continuations) for
// SmolLM2-135M-Instruct so that llmkit-local's candle engine can be tested
// against llama.cpp without running it.
//
// Usage: node record_reference.mjs [MODEL.gguf] [OUT.json]
// Defaults: $LLMKIT_MODELS_DIR (or <repo>/models)/SmolLM2-135M-Instruct.Q4_1.gguf
// and <repo>/crates/llmkit-local/tests/fixtures/llamacpp_reference.json.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const modelsDir = process.env.LLMKIT_MODELS_DIR ?? path.join(repo, "models");
const modelPath = process.argv[2] ?? path.join(modelsDir, "SmolLM2-135M-Instruct.Q4_1.gguf");
const outPath =
    process.argv[3] ?? path.join(repo, "crates", "llmkit-local", "tests", "fixtures", "llamacpp_reference.json");

// Passing threads explicitly matters: with the default threading the context hung on a 2-core machine.
const THREADS = Number(process.env.THREADS ?? Math.min(2, os.availableParallelism()));
const MAX_TOKENS = 32;
const SYSTEM = "You are a helpful assistant.";

const TOKENIZE_CASES = [
    ["ascii", "Hello, world!"],
    ["leading_space", " Hello world"],
    ["multi_space", "a  b   c\n\nd\te"],
    ["code", "fn main() {\n    println!(\"{}\", 1 + 2);\n}"],
    ["numbers", "In 2024, 3.14159 * 1000 = 3141.59"],
    ["chinese", "你好，世界！今天天气很好。"],
    ["emoji", "I love 🦀 and 🚀! 👍🏽"],
    ["accents", "Café naïve résumé"],
    ["chatml", "<|im_start|>user\nHi<|im_end|>"],
];

const PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "List three primary colors."];

/** Renders a one-turn ChatML conversation exactly as SmolLM2's template does with a system message. */
function renderChatml(user) {
    return `<|im_start|>system\n${SYSTEM}<|im_end|>\n<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;
}

/** The ggml CPU backend variant loaded into this process (e.g. `haswell`, `sapphirerapids`). */
function cpuBuild() {
    const maps = fs.readFileSync("/proc/self/maps", "utf8");
    return maps.match(/libggml-cpu-([a-z0-9_]+)\.so/)?.[1] ?? "unknown";
}

const nlcVersion = JSON.parse(
    fs.readFileSync(path.join(here, "node_modules", "node-llama-cpp", "package.json"), "utf8"),
).version;

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });

const tokenize = TOKENIZE_CASES.map(([name, text]) => ({
    name,
    text,
    ids_plain: Array.from(model.tokenize(text, false)),
    ids_special: Array.from(model.tokenize(text, true)),
}));

const generations = [];
for (const user of PROMPTS) {
    // A fresh context per prompt: an abandoned metadata iterator keeps its sequence busy.
    const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: THREADS });
    const sequence = context.getSequence();
    const prompt = renderChatml(user);
    const promptIds = Array.from(model.tokenize(prompt, true));
    const output = [];
    // llama.cpp's two most probable next tokens at every step, so that a test can tell a
    // parting at a near-tie (decided by rounding) from a real difference.
    const steps = [];
    const it = sequence.evaluateWithMetadata(promptIds, { probabilities: true }, { temperature: 0 });
    for await (const { token, probabilities } of it) {
        const top = [...probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2);
        steps.push({
            token,
            piece: model.isEogToken(token) ? "" : model.detokenize([token]),
            top2: top.map(([id, p]) => [id, Number(p.toFixed(6))]),
        });
        if (model.isEogToken(token)) break;
        output.push(token);
        if (output.length >= MAX_TOKENS) break;
    }
    generations.push({
        user,
        prompt,
        prompt_ids: promptIds,
        output_ids: output,
        output_text: model.detokenize(output),
        stopped_on_eos: output.length < MAX_TOKENS,
        steps,
    });
    await context.dispose();
}

const reference = {
    generator: "benches/local/record_reference.mjs",
    node_llama_cpp: nlcVersion,
    llama_cpp: llama.llamaCppRelease,
    ggml_cpu_build: cpuBuild(),
    model: path.basename(modelPath),
    model_bytes: fs.statSync(modelPath).size,
    threads: THREADS,
    notes: {
        ids_plain: "model.tokenize(text, false): special-token text such as <|im_start|> is tokenized as plain text",
        ids_special: "model.tokenize(text, true): special-token text is parsed into special token ids",
        prompt_ids: "the rendered ChatML prompt tokenized with special-token parsing; no BOS token is added",
        output_ids: `greedy (temperature 0) continuation, at most ${MAX_TOKENS} tokens, stopping before an end-of-generation token`,
        steps: "per generated position (the end-of-generation one included): the token llama.cpp picked, its text, and llama.cpp's two most probable tokens as [id, probability]",
        ggml_cpu_build: "the libggml-cpu variant llama.cpp loaded for this CPU (its kernels and summation order differ between variants)",
    },
    special_tokens: { bos: model.tokens.bos, eos: model.tokens.eos },
    tokenize,
    generations,
};

fs.mkdirSync(path.dirname(outPath), { recursive: true });
fs.writeFileSync(outPath, JSON.stringify(reference, null, 2) + "\n");
console.log(`wrote ${outPath}`);
for (const g of generations) console.log(`${JSON.stringify(g.user)} -> ${JSON.stringify(g.output_text)}`);

await model.dispose();
await llama.dispose();
