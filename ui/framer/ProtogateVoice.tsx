// Protogate voice: a Framer code component for prototyping a voice assistant with
// Protogate, the gateway on your own machine. Paste this file into Framer (Assets → Code →
// New file) and drop ProtogateVoice on the canvas. No key goes in the page: Protogate
// holds them (Deepgram, OpenAI, Groq… or its offline demo).
//
// Hold the button to talk and let go to send, or click once to start and again to stop.
// The recording (MediaRecorder, sent as 16 kHz mono WAV where the browser can convert it)
// goes to `POST /api/voice/process`; the transcript shows, then the answer streams from
// `POST /api/chat/stream`, whose first event names the conversation: the next turn
// continues it. Every call to Protogate is marked as a call to this device
// (`targetAddressSpace: "loopback"`) and the first one follows a click, so Chrome can ask
// you once for access to "apps on this device". Failures are told apart in plain words.
import { addPropertyControls, ControlType } from "framer"
import { useEffect, useRef, useState, type CSSProperties, type KeyboardEvent, type PointerEvent } from "react"

type Props = {
    endpoint: string
    model: string
    system: string
    language: string
    speak: boolean
}

type Phase = "idle" | "starting" | "listening" | "transcribing" | "answering" | "done" | "problem"

/** A press longer than this is "hold to talk": letting go sends. */
const HOLD_MS = 350

export default function ProtogateVoice(props: Props) {
    const { model, system, language, speak } = props
    const base = baseUrl(props.endpoint)
    const [phase, setPhase] = useState<Phase>("idle")
    const [transcript, setTranscript] = useState("")
    const [answer, setAnswer] = useState("")
    const [problem, setProblem] = useState("")
    const [hint, setHint] = useState("")
    const [seconds, setSeconds] = useState(0)
    const [conversation, setConversation] = useState("")
    const recorder = useRef<Recording | null>(null)
    const press = useRef({ at: 0, started: false, stopOnUp: false })
    const abort = useRef<AbortController | null>(null)

    useEffect(() => () => {
        recorder.current?.cancel()
        abort.current?.abort()
    }, [])

    async function start() {
        abort.current?.abort()
        setProblem("")
        setPhase("starting")
        try {
            recorder.current = await record(setSeconds)
        } catch (error) {
            setProblem(micProblem(error))
            return setPhase("problem")
        }
        setPhase("listening")
        if (press.current.stopOnUp) finish()
    }

    async function finish() {
        const recording = recorder.current
        if (!recording) {
            // Still starting: stop as soon as the microphone is on.
            press.current.stopOnUp = true
            return
        }
        recorder.current = null
        setPhase("transcribing")
        setTranscript("")
        setAnswer("")
        const audio = await toWav(await recording.stop())
        const controller = new AbortController()
        abort.current = controller
        const heard = await call(`${base}/api/voice/process`, voiceForm(audio, language), controller)
        if (!heard) return
        const said = typeof heard.text === "string" ? heard.text.trim() : ""
        setTranscript(said)
        if (!said) {
            setProblem("No speech was heard. Hold the button, speak, then let go.")
            return setPhase("problem")
        }
        setPhase("answering")
        const body = JSON.stringify({
            message: said,
            model: model || undefined,
            system: system || undefined,
            conversation_id: conversation || undefined,
        })
        const response = await call(`${base}/api/chat/stream`, body, controller, true)
        if (!response) return
        let text = ""
        try {
            await readStream(response, (event) => {
                if (event.conversation_id) setConversation(event.conversation_id)
                if (event.text) setAnswer((text += event.text))
            })
        } catch (error) {
            if (controller.signal.aborted) return
            setProblem(error instanceof Error ? error.message : String(error))
            return setPhase("problem")
        }
        setPhase("done")
        if (speak && text && "speechSynthesis" in window) {
            const utterance = new SpeechSynthesisUtterance(text)
            if (language) utterance.lang = language
            speechSynthesis.speak(utterance)
        }
    }

    /**
     * POSTs to Protogate: the JSON of a good answer (or the response itself, to stream);
     * null after showing why it failed.
     */
    async function call(url: string, body: BodyInit, controller: AbortController, stream = false) {
        // Firefox holds the call while it asks for the permission: say where to look.
        const waiting = setTimeout(async () => {
            if ((await localNetworkPermission()) === "prompt") setHint(ASKING)
        }, 2500)
        let response: Response
        try {
            response = await fetch(url, {
                method: "POST",
                headers: typeof body === "string" ? { "Content-Type": "application/json" } : undefined,
                body,
                signal: controller.signal,
                // Chrome's Local Network Access: this call goes to this device.
                targetAddressSpace: "loopback",
            } as RequestInit)
        } catch {
            if (!controller.signal.aborted) {
                setProblem(await diagnose(url))
                setPhase("problem")
            }
            return null
        } finally {
            clearTimeout(waiting)
            setHint("")
        }
        if (!response.ok) {
            const failure = await response.json().catch(() => ({}))
            setProblem(`Protogate said: ${failure.error ?? `error ${response.status}`}`)
            setPhase("problem")
            return null
        }
        return stream ? response : response.json()
    }

    // Hold to talk, or click to start and click again to stop; keys work as clicks.
    const busy = phase === "transcribing" || phase === "answering" || phase === "starting"
    const listening = phase === "listening" || (phase === "starting" && press.current.started)
    function pointerDown(event: PointerEvent) {
        if (event.button !== 0) return
        if (recorder.current || phase === "starting") {
            press.current = { at: Date.now(), started: false, stopOnUp: true }
            return
        }
        if (busy) return
        press.current = { at: Date.now(), started: true, stopOnUp: false }
        start()
    }
    function pointerUp() {
        const p = press.current
        if (p.stopOnUp || (p.started && Date.now() - p.at > HOLD_MS)) finish()
        press.current = { ...p, started: false }
    }
    function keyDown(event: KeyboardEvent) {
        if (event.key !== "Enter" && event.key !== " ") return
        event.preventDefault()
        if (recorder.current || phase === "starting") finish()
        else if (!busy) start()
    }

    return (
        <div style={styles.card} data-phase={phase} data-conversation={conversation}>
            <button
                style={{ ...styles.talk, ...(listening ? styles.talking : null), ...(busy && !listening ? styles.waiting : null) }}
                onPointerDown={pointerDown}
                onPointerUp={pointerUp}
                onKeyDown={keyDown}
                onContextMenu={(e) => e.preventDefault()}
                aria-pressed={listening}
                aria-label={listening ? "Stop and send" : "Hold to talk"}
                data-role="talk"
            >
                <MicIcon />
            </button>
            <p style={styles.status} data-role="status">
                {statusLine(phase, seconds, press.current.started)}
            </p>
            {transcript && (
                <p style={styles.transcript} data-role="transcript">
                    {transcript}
                </p>
            )}
            {answer && (
                <p style={styles.answer} data-role="answer">
                    {answer}
                </p>
            )}
            {hint && (
                <p style={styles.hint} data-role="hint">
                    {hint}
                </p>
            )}
            {problem && (
                <p style={styles.problem} data-role="problem">
                    {problem}
                </p>
            )}
            {conversation && !busy && !listening && (
                <button style={styles.link} onClick={() => (setConversation(""), setTranscript(""), setAnswer(""))}>
                    New conversation
                </button>
            )}
        </div>
    )
}

function statusLine(phase: Phase, seconds: number, holding: boolean): string {
    switch (phase) {
        case "starting":
            return "Starting the microphone…"
        case "listening":
            return `Listening… ${seconds}s · ${holding ? "let go" : "click again"} to send`
        case "transcribing":
            return "Transcribing…"
        case "answering":
            return "Answering…"
        case "done":
            return "Hold to talk again"
        default:
            return "Hold to talk, or click to start and stop"
    }
}

const ASKING =
    "Your browser is asking whether this page may reach apps on your device (see the " +
    "address bar). Choose Allow to talk to Protogate."

/** The endpoint as a base URL: a route pasted by mistake is cut off. */
function baseUrl(endpoint: string): string {
    return endpoint.trim().replace(/\/+$/, "").replace(/\/(api|v1)(\/.*)?$/, "")
}

type Recording = { stop(): Promise<Blob>; cancel(): void }

/** Records from the microphone until `stop()`, counting seconds in `onSecond`. */
async function record(onSecond: (s: number) => void): Promise<Recording> {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
        throw Object.assign(new Error("no recording"), { name: window.isSecureContext ? "NotSupportedError" : "InsecureContext" })
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
    const recorder = new MediaRecorder(stream)
    const chunks: Blob[] = []
    recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data)
    recorder.start()
    const started = Date.now()
    onSecond(0)
    const ticker = setInterval(() => onSecond(Math.floor((Date.now() - started) / 1000)), 250)
    const end = () => {
        clearInterval(ticker)
        for (const track of stream.getTracks()) track.stop()
    }
    return {
        stop: () =>
            new Promise((resolve) => {
                recorder.onstop = () => {
                    end()
                    resolve(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }))
                }
                recorder.stop()
            }),
        cancel: () => {
            recorder.onstop = end
            if (recorder.state !== "inactive") recorder.stop()
            else end()
        },
    }
}

/** Why the microphone did not start, and what to do, from getUserMedia's error. */
function micProblem(error: unknown): string {
    const name = (error as { name?: string })?.name ?? ""
    if (name === "InsecureContext") {
        return "The microphone works only on https pages (or localhost). Open the published site or the preview over https."
    }
    if (name === "NotSupportedError") return "This browser cannot record audio here. Try Chrome, Edge, Firefox or Safari."
    if (name === "NotAllowedError" || name === "SecurityError") {
        if (inCrossOriginFrame()) {
            return (
                "This frame is not allowed to use the microphone (Framer's canvas does not pass " +
                "that permission on). Open the preview in its own tab, or the published site, and talk there."
            )
        }
        return (
            "The microphone is blocked for this site. Click the icon left of the address, allow " +
            "the Microphone, then reload and hold the button again."
        )
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "No microphone was found. Connect one and try again."
    if (name === "NotReadableError") return "The microphone is busy in another app. Close it there and try again."
    return `The microphone could not start (${name || String(error)}).`
}

function voiceForm(audio: Blob, language: string): FormData {
    const form = new FormData()
    const type = audio.type.split(";")[0]
    const ext = ({ "audio/wav": "wav", "audio/mp4": "m4a", "audio/ogg": "ogg" } as Record<string, string>)[type] ?? "webm"
    form.append("audio", audio, `recording.${ext}`)
    if (language) form.append("language", language)
    return form
}

/**
 * The recording as 16 kHz mono WAV, which every recognizer takes (and whose length the
 * demo provider can tell); the recording as it is where the browser cannot decode it.
 */
async function toWav(blob: Blob): Promise<Blob> {
    const Context = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext
    if (!Context || typeof OfflineAudioContext === "undefined") return blob
    const context = new Context()
    try {
        const decoded = await context.decodeAudioData(await blob.arrayBuffer())
        const rate = 16000
        const offline = new OfflineAudioContext(1, Math.max(1, Math.ceil(decoded.duration * rate)), rate)
        const source = offline.createBufferSource()
        source.buffer = decoded
        source.connect(offline.destination)
        source.start()
        const samples = (await offline.startRendering()).getChannelData(0)
        const view = new DataView(new ArrayBuffer(44 + samples.length * 2))
        const text = (at: number, s: string) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)))
        text(0, "RIFF")
        view.setUint32(4, 36 + samples.length * 2, true)
        text(8, "WAVEfmt ")
        view.setUint32(16, 16, true)
        view.setUint16(20, 1, true)
        view.setUint16(22, 1, true)
        view.setUint32(24, rate, true)
        view.setUint32(28, rate * 2, true)
        view.setUint16(32, 2, true)
        view.setUint16(34, 16, true)
        text(36, "data")
        view.setUint32(40, samples.length * 2, true)
        samples.forEach((s, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, s)) * 0x7fff, true))
        return new Blob([view], { type: "audio/wav" })
    } catch {
        return blob
    } finally {
        context.close()
    }
}

/** Reads `data:` events, carrying a line cut across two network reads to the next one. */
async function readStream(response: Response, onEvent: (event: { text?: string; conversation_id?: string }) => void) {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let pending = ""
    while (true) {
        const { done, value } = await reader.read()
        if (done) return
        const lines = (pending + decoder.decode(value, { stream: true })).split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) {
            if (!line.startsWith("data: ")) continue
            const data = line.slice(6)
            if (data === "[DONE]") return
            const event = JSON.parse(data)
            if (event.error) throw new Error(`Protogate said: ${event.error}`)
            onEvent(event)
        }
    }
}

/** Why a call failed before any answer, from what the page can know, and what to do. */
export async function diagnose(endpoint: string): Promise<string> {
    const target = new URL(endpoint, location.href)
    if (location.protocol === "https:" && target.protocol === "http:" && isSafariEngine()) {
        return (
            "Safari does not let an https page call http://127.0.0.1. Set the endpoint to " +
            "Protogate's https one (https://localhost:5712), after clicking “Trust for Safari” " +
            "in Protogate (or running `protogate tls trust`)."
        )
    }
    const permission = await localNetworkPermission()
    if (inCrossOriginFrame() && (permission === "denied" || !frameMayUseLocalNetwork())) {
        return (
            "This frame is not allowed to reach apps on your device (Framer's canvas does not " +
            "pass that permission on). Open the preview in its own tab, or the published " +
            "site, and talk there."
        )
    }
    if (permission === "denied") {
        return (
            "Your browser blocks this site from reaching apps on your device. Click the icon " +
            "left of the address, open Site settings, set “Local network access” (or “Apps on " +
            "device”) to Allow, then reload and talk again."
        )
    }
    if (permission === "prompt") {
        return (
            "Your browser needs your permission to reach Protogate on this device. Talk again " +
            "and choose Allow when it asks about apps on this device; if no question appears, " +
            "allow “Local network access” in this site's settings."
        )
    }
    return (
        `Protogate did not answer at ${target.origin}. Is it running? Start it from its ` +
        "menu bar (tray) icon, or run `protogate serve`, and check the port in its window."
    )
}

/** The Local Network Access permission's state, under the names Chrome has used. */
async function localNetworkPermission(): Promise<PermissionState | "unsupported"> {
    for (const name of ["loopback-network", "local-network-access"]) {
        try {
            return (await navigator.permissions.query({ name } as unknown as PermissionDescriptor)).state
        } catch {
            // This browser does not know this name.
        }
    }
    return "unsupported"
}

function inCrossOriginFrame(): boolean {
    if (window.self === window.top) return false
    try {
        return window.top!.location.origin !== location.origin
    } catch {
        return true
    }
}

/** Whether the parent delegated the permission (`allow="local-network-access"`); true where unknown. */
function frameMayUseLocalNetwork(): boolean {
    const policy = (document as unknown as { featurePolicy?: { allowsFeature(name: string): boolean } }).featurePolicy
    if (!policy) return true
    return policy.allowsFeature("local-network-access") || policy.allowsFeature("loopback-network")
}

function isSafariEngine(): boolean {
    const ua = navigator.userAgent
    return /AppleWebKit/.test(ua) && !/Chrome|Chromium|CriOS|Edg|OPR|Firefox|FxiOS/.test(ua)
}

function MicIcon() {
    return (
        <svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" aria-hidden="true">
            <rect x="9" y="3" width="6" height="11" rx="3" />
            <path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M8.5 21h7" />
        </svg>
    )
}

addPropertyControls(ProtogateVoice, {
    endpoint: {
        type: ControlType.String,
        title: "Endpoint",
        defaultValue: "http://127.0.0.1:5711",
        placeholder: "https://localhost:5712 for Safari",
    },
    model: {
        type: ControlType.String,
        title: "Model",
        defaultValue: "",
        placeholder: "provider/model, empty for the default",
    },
    system: {
        type: ControlType.String,
        title: "System prompt",
        defaultValue: "You are a friendly voice assistant. Answer in one or two short sentences.",
        displayTextArea: true,
    },
    language: {
        type: ControlType.String,
        title: "Language",
        defaultValue: "",
        placeholder: "en, fr, de… empty to detect",
    },
    speak: {
        type: ControlType.Boolean,
        title: "Speak answer",
        defaultValue: false,
    },
})

const styles: Record<string, CSSProperties> = {
    card: {
        display: "flex",
        flexDirection: "column",
        alignItems: "center",
        gap: 12,
        padding: 20,
        borderRadius: 16,
        background: "#fff",
        boxShadow: "0 1px 3px rgba(0,0,0,0.12)",
        fontFamily: "Inter, system-ui, sans-serif",
        fontSize: 14,
        color: "#111",
        textAlign: "center",
    },
    talk: {
        width: 72,
        height: 72,
        borderRadius: "50%",
        border: "none",
        background: "#0a66ff",
        color: "#fff",
        display: "flex",
        alignItems: "center",
        justifyContent: "center",
        cursor: "pointer",
        touchAction: "none",
        userSelect: "none",
        transition: "transform 120ms, box-shadow 120ms, background 120ms",
    },
    talking: { background: "#e5484d", transform: "scale(1.08)", boxShadow: "0 0 0 8px rgba(229,72,77,0.18)" },
    waiting: { opacity: 0.6, cursor: "progress" },
    status: { margin: 0, color: "#666", fontSize: 13 },
    transcript: { margin: 0, alignSelf: "flex-end", maxWidth: "85%", padding: "8px 12px", borderRadius: 12, background: "#0a66ff", color: "#fff", textAlign: "left" },
    answer: { margin: 0, alignSelf: "flex-start", maxWidth: "85%", padding: "8px 12px", borderRadius: 12, background: "#f2f3f5", whiteSpace: "pre-wrap", lineHeight: 1.5, textAlign: "left" },
    hint: { margin: 0, color: "#555", lineHeight: 1.4 },
    problem: { margin: 0, padding: 10, borderRadius: 8, background: "#fff4e5", color: "#7a4100", lineHeight: 1.4, textAlign: "left" },
    link: { border: "none", background: "none", color: "#0a66ff", font: "inherit", fontSize: 13, cursor: "pointer", padding: 0 },
}
