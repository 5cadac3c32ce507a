"""Streaming time to first token for benches/gateway/run.sh.

Sends N streamed chat requests one after another over one kept-alive connection (after a
few warm-ups) and prints one JSON line: the time from sending the request to the first
event that carries content (p50, p99, in ms), the time to the end of the stream, and the
failures. Standard library only, so it runs without the LiteLLM venv.

Usage: ttft.py HOST PORT KEY BODY_JSON N
"""

import http.client
import json
import statistics
import sys
import time

WARMUP = 10


def one(conn, body, headers):
    """(seconds to the first content event, seconds to the end) of one streamed request."""
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    if resp.status != 200:
        resp.read()
        raise RuntimeError(f"status {resp.status}")
    first = None
    done = False
    while True:
        line = resp.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            done = True
            continue
        if first is None:
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(f"error event: {event['error'].get('message')}")
            choices = event.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter() - start
    if first is None or not done:
        raise RuntimeError("stream ended without content or [DONE]")
    return first, time.perf_counter() - start


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def main():
    host, port, key, body, n = sys.argv[1:]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    firsts, totals, failures = [], [], 0
    for i in range(WARMUP + int(n)):
        try:
            first, total = one(conn, body, headers)
        except (RuntimeError, OSError, http.client.HTTPException, ValueError):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            continue
        if i >= WARMUP:
            firsts.append(first * 1000)
            totals.append(total * 1000)
    out = {"n": len(firsts), "failures": failures}
    if firsts:
        out |= {
            "ttft_p50_ms": statistics.median(firsts),
            "ttft_p99_ms": pct(firsts, 99),
            "total_p50_ms": statistics.median(totals),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
