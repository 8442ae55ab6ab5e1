// The home view: the URL to call, the gateway's state, and ready-made snippets.
import { call } from "./api.js"
import { $ } from "./dom.js"
import { copy } from "./app.js"

let status = { state: "starting", http: null }

export function showStatus(next) {
    status = next
    $("#endpoint-url").textContent = next.http ? `${next.http}/api/ai-gateway/stream` : "Not running"
    const https = $("#endpoint-https")
    https.textContent = next.https ? `Safari: ${next.https}/api/ai-gateway/stream` : ""
    https.hidden = !next.https
    const lan = $("#endpoint-lan")
    lan.textContent = next.lan ? `On your network: ${next.lan}/api/ai-gateway/stream (with the access token)` : ""
    lan.hidden = !next.lan
    const words = { running: "Running", stopped: "Stopped", starting: "Starting…", failed: "Could not start" }
    $("#endpoint-state").textContent = words[next.state] ?? next.state
    const toggle = $("#toggle-gateway")
    toggle.textContent = next.state === "running" || next.state === "starting" ? "Stop" : "Start"
    toggle.disabled = next.state === "starting"
    showFailure(next.state === "failed" ? next.reason : null, next.port_in_use)
    for (const button of document.querySelectorAll("[data-copy]")) button.disabled = !next.http
}

// Why it could not start, and for a port another app holds the fix as one button.
function showFailure(reason, portInUse = null) {
    $("#endpoint-fix").hidden = !reason
    $("#use-free-port").hidden = !portInUse
    $("#endpoint-problem").textContent = !reason ? "" : portInUse
        ? `Port ${portInUse} is already in use by another app. Move Protogate to the next free port; your prototypes then need the new endpoint.`
        : reason
}

function snippet(kind) {
    const base = status.http
    if (kind === "endpoint") return `${base}/api/ai-gateway/stream`
    if (kind === "curl") {
        return `curl -N ${base}/api/ai-gateway/stream -H 'Content-Type: application/json' -d '{"message": "Write a tagline for a coffee app"}'`
    }
    return [
        'import OpenAI from "openai"',
        `const client = new OpenAI({ baseURL: "${base}/v1", apiKey: "not-needed", dangerouslyAllowBrowser: true,`,
        '    fetch: (url, init) => fetch(url, { ...init, targetAddressSpace: "loopback" }) })',
        'const answer = await client.chat.completions.create({ model: "demo/protogate-demo", messages: [{ role: "user", content: "Hi" }] })',
    ].join("\n")
}

export function init() {
    $("#toggle-gateway").addEventListener("click", async () => {
        const running = status.state === "running"
        try {
            await call(running ? "gateway_stop" : "gateway_start")
        } catch (error) {
            showFailure(error.message)
        }
    })
    $("#use-free-port").addEventListener("click", async () => {
        try {
            await call("gateway_use_free_port")
        } catch (error) {
            showFailure(error.message)
        }
    })
    for (const button of document.querySelectorAll("[data-copy]")) {
        button.addEventListener("click", async () => {
            const kind = button.dataset.copy
            if (kind === "framer") {
                try {
                    copy(await call("framer_component"), "Framer component")
                } catch (error) {
                    showFailure(error.message)
                }
                return
            }
            copy(snippet(kind), { endpoint: "Endpoint", curl: "curl command", sdk: "OpenAI SDK snippet" }[kind])
        })
    }
}
