// The one place that talks to the desktop app: Tauri commands and events. A failed
// command rejects with `{code, message, field?}`; callers show `message` in place.
const tauri = window.__TAURI__

export const available = Boolean(tauri?.core?.invoke)

export function call(command, args = {}) {
    if (!available) return Promise.reject({ code: "no-app", message: "Protogate's app is not running this page." })
    return tauri.core.invoke(command, args).catch((error) =>
        Promise.reject(typeof error === "object" && error ? error : { code: "error", message: String(error) }),
    )
}

export function listen(event, handler) {
    if (!available) return
    tauri.event.listen(event, (e) => handler(e.payload))
}
