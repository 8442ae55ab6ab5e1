// Small DOM helpers: elements built without innerHTML, so nothing from a log record or a
// provider's error can become markup.
export const $ = (selector, root = document) => root.querySelector(selector)

export function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag)
    for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue
        if (key === "class") node.className = value
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value)
        else if (key in node && typeof value !== "string") node[key] = value
        else node.setAttribute(key, value === true ? "" : value)
    }
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) continue
        node.append(child instanceof Node ? child : document.createTextNode(String(child)))
    }
    return node
}

let toastTimer
export function toast(text) {
    const node = $("#toast")
    node.textContent = text
    node.hidden = false
    clearTimeout(toastTimer)
    toastTimer = setTimeout(() => (node.hidden = true), 1800)
}

export function showProblem(node, error) {
    node.textContent = error ? error.message ?? String(error) : ""
    node.hidden = !error
}
