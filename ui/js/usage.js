// Usage: requests, tokens and estimated cost per provider, model and site over today, 7
// or 30 days, read from the request log files; today's budgets; prices and budgets edited
// in place and saved to the settings.
import { call, listen } from "./api.js"
import { $, el, showProblem, toast } from "./dom.js"
import { compact, costChart, timeChart, usd } from "./charts.js"

let range = "today"
let refresh = null

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`
const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`)
const host = (site) => (site === "(no origin)" ? "no origin (scripts, curl, SDKs)" : site.replace(/^https?:\/\//, ""))

/** A row's cost, saying what is unknown: "no price" is never shown as $0. */
function cost(row, price) {
    if (price === null) return el("span", { class: "no-price" }, "no price")
    if (row.unpriced_requests && !row.cost_usd) return el("span", { class: "no-price" }, "no price")
    if (row.unpriced_requests) {
        return el("span", { title: `${row.unpriced_requests} of these requests went to models with no price` },
            usd(row.cost_usd), el("span", { class: "no-price" }, " + no price"))
    }
    return el("span", {}, usd(row.cost_usd))
}

/** Latency p50 / p95 and time to first token p50, in ms: "840 / 1400 · 310". */
function latency(row) {
    if (row.latency_p50_ms === null) return "—"
    const round = (v) => (v === null ? "—" : Math.round(v))
    return `${round(row.latency_p50_ms)} / ${round(row.latency_p95_ms)} · ${round(row.ttft_p50_ms)}`
}

function tableRow(kind, name, row, costCell, nameTitle) {
    return el("div", { class: `urow u-${kind}`, role: "row" },
        el("span", { title: nameTitle ?? name }, name),
        el("span", {}, row.requests),
        el("span", { class: row.errors ? "errors" : "" }, row.errors),
        el("span", { class: row.cached ? "" : "muted", title: "answered from the cache: no tokens, no cost" }, row.cached),
        el("span", { title: `${row.input_tokens} in, ${row.output_tokens} out` }, `${compact(row.input_tokens)} / ${compact(row.output_tokens)}`),
        el("span", { title: "latency p50 / p95 · time to first token p50, in ms" }, latency(row)),
        el("span", { class: "cost" }, costCell))
}

const HEAD = [["Requests"], ["Errors", "refused or failed"], ["Cached", "answered from the cache"], ["Tokens in / out"],
    ["Latency · TTFT", "latency p50 / p95 · time to first token p50, in ms"], ["Est. cost", "estimated from the prices below"]]
const head = (first) => el("div", { class: "uhead", role: "row" }, el("span", {}, first),
    HEAD.map(([text, title]) => el("span", { title: title ?? text }, text)))

function drawModels(s) {
    const rows = [head("Provider / model")]
    for (const p of s.providers) {
        const routed = p.name !== "(not routed)"
        rows.push(tableRow("provider", routed ? p.name : "refused before a provider", p, cost(p), routed ? p.name : "refused by origin, token, rate or size checks"))
        for (const m of s.models.filter((m) => m.provider === p.name)) {
            const cell = m.price === null
                ? el("span", {}, el("span", { class: "no-price" }, "no price "), el("button", { class: "link", onclick: () => addPrice(`${m.provider}/${m.name}`) }, "set"))
                : cost(m, m.price)
            const source = m.price ? ` — ${m.price.source === "settings" ? "your price" : m.price.source === "free" ? "free" : `list price as of ${s.prices_as_of}`}: $${m.price.input} in, $${m.price.output} out per million tokens` : ""
            rows.push(tableRow("model", m.name || "(no model)", m, cell, `${m.provider}/${m.name}${source}`))
        }
    }
    if (s.providers.length) rows.push(tableRow("total", "Total", s.totals, cost(s.totals)))
    $("#usage-models").replaceChildren(...rows)
    $("#usage-sites").replaceChildren(head("Site"), ...s.sites.map((r) => tableRow("site", host(r.name), r, cost(r), r.name)))
    // Team mode's members: shown only once a request carried a member's token.
    const members = s.members ?? []
    $("#usage-members-card").hidden = members.length === 0
    $("#usage-members").replaceChildren(head("Member"), ...members.map((r) => tableRow("member", r.name, r, cost(r), r.name)))
}

function drawTotals(s) {
    const t = s.totals
    const tile = (label, value, note) => el("div", { class: "tile" }, el("span", { class: "muted" }, label), el("strong", {}, value), note && el("small", { class: "muted" }, note))
    const costNote = t.unpriced_requests ? `${plural(t.unpriced_requests, "request")} to models with no price` : `estimated, prices as of ${s.prices_as_of} or yours`
    $("#usage-totals").replaceChildren(
        tile("Requests", String(t.requests), t.errors ? `${t.errors} failed or refused` : t.latency_p50_ms === null ? "none failed" : `none failed · median ${ms(t.latency_p50_ms)}`),
        tile("Tokens", compact(t.input_tokens + t.output_tokens), `${compact(t.input_tokens)} in · ${compact(t.output_tokens)} out`),
        tile("Cost", t.unpriced_requests && !t.cost_usd ? "no price" : usd(t.cost_usd), costNote),
        tile("Cache hits", String(t.cached), t.cached ? "answered without a provider call" : "no identical requests answered from memory"))
}

function drawBudgets(s) {
    $("#usage-budgets").replaceChildren(...s.budgets.map((b) => {
        const share = b.spent_today_usd / b.daily_usd
        const state = share >= 1 ? "over" : share >= 0.8 ? "near" : ""
        const resets = new Date(b.resets_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })
        const what = b.stop_at_budget ? `at the budget its requests are refused until ${resets} (midnight UTC)` : "warns only; requests go on"
        return el("div", { class: `card budget ${state}`, "data-budget": b.provider },
            el("div", { class: "row" }, el("strong", {}, b.provider),
                el("span", {}, `${usd(b.spent_today_usd)} of ${usd(b.daily_usd)} today (${Math.round(share * 100)} %)`),
                el("span", { class: "muted" }, what)),
            el("div", { class: "meter", role: "progressbar", "aria-valuenow": Math.round(share * 100), "aria-valuemin": 0, "aria-valuemax": 100 },
                el("span", { style: `width: ${Math.min(100, share * 100)}%` })))
    }))
}

let shownSummary = null

/** The charts at the width of their cards, so their text stays at its size. */
function drawCharts() {
    const s = shownSummary
    if (!s) return
    const width = (id) => Math.max(240, Math.floor($(id).clientWidth) || 360)
    $("#usage-chart-time").replaceChildren(timeChart(s.buckets, s.bucket_s, width("#usage-chart-time")))
    $("#usage-chart-cost").replaceChildren(costChart(s.providers, width("#usage-chart-cost")))
}

function draw(s) {
    shownSummary = s
    drawTotals(s)
    drawBudgets(s)
    drawCharts()
    drawModels(s)
    $("#usage-empty").hidden = s.totals.requests > 0
    const longer = { today: 1, "7d": 7, "30d": 30 }[range] > s.retention_days
    $("#usage-note").textContent = `Days in UTC, as the log files are. ${s.lines} log lines read` +
        `${s.skipped_lines ? `, ${s.skipped_lines} unreadable skipped` : ""}.` +
        `${longer ? ` The log keeps ${s.retention_days} days (Settings → Log retention).` : ""}`
}

async function load() {
    try {
        draw(await call("usage_summary", { range }))
        showProblem($("#usage-problem"), null)
    } catch (error) {
        showProblem($("#usage-problem"), error)
    }
}

// Prices and budgets: a small form over `usage` in the settings, saved whole.
function budgetRow(id, budget) {
    return el("div", { class: "budget-row", "data-provider": id },
        el("span", {}, id),
        el("input", { type: "number", min: "0", step: "0.01", name: "daily_usd", placeholder: "no budget", value: budget?.daily_usd ?? "", "aria-label": `Daily budget of ${id} in USD` }),
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "stop_at_budget", checked: budget?.stop_at_budget ?? false }), "Stop at budget"))
}

function priceRow(model = "", price = {}) {
    const row = el("div", { class: "price-row" },
        el("input", { name: "model", value: model, placeholder: "gpt-4o-mini or openai/gpt-4o-mini", "aria-label": "Model" }),
        el("input", { type: "number", min: "0", step: "any", name: "input", value: price.input ?? "", placeholder: "in $/M", "aria-label": "USD per million input tokens" }),
        el("input", { type: "number", min: "0", step: "any", name: "output", value: price.output ?? "", placeholder: "out $/M", "aria-label": "USD per million output tokens" }),
        el("button", { type: "button", class: "link danger", onclick: () => row.remove() }, "Remove"))
    return row
}

function addPrice(model) {
    const row = priceRow(model)
    $("#usage-price-rows").append(row)
    $("#usage-no-prices").hidden = true
    row.scrollIntoView({ block: "center" })
    $("input[name=input]", row).focus()
}

async function loadSettings() {
    const [settings, prices] = await Promise.all([call("settings_get"), call("usage_prices")])
    const usage = settings.usage ?? {}
    // The demo costs nothing: no budget to set.
    const paid = settings.providers.filter((p) => p.kind !== "demo")
    $("#usage-budget-rows").replaceChildren(
        el("div", { class: "budget-row head" }, el("span", {}, "Provider"), el("span", {}, "Daily budget (USD)"), el("span", {})),
        ...paid.map((p) => budgetRow(p.id, usage.budgets?.[p.id])))
    const own = Object.entries(usage.prices ?? {})
    $("#usage-price-rows").replaceChildren(...own.map(([m, p]) => priceRow(m, p)))
    $("#usage-no-prices").hidden = own.length > 0
    $("#usage-built-in-title").textContent = `Built-in list prices, as of ${prices.as_of} (estimates; yours above win)`
    $("#usage-built-in").replaceChildren(...prices.built_in.map((p) =>
        el("span", { class: "price" }, el("code", {}, p.model), ` $${p.input} in · $${p.output} out`)))
}

async function saveSettings(event) {
    event.preventDefault()
    const budgets = {}
    for (const row of document.querySelectorAll("#usage-budget-rows .budget-row[data-provider]")) {
        const daily = $("input[name=daily_usd]", row).value
        if (daily !== "") budgets[row.dataset.provider] = { daily_usd: Number(daily), stop_at_budget: $("input[name=stop_at_budget]", row).checked }
    }
    const prices = {}
    for (const row of document.querySelectorAll("#usage-price-rows .price-row")) {
        const model = $("input[name=model]", row).value.trim()
        if (model) prices[model] = { input: Number($("input[name=input]", row).value || 0), output: Number($("input[name=output]", row).value || 0) }
    }
    try {
        const settings = await call("settings_get")
        settings.usage = { ...(settings.usage ?? {}), budgets, prices }
        await call("settings_save", { settings })
        showProblem($("#usage-settings-problem"), null)
        toast("Budgets and prices saved")
        await Promise.all([load(), loadSettings()])
    } catch (error) {
        const where = error.field ? `${error.field}: ` : ""
        showProblem($("#usage-settings-problem"), { message: `${where}${error.message}` })
    }
}

export function init() {
    for (const button of document.querySelectorAll("#usage-range button")) {
        button.addEventListener("click", () => {
            range = button.dataset.range
            for (const b of document.querySelectorAll("#usage-range button")) b.setAttribute("aria-pressed", String(b === button))
            load()
        })
    }
    $("#usage-settings").addEventListener("submit", saveSettings)
    $("#usage-add-price").addEventListener("click", () => addPrice(""))
    let resized = null
    window.addEventListener("resize", () => {
        clearTimeout(resized)
        resized = setTimeout(drawCharts, 150)
    })
    // New requests show within a couple of seconds while the view is open.
    listen("request-log", (event) => {
        if (event.kind !== "finished" || $("#usage").hidden) return
        clearTimeout(refresh)
        refresh = setTimeout(load, 1500)
    })
}

export async function shown() {
    await load()
    try {
        await loadSettings()
    } catch (error) {
        showProblem($("#usage-settings-problem"), error)
    }
}

