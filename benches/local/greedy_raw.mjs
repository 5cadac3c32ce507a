// Greedy continuation of a raw prompt (no chat template, no BOS) with llama.cpp through
// node-llama-cpp, one thread: prints the prompt ids, the generated ids and their text.
// Usage: node greedy_raw.mjs MODEL.gguf PROMPT N
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
const [modelPath, prompt, n] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 1 });
const sequence = context.getSequence();
const ids = Array.from(model.tokenize(prompt, false));
const out = [];
for await (const token of sequence.evaluate(ids, { temperature: 0 })) {
  out.push(token);
  if (out.length >= Number(n)) break;
}
console.log(JSON.stringify({ prompt_ids: ids, ids: out, text: model.detokenize(out) }));
process.exit(0);
