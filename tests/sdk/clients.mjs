// The official SDKs against Protogate, as their documentation's examples use them.
// `node clients.mjs CASE BASE_URL MODEL [THEN_MODEL]` prints one JSON line with what the
// SDK returned; THEN_MODEL answers the turn after a tool result.
import OpenAI from "openai"
import Anthropic from "@anthropic-ai/sdk"
import fs from "node:fs"
import { experimental_transcribe as transcribe, generateText, streamText } from "ai"
import { createOpenAI } from "@ai-sdk/openai"

const [testCase, base, model, thenModel = model] = process.argv.slice(2)

const weatherQuestion = "What's the weather like in Paris today?"
const openaiTools = [{
    type: "function",
    function: {
        name: "get_weather",
        description: "Get the current weather in a given location",
        parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
    },
}]
const anthropicTools = [{
    name: "get_weather",
    description: "Get the current weather in a given location",
    input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
}]

const openai = () => new OpenAI({ baseURL: `${base}/v1`, apiKey: "not-needed" })
const anthropic = () => new Anthropic({ baseURL: base, apiKey: "not-needed" })

const cases = {
    // OpenAI's function-calling guide: ask, get a tool call, send the result back.
    async "openai-tools"() {
        const client = openai()
        const messages = [{ role: "user", content: weatherQuestion }]
        const first = await client.chat.completions.create({ model, messages, tools: openaiTools })
        const call = first.choices[0].message.tool_calls[0]
        messages.push(first.choices[0].message)
        messages.push({ role: "tool", tool_call_id: call.id, content: "18 degrees and sunny" })
        const second = await client.chat.completions.create({ model: thenModel, messages, tools: openaiTools })
        return {
            name: call.function.name,
            arguments: JSON.parse(call.function.arguments),
            finish: first.choices[0].finish_reason,
            then: second.choices[0].message.content,
        }
    },
    async "openai-tools-stream"() {
        const stream = openai().chat.completions.stream({ model, tools: openaiTools,
            messages: [{ role: "user", content: weatherQuestion }] })
        const final = await stream.finalChatCompletion()
        const call = final.choices[0].message.tool_calls[0]
        return { name: call.function.name, arguments: JSON.parse(call.function.arguments),
            finish: final.choices[0].finish_reason, text: final.choices[0].message.content }
    },
    // Anthropic's tool-use guide: ask, get tool_use, send a tool_result back.
    async "anthropic-tools"() {
        const client = anthropic()
        const messages = [{ role: "user", content: weatherQuestion }]
        const first = await client.messages.create({ model, max_tokens: 1024, tools: anthropicTools, messages })
        const use = first.content.find((b) => b.type === "tool_use")
        messages.push({ role: "assistant", content: first.content })
        messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18 degrees and sunny" }] })
        const second = await client.messages.create({ model: thenModel, max_tokens: 1024, tools: anthropicTools, messages })
        return { name: use.name, input: use.input, stop: first.stop_reason,
            then: second.content.filter((b) => b.type === "text").map((b) => b.text).join("") }
    },
    async "anthropic-tools-stream"() {
        const stream = anthropic().messages.stream({ model, max_tokens: 1024, tools: anthropicTools,
            messages: [{ role: "user", content: weatherQuestion }] })
        const final = await stream.finalMessage()
        const use = final.content.find((b) => b.type === "tool_use")
        return { name: use.name, input: use.input, stop: final.stop_reason,
            text: final.content.filter((b) => b.type === "text").map((b) => b.text).join("") }
    },
    // OpenAI's Responses API, as its docs show first.
    async "responses"() {
        const response = await openai().responses.create({ model, input: "Write a tagline for a coffee app" })
        return { text: response.output_text, status: response.status }
    },
    async "responses-stream"() {
        const stream = await openai().responses.create({ model, input: "Write a tagline for a coffee app", stream: true })
        let text = ""
        const types = []
        for await (const event of stream) {
            types.push(event.type)
            if (event.type === "response.output_text.delta") text += event.delta
        }
        return { text, first: types[0], last: types[types.length - 1] }
    },
    async "responses-tools"() {
        const response = await openai().responses.create({ model, input: weatherQuestion,
            tools: [{ type: "function", ...openaiTools[0].function }] })
        const call = response.output.find((item) => item.type === "function_call")
        return { name: call.name, arguments: JSON.parse(call.arguments) }
    },
    // The Vercel AI SDK's default OpenAI model calls the Responses API.
    async "ai-sdk"() {
        const provider = createOpenAI({ baseURL: `${base}/v1`, apiKey: "not-needed" })
        const whole = await generateText({ model: provider(model), prompt: "Write a tagline for a coffee app" })
        const streamed = streamText({ model: provider(model), prompt: "Write a tagline for a coffee app" })
        let text = ""
        for await (const delta of streamed.textStream) text += delta
        return { text: whole.text, streamed: text, finish: whole.finishReason }
    },
    // OpenAI's speech-to-text guide: a file in, its text out. THEN is the audio file.
    async "openai-transcribe"() {
        const transcription = await openai().audio.transcriptions.create({
            file: fs.createReadStream(thenModel), model })
        return { text: transcription.text }
    },
    // The AI SDK's transcribe, with its OpenAI provider. THEN is the audio file.
    async "ai-transcribe"() {
        const provider = createOpenAI({ baseURL: `${base}/v1`, apiKey: "not-needed" })
        const result = await transcribe({ model: provider.transcription(model), audio: fs.readFileSync(thenModel) })
        return { text: result.text, duration: result.durationInSeconds ?? null }
    },
}

try {
    console.log(JSON.stringify({ ok: true, ...(await cases[testCase]()) }))
} catch (error) {
    console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }))
}
