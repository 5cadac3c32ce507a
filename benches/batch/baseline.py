"""Baseline for benches/batch: the same rows through a plain asyncio loop with the official
`openai` package (its own retries), at a fixed concurrency. Prints wall time and failures."""
import asyncio, json, sys, time

from openai import AsyncOpenAI


async def main(path, base_url, model, max_tokens, concurrency):
    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=10, timeout=10)
    rows = [json.loads(l)["text"] for l in open(path)]
    sem = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(text):
        nonlocal failed
        async with sem:
            try:
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens)
            except Exception:
                failed += 1

    t = time.monotonic()
    await asyncio.gather(*(one(r) for r in rows))
    print(json.dumps({"elapsed_secs": time.monotonic() - t, "failed": failed}))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
