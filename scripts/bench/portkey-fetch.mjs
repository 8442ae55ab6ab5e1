// Preloaded into Portkey's gateway by scripts/bench/run.py (`node --import`). Node 20's
// fetch gives responses whose headers are immutable; Portkey's gateway appends its own
// headers to a streamed upstream response, fails with "TypeError: immutable" and answers
// every streamed request 500 "Something went wrong". Each fetch response is handed over
// as a copy with mutable headers; nothing else about the gateway changes.
const fetchImmutable = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const response = await fetchImmutable(...args);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
};
