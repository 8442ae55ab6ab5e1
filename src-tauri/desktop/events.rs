//! What the window hears without asking: the gateway's state and the live request log,
//! pushed as Tauri events (`gateway-state`, `request-log`), and the tray kept in step.

use std::collections::HashSet;

use protogate::controller::Controller;
use protogate::request_log::{LogEventKind, Record};
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt as _;

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
    let controller = controller.clone();
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut announced = HashSet::new();
        loop {
            match records.recv().await {
                Ok(event) => {
                    if event.kind == LogEventKind::Finished {
                        announce_refusal(&handle, &event.record, &mut announced);
                        announce_budget(&handle, &controller, &event.record);
                    }
                    let _ = handle.emit("request-log", event);
                }
                // A burst the window could not take: it reloads with `log_recent`.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// One desktop notification per refused origin and run: a published prototype the
/// designer opened is waiting for approval, which is one click in Logs.
fn announce_refusal(app: &AppHandle, record: &Record, announced: &mut HashSet<String>) {
    let Some(origin) = record.refused_origin() else {
        return;
    };
    if !announced.insert(origin.to_string()) {
        return;
    }
    let shown = app
        .notification()
        .builder()
        .title(format!("{origin} wants to use Protogate"))
        .body("If it is your prototype, open Protogate → Logs → Allow this origin.")
        .show();
    if let Err(e) = shown {
        tracing::debug!("no desktop notification: {e}");
    }
}

/// A daily budget crossing 80 % or 100 % with this record (see `usage::budget`): one
/// notification each, the day's first.
fn announce_budget(app: &AppHandle, controller: &Controller, record: &Record) {
    let Some(provider) = record.provider.as_deref() else {
        return;
    };
    let Some(providers) = controller.live_providers() else {
        return;
    };
    let Some(meter) = providers.get(provider).and_then(|p| p.budget()) else {
        return;
    };
    for alert in meter.take_alerts() {
        let shown = app
            .notification()
            .builder()
            .title(alert.title())
            .body(alert.body())
            .show();
        if let Err(e) = shown {
            tracing::debug!("no desktop notification: {e}");
        }
    }
}
