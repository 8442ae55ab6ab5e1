//! The tray icon and its menu. Linux does not deliver clicks on the icon itself, so every
//! action is a menu item; items change their text in place as the gateway's state does.

use protogate::controller::{Controller, GatewayState};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_opener::OpenerExt as _;

use super::window;

const TRAY_ID: &str = "protogate";

/// The menu items that change with the state, kept to update them in place.
pub struct TrayItems {
    status: MenuItem<Wry>,
    toggle: MenuItem<Wry>,
    copy: MenuItem<Wry>,
}

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Starting…", false, None::<&str>)?;
    let toggle = MenuItem::with_id(app, "toggle", "Stop gateway", true, None::<&str>)?;
    let copy = MenuItem::with_id(app, "copy", "Copy endpoint", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Protogate", true, None::<&str>)?;
    let logs = MenuItem::with_id(app, "logs", "Open log folder", true, None::<&str>)?;
    let at_login = app.autolaunch().is_enabled().unwrap_or(false);
    let login = CheckMenuItem::with_id(
        app,
        "login",
        "Launch at login",
        true,
        at_login,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit Protogate", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &toggle,
            &copy,
            &open,
            &logs,
            &PredefinedMenuItem::separator(app)?,
            &login,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(&GatewayState::Starting))
        .tooltip("Protogate")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| on_menu(app, event.id.as_ref()))
        .build(app)?;
    app.manage(TrayItems {
        status,
        toggle,
        copy,
    });
    Ok(())
}

fn on_menu(app: &AppHandle, id: &str) {
    let controller = app.state::<Controller>().inner().clone();
    match id {
        "toggle" => {
            tauri::async_runtime::spawn(async move {
                match controller.state() {
                    GatewayState::Running { .. } | GatewayState::Starting => {
                        controller.stop().await
                    }
                    _ => controller.start().await,
                }
            });
        }
        "copy" => {
            if let Some(endpoint) = controller.state().endpoint() {
                let _ = app.clipboard().write_text(endpoint);
            }
        }
        "open" => window::show(app),
        "logs" => {
            if let Some(dir) = controller.log().dir() {
                let _ = app
                    .opener()
                    .open_path(dir.display().to_string(), None::<&str>);
            }
        }
        "login" => {
            let autostart = app.autolaunch();
            let _ = if autostart.is_enabled().unwrap_or(false) {
                autostart.disable()
            } else {
                autostart.enable()
            };
        }
        "quit" => app.exit(0),
        _ => {}
    }
}

/// Redraws the status line, the toggle, the copy item and the icon for `state`.
pub fn show_state(app: &AppHandle, state: &GatewayState) {
    if let Some(items) = app.try_state::<TrayItems>() {
        let _ = items.status.set_text(status_line(state));
        let running = matches!(state, GatewayState::Running { .. } | GatewayState::Starting);
        let _ = items.toggle.set_text(if running {
            "Stop gateway"
        } else {
            "Start gateway"
        });
        let _ = items.copy.set_enabled(state.endpoint().is_some());
    }
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_icon(Some(icon(state)));
        let _ = tray.set_tooltip(Some(format!("Protogate: {}", status_line(state))));
    }
}

/// The status line as the menu shows it.
pub fn status_line(state: &GatewayState) -> String {
    match state {
        GatewayState::Starting => "Starting…".into(),
        GatewayState::Running { .. } => {
            format!("Running on {}", state.endpoint().unwrap_or_default())
        }
        GatewayState::Stopped => "Stopped".into(),
        GatewayState::Failed { reason, .. } => format!("Error: {}", short_reason(reason)),
    }
}

/// The first clause of a reason, so the menu stays narrow: "port 5711 on 127.0.0.1 is
/// already in use".
fn short_reason(reason: &str) -> &str {
    reason.split([';', '(']).next().unwrap_or(reason).trim()
}

fn icon(state: &GatewayState) -> Image<'static> {
    let bytes: &'static [u8] = match state {
        GatewayState::Running { .. } => include_bytes!("../../icons/tray-running.png"),
        GatewayState::Stopped | GatewayState::Starting => {
            include_bytes!("../../icons/tray-stopped.png")
        }
        GatewayState::Failed { .. } => include_bytes!("../../icons/tray-error.png"),
    };
    Image::from_bytes(bytes).expect("the tray icons are valid PNGs")
}
