// Settings: one form, saved whole; a mistake is shown on its field and nothing is saved.
import { call } from "./api.js"
import { $, showProblem, toast } from "./dom.js"
import * as traces from "./traces.js"

let current = null

async function load() {
    current = await call("settings_get")
    const f = $("#settings-form").elements
    f.port.value = current.port
    f.retention_days.value = current.log.retention_days
    f.requests_per_minute.value = current.limits.requests_per_minute
    f.burst.value = current.limits.burst
    f.max_body_mb.value = +(current.limits.max_body_bytes / 1048576).toFixed(2)
    f.max_concurrent_streams.value = current.limits.max_concurrent_streams
    const cache = current.cache ?? {}
    f.cache_enabled.checked = !!cache.enabled
    f.cache_ttl_s.value = cache.ttl_s ?? 300
    f.cache_max_mb.value = +((cache.max_bytes ?? 33554432) / 1048576).toFixed(2)
    f.cache_max_temperature.value = cache.max_temperature ?? ""
    f.cache_coalesce.checked = cache.coalesce ?? true
    f.allow_any_origin.checked = current.cors.allow_any_origin
    f.allowed_origins.value = current.cors.allowed_origins.join("\n")
    f.require_access_token.checked = current.require_access_token
    f.lan.checked = current.host !== "127.0.0.1"
    f.autostart.checked = await call("autostart_get").catch(() => false)
    showConsequences()
}

// What a checkbox means, said next to it: any origin is a risk; LAN shows its address.
function showConsequences() {
    const f = $("#settings-form").elements
    $("#any-origin-warning").hidden = !f.allow_any_origin.checked
    call("gateway_status").then((status) => {
        const lan = $("#lan-address")
        lan.textContent = status.lan ? `Other devices use ${status.lan} with the access token.` : f.lan.checked ? "Save to serve on your network; its address shows here." : ""
        lan.hidden = !lan.textContent
    }).catch(() => {})
}

export function init() {
    traces.init()
    for (const name of ["allow_any_origin", "lan"]) {
        $("#settings-form").elements[name].addEventListener("change", showConsequences)
    }
    $("#token-generate").addEventListener("click", async () => {
        try {
            await call("access_token_generate")
            toast("A new access token is on the clipboard (and in the keychain)")
        } catch (error) {
            showProblem($("#settings-problem"), error)
        }
    })
    $("#tls-trust").addEventListener("click", async () => {
        try {
            showTls(await call("tls_trust"))
            toast("Trusted. Restart the browser, then use https://localhost")
        } catch (error) {
            showProblem($("#settings-problem"), error)
        }
    })
    $("#settings-form").addEventListener("submit", async (event) => {
        event.preventDefault()
        const f = event.target.elements
        // The file as it is now: a card that saves on its own (Traces) is not undone.
        const next = await call("settings_get").catch(() => structuredClone(current))
        next.port = Number(f.port.value)
        next.log.retention_days = Number(f.retention_days.value)
        next.limits.requests_per_minute = Number(f.requests_per_minute.value)
        next.limits.burst = Number(f.burst.value)
        next.limits.max_body_bytes = Math.round(Number(f.max_body_mb.value) * 1048576)
        next.limits.max_concurrent_streams = Number(f.max_concurrent_streams.value)
        next.cache = {
            ...next.cache,
            enabled: f.cache_enabled.checked,
            ttl_s: Number(f.cache_ttl_s.value),
            max_bytes: Math.round(Number(f.cache_max_mb.value) * 1048576),
            coalesce: f.cache_coalesce.checked,
        }
        if (f.cache_max_temperature.value === "") delete next.cache.max_temperature
        else next.cache.max_temperature = Number(f.cache_max_temperature.value)
        next.cors.allow_any_origin = f.allow_any_origin.checked
        next.cors.allowed_origins = f.allowed_origins.value.split("\n").map((o) => o.trim()).filter(Boolean)
        next.require_access_token = f.require_access_token.checked
        next.host = f.lan.checked ? "0.0.0.0" : "127.0.0.1"
        try {
            current = await call("settings_save", { settings: next })
            await call("autostart_set", { enabled: f.autostart.checked }).catch(() => {})
            showProblem($("#settings-problem"), null)
            showConsequences()
            toast("Settings saved")
        } catch (error) {
            const where = error.field ? `${error.field}: ` : ""
            showProblem($("#settings-problem"), { message: `${where}${error.message}` })
        }
    })
}

function showTls(tls) {
    const where = tls.trusted_in.length ? `Trusted in ${tls.trusted_in.join(", ")}.` : "Not trusted yet."
    $("#tls-state").textContent = tls.ca_exists ? `${where} CA fingerprint ${tls.fingerprint.slice(0, 23)}…` : "No certificate yet."
}

export async function shown() {
    try {
        await load()
        await traces.shown()
        showTls(await call("tls_status"))
    } catch (error) {
        showProblem($("#settings-problem"), error)
    }
}
