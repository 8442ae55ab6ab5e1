// Protogate ChatKit: OpenAI's ChatKit chat UI in a Framer prototype, answered by
// Protogate, the gateway on your own machine. Paste this file into Framer (Assets → Code →
// New file) and drop the component on the canvas.
//
// ChatKit's script loads from OpenAI's CDN (so the prototype needs the internet for that);
// everything it talks to is Protogate on this machine: threads, answers, uploads. The
// answers come from whichever provider you pick in the composer's model menu (the demo
// provider needs no key). Every call is marked as a call to this device
// (`targetAddressSpace: "loopback"`) for Chrome's local network permission.
import { addPropertyControls, ControlType } from "framer"
import { useEffect, useRef, useState, type CSSProperties } from "react"

type Props = {
    endpoint: string
    domainKey: string
    greeting: string
    placeholder: string
    colorScheme: "light" | "dark"
}

const CHATKIT_SCRIPT = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"

/** The ChatKit element's options, as far as this component sets them. */
type ChatKitElement = HTMLElement & { setOptions(options: unknown): void }

type ModelOption = { id: string; label: string; default?: boolean }

export default function ProtogateChatKit(props: Props) {
    const { endpoint, domainKey, greeting, placeholder, colorScheme } = props
    const host = useRef<HTMLDivElement>(null)
    const [problem, setProblem] = useState("")

    useEffect(() => {
        let element: ChatKitElement | null = null
        let cancelled = false
        const base = endpoint.replace(/\/+$/, "")
        async function start() {
            const [models] = await Promise.all([modelOptions(base), loadChatKit()])
            if (cancelled || !host.current) return
            element = document.createElement("openai-chatkit") as ChatKitElement
            element.style.width = "100%"
            element.style.height = "100%"
            element.setOptions({
                api: {
                    url: `${base}/api/chatkit`,
                    // ChatKit asks every custom server for a domain key; Protogate does not
                    // check it (its origin allowlist decides who may call).
                    domainKey,
                    fetch: loopbackFetch,
                    uploadStrategy: { type: "direct", uploadUrl: `${base}/api/chatkit/upload` },
                },
                theme: { colorScheme },
                startScreen: { greeting },
                composer: {
                    placeholder,
                    models,
                    attachments: { enabled: true, accept: { "image/*": [".png", ".jpg", ".jpeg", ".gif", ".webp"] } },
                },
                history: { enabled: true, showDelete: true, showRename: true },
                threadItemActions: { feedback: true, retry: true },
            })
            host.current.replaceChildren(element)
            setProblem("")
        }
        start().catch((error) => {
            if (!cancelled) setProblem(String(error?.message ?? error))
        })
        return () => {
            cancelled = true
            element?.remove()
        }
    }, [endpoint, domainKey, greeting, placeholder, colorScheme])

    return (
        <div style={frame}>
            <div ref={host} style={fill} />
            {problem && <p style={note}>{problem}</p>}
        </div>
    )
}

/** Every ChatKit call goes to this device: say so, for Chrome's permission prompt. */
function loopbackFetch(input: RequestInfo | URL, init?: RequestInit) {
    return fetch(input, { ...init, targetAddressSpace: "loopback" } as RequestInit)
}

/** The composer's model menu: every model of every provider Protogate has. */
async function modelOptions(base: string): Promise<ModelOption[]> {
    let response: Response
    try {
        response = await loopbackFetch(`${base}/v1/models`)
    } catch {
        throw new Error(
            `Protogate is not reachable at ${base}. Is it running (the tray icon)? In Chrome, allow ` +
                "this page to reach apps on this device when asked."
        )
    }
    if (!response.ok) {
        const body = await response.json().catch(() => null)
        throw new Error(body?.error?.message ?? body?.error ?? `Protogate answered ${response.status}`)
    }
    const { data } = (await response.json()) as { data: { id: string }[] }
    return data.map((model, index) => ({ id: model.id, label: model.id, default: index === 0 }))
}

let loading: Promise<void> | null = null

/** Adds ChatKit's script once per page. */
function loadChatKit(): Promise<void> {
    if (customElements.get("openai-chatkit")) return Promise.resolve()
    loading ??= new Promise((resolve, reject) => {
        const script = document.createElement("script")
        script.src = CHATKIT_SCRIPT
        script.async = true
        script.onload = () => customElements.whenDefined("openai-chatkit").then(() => resolve())
        script.onerror = () => {
            loading = null
            reject(new Error("ChatKit's script did not load from OpenAI's CDN: is this machine online?"))
        }
        document.head.append(script)
    })
    return loading
}

addPropertyControls(ProtogateChatKit, {
    endpoint: { type: ControlType.String, title: "Endpoint", defaultValue: "http://127.0.0.1:5711" },
    domainKey: { type: ControlType.String, title: "Domain key", defaultValue: "local-dev" },
    greeting: { type: ControlType.String, title: "Greeting", defaultValue: "What shall we build?" },
    placeholder: { type: ControlType.String, title: "Placeholder", defaultValue: "Ask anything…" },
    colorScheme: {
        type: ControlType.Enum,
        title: "Theme",
        options: ["light", "dark"],
        defaultValue: "light",
    },
})

ProtogateChatKit.defaultProps = {
    endpoint: "http://127.0.0.1:5711",
    domainKey: "local-dev",
    greeting: "What shall we build?",
    placeholder: "Ask anything…",
    colorScheme: "light",
}

const frame: CSSProperties = { position: "relative", width: "100%", height: "100%", minHeight: 420 }
const fill: CSSProperties = { position: "absolute", inset: 0 }
const note: CSSProperties = {
    position: "absolute",
    inset: "auto 16px 16px",
    margin: 0,
    padding: "10px 12px",
    borderRadius: 8,
    background: "rgba(200, 40, 40, 0.08)",
    color: "#8a1f1f",
    font: "13px/1.4 system-ui, sans-serif",
}
