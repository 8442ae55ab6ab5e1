// Routes: a name a prototype uses as its model ("model": "fast") that stands for two
// providers; when the first fails, the other answers. Saved in the settings file.
import { call } from "./api.js"
import { $, el, showProblem, toast } from "./dom.js"

// The first answers, the second when it fails; or they take turns (evenly, or by weight).
const STRATEGIES = {
    fallback: "Fallback (in order)",
    round_robin: "Round robin (take turns)",
    weighted: "Weighted (by weight)",
}

async function settingsWith(change) {
    const settings = await call("settings_get")
    settings.routes ??= []
    change(settings)
    return call("settings_save", { settings })
}

function routeCard(route) {
    const weights = route.strategy === "weighted" && route.weights
    return el("div", { class: "card route", "data-route": route.name },
        el("div", { class: "title" }, el("h2", {}, route.name),
            el("span", { class: "pill" }, (route.strategy ?? "fallback").replace("_", " "))),
        el("ol", { class: "targets" }, route.targets.map((t, i) =>
            el("li", {}, el("code", {}, withModel(t)), weights && el("span", { class: "muted" }, ` × ${weights[i]}`)))),
        el("p", { class: "meta" }, "Use it as the model: ", el("code", {}, `"model": "${route.name}"`)),
        el("div", { class: "row actions" },
            el("button", { class: "link danger", onclick: () => remove(route.name) }, "Remove")))
}

async function remove(name) {
    try {
        await settingsWith((s) => (s.routes = s.routes.filter((r) => r.name !== name)))
        render()
    } catch (error) {
        toast(error.message)
    }
}

// `provider/model`, the default model filled in for a target that names none.
function withModel(target) {
    const [id, model] = target.split(/\/(.*)/s)
    return `${id}/${model || (chatProviders.find((p) => p.id === id)?.default_model ?? "its default model")}`
}

// A target as the settings write it: `provider` alone means its default model.
function target(provider, model) {
    return model ? `${provider}/${model}` : provider
}

// The chat providers, the choices for the two targets.
let chatProviders = []

// Fills the two choices, keeping what is picked; `fresh` picks the first two providers.
function fillChoices(fresh = false) {
    const form = $("#route-form")
    for (const [name, pick] of [["first", 0], ["second", 1]]) {
        const select = form.elements[name]
        const kept = select.value
        select.replaceChildren(...chatProviders.map((p) => el("option", { value: p.id }, `${p.id} (${p.default_model})`)))
        const keep = !fresh && chatProviders.some((p) => p.id === kept)
        select.value = keep ? kept : chatProviders[Math.min(pick, chatProviders.length - 1)]?.id ?? ""
    }
}

function showWeights() {
    const form = $("#route-form")
    form.querySelector(".weights").hidden = form.elements.strategy.value !== "weighted"
}

export async function render(providers) {
    const list = $("#route-list")
    try {
        const settings = await call("settings_get")
        const routes = settings.routes ?? []
        const all = providers ?? (await call("providers_list"))
        const first = chatProviders.length === 0
        chatProviders = all.filter((p) => !p.capabilities || p.capabilities.includes("chat"))
        fillChoices(first)
        list.replaceChildren(...routes.map(routeCard))
        $("#route-empty").hidden = routes.length > 0
    } catch (error) {
        list.replaceChildren(el("p", { class: "problem" }, error.message))
    }
}

export function init() {
    const form = $("#route-form")
    form.elements.strategy.replaceChildren(...Object.entries(STRATEGIES).map(([value, label]) => el("option", { value }, label)))
    form.elements.strategy.addEventListener("change", showWeights)
    // After the reset's own work: the usual two providers, fallback, no weights shown.
    form.addEventListener("reset", () => setTimeout(() => (fillChoices(true), showWeights())))
    showWeights()
    form.addEventListener("submit", async (event) => {
        event.preventDefault()
        const f = form.elements
        const route = {
            name: f.name.value.trim(),
            targets: [target(f.first.value, f.first_model.value.trim()), target(f.second.value, f.second_model.value.trim())],
            strategy: f.strategy.value,
        }
        if (route.strategy === "weighted") route.weights = [Number(f.first_weight.value), Number(f.second_weight.value)]
        try {
            await settingsWith((s) => {
                const at = s.routes.findIndex((r) => r.name === route.name)
                if (at >= 0) s.routes[at] = route
                else s.routes.push(route)
            })
            showProblem($("#route-problem"), null)
            form.reset()
            toast(`Route ${route.name} saved: use "model": "${route.name}"`)
            render()
        } catch (error) {
            showProblem($("#route-problem"), error.field ? { message: `${error.field}: ${error.message}` } : error)
        }
    })
}
