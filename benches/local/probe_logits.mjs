// Records llama.cpp's next-token probabilities (top 10 per step) along its own greedy
// continuations of the reference prompts, to compare engines more finely than by the tokens
// they pick. Usage: node probe_logits.mjs MODEL.gguf REFERENCE.json OUT.json [--threads N]
import fs from "node:fs";
import { getLlama } from "node-llama-cpp";

const [modelPath, refPath, outPath] = process.argv.slice(2);
const threadsAt = process.argv.indexOf("--threads");
const threads = threadsAt > 0 ? Number(process.argv[threadsAt + 1]) : 2;
const reference = JSON.parse(fs.readFileSync(refPath, "utf8"));
const llama = await getLlama({ gpu: false });
const model = await llama.loadModel({ modelPath });
const cases = [];
for (const g of reference.generations) {
    // A fresh context per prompt, as the reference recorder's fresh sequence.
    const context = await model.createContext({ contextSize: 512, batchSize: 512, threads });
    const sequence = context.getSequence();
    const steps = [];
    const it = sequence.evaluateWithMetadata(g.prompt_ids, { probabilities: true }, { temperature: 0 });
    for await (const out of it) {
        const top = [...out.probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
        steps.push({ token: out.token, top });
        if (model.isEogToken(out.token) || steps.length >= g.output_ids.length + 1) break;
    }
    cases.push({ user: g.user, prompt_ids: g.prompt_ids, steps });
    await context.dispose();
}
fs.writeFileSync(outPath, JSON.stringify({ model: modelPath, cases }) + "\n");
await model.dispose();
await llama.dispose();
