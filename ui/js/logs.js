// The live request log: records arrive as events (started, updated, finished) and
// update their row in place. Only the newest rows matching the filter are drawn, so ten
// thousand records stay smooth.
import { call, listen } from "./api.js"
import { $, el, toast } from "./dom.js"

const MAX_ROWS = 300
const records = new Map() // id → record, in arrival order
let selected = null
const allowed = new Set() // origins approved from this window

const refusedOrigin = (r) => r.error?.match(/^origin `([^`]+)` is not allowed/)?.[1]

function kind(r) {
    if (r.status === 403 || r.status === 401 || r.status === 429) return "refused"
    if (r.status >= 400 || r.error) return "error"
    return "ok"
}

function matches(r) {
    const wanted = $("#log-status").value
    if (wanted && kind(r) !== wanted) return false
    const text = $("#log-filter").value.trim().toLowerCase()
    if (!text) return true
    return [r.origin, r.path, r.provider, r.model, r.error, String(r.status)].some((v) => v?.toLowerCase().includes(text))
}

const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`)
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })
/** An origin without its scheme: the part that tells sites apart. */
const host = (origin) => origin?.replace(/^https?:\/\//, "")

async function allow(origin) {
    try {
        await call("origin_approve", { origin })
        allowed.add(origin)
        toast(`${origin} is allowed`)
        draw()
    } catch (error) {
        toast(error.message)
    }
}

function row(r, live) {
    const origin = refusedOrigin(r)
    const node = el("div", { class: `trow ${kind(r) === "refused" ? "refused" : ""} ${live ? "live" : ""}`, tabindex: 0,
            role: "row", "data-id": r.id, onclick: () => detail(r.id), onkeydown: (e) => e.key === "Enter" && detail(r.id) },
        el("span", {}, time(r.time)),
        el("span", { title: r.origin ?? "" }, host(r.origin) ?? "no origin"),
        el("span", { title: `${r.method} ${r.path}` }, r.path),
        // A browser's preflight looks like a second copy of its request without this.
        el("span", { class: r.method === "OPTIONS" ? "muted" : "" },
            r.provider ? `${r.provider} / ${r.model}` : r.method === "OPTIONS" ? "preflight" : "—"),
        el("span", { class: "status-code" }, r.status || "…"),
        el("span", {}, live ? "…" : ms(r.latency_ms)),
        el("span", {}, ms(r.ttft_ms)))
    if (r.error && kind(r) !== "ok") {
        // A refused site gets the designer's words and the one-click fix; the full
        // reason (with the settings key) stays in the details.
        const reason = origin
            ? `${origin} is not approved yet. If it is your prototype, allow it once: only sites you allow can use your providers.`
            : r.error
        node.append(el("span", { class: "reason" }, reason,
            origin && (allowed.has(origin)
                ? el("span", { class: "pill ok" }, "Allowed")
                : el("button", { class: "secondary", onclick: (e) => (e.stopPropagation(), allow(origin)) }, "Allow this origin"))))
    }
    return node
}

const live = new Set()

function draw() {
    const shown = [...records.values()].filter(matches).slice(-MAX_ROWS).reverse()
    $("#log-rows").replaceChildren(...shown.map((r) => row(r, live.has(r.id))))
    $("#log-empty").hidden = records.size > 0
    const waiting = new Set([...records.values()].map(refusedOrigin).filter((o) => o && !allowed.has(o)))
    const refusals = waiting.size
    const badge = $("#refusals")
    badge.textContent = refusals
    badge.hidden = refusals === 0
    if (selected) detail(selected)
}

function detail(id) {
    selected = id
    const r = records.get(id)
    const box = $("#log-detail")
    if (!r) return (box.hidden = true)
    const block = (label, text) => text && el("div", {}, el("h2", {}, label), el("pre", {}, text))
    box.replaceChildren(
        el("div", { class: "row" }, el("h2", {}, `${r.method} ${r.path} · ${r.status || "in progress"}`),
            el("button", { class: "link", onclick: () => ((selected = null), (box.hidden = true)) }, "Close")),
        r.thread && el("p", { class: "muted" }, `ChatKit thread ${r.thread}`),
        r.note && el("p", { class: "muted" }, r.note),
        block("Prompt", r.prompt), block("Answer", r.answer), block("Error", r.error),
        r.usage && el("p", { class: "muted" }, `${r.usage.input_tokens} tokens in, ${r.usage.output_tokens} out`))
    box.hidden = false
}

let pending = false
function schedule() {
    if (pending) return
    pending = true
    requestAnimationFrame(() => ((pending = false), draw()))
}

export async function init() {
    $("#log-filter").addEventListener("input", draw)
    $("#log-status").addEventListener("change", draw)
    $("#clear-logs").addEventListener("click", async () => {
        await call("log_clear").catch((e) => toast(e.message))
        records.clear()
        draw()
    })
    $("#open-logs").addEventListener("click", () => call("log_open_folder").catch((e) => toast(e.message)))
    listen("request-log", ({ kind: event, record }) => {
        records.delete(record.id)
        records.set(record.id, record)
        if (event === "finished") live.delete(record.id)
        else live.add(record.id)
        while (records.size > 10000) records.delete(records.keys().next().value)
        schedule()
    })
    try {
        for (const r of await call("log_recent")) records.set(r.id, r)
    } catch {
        // The banner already says the app is missing.
    }
    draw()
}
