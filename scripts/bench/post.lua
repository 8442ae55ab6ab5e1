-- wrk request for scripts/bench.sh: one non-streamed OpenAI chat completion, plus the
-- headers a gateway needs (BENCH_HEADERS: one "Name: value" a line; Portkey's routing).
-- BENCH_UNIQUE (a word new to each wrk run) makes every request's message differ, so a
-- gateway's response cache misses every time (`--features-on`); it costs wrk a Lua call
-- per request, so a run uses it for every row or for none.
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local unique = os.getenv("BENCH_UNIQUE") or ""
if unique ~= "" then
  local threads = 0
  function setup(thread)
    thread:set("thread_number", threads)
    threads = threads + 1
  end
  local sent = 0
  function request()
    sent = sent + 1
    return wrk.format(nil, nil, nil, string.format(
      '{"model":"bench","messages":[{"role":"user","content":"hi %s-%d-%d"}]}',
      unique, thread_number, sent))
  end
end
