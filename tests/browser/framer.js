// A stand-in for Framer's `framer` module with the two exports the component uses, so
// the file designers paste is the file the browser tests run. Framer keeps the controls
// on the component; so does this.
export function addPropertyControls(component, controls) {
    component.propertyControls = controls
}

export const ControlType = {
    String: "string",
    Number: "number",
    Boolean: "boolean",
    Enum: "enum",
}
