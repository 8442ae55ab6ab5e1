// Bundles the browser tests' pages: `node build.mjs OUTDIR` writes component.js and voice.js
// (the Framer components, compiled from ui/framer with a stand-in for `framer`) and sdk.js.
import { build } from "esbuild"
import { fileURLToPath } from "node:url"
import path from "node:path"

const here = path.dirname(fileURLToPath(import.meta.url))
const outdir = process.argv[2]
if (!outdir) throw new Error("usage: node build.mjs OUTDIR")

await build({
    entryPoints: {
        component: path.join(here, "component-page.jsx"),
        voice: path.join(here, "voice-page.jsx"),
        sdk: path.join(here, "sdk-page.js"),
    },
    bundle: true,
    outdir,
    format: "iife",
    target: "es2022",
    jsx: "automatic",
    alias: { framer: path.join(here, "framer.js") },
    // Resolve react for the component in ui/framer from this package's node_modules.
    nodePaths: [path.join(here, "node_modules")],
    logLevel: "error",
})
