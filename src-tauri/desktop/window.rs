//! The one window: created on first use, then shown and hidden.

use tauri::webview::{PermissionKind, PermissionResponse};
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "main";

/// Shows the window, creating it if needed, and brings it to the front.
pub fn show(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(LABEL) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App("index.html".into()))
        .title("Protogate")
        .inner_size(920.0, 640.0)
        .min_inner_size(720.0, 480.0)
        // The Chat view's microphone, which asks only when the designer clicks it; only
        // the app's own page runs in this window. (WebKitGTK denies it otherwise.)
        .on_permission_request(|_, kind| match kind {
            PermissionKind::Microphone => PermissionResponse::Allow,
            _ => PermissionResponse::Default,
        })
        .build();
    if let Err(e) = built {
        tracing::error!("cannot open the window: {e}");
    }
}
