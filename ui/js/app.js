// The window: a sidebar of views, the gateway's state, copy buttons.
import { available, call, listen } from "./api.js"
import { $, toast } from "./dom.js"
import * as endpoint from "./endpoint.js"
import * as providers from "./providers.js"
import * as logs from "./logs.js"
import * as chat from "./chat.js"
import * as settings from "./settings.js"
import * as usage from "./usage.js"

const views = { endpoint, providers, logs, usage, chat, settings }

function show(name) {
    for (const button of document.querySelectorAll(".nav")) {
        button.toggleAttribute("aria-current", button.dataset.view === name)
        if (button.dataset.view === name) button.setAttribute("aria-current", "page")
    }
    for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== name
    views[name].shown?.()
}

function showStatus(status) {
    const box = $("#status")
    box.className = `status ${status.state}`
    const words = {
        running: `Running on ${status.http}`,
        stopped: "Stopped",
        starting: "Starting…",
        failed: "Error",
    }
    $(".label", box).textContent = words[status.state] ?? status.state
    endpoint.showStatus(status)
    chat.setEndpoint(status.http)
}

export async function copy(text, what) {
    try {
        await call("clipboard_write", { text })
        toast(`${what} copied`)
    } catch (error) {
        toast(error.message)
    }
}

document.addEventListener("DOMContentLoaded", async () => {
    $("#no-tauri").hidden = available
    for (const button of document.querySelectorAll(".nav")) {
        button.addEventListener("click", () => show(button.dataset.view))
    }
    for (const view of Object.values(views)) view.init?.()
    listen("gateway-state", showStatus)
    try {
        showStatus(await call("gateway_status"))
    } catch (error) {
        $(".label", $("#status")).textContent = error.message
    }
    // `?view=logs` opens a view directly (previews, screenshots).
    const wanted = new URLSearchParams(location.search).get("view")
    show(views[wanted] ? wanted : "endpoint")
})
