//! What the window hears without asking: the gateway's state and the live request log,
//! pushed as Tauri events (`gateway-state`, `request-log`), and the tray kept in step.

use protogate::controller::Controller;
use tauri::{AppHandle, Emitter};

use super::commands::StatusView;
use super::tray;

/// Spawns the tasks that follow the controller for the lifetime of the app.
pub fn forward(app: &AppHandle, controller: &Controller) {
    let mut states = controller.watch();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let state = states.borrow_and_update().clone();
            tray::show_state(&handle, &state);
            let _ = handle.emit("gateway-state", StatusView::of(&state));
            if states.changed().await.is_err() {
                return;
            }
        }
    });

    let mut records = controller.log().subscribe();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match records.recv().await {
                Ok(event) => {
                    let _ = handle.emit("request-log", event);
                }
                // A burst the window could not take: it reloads with `log_recent`.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
}
