//! Build script. Tauri's code generation joins here with the desktop shell; the headless
//! gateway needs none, so nothing runs without the `desktop` feature.
fn main() {
    println!("cargo:rerun-if-changed=src-tauri/build.rs");
}
