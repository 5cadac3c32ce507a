"""The official OpenAI Python SDK against `llmkit serve`, unchanged: chat, streamed chat,
embeddings, the model list, and the SDK's own error classes for 401, 429 and 400.

Run by run.sh with GATEWAY_URL (http://host:port), and the virtual keys in KEY (any model,
no limits), BUDGET_KEY (a budget too small for any request) and RPM_KEY (a limit of RPM
requests per minute), with BUDGET_ID and RPM_ID, their ids in /metrics. Exits non-zero with a message on the first check that fails.
"""

import os
import re
import sys
import time
import urllib.request

import openai
from openai import OpenAI

GATEWAY = os.environ["GATEWAY_URL"]
BASE = GATEWAY + "/v1"
MODEL = "gpt-4o-mini"


def check(cond, what):
    if not cond:
        sys.exit(f"python sdk: FAILED: {what}")
    print(f"python sdk: ok: {what}")


def refusals(key_id, reason):
    """The gateway's count of its own refusals of `key_id` for `reason`, from /metrics."""
    text = urllib.request.urlopen(GATEWAY + "/metrics", timeout=10).read().decode()
    pattern = rf'llmkit_gateway_refusals_total{{key="{key_id}",reason="{reason}"}} (\d+)'
    m = re.search(pattern, text)
    return int(m.group(1)) if m else 0


def main():
    print(f"python sdk: openai {openai.__version__}")
    client = OpenAI(base_url=BASE, api_key=os.environ["KEY"], timeout=30)
    messages = [{"role": "user", "content": "Say hello to the SDK test"}]

    # Chat, whole.
    resp = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=50)
    text = resp.choices[0].message.content
    check(isinstance(resp, openai.types.chat.ChatCompletion), "chat returns a ChatCompletion")
    check(bool(text), f"chat has content ({text!r})")
    check(resp.usage is not None and resp.usage.total_tokens > 0, "chat reports usage")

    # Chat, streamed, with the usage chunk asked for.
    parts, usage, chunks = [], None, 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        chunks += 1
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    check(chunks > 1, f"the stream came in {chunks} chunks")
    check("".join(parts) == text, "the streamed text equals the whole answer")
    check(usage is not None and usage.completion_tokens > 0, "the stream ends with usage")

    # Embeddings: the SDK asks for base64 and decodes it; floats must agree.
    emb = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["one", "two"], encoding_format="float"
    )
    check(len(emb.data) == 2 and len(emb.data[0].embedding) > 0, "embeddings for two inputs")
    check(
        all(isinstance(x, float) for x in emb.data[0].embedding),
        "base64 embeddings decode to floats",
    )
    check(
        all(abs(a - b) < 1e-6 for a, b in zip(emb.data[1].embedding, floats.data[1].embedding)),
        "base64 and float embeddings agree",
    )

    # The model list.
    ids = [m.id for m in client.models.list()]
    check(MODEL in ids, f"the model list has {MODEL} ({len(ids)} models)")

    # 401: a well-formed key the gateway never issued.
    bad = OpenAI(base_url=BASE, api_key="lk-000000000000-" + "0" * 48, max_retries=0)
    try:
        bad.models.list()
        check(False, "a wrong key is refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "a wrong key raises AuthenticationError (401)")
        check(e.code == "invalid_api_key", f"its code is invalid_api_key ({e.code})")

    # 400: a model without a known price under a budget.
    budget = OpenAI(base_url=BASE, api_key=os.environ["BUDGET_KEY"], timeout=30)
    try:
        budget.chat.completions.create(model="no-such-priced-model", messages=messages)
        check(False, "an unpriced model under a budget is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400, "an unpriced model raises BadRequestError (400)")
        check(e.code == "model_unpriced", f"its code is model_unpriced ({e.code})")

    # 429 from a used-up budget: RateLimitError at once, since the gateway says
    # `x-should-retry: false` (waiting its hour-long Retry-After would not help either).
    budget_id = os.environ["BUDGET_ID"]
    before = refusals(budget_id, "budget")
    try:
        budget.chat.completions.create(model=MODEL, messages=messages, max_tokens=50)
        check(False, "a used-up budget is refused")
    except openai.RateLimitError as e:
        check(e.status_code == 429, "a used-up budget raises RateLimitError (429)")
        check(e.code == "insufficient_quota", f"its code is insufficient_quota ({e.code})")
        check(int(e.response.headers.get("retry-after", "0")) > 60, "it carries Retry-After")
        check(e.response.headers.get("x-should-retry") == "false", "and x-should-retry: false")
    after = refusals(budget_id, "budget")
    check(after - before == 1, f"the SDK did not retry ({after - before} tries)")

    # 429 from the key's RPM limit: the SDK waits for retry-after-ms and its retry succeeds.
    rpm_id = os.environ["RPM_ID"]
    limited = OpenAI(base_url=BASE, api_key=os.environ["RPM_KEY"], timeout=30)
    once = limited.with_options(max_retries=0)
    for _ in range(200):
        try:
            raw = once.chat.completions.with_raw_response.create(
                model=MODEL, messages=messages, max_tokens=5
            )
            if raw.headers.get("x-ratelimit-limit-requests") != os.environ["RPM"]:
                check(False, "answers carry x-ratelimit-limit-requests")
        except openai.RateLimitError as e:
            wait_ms = float(e.response.headers["retry-after-ms"])
            if wait_ms < 200:
                # The next request is due too soon for the check below to see a refusal.
                time.sleep(wait_ms / 1000)
                continue
            check(e.code == "rate_limit_exceeded", "an RPM refusal raises RateLimitError")
            check(e.response.headers["x-ratelimit-remaining-requests"] == "0", "none remain")
            break
    else:
        check(False, "the RPM limit refused a request")
    before = refusals(rpm_id, "rpm")
    started = time.monotonic()
    resp = limited.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
    took = time.monotonic() - started
    after = refusals(rpm_id, "rpm")
    check(bool(resp.choices[0].message.content), "after its retry the request succeeded")
    check(after - before >= 1, f"the SDK was refused first and retried ({after - before} refusals)")
    check(took >= 0.15, f"the SDK waited for Retry-After before retrying ({took:.2f} s)")

    print("python sdk: all checks passed")


if __name__ == "__main__":
    main()
