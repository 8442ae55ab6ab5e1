//! Build script: Tauri's code generation for the desktop shell. The headless gateway
//! (`--no-default-features`) needs none, so nothing runs without the `desktop` feature.

/// The window's commands (`src-tauri/desktop/commands.rs`). Each gets an `allow-…`
/// permission, and `capabilities/default.json` grants the window exactly these.
#[cfg(feature = "desktop")]
const COMMANDS: &[&str] = &[
    "gateway_status",
    "gateway_start",
    "gateway_stop",
    "gateway_use_free_port",
    "settings_get",
    "settings_save",
    "providers_list",
    "provider_test",
    "secret_set",
    "secret_delete",
    "secret_status",
    "origin_approve",
    "log_recent",
    "log_clear",
    "log_open_folder",
    "framer_component",
    "clipboard_write",
    "autostart_get",
    "autostart_set",
    "tls_status",
    "tls_trust",
    "access_token_generate",
    "usage_summary",
    "usage_prices",
];

fn main() {
    println!("cargo:rerun-if-changed=src-tauri/build.rs");
    #[cfg(feature = "desktop")]
    {
        let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
            .expect("Tauri's build step");
    }
}
