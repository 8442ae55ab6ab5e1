// A stand-in for the desktop app behind the window, for previews and screenshots in a
// plain browser: the commands of ui/js/api.js answered from memory.
const now = Date.now()
const iso = (ago) => new Date(now - ago * 1000).toISOString()
let settings = {
    host: "127.0.0.1", port: 5711, default_provider: "openai",
    providers: [
        { id: "demo", kind: "demo" },
        { id: "openai", kind: "openai", base_url: "https://api.openai.com/v1", default_model: "gpt-4o-mini", models: ["gpt-4o"] },
        { id: "claude", kind: "anthropic", base_url: "https://api.anthropic.com", default_model: "claude-sonnet-4-5" },
        { id: "ollama", kind: "openai", base_url: "http://127.0.0.1:11434/v1", default_model: "llama3.2" },
        { id: "deepgram", kind: "deepgram", base_url: "https://api.deepgram.com", default_model: "nova-3" },
        { id: "tavily", kind: "tavily", base_url: "https://api.tavily.com", default_model: "basic" },
    ],
    cors: { allowed_origins: ["https://framer.com", "https://*.framercanvas.com", "https://*.plugins.framercdn.com", "http://localhost:*", "http://127.0.0.1:*"], allow_any_origin: false },
    allowed_hosts: [], require_access_token: false,
    limits: { max_body_bytes: 1048576, requests_per_minute: 120, burst: 30, max_concurrent_streams: 64, connect_timeout_ms: 10000, first_byte_timeout_ms: 120000, idle_timeout_ms: 60000 },
    log: { retention_days: 14, ring_size: 1000, max_text_chars: 2000 }, keychain_cache_ms: 5000,
}
const record = (i, extra) => ({
    id: `r${i}`, time: iso(400 - i * 9), method: "POST", path: "/api/ai-gateway/stream",
    origin: "https://project-k2x9.framercanvas.com", provider: "openai", model: "gpt-4o-mini",
    status: 200, latency_ms: 820 + i * 13, ttft_ms: 210 + i, bytes_out: 2300, usage: { input_tokens: 31, output_tokens: 84 },
    error: null, prompt: "Write a tagline for a coffee app", answer: "Wake up to something worth waking up for.", ...extra,
})
const records = Array.from({ length: 40 }, (_, i) =>
    i % 9 === 4
        ? record(i, { origin: "https://acme-coffee.framer.app", status: 403, provider: null, model: null, latency_ms: 0.4, ttft_ms: null,
            error: "origin `https://acme-coffee.framer.app` is not allowed. If this is your own prototype, approve it once: add \"https://acme-coffee.framer.app\" to cors.allowed_origins in Protogate's settings (or approve it in the Protogate window). Only sites you approve can use your providers" })
        : i % 11 === 7
            ? record(i, { provider: "claude", model: "claude-sonnet-4-5", path: "/v1/messages", origin: "http://localhost:5173" })
            : record(i))
const params = new URLSearchParams(location.search)
const status = { state: "running", http: "http://127.0.0.1:5711", https: "https://localhost:5712", lan: null, port: 5711, reason: null }
if (params.get("state") === "failed") Object.assign(status, { state: "failed", http: null, https: null, port: null, port_in_use: 5711, reason: "port 5711 on 127.0.0.1 is already in use (another Protogate, or another app?); choose another with --port or \"port\" in the settings" })
const answers = {
    gateway_status: () => status,
    settings_get: () => structuredClone(settings),
    settings_save: ({ settings: next }) => ((settings = next), next),
    providers_list: () => settings.providers.map((p) => ({
        id: p.id, kind: p.kind, base_url: p.base_url ?? null, default_model: p.default_model ?? "protogate-demo", models: p.models ?? [],
        is_default: p.id === settings.default_provider,
        key_state: { demo: "not needed", openai: "set (in the keychain)", claude: "missing", ollama: "not needed (a server on this machine)", deepgram: "set (in the keychain)", tavily: "set (in the keychain)" }[p.id] ?? "missing",
        last_error: p.id === "claude" ? "no API key is set for provider 'claude'. Set it with `protogate secrets set claude`" : null,
        limit: p.id === "openai" ? "100 requests per minute, burst 200" : null,
        waiting: p.id === "openai" ? 2 : 0,
        capabilities: { demo: ["chat", "voice", "search"], deepgram: ["voice"], tavily: ["search"] }[p.kind] ?? ["chat"],
    })),
    log_recent: () => records,
    autostart_get: () => false,
    tls_status: () => ({ ca_exists: true, fingerprint: "D4:49:28:AC:44:31:FB:90:9A:3E:7C:36", trusted_in: ["Chromium (NSS)"] }),
    gateway_use_free_port: () => Object.assign(status, { state: "running", http: "http://127.0.0.1:5713", port: 5713, reason: null, port_in_use: null }),
    framer_component: () => "// ProtogateChat.tsx",
    clipboard_write: () => null,
    usage_summary: ({ range }) => usageSummary(range),
    usage_prices: () => ({ as_of: "November 2025", settings: [], built_in: [
        { model: "gpt-4o-mini", input: 0.15, output: 0.6 }, { model: "gpt-4o", input: 2.5, output: 10 },
        { model: "claude-sonnet-4-5", input: 3, output: 15 }, { model: "llama-3.1-8b-instant", input: 0.05, output: 0.08 }] }),
}

// The Usage view's numbers: a day of a prototype's calls, mostly gpt-4o-mini.
function usageSummary(range) {
    const days = { today: 1, "7d": 7, "30d": 30 }[range] ?? 1
    const bucket = { 1: 3600, 7: 21600, 30: 86400 }[days]
    const start = new Date(); start.setUTCHours(0, 0, 0, 0); start.setUTCDate(start.getUTCDate() - days + 1)
    const row = (name, requests, errors, input, output, cost, extra = {}) => ({ name, requests, errors, cached: 0, input_tokens: input,
        output_tokens: output, latency_p50_ms: 840, latency_p95_ms: 2310, ttft_p50_ms: 230, cost_usd: cost, unpriced_requests: 0, ...extra })
    const scale = days === 1 ? 1 : days * 0.8
    const n = (v) => Math.round(v * scale)
    const openai = row("openai", n(212), n(3), n(30400), n(61200), 0.0413 * scale, { cached: n(41) })
    const claude = row("claude", n(38), 0, n(9100), n(15800), 0.2643 * scale)
    const ollama = row("ollama", n(17), 0, n(2300), n(5100), 0, { unpriced_requests: n(17), latency_p50_ms: 1900, latency_p95_ms: 4100, ttft_p50_ms: 610 })
    const refused = row("(not routed)", n(6), n(6), 0, 0, 0, { latency_p50_ms: null, latency_p95_ms: null, ttft_p50_ms: null })
    const providers = [claude, openai, ollama, refused]
    const model = (provider, r, name, price) => ({ ...r, provider, name, price })
    const models = [
        model("claude", claude, "claude-sonnet-4-5", { input: 3, output: 15, source: "built-in" }),
        model("openai", openai, "gpt-4o-mini", { input: 0.15, output: 0.6, source: "built-in" }),
        model("ollama", ollama, "llama3.2", null),
    ]
    const sum = (key) => providers.reduce((t, p) => t + p[key], 0)
    const totals = row("total", sum("requests"), sum("errors"), sum("input_tokens"), sum("output_tokens"), sum("cost_usd"), { cached: sum("cached"), unpriced_requests: sum("unpriced_requests") })
    const sites = [row("https://project-k2x9.framercanvas.com", n(190), n(2), n(28000), n(55000), 0.2 * scale),
        row("http://localhost:5173", n(77), n(1), n(13800), n(27100), 0.1056 * scale), row("https://acme-coffee.framer.app", n(6), n(6), 0, 0, 0)]
    const count = (days * 86400) / bucket
    const buckets = Array.from({ length: count }, (_, i) => {
        const busy = days === 1 ? (i >= 9 && i <= 18 ? 14 + ((i * 7) % 19) : i < 21 ? (i * 3) % 4 : 0) : 20 + ((i * 13) % 37)
        return { start: new Date(start.getTime() + i * bucket * 1000).toISOString(), requests: busy, errors: busy && i % 5 === 2 ? 1 : 0,
            cached: Math.floor(busy / 6), input_tokens: busy * 140, output_tokens: busy * 260, cost_usd: busy * 0.0011 }
    })
    return { range, from: start.toISOString(), to: new Date().toISOString(), totals, providers, models, sites, buckets, bucket_s: bucket,
        budgets: [{ provider: "claude", daily_usd: 0.3, stop_at_budget: true, spent_today_usd: 0.2643, resets_at: new Date(start.getTime() + days * 86400000).toISOString() }],
        prices_as_of: "November 2025", retention_days: 14, lines: totals.requests + 40, skipped_lines: 0 }
}
window.__TAURI__ = {
    core: { invoke: async (command, args) => (answers[command] ?? (() => null))(args) },
    event: { listen: async () => () => {} },
}

// The gateway's routes the Chat view calls over HTTP, answered here too, so the preview's
// chat, microphone and "Search the web" work in a plain browser.
const sse = (events) => new Response(new ReadableStream({
    async start(out) {
        for (const e of events) {
            out.enqueue(new TextEncoder().encode(`data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`))
            await new Promise((r) => setTimeout(r, 15))
        }
        out.close()
    },
}), { headers: { "Content-Type": "text/event-stream" } })
const gateway = {
    "/api/search": (body) => ({ query: body.query, provider: "tavily", results: [
        { title: "Cold brew vs. iced coffee: what is the difference?", url: "https://www.example-coffee.com/guides/cold-brew", content: "Cold brew steeps for 12 to 24 hours in cold water…", score: 0.92 },
        { title: "How to make cold brew at home", url: "https://brewing.example.org/cold-brew-at-home", content: "Coarse grounds, a 1:8 ratio and patience…", score: 0.87 },
        { title: "Caffeine in cold brew, measured", url: "https://lab.example.net/caffeine", content: "Per cup, cold brew has somewhat more caffeine…", score: 0.71 },
    ] }),
    "/api/voice/process": () => ({ text: "What is the difference between cold brew and iced coffee?", provider: "deepgram", model: "nova-3", duration_s: 3.2 }),
    "/api/ai-gateway/stream": (body) => sse([
        ...(body.system
            ? "Cold brew is steeped in cold water for 12 to 24 hours, which makes it smoother and less acidic [1](https://www.example-coffee.com/guides/cold-brew); iced coffee is brewed hot and then cooled [2](https://brewing.example.org/cold-brew-at-home)."
            : "Wake up to something worth waking up for.").split(/(?<= )/).map((text) => ({ text })),
        "[DONE]",
    ]),
}
const realFetch = window.fetch
window.fetch = async (url, init = {}) => {
    const { origin, pathname } = new URL(url, location.href)
    const route = origin === status.http && gateway[pathname]
    if (!route) return realFetch(url, init)
    const answer = route(typeof init.body === "string" ? JSON.parse(init.body) : {})
    return answer instanceof Response ? answer : new Response(JSON.stringify(answer), { headers: { "Content-Type": "application/json" } })
}
// `?ask=…&search=1` sends a first message, for screenshots of a conversation.
if (params.get("ask")) {
    addEventListener("DOMContentLoaded", () => setTimeout(() => {
        document.querySelector("#chat-search").checked = params.get("search") === "1"
        document.querySelector("#chat-input").value = params.get("ask")
        document.querySelector("#chat-form").requestSubmit()
    }, 100))
}
