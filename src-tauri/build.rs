//! Build script: Tauri's code generation for the desktop shell. The headless gateway
//! (`--no-default-features`) needs none, so nothing runs without the `desktop` feature.
fn main() {
    println!("cargo:rerun-if-changed=src-tauri/build.rs");
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
