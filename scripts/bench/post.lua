-- wrk request for scripts/bench.sh: one non-streamed OpenAI chat completion, plus the
-- headers a gateway needs (BENCH_HEADERS: one "Name: value" a line; Portkey's routing).
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end
