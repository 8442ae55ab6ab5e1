// A test chat that calls the gateway over HTTP from this window, as a prototype would:
// a real cross-origin client, so it proves the origin policy and CORS too. The microphone
// transcribes into the composer (voice.js); "Search the web" grounds the answer in
// search results and lists them as sources (search.js).
import { call } from "./api.js"
import { $, el } from "./dom.js"
import * as voice from "./voice.js"
import { search, showWithLinks, sourceLinks, systemPrompt } from "./search.js"

let endpoint = null
let controller = null
const history = []

export function setEndpoint(url) {
    endpoint = url
    $("#chat-send").disabled = !url
    $("#chat-mic").disabled = !url && !recording
}

function bubble(role, text) {
    $("#chat-empty")?.remove()
    const node = el("div", { class: `bubble ${role}` }, text)
    $("#chat-log").append(node)
    node.scrollIntoView({ block: "end" })
    return node
}

/** A line under the composer: what the microphone is doing, or what went wrong. */
function note(text, problem = false) {
    const node = $("#chat-note")
    node.textContent = text ?? ""
    node.classList.toggle("problem-text", problem)
}

async function send(message, withSearch) {
    const answer = bubble("assistant", withSearch ? "Searching the web…" : "…")
    controller = new AbortController()
    $("#chat-stop").disabled = false
    $("#chat-send").disabled = true
    let text = ""
    try {
        const model = $("#chat-model").value || undefined
        let system
        if (withSearch) {
            const found = await search(endpoint, message)
            if (controller.signal.aborted) throw new Error("stopped")
            system = systemPrompt(message, found)
            answer.after(sourceLinks(found))
            answer.textContent = "…"
        }
        const response = await fetch(`${endpoint}/api/ai-gateway/stream`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ message, model, history, system }),
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
                showWithLinks(answer, text)
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
        answer.nextElementSibling?.scrollIntoView({ block: "end" })
    }
}

// The microphone: one click starts recording and the next stops it; where this webview
// cannot record, the click picks an audio file instead. Either way the transcript lands
// in the composer, for the designer to read, edit and send.
let recording = null
let ticker = null

async function micClicked() {
    if (recording) return stopRecording()
    if (!voice.canRecord()) return pickFile("This window cannot record: choose an audio file to transcribe.")
    try {
        recording = await voice.record()
    } catch (error) {
        return pickFile(`${voice.micProblem(error)}: choose an audio file to transcribe instead.`)
    }
    const started = Date.now()
    const mic = $("#chat-mic")
    mic.classList.add("recording")
    mic.setAttribute("aria-label", "Stop recording and transcribe")
    const tick = () => {
        const s = Math.floor((Date.now() - started) / 1000)
        $("#chat-mic-time").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
    }
    tick()
    ticker = setInterval(tick, 500)
    note("Listening… click the microphone again to stop.")
}

async function stopRecording() {
    clearInterval(ticker)
    const mic = $("#chat-mic")
    mic.classList.remove("recording")
    mic.setAttribute("aria-label", "Dictate a message")
    $("#chat-mic-time").textContent = ""
    const audio = await recording.stop()
    recording = null
    await transcribeInto(await voice.toWav(audio))
}

function pickFile(why) {
    note(why)
    $("#chat-audio-file").click()
}

/** Transcribes `audio` through the gateway and puts the text in the composer. */
export async function transcribeInto(audio) {
    if (!endpoint) return note("The gateway is not running: start it on the Endpoint view.", true)
    const mic = $("#chat-mic")
    mic.disabled = true
    mic.classList.add("busy")
    note("Transcribing…")
    try {
        const { text, provider } = await voice.transcribe(endpoint, audio)
        const input = $("#chat-input")
        input.value = [input.value.trim(), text.trim()].filter(Boolean).join(" ")
        input.focus()
        if (text.trim()) note(`Transcribed by ${provider ?? "the voice provider"}: edit it if you like, then Send.`)
        else note("No speech was heard in that recording.", true)
    } catch (error) {
        note(error.message, true)
    } finally {
        mic.disabled = !endpoint
        mic.classList.remove("busy")
    }
}

export function init() {
    $("#chat-form").addEventListener("submit", (event) => {
        event.preventDefault()
        const input = $("#chat-input")
        const message = input.value.trim()
        if (!message || !endpoint) return
        input.value = ""
        note("")
        bubble("user", message)
        send(message, $("#chat-search").checked)
    })
    $("#chat-input").addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey) {
            event.preventDefault()
            $("#chat-form").requestSubmit()
        }
    })
    $("#chat-stop").addEventListener("click", () => controller?.abort())
    $("#chat-mic").addEventListener("click", micClicked)
    $("#chat-mic").title = voice.canRecord()
        ? "Dictate: click to record, click again to transcribe"
        : "Dictate from an audio file (this window cannot record)"
    $("#chat-audio-file").addEventListener("change", (event) => {
        const [file] = event.target.files
        event.target.value = ""
        if (file) transcribeInto(file)
    })
}

export async function shown() {
    try {
        const providers = await call("providers_list")
        const options = providers.filter((p) => !p.capabilities || p.capabilities.includes("chat")).flatMap((p) =>
            [p.default_model, ...p.models.filter((m) => m !== p.default_model)].map((m) =>
                el("option", { value: `${p.id}/${m}`, selected: p.is_default && m === p.default_model }, `${p.id} · ${m}`)))
        $("#chat-model").replaceChildren(...options)
    } catch {
        // The chat still works with the default provider.
    }
    $("#chat-input").focus()
}
