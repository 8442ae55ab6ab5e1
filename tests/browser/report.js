// Waits until the component has finished (answer done, a problem shown) or shows a hint
// while the browser asks for its permission, and posts what a person would see to the
// page's own server.
export function reportWhenSettled(root, start) {
    const settled = () => {
        const card = root.querySelector("[data-phase]")
        return (
            card &&
            (["done", "problem", "stopped"].includes(card.dataset.phase) ||
                root.querySelector("[data-role=hint]"))
        )
    }
    const send = () => {
        const card = root.querySelector("[data-phase]")
        fetch("/report", {
            method: "POST",
            body: JSON.stringify({
                phase: card.dataset.phase,
                answer: root.querySelector("[data-role=answer]")?.textContent ?? "",
                problem: root.querySelector("[data-role=problem]")?.textContent ?? "",
                hint: root.querySelector("[data-role=hint]")?.textContent ?? "",
            }),
        })
    }
    const wait = () => (settled() ? send() : setTimeout(wait, 50))
    setTimeout(() => {
        start()
        wait()
    }, 50)
}
