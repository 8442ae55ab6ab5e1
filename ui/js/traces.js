// Traces, in Settings: where spans go (off, an OpenTelemetry collector, or Langfuse by its
// preset) and whether they carry prompts and answers. The Langfuse secret key goes to the
// keychain by a command and is cleared from the page at once; the file never holds it.
import { call } from "./api.js"
import { $, showProblem, toast } from "./dom.js"

const LANGFUSE_ACCOUNT = "langfuse"
const LANGFUSE_CLOUD = "https://cloud.langfuse.com"

function form() {
    return $("#traces-form").elements
}

// Shows only the fields of the chosen destination.
function showFields() {
    const to = form().traces_to.value
    for (const node of document.querySelectorAll("#traces-form [data-for]")) {
        node.hidden = node.dataset.for !== to
    }
    form().capture_content.disabled = to === "off"
}

async function showKeyState() {
    const state = await call("secret_status", { id: LANGFUSE_ACCOUNT }).catch(() => null)
    $("#langfuse-key-state").textContent = state ? `Secret key: ${state.key_state}` : ""
}

async function load() {
    const telemetry = (await call("settings_get")).telemetry ?? {}
    const f = form()
    f.traces_to.value = telemetry.langfuse ? "langfuse" : telemetry.otlp_endpoint ? "otlp" : "off"
    f.otlp_endpoint.value = telemetry.otlp_endpoint ?? ""
    f.langfuse_host.value = telemetry.langfuse?.host ?? LANGFUSE_CLOUD
    f.langfuse_public_key.value = telemetry.langfuse?.public_key ?? ""
    f.capture_content.checked = Boolean(telemetry.capture_content)
    showFields()
    await showKeyState()
}

async function save(event) {
    event.preventDefault()
    const f = form()
    const secret = f.langfuse_secret_key.value.trim()
    f.langfuse_secret_key.value = ""
    try {
        if (secret && f.traces_to.value === "langfuse") {
            await call("secret_set", { id: LANGFUSE_ACCOUNT, value: secret })
        }
        // Fresh settings, so a change saved elsewhere in the window is kept.
        const settings = await call("settings_get")
        const telemetry = { ...(settings.telemetry ?? {}) }
        delete telemetry.otlp_endpoint
        delete telemetry.langfuse
        if (f.traces_to.value === "otlp") telemetry.otlp_endpoint = f.otlp_endpoint.value.trim()
        if (f.traces_to.value === "langfuse") {
            telemetry.langfuse = { host: f.langfuse_host.value.trim() || LANGFUSE_CLOUD, public_key: f.langfuse_public_key.value.trim() }
        }
        telemetry.capture_content = f.traces_to.value !== "off" && f.capture_content.checked
        settings.telemetry = telemetry
        await call("settings_save", { settings })
        showProblem($("#traces-problem"), null)
        await showKeyState()
        toast(f.traces_to.value === "off" ? "Traces are off" : "Traces saved; spans leave within a second of each request")
    } catch (error) {
        const where = error.field ? `${error.field}: ` : ""
        showProblem($("#traces-problem"), { message: `${where}${error.message}` })
    }
}

export function init() {
    form().traces_to.addEventListener("change", showFields)
    $("#traces-form").addEventListener("submit", save)
}

export async function shown() {
    try {
        await load()
    } catch (error) {
        showProblem($("#traces-problem"), error)
    }
}
