// The Chat view's "Search the web": the message goes to the gateway's `POST /api/search`
// first; the results (title, URL, content) go to the model in the system prompt, which is
// asked to cite their URLs, and show as small source links under the answer.
import { el } from "./dom.js"

const MAX_RESULTS = 5
const CONTENT_CHARS = 1200

/** The search provider's results for `query`; a failure is an Error in plain words. */
export async function search(endpoint, query) {
    let response
    try {
        response = await fetch(`${endpoint}/api/search`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ query, max_results: MAX_RESULTS }),
        })
    } catch {
        throw new Error(`Protogate did not answer at ${endpoint}: is the gateway running?`)
    }
    const body = await response.json().catch(() => ({}))
    if (!response.ok) throw new Error(`The web search failed: ${body.error ?? `error ${response.status}`}`)
    return { ...body, results: (body.results ?? []).filter((r) => webUrl(r.url)) }
}

/** The system prompt that gives the model the results and asks it to cite them. */
export function systemPrompt(query, found) {
    const sources = found.results.map((r, i) =>
        `[${i + 1}] ${r.title}\nURL: ${r.url}\n${(r.content ?? "").slice(0, CONTENT_CHARS)}`).join("\n\n")
    return [
        `You answer with the help of a web search for “${query}”. Use these results, and cite ` +
            "each one you use by its URL in Markdown, like [1](https://example.com/page). " +
            "If they do not answer the question, say so.",
        found.answer ? `The search provider's own summary: ${found.answer}` : null,
        sources ? `Search results:\n\n${sources}` : "The search found nothing.",
    ].filter(Boolean).join("\n\n")
}

/** The results as small links under an answer (opened in the browser, not the window). */
export function sourceLinks(found) {
    if (!found.results.length) return el("p", { class: "sources muted" }, "The search found no sources.")
    return el("div", { class: "sources", "aria-label": "Sources" },
        el("span", { class: "sources-label" }, "Sources"),
        found.results.map((r, i) =>
            el("a", { class: "source", href: r.url, target: "_blank", rel: "noopener noreferrer", title: r.url },
                el("span", { class: "source-n" }, String(i + 1)),
                el("span", { class: "source-title" }, r.title || r.url),
                el("span", { class: "source-host" }, new URL(r.url).hostname.replace(/^www\./, "")))))
}

/** Only http(s) links are shown: a result cannot turn into a script or a file link. */
function webUrl(url) {
    try {
        return ["http:", "https:"].includes(new URL(url).protocol)
    } catch {
        return false
    }
}

const LINK = /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s)\]>"]+[^\s)\]>".,;:!?])/g

/**
 * Shows an answer's text in `node` with its cited URLs as links: Markdown links
 * (`[1](https://…)`) and bare URLs; everything else stays text.
 */
export function showWithLinks(node, text) {
    const parts = []
    let at = 0
    for (const m of text.matchAll(LINK)) {
        parts.push(text.slice(at, m.index))
        const url = m[2] ?? m[3]
        // A numbered citation reads as one: [1].
        const cite = /^\d{1,2}$/.test(m[1] ?? "")
        parts.push(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", title: url, class: cite ? "cite" : null },
            cite ? `[${m[1]}]` : m[1] ?? url))
        at = m.index + m[0].length
    }
    parts.push(text.slice(at))
    node.replaceChildren(...parts.filter((p) => p !== ""))
}
