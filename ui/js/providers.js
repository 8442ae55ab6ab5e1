// Providers: what answers, whether its key is set, a test call; add, edit, remove.
// A key typed here goes to the keychain by a command and is cleared from the page at once.
import { call } from "./api.js"
import { $, el, showProblem, toast } from "./dom.js"
import * as routes from "./routes.js"

// Limits are the wiring spec's per-provider budgets, burst 2x; over them requests queue.
const PRESETS = {
    OpenAI: { id: "openai", kind: "openai", base_url: "https://api.openai.com/v1", default_model: "gpt-4o-mini", limits: { requests_per_minute: 100, burst: 200 } },
    Anthropic: { id: "anthropic", kind: "anthropic", base_url: "https://api.anthropic.com", default_model: "claude-sonnet-4-5" },
    OpenRouter: { id: "openrouter", kind: "openai", base_url: "https://openrouter.ai/api/v1", default_model: "openai/gpt-4o-mini" },
    Groq: { id: "groq", kind: "openai", base_url: "https://api.groq.com/openai/v1", default_model: "llama-3.3-70b-versatile" },
    Ollama: { id: "ollama", kind: "openai", base_url: "http://127.0.0.1:11434/v1", default_model: "llama3.2" },
    "LM Studio": { id: "lmstudio", kind: "openai", base_url: "http://127.0.0.1:1234/v1", default_model: "local-model" },
    // Model suffixes such as `:fastest` or `:cheapest` pass through to the router.
    "Hugging Face": { id: "huggingface", kind: "openai", base_url: "https://router.huggingface.co/v1", default_model: "openai/gpt-oss-120b:fastest", limits: { requests_per_minute: 200, burst: 400 } },
    // A fine-grained PAT with `models: read`; models are `publisher/name`.
    "GitHub Models": { id: "github", kind: "openai", base_url: "https://models.github.ai/inference", default_model: "openai/gpt-4.1",
        headers: { Accept: "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28" }, limits: { requests_per_hour: 500, burst: 17 } },
    "ASAP gateway": { id: "ai-gateway", kind: "asap-gateway", base_url: "https://ai-gateway.example.net/v1/bedrock/model/{model}/invoke", default_model: "anthropic.claude-3-5-sonnet" },
    // Web search for POST /api/search. Tavily's "model" is its search depth (basic or
    // advanced); the id `tavily` is what the wiring spec's search() sends.
    Tavily: { id: "tavily", kind: "tavily", base_url: "https://api.tavily.com", default_model: "basic", limits: { requests_per_minute: 100, burst: 200 } },
    Brave: { id: "brave", kind: "brave", base_url: "https://api.search.brave.com", default_model: "web" },
    // Speech to text for /api/voice/process and /v1/audio/transcriptions. Deepgram's
    // "model" is its recognizer; an OpenAI-compatible provider transcribes with its
    // transcription_model (applied to a provider of the same id that already exists).
    Deepgram: { id: "deepgram", kind: "deepgram", base_url: "https://api.deepgram.com", default_model: "nova-3", limits: { requests_per_minute: 30, burst: 60 } },
    "OpenAI voice": { id: "openai", kind: "openai", base_url: "https://api.openai.com/v1", default_model: "gpt-4o-mini", transcription_model: "gpt-4o-mini-transcribe", limits: { requests_per_minute: 100, burst: 200 } },
    "Groq voice": { id: "groq", kind: "openai", base_url: "https://api.groq.com/openai/v1", default_model: "llama-3.3-70b-versatile", transcription_model: "whisper-large-v3-turbo" },
}

// What each capability means, for the pills on a provider's card.
const CAPABILITIES = { chat: "Answers chat", voice: "Transcribes speech", search: "Searches the web" }

async function settingsWith(change) {
    const settings = await call("settings_get")
    change(settings)
    return call("settings_save", { settings })
}

function providerCard(p) {
    const keyInput = el("input", { type: "password", placeholder: "Paste a key", "aria-label": `Key for ${p.id}` })
    const result = el("p", { class: "result muted" })
    const setKey = async () => {
        const value = keyInput.value
        keyInput.value = ""
        if (!value) return
        try {
            const { key_state } = await call("secret_set", { id: p.id, value })
            toast(`Key for ${p.id}: ${key_state}`)
            render()
        } catch (error) {
            result.textContent = error.message
        }
    }
    const test = async () => {
        result.textContent = "Testing…"
        try {
            const r = await call("provider_test", { id: p.id })
            result.textContent = `${r.ok ? "Answered" : "Failed"} in ${Math.round(r.latency_ms)} ms: ${r.message}`
        } catch (error) {
            result.textContent = error.message
        }
    }
    const keyClass = /^set/.test(p.key_state) ? "pill ok" : /missing/.test(p.key_state) ? "pill missing" : "pill"
    return el("div", { class: "card provider", "data-provider": p.id },
        el("div", { class: "title" }, el("h2", {}, p.id), el("span", { class: "pill" }, p.kind),
            p.is_default && el("span", { class: "pill" }, "default"),
            p.capabilities && el("span", { class: "caps", "aria-label": "Serves" },
                p.capabilities.map((c) => el("span", { class: `pill cap ${c}`, title: CAPABILITIES[c] ?? c }, c)))),
        p.kind !== "demo" && el("div", { class: "key-row" }, keyInput, el("button", { class: "secondary", onclick: setKey }, "Set key")),
        el("p", { class: "meta" }, `${p.default_model}${p.base_url ? ` · ${p.base_url}` : ""}`),
        el("p", { class: "key-state" }, "Key: ", el("span", { class: keyClass }, p.key_state)),
        p.limit && el("p", { class: "meta limit" }, `Limit: ${p.limit}${p.waiting ? ` · ${p.waiting} waiting` : ""}`),
        lastError(p) ? el("p", { class: "problem wide" }, lastError(p)) : result,
        el("div", { class: "row actions" },
            el("button", { class: "secondary", onclick: test }, "Test"),
            !p.is_default && el("button", { class: "secondary", onclick: () => makeDefault(p.id) }, "Make default"),
            p.kind !== "demo" && el("button", { class: "secondary", onclick: () => edit(p) }, "Edit"),
            el("button", { class: "link danger", onclick: () => remove(p.id) }, "Remove")))
}

// What the card asks of the designer: a missing key is fixed right here (the key state
// says so, before any request fails); otherwise the last request's failure, except the
// "no key is set" of a request made before the key was.
function lastError(p) {
    if (/^missing/.test(p.key_state)) return "No key yet: paste one above and press Set key."
    if (!p.last_error || / is set for provider /.test(p.last_error)) return null
    return `Last request: ${p.last_error}`
}

async function makeDefault(id) {
    try {
        await settingsWith((s) => (s.default_provider = id))
        render()
    } catch (error) {
        toast(error.message)
    }
}

async function remove(id) {
    try {
        await settingsWith((s) => {
            s.providers = s.providers.filter((p) => p.id !== id)
            if (s.default_provider === id) delete s.default_provider
        })
        render()
    } catch (error) {
        toast(error.message)
    }
}

// What a preset sets beyond the form's fields (limits, headers), saved with a new entry.
let presetExtras = null

function fill(values, extras = null) {
    presetExtras = extras
    const form = $("#provider-form")
    for (const name of ["id", "kind", "base_url", "default_model"]) form.elements[name].value = values[name] ?? ""
    form.elements.models.value = (values.models ?? []).join(", ")
}

function edit(p) {
    $("#provider-form-title").textContent = `Edit ${p.id}`
    fill(p)
    $("#provider-form").elements.id.focus()
}

export async function render() {
    const list = $("#provider-list")
    try {
        const providers = await call("providers_list")
        list.replaceChildren(...providers.map(providerCard))
        routes.render(providers)
    } catch (error) {
        list.replaceChildren(el("p", { class: "problem" }, error.message))
    }
}

export function init() {
    routes.init()
    $("#presets").replaceChildren(
        ...Object.entries(PRESETS).map(([name, preset]) =>
            el("button", { type: "button", class: "secondary", onclick: () => fill(preset, { limits: preset.limits, headers: preset.headers, transcription_model: preset.transcription_model }) }, name)),
    )
    const form = $("#provider-form")
    form.addEventListener("reset", () => ((presetExtras = null), ($("#provider-form-title").textContent = "Add a provider")))
    form.addEventListener("submit", async (event) => {
        event.preventDefault()
        const f = form.elements
        const entry = {
            id: f.id.value.trim(),
            kind: f.kind.value,
            base_url: f.base_url.value.trim(),
            default_model: f.default_model.value.trim(),
            models: f.models.value.split(",").map((m) => m.trim()).filter(Boolean),
        }
        try {
            await settingsWith((s) => {
                const old = s.providers.find((p) => p.id === entry.id)
                // A voice preset gives an existing provider its transcription model.
                if (old) Object.assign(old, entry, presetExtras?.transcription_model ? { transcription_model: presetExtras.transcription_model } : {})
                else s.providers.push(Object.assign(entry, JSON.parse(JSON.stringify(presetExtras ?? {}))))
            })
            showProblem($("#provider-problem"), null)
            form.reset()
            render()
        } catch (error) {
            showProblem($("#provider-problem"), error.field ? { message: `${error.field}: ${error.message}` } : error)
        }
    })
}

export const shown = render
