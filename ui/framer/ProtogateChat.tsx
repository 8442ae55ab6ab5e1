// Protogate chat: a Framer code component that streams an AI answer from Protogate, the
// gateway on your own machine. Paste this file into Framer (Assets → Code → New file).
//
// It speaks Protogate's streaming contract: POST {"message", "model"?, "system"?} and read
// `data: {"text": ...}` events until `data: [DONE]`. Every call to Protogate is marked as a
// call to this device (`targetAddressSpace: "loopback"`) and the first one happens on a
// click, so Chrome can ask you once for access to "apps on this device". When a call fails
// before any answer, the component says which case it is and what to do.
import { addPropertyControls, ControlType } from "framer"
import { useRef, useState, type CSSProperties } from "react"

type Props = {
    endpoint: string
    model: string
    system: string
    prompt: string
}

type Phase = "idle" | "asking" | "streaming" | "done" | "stopped" | "problem"

export default function ProtogateChat(props: Props) {
    const { endpoint, model, system } = props
    const [prompt, setPrompt] = useState(props.prompt)
    const [answer, setAnswer] = useState("")
    const [phase, setPhase] = useState<Phase>("idle")
    const [problem, setProblem] = useState("")
    const [hint, setHint] = useState("")
    const controller = useRef<AbortController | null>(null)

    async function send() {
        controller.current?.abort()
        const abort = new AbortController()
        controller.current = abort
        setAnswer("")
        setProblem("")
        setHint("")
        setPhase("asking")
        // Firefox holds the call while it asks for the permission: say where to look.
        const waiting = setTimeout(async () => {
            if ((await localNetworkPermission()) === "prompt") setHint(ASKING)
        }, 2500)
        let response: Response
        try {
            response = await fetch(endpoint, {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ message: prompt, model: model || undefined, system: system || undefined }),
                signal: abort.signal,
                // Chrome's Local Network Access: this call goes to this device.
                targetAddressSpace: "loopback",
            } as RequestInit)
        } catch (error) {
            if (abort.signal.aborted) return setPhase("stopped")
            setProblem(await diagnose(endpoint))
            return setPhase("problem")
        } finally {
            clearTimeout(waiting)
            setHint("")
        }
        if (!response.ok) {
            const body = await response.json().catch(() => ({}))
            setProblem(`Protogate said: ${body.error ?? `error ${response.status}`}`)
            return setPhase("problem")
        }
        setPhase("streaming")
        try {
            await readStream(response, (text) => setAnswer((shown) => shown + text))
            setPhase("done")
        } catch (error) {
            if (abort.signal.aborted) return setPhase("stopped")
            setProblem(error instanceof Error ? error.message : String(error))
            setPhase("problem")
        }
    }

    const busy = phase === "asking" || phase === "streaming"
    return (
        <div style={styles.card} data-phase={phase}>
            <textarea style={styles.input} value={prompt} rows={2} onChange={(e) => setPrompt(e.target.value)} />
            <div style={styles.row}>
                <button style={styles.button} onClick={send} disabled={busy}>
                    {busy ? "Answering…" : "Send"}
                </button>
                <button style={styles.secondary} onClick={() => controller.current?.abort()} disabled={!busy}>
                    Stop
                </button>
            </div>
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
        </div>
    )
}

const ASKING =
    "Your browser is asking whether this page may reach apps on your device (see the " +
    "address bar). Choose Allow to talk to Protogate."

/** Reads `data:` events, carrying a line cut across two network reads to the next one. */
async function readStream(response: Response, onText: (text: string) => void) {
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
            if (event.text) onText(event.text)
        }
    }
}

/** Why a call failed before any answer, from what the page can know, and what to do. */
export async function diagnose(endpoint: string): Promise<string> {
    const target = new URL(endpoint, location.href)
    if (location.protocol === "https:" && target.protocol === "http:" && isSafariEngine()) {
        return (
            "Safari does not let an https page call http://127.0.0.1. Use Protogate's https " +
            "endpoint instead (https://localhost:5712, the same path), after clicking " +
            "“Trust for Safari” in Protogate (or running `protogate tls trust`)."
        )
    }
    const permission = await localNetworkPermission()
    if (inCrossOriginFrame() && (permission === "denied" || !frameMayUseLocalNetwork())) {
        return (
            "This frame is not allowed to reach apps on your device (Framer's canvas does not " +
            "pass that permission on). Open the preview in its own tab, or the published " +
            "site, and click Send there."
        )
    }
    if (permission === "denied") {
        return (
            "Your browser blocks this site from reaching apps on your device. Click the icon " +
            "left of the address, open Site settings, set “Local network access” (or “Apps on " +
            "device”) to Allow, then reload and click Send."
        )
    }
    if (permission === "prompt") {
        return (
            "Your browser needs your permission to reach Protogate on this device. Click Send " +
            "again and choose Allow when it asks about apps on this device; if no question " +
            "appears, allow “Local network access” in this site's settings."
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

addPropertyControls(ProtogateChat, {
    endpoint: {
        type: ControlType.String,
        title: "Endpoint",
        defaultValue: "http://127.0.0.1:5711/api/ai-gateway/stream",
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
        defaultValue: "",
        displayTextArea: true,
    },
    prompt: {
        type: ControlType.String,
        title: "First prompt",
        defaultValue: "Write a tagline for a coffee app",
    },
})

const styles: Record<string, CSSProperties> = {
    card: {
        display: "flex",
        flexDirection: "column",
        gap: 12,
        padding: 16,
        borderRadius: 12,
        background: "#fff",
        boxShadow: "0 1px 3px rgba(0,0,0,0.12)",
        fontFamily: "Inter, system-ui, sans-serif",
        fontSize: 14,
        color: "#111",
    },
    input: { padding: 10, borderRadius: 8, border: "1px solid #ddd", font: "inherit", resize: "vertical" },
    row: { display: "flex", gap: 8 },
    button: { padding: "8px 16px", borderRadius: 8, border: "none", background: "#0a66ff", color: "#fff", font: "inherit" },
    secondary: { padding: "8px 16px", borderRadius: 8, border: "1px solid #ddd", background: "#fff", font: "inherit" },
    answer: { margin: 0, whiteSpace: "pre-wrap", lineHeight: 1.5 },
    hint: { margin: 0, color: "#555", lineHeight: 1.4 },
    problem: { margin: 0, padding: 10, borderRadius: 8, background: "#fff4e5", color: "#7a4100", lineHeight: 1.4 },
}
