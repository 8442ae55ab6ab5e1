// Renders the Framer component with its property controls' defaults, as Framer would,
// then plays a designer: click Send and report what the component shows.
import { createRoot } from "react-dom/client"
import ProtogateChat from "../../ui/framer/ProtogateChat.tsx"
import { reportWhenSettled } from "./report.js"

const params = new URLSearchParams(location.search)
const props = Object.fromEntries(
    Object.entries(ProtogateChat.propertyControls).map(([name, control]) => [name, control.defaultValue]),
)
if (params.get("endpoint")) props.endpoint = params.get("endpoint")
props.prompt = "Hello from a Framer prototype"

const root = document.getElementById("root")
createRoot(root).render(<ProtogateChat {...props} />)
reportWhenSettled(root, () => root.querySelector("button").click())
