// A test chat that calls the gateway over HTTP from this window, as a prototype would:
// a real cross-origin client, so it proves the origin policy and CORS too.
import { call } from "./api.js"
import { $, el } from "./dom.js"

let endpoint = null
let controller = null
const history = []

export function setEndpoint(url) {
    endpoint = url
    $("#chat-send").disabled = !url
}

function bubble(role, text) {
    $("#chat-empty")?.remove()
    const node = el("div", { class: `bubble ${role}` }, text)
    $("#chat-log").append(node)
    node.scrollIntoView({ block: "end" })
    return node
}

async function send(message) {
    const answer = bubble("assistant", "…")
    controller = new AbortController()
    $("#chat-stop").disabled = false
    $("#chat-send").disabled = true
    let text = ""
    try {
        const model = $("#chat-model").value || undefined
        const response = await fetch(`${endpoint}/api/ai-gateway/stream`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ message, model, history }),
            signal: controller.signal,
        })
        if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error ?? `error ${response.status}`)
        const reader = response.body.getReader()
        const decoder = new TextDecoder()
        let pending = ""
        reading: while (true) {
            const { done, value } = await reader.read()
            if (done) break
            const lines = (pending + decoder.decode(value, { stream: true })).split("\n")
            pending = lines.pop()
            for (const line of lines) {
                if (!line.startsWith("data: ")) continue
                const data = line.slice(6)
                if (data === "[DONE]") break reading
                const event = JSON.parse(data)
                if (event.error) throw new Error(event.error)
                text += event.text ?? ""
                answer.textContent = text
            }
        }
        history.push({ role: "user", content: message }, { role: "assistant", content: text })
    } catch (error) {
        answer.classList.add("error")
        answer.textContent = controller.signal.aborted ? `${text}\n(stopped)` : error.message
    } finally {
        controller = null
        $("#chat-stop").disabled = true
        $("#chat-send").disabled = !endpoint
    }
}

export function init() {
    $("#chat-form").addEventListener("submit", (event) => {
        event.preventDefault()
        const input = $("#chat-input")
        const message = input.value.trim()
        if (!message || !endpoint) return
        input.value = ""
        bubble("user", message)
        send(message)
    })
    $("#chat-input").addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey) {
            event.preventDefault()
            $("#chat-form").requestSubmit()
        }
    })
    $("#chat-stop").addEventListener("click", () => controller?.abort())
}

export async function shown() {
    try {
        const providers = await call("providers_list")
        const options = providers.flatMap((p) =>
            [p.default_model, ...p.models.filter((m) => m !== p.default_model)].map((m) =>
                el("option", { value: `${p.id}/${m}`, selected: p.is_default && m === p.default_model }, `${p.id} · ${m}`)))
        $("#chat-model").replaceChildren(...options)
    } catch {
        // The chat still works with the default provider.
    }
    $("#chat-input").focus()
}
