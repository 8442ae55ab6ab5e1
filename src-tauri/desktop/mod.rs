//! The desktop app: a tray icon that runs the gateway, and a window for the endpoint, the
//! live request log, providers and keys, and a test chat. A thin shell: the gateway, its
//! settings and its log live in the library's [`Controller`]; this module only wires
//! them to Tauri (tray menu, window, commands, events).

mod commands;
mod events;
mod tray;
mod webview_runtime;
mod window;

use std::path::PathBuf;

use protogate::config;
use protogate::controller::Controller;
use protogate::request_log::RequestLog;
use protogate::secrets::SecretStore;
use tauri::{Manager, RunEvent, WindowEvent};

/// Whether a desktop session is there to show a tray and a window in.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Runs the tray app until Quit. The gateway starts at once; the window opens, as a
/// person who launched the app expects, unless `hidden` (a start at login).
pub fn run(config_path: Option<PathBuf>, hidden: bool) -> Result<(), String> {
    // Without a web engine (WebView2 missing on Windows) the tray and gateway run alone.
    let hidden = hidden || !webview_runtime::window_available();
    let path = match config_path {
        Some(path) => path,
        None => config::default_path().map_err(|e| e.to_string())?,
    };
    let raw = config::read_raw_or_create(&path).map_err(|e| e.to_string())?;
    let checked = config::Config::from_raw(raw.clone(), &path.display().to_string())
        .map_err(|e| e.to_string())?;
    let log_dir = checked.log.dir.clone().or_else(config::default_log_dir);
    let log = RequestLog::new(
        log_dir.as_deref(),
        checked.log.retention_days,
        checked.log.ring_size,
        checked.log.max_text_chars,
    )
    .map_err(|e| format!("cannot open the request log: {e}"))?;
    let secrets = SecretStore::new().with_cache_ttl(checked.keychain_cache);

    // One runtime for the gateway and Tauri's async commands.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    tauri::async_runtime::set(runtime.handle().clone());
    let _guard = runtime.enter();
    let controller = Controller::new(path, raw, log, secrets);

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show(app);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .manage(controller.clone())
        .invoke_handler(commands::handler())
        .setup(move |app| {
            tray::create(app.handle())?;
            events::forward(app.handle(), &controller);
            controller.watch_file(std::time::Duration::from_secs(1));
            let starting = controller.clone();
            tauri::async_runtime::spawn(async move {
                let state = starting.start().await;
                match state.endpoint() {
                    Some(endpoint) => println!(
                        "Protogate {} running in the tray, listening on {endpoint}",
                        env!("CARGO_PKG_VERSION")
                    ),
                    None => eprintln!("protogate: the gateway did not start: {state:?}"),
                }
            });
            if !hidden {
                window::show(app.handle());
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window hides it: the app lives in the tray.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())
        .map_err(|e| format!("cannot start the desktop app: {e}"))?;

    app.run(|app, event| match event {
        // The last window closing is no reason to quit a tray app.
        RunEvent::ExitRequested {
            api, code: None, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            let controller = app.state::<Controller>().inner().clone();
            tauri::async_runtime::block_on(controller.stop());
        }
        _ => {}
    });
    Ok(())
}
