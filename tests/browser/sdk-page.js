// The OpenAI JS SDK in a public page, streaming from Protogate's OpenAI-compatible route.
// Its fetch is given the Local Network Access annotation, as the README shows.
import OpenAI from "openai"

const baseURL = new URLSearchParams(location.search).get("base")
const client = new OpenAI({
    baseURL,
    apiKey: "not-needed",
    dangerouslyAllowBrowser: true,
    fetch: (url, init) => fetch(url, { ...init, targetAddressSpace: "loopback" }),
})

async function run() {
    let text = ""
    try {
        const stream = await client.chat.completions.create({
            model: "demo/protogate-demo",
            stream: true,
            messages: [{ role: "user", content: "Hello from the OpenAI SDK" }],
        })
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ""
        return { ok: true, text }
    } catch (error) {
        return { ok: false, error: String(error), text }
    }
}

run().then((result) => fetch("/report", { method: "POST", body: JSON.stringify(result) }))
