// The Chat view's microphone: record in the webview where it allows (MediaRecorder),
// else pick an audio file; either way the audio goes to the gateway's
// `POST /api/voice/process`, over HTTP like any prototype, and the transcript comes back.

/** Whether this webview can record: getUserMedia and MediaRecorder both exist. */
export function canRecord() {
    return Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder)
}

/** Starts recording from the microphone; `stop()` of the answer gives the audio as a Blob. */
export async function record() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
    const recorder = new MediaRecorder(stream)
    const chunks = []
    recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data)
    recorder.start()
    return {
        stop: () =>
            new Promise((resolve) => {
                recorder.onstop = () => {
                    for (const track of stream.getTracks()) track.stop()
                    resolve(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }))
                }
                recorder.stop()
            }),
    }
}

/** Why the microphone could not start, in plain words, from getUserMedia's error. */
export function micProblem(error) {
    const name = error?.name ?? ""
    if (name === "NotAllowedError" || name === "SecurityError") return "This window may not use the microphone"
    if (name === "NotFoundError" || name === "OverconstrainedError") return "No microphone was found"
    if (name === "NotReadableError") return "The microphone is busy in another app"
    return "The microphone could not start"
}

/**
 * Sends `audio` (a Blob or File) to `{endpoint}/api/voice/process` and answers the
 * transcript; a failure is an Error whose message a person can act on.
 */
export async function transcribe(endpoint, audio, { language, provider } = {}) {
    const form = new FormData()
    form.append("audio", audio, audio.name || fileName(audio.type))
    if (language) form.append("language", language)
    if (provider) form.append("provider", provider)
    let response
    try {
        response = await fetch(`${endpoint}/api/voice/process`, { method: "POST", body: form })
    } catch {
        throw new Error(`Protogate did not answer at ${endpoint}: is the gateway running?`)
    }
    const body = await response.json().catch(() => ({}))
    if (!response.ok) throw new Error(`Could not transcribe: ${body.error ?? `error ${response.status}`}`)
    if (typeof body.text !== "string") throw new Error("Could not transcribe: the answer had no text")
    return body
}

/** A recording's file name from its type, so the gateway and providers see the format. */
function fileName(type = "") {
    const ext = { "audio/wav": "wav", "audio/mp4": "m4a", "audio/ogg": "ogg", "audio/mpeg": "mp3" }[type.split(";")[0]]
    return `recording.${ext ?? "webm"}`
}

/**
 * A recording as 16 kHz mono WAV, which every recognizer takes (and whose length the demo
 * provider can tell); the recording as it is where this webview cannot decode it.
 */
export async function toWav(blob) {
    const Context = window.AudioContext ?? window.webkitAudioContext
    if (!Context || !window.OfflineAudioContext) return blob
    const context = new Context()
    try {
        const decoded = await context.decodeAudioData(await blob.arrayBuffer())
        const rate = 16000
        const offline = new OfflineAudioContext(1, Math.max(1, Math.ceil(decoded.duration * rate)), rate)
        const source = offline.createBufferSource()
        source.buffer = decoded
        source.connect(offline.destination)
        source.start()
        return wav((await offline.startRendering()).getChannelData(0), rate)
    } catch {
        return blob
    } finally {
        context.close?.()
    }
}

/** PCM samples (-1..1) as a 16-bit mono WAV file. */
export function wav(samples, rate) {
    const view = new DataView(new ArrayBuffer(44 + samples.length * 2))
    const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)))
    text(0, "RIFF")
    view.setUint32(4, 36 + samples.length * 2, true)
    text(8, "WAVEfmt ")
    view.setUint32(16, 16, true)
    view.setUint16(20, 1, true) // PCM
    view.setUint16(22, 1, true) // mono
    view.setUint32(24, rate, true)
    view.setUint32(28, rate * 2, true)
    view.setUint16(32, 2, true)
    view.setUint16(34, 16, true)
    text(36, "data")
    view.setUint32(40, samples.length * 2, true)
    samples.forEach((s, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, s)) * 0x7fff, true))
    return new Blob([view], { type: "audio/wav" })
}
