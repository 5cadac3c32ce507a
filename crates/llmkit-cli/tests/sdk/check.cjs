// The official OpenAI Node SDK against `llmkit serve`, unchanged: chat, streamed chat,
// embeddings, the model list, and the SDK's own error classes for 401, 429 and 400.
//
// Run by run.sh with GATEWAY_URL (http://host:port), and the virtual keys in KEY (any
// model, no limits), BUDGET_KEY (a budget too small for any request) and RPM_KEY (a limit
// of RPM requests per minute), with BUDGET_ID and RPM_ID, their ids in /metrics. Exits non-zero with a message on the first check that fails.
'use strict';

const { OpenAI, AuthenticationError, BadRequestError, RateLimitError } = require('openai');
const { VERSION } = require('openai/version');

const GATEWAY = process.env.GATEWAY_URL;
const BASE = `${GATEWAY}/v1`;
const MODEL = 'gpt-4o-mini';

function check(cond, what) {
  if (!cond) {
    console.error(`node sdk: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`node sdk: ok: ${what}`);
}

// The gateway's count of its own refusals of `keyId` for `reason`, from /metrics.
async function refusals(keyId, reason) {
  const text = await (await fetch(`${GATEWAY}/metrics`)).text();
  const line = `llmkit_gateway_refusals_total{key="${keyId}",reason="${reason}"} `;
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length)) : 0;
}

// Runs `call` and returns the error it throws (failing the check when it throws none).
async function thrown(call, what) {
  try {
    await call();
  } catch (e) {
    return e;
  }
  check(false, what);
  return null;
}

async function main() {
  console.log(`node sdk: openai ${VERSION}`);
  const client = new OpenAI({ baseURL: BASE, apiKey: process.env.KEY, timeout: 30000 });
  const messages = [{ role: 'user', content: 'Say hello to the SDK test' }];

  // Chat, whole.
  const resp = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 50 });
  const text = resp.choices[0].message.content;
  check(typeof text === 'string' && text.length > 0, `chat has content (${JSON.stringify(text)})`);
  check(resp.usage && resp.usage.total_tokens > 0, 'chat reports usage');

  // Chat, streamed, with the usage chunk asked for.
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 50,
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    for (const choice of chunk.choices) streamed += choice.delta.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  check(chunks > 1, `the stream came in ${chunks} chunks`);
  check(streamed === text, 'the streamed text equals the whole answer');
  check(usage && usage.completion_tokens > 0, 'the stream ends with usage');

  // Embeddings: the SDK asks for base64 and decodes it; floats must agree.
  const input = ['one', 'two'];
  const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input });
  const floats = await client.embeddings.create({
    model: 'text-embedding-3-small',
    input,
    encoding_format: 'float',
  });
  check(emb.data.length === 2 && emb.data[0].embedding.length > 0, 'embeddings for two inputs');
  check(
    emb.data[1].embedding.every((x, i) => Math.abs(x - floats.data[1].embedding[i]) < 1e-6),
    'base64 and float embeddings agree',
  );

  // The model list.
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  check(ids.includes(MODEL), `the model list has ${MODEL} (${ids.length} models)`);

  // 401: a well-formed key the gateway never issued.
  const bad = new OpenAI({ baseURL: BASE, apiKey: `lk-000000000000-${'0'.repeat(48)}`, maxRetries: 0 });
  let e = await thrown(() => bad.models.list(), 'a wrong key is refused');
  check(e instanceof AuthenticationError && e.status === 401, 'a wrong key raises AuthenticationError (401)');
  check(e.code === 'invalid_api_key', `its code is invalid_api_key (${e.code})`);

  // 400: a model without a known price under a budget.
  const budget = new OpenAI({ baseURL: BASE, apiKey: process.env.BUDGET_KEY, timeout: 30000 });
  e = await thrown(
    () => budget.chat.completions.create({ model: 'no-such-priced-model', messages }),
    'an unpriced model under a budget is refused',
  );
  check(e instanceof BadRequestError && e.status === 400, 'an unpriced model raises BadRequestError (400)');
  check(e.code === 'model_unpriced', `its code is model_unpriced (${e.code})`);

  // 429 from a used-up budget: RateLimitError at once, since the gateway says
  // `x-should-retry: false` (the SDK would otherwise sleep its hour-long Retry-After).
  const budgetId = process.env.BUDGET_ID;
  const before = await refusals(budgetId, 'budget');
  e = await thrown(
    () => budget.chat.completions.create({ model: MODEL, messages, max_tokens: 50 }),
    'a used-up budget is refused',
  );
  check(e instanceof RateLimitError && e.status === 429, 'a used-up budget raises RateLimitError (429)');
  check(e.code === 'insufficient_quota', `its code is insufficient_quota (${e.code})`);
  check(Number(e.headers.get('retry-after')) > 60, 'it carries Retry-After');
  check(e.headers.get('x-should-retry') === 'false', 'and x-should-retry: false');
  const after = await refusals(budgetId, 'budget');
  check(after - before === 1, `the SDK did not retry (${after - before} tries)`);

  // 429 from the key's RPM limit: the SDK waits for retry-after-ms and its retry succeeds.
  const rpmId = process.env.RPM_ID;
  const limited = new OpenAI({ baseURL: BASE, apiKey: process.env.RPM_KEY, timeout: 30000 });
  const once = limited.withOptions({ maxRetries: 0 });
  let refused = null;
  for (let i = 0; i < 200 && !refused; i += 1) {
    try {
      const { response } = await once.chat.completions
        .create({ model: MODEL, messages, max_tokens: 5 })
        .withResponse();
      if (response.headers.get('x-ratelimit-limit-requests') !== process.env.RPM) {
        check(false, 'answers carry x-ratelimit-limit-requests');
      }
    } catch (err) {
      if (!(err instanceof RateLimitError)) throw err;
      const waitMs = Number(err.headers.get('retry-after-ms'));
      if (waitMs < 200) {
        // The next request is due too soon for the check below to see a refusal.
        await new Promise((r) => setTimeout(r, waitMs));
      } else {
        refused = err;
      }
    }
  }
  check(refused !== null, 'the RPM limit refused a request');
  check(refused.code === 'rate_limit_exceeded', 'an RPM refusal raises RateLimitError');
  check(refused.headers.get('x-ratelimit-remaining-requests') === '0', 'none remain');
  const rpmBefore = await refusals(rpmId, 'rpm');
  const started = Date.now();
  const ok = await limited.chat.completions.create({ model: MODEL, messages, max_tokens: 5 });
  const took = (Date.now() - started) / 1000;
  const rpmAfter = await refusals(rpmId, 'rpm');
  check(Boolean(ok.choices[0].message.content), 'after its retry the request succeeded');
  check(rpmAfter - rpmBefore >= 1, `the SDK was refused first and retried (${rpmAfter - rpmBefore} refusals)`);
  check(took >= 0.15, `the SDK waited for Retry-After before retrying (${took.toFixed(2)} s)`);

  console.log('node sdk: all checks passed');
}

main().catch((err) => {
  console.error(`node sdk: FAILED: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
