-- wrk request for scripts/bench.sh: one non-streamed OpenAI chat completion.
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
