// Records llama.cpp's greedy continuations on the synthetic qwen2/qwen3/phi3/gemma3 models that
// llmkit-local's `write_synthetic_models` test writes (see crates/llmkit-local/tests/it/
// architectures.rs), one thread, raw prompts (no template, no BOS), stopping before an
// end-of-generation token.
// Usage: [ARCHS=a,b] node record_synthetic.mjs DIR OUT.json [TOKENS]
// (ARCHS=llama-q4_k_m records the K-quant model for synthetic_kquant_reference.json.)
import fs from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [dir, outPath, tokensArg] = process.argv.slice(2);
if (!dir || !outPath) {
  console.error("usage: node record_synthetic.mjs DIR OUT.json [TOKENS]");
  process.exit(2);
}
const tokens = Number(tokensArg ?? 24);
const archs = process.env.ARCHS ? process.env.ARCHS.split(",") : ["qwen2", "qwen3", "phi3", "gemma3"];
// Long enough to cross gemma3's 8-position sliding window in the prompt itself.
const prompts = [
  "The capital of France is",
  "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
  "Once upon a time, in a small village by the sea, there lived an old fisherman who",
];
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const pkg = JSON.parse(
  fs.readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url), "utf8"),
);
const models = {};
for (const arch of archs) {
  const modelPath = path.join(dir, `${arch}-synthetic.gguf`);
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  models[arch] = [];
  for (const prompt of prompts) {
    const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 1 });
    const sequence = context.getSequence();
    const ids = [];
    // Per step: the piece of text the token adds and the two highest probabilities, so a
    // test can tell a parting at a near-tie from a real difference.
    const steps = [];
    const it = sequence.evaluateWithMetadata(
      model.tokenize(prompt, false),
      { probabilities: true },
      { temperature: 0 },
    );
    for await (const { token, probabilities } of it) {
      if (model.isEogToken(token)) break;
      const before = model.detokenize(ids);
      ids.push(token);
      const top = [...probabilities.values()].sort((a, b) => b - a);
      steps.push({ piece: model.detokenize(ids).slice(before.length), p1: top[0], p2: top[1] ?? 0 });
      if (ids.length >= tokens) break;
    }
    models[arch].push({ prompt, ids, text: model.detokenize(ids), steps });
    await context.dispose();
  }
  await model.dispose();
}
const out = {
  node_llama_cpp: pkg.version,
  llama_cpp: llama.llamaCppRelease,
  models,
};
fs.writeFileSync(outPath, JSON.stringify(out, null, 1) + "\n");
console.error(`wrote ${outPath}`);
process.exit(0);
