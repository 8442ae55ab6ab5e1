// Renders the voice component with its property controls' defaults, as Framer would, and
// plays a designer with a microphone (Chromium's fake one, fed a spoken WAV): hold the
// button for a few seconds and let go; then a second turn by click, click. Reports what
// the component shows after each turn to the page's own server.
import { createRoot } from "react-dom/client"
import ProtogateVoice from "../../ui/framer/ProtogateVoice.tsx"

const params = new URLSearchParams(location.search)
const props = Object.fromEntries(
    Object.entries(ProtogateVoice.propertyControls).map(([name, control]) => [name, control.defaultValue]),
)
if (params.get("endpoint")) props.endpoint = params.get("endpoint")
const holdMs = Number(params.get("hold") ?? 2500)
const turnsWanted = Number(params.get("turns") ?? 2)

const root = document.getElementById("root")
createRoot(root).render(<ProtogateVoice {...props} />)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const card = () => root.querySelector("[data-phase]")
const pointer = (type) =>
    root.querySelector("[data-role=talk]").dispatchEvent(new PointerEvent(type, { bubbles: true, button: 0, isPrimary: true }))
const shown = (role) => root.querySelector(`[data-role=${role}]`)?.textContent ?? ""

async function settled() {
    for (let i = 0; i < 600; i++) {
        if (["done", "problem"].includes(card().dataset.phase) || shown("hint")) break
        await sleep(50)
    }
    return {
        phase: card().dataset.phase,
        conversation: card().dataset.conversation,
        transcript: shown("transcript"),
        answer: shown("answer"),
        problem: shown("problem"),
        hint: shown("hint"),
    }
}

async function play() {
    await sleep(100)
    // Hold to talk: press, speak, let go.
    pointer("pointerdown")
    await sleep(holdMs)
    const listening = card().dataset.phase
    pointer("pointerup")
    const first = await settled()
    first.while_held = listening
    const turns = [first]
    if (first.phase === "done" && turnsWanted > 1) {
        // Click to start, click to stop: the same conversation goes on.
        pointer("pointerdown")
        pointer("pointerup")
        await sleep(1500)
        const listening = card().dataset.phase
        pointer("pointerdown")
        pointer("pointerup")
        const second = await settled()
        second.while_clicked = listening
        turns.push(second)
    }
    await fetch("/report", { method: "POST", body: JSON.stringify({ turns }) })
}
play()
