-- wrk script for benches/gateway/run.sh: POSTs one chat request (BENCH_BODY) with the
-- bearer key BENCH_KEY, and prints one JSON line with the counts and latency percentiles.
-- No `response` callback: defining one makes wrk collect every body, which costs throughput;
-- wrk counts answers with a status of 400 or more in `errors.status` by itself.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"http_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
