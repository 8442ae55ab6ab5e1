// The Usage view's two charts, drawn as SVG by hand: requests and tokens over time, and
// cost per provider. Each mark carries a <title>, so hovering it tells its numbers.
const NS = "http://www.w3.org/2000/svg"

function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(NS, tag)
    for (const [key, value] of Object.entries(attrs)) {
        if (value !== undefined && value !== null) node.setAttribute(key, value)
    }
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) continue
        node.append(child instanceof Node ? child : document.createTextNode(String(child)))
    }
    return node
}

const title = (text) => svg("title", {}, text)

/** 1234 → "1.2k", 2500000 → "2.5M". */
export function compact(n) {
    if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`
    if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`
    return String(n)
}

/** "$0.0042" below a cent, "$1.35" above. */
export function usd(amount) {
    return amount > 0 && amount < 0.01 ? `$${amount.toFixed(4)}` : `$${amount.toFixed(2)}`
}

/** A bucket's start as the designer reads it: an hour today, a day (and hour) otherwise. */
function when(bucket, bucketSeconds, short) {
    const date = new Date(bucket.start)
    if (bucketSeconds < 3600 * 24 && (short || bucketSeconds === 3600)) {
        const hour = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })
        return bucketSeconds === 3600 ? hour : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${hour}`
    }
    return date.toLocaleDateString([], { month: "short", day: "numeric" })
}

/** A round top for an axis: 1, 2, 4, 6, 8, 10, 20, 40…, so its middle is round too. */
function roundUp(n) {
    if (n <= 1) return 1
    const scale = 10 ** Math.floor(Math.log10(n))
    const step = [1, 2, 4, 6, 8, 10].find((s) => s * scale >= n)
    return step * scale
}

/** Bars of requests per bucket (failed ones in orange), tokens as a line on their own
 * scale; `W` is the width it is drawn at, so its text is never scaled down. */
export function timeChart(buckets, bucketSeconds, W = 420) {
    const H = 180, left = 30, right = 36, top = 12, bottom = 24
    const width = W - left - right, height = H - top - bottom
    const maxRequests = roundUp(Math.max(1, ...buckets.map((b) => b.requests)))
    const tokens = buckets.map((b) => b.input_tokens + b.output_tokens)
    const maxTokens = roundUp(Math.max(1, ...tokens))
    const step = width / Math.max(1, buckets.length)
    const barWidth = Math.max(1, step * 0.7)
    const y = (v, max) => top + height - (v / max) * height
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart-svg", role: "img", "aria-label": "Requests and tokens over time" })
    // Grid: the top and middle lines, labelled with requests on the left, tokens on the right.
    for (const share of [0.5, 1]) {
        const lineY = y(share * maxRequests, maxRequests)
        chart.append(svg("line", { x1: left, x2: left + width, y1: lineY, y2: lineY, class: "grid" }),
            svg("text", { x: left - 4, y: lineY + 3, class: "axis", "text-anchor": "end" }, compact(Math.round(share * maxRequests))),
            svg("text", { x: left + width + 4, y: lineY + 3, class: "axis tokens" }, compact(Math.round(share * maxTokens))))
    }
    chart.append(svg("line", { x1: left, x2: left + width, y1: top + height, y2: top + height, class: "baseline" }))
    buckets.forEach((b, i) => {
        const x = left + i * step + (step - barWidth) / 2
        const tip = `${when(b, bucketSeconds, true)}: ${b.requests} requests${b.errors ? `, ${b.errors} failed` : ""}` +
            `${b.cached ? `, ${b.cached} from cache` : ""}, ${compact(tokens[i])} tokens`
        const group = svg("g", { class: "bar" }, title(tip),
            // The whole column takes the hover, so a thin bar is easy to point at.
            svg("rect", { x: left + i * step, y: top, width: step, height, class: "hit" }))
        if (b.requests) {
            group.append(svg("rect", { x, y: y(b.requests, maxRequests), width: barWidth, height: (b.requests / maxRequests) * height, class: "requests", rx: 1.5 }))
            if (b.errors) group.append(svg("rect", { x, y: y(b.errors, maxRequests), width: barWidth, height: (b.errors / maxRequests) * height, class: "errors", rx: 1.5 }))
        }
        chart.append(group)
    })
    const points = buckets.map((_, i) => `${left + i * step + step / 2},${y(tokens[i], maxTokens)}`).join(" ")
    chart.append(svg("polyline", { points, class: "tokens-line" }))
    // A handful of time labels, evenly spread.
    const every = Math.ceil(buckets.length / 6)
    buckets.forEach((b, i) => {
        if (i % every) return
        chart.append(svg("text", { x: left + i * step + step / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, when(b, bucketSeconds, false)))
    })
    return chart
}

/** One bar per provider with a cost; providers whose models have no price say so. */
export function costChart(providers, W = 420) {
    const rows = providers.filter((p) => p.cost_usd > 0 || p.unpriced_requests > 0)
    const rowHeight = 28, left = 96, right = 92
    const H = Math.max(2, rows.length) * rowHeight + 8
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart-svg", role: "img", "aria-label": "Cost per provider" })
    if (!rows.length) {
        chart.append(svg("text", { x: W / 2, y: H / 2 + 8, class: "axis", "text-anchor": "middle" }, "Nothing spent in this range"))
        return chart
    }
    const max = Math.max(...rows.map((p) => p.cost_usd), 1e-9)
    rows.forEach((p, i) => {
        const y = 4 + i * rowHeight
        const width = (p.cost_usd / max) * (W - left - right)
        const label = p.cost_usd > 0 ? usd(p.cost_usd) + (p.unpriced_requests ? " + ?" : "") : "no price"
        chart.append(svg("g", { class: "cost-row" },
            title(`${p.name}: ${label}${p.unpriced_requests ? ` (${p.unpriced_requests} requests to models with no price)` : ""}`),
            svg("text", { x: left - 8, y: y + 16, class: "label", "text-anchor": "end" }, p.name.length > 14 ? `${p.name.slice(0, 13)}…` : p.name),
            svg("rect", { x: left, y: y + 4, width: Math.max(width, p.cost_usd > 0 ? 2 : 0), height: rowHeight - 10, rx: 3, class: "cost" }),
            svg("text", { x: left + width + 6, y: y + 16, class: p.cost_usd > 0 ? "value" : "value none" }, label)))
    })
    return chart
}
