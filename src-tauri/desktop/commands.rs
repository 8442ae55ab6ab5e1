//! The window's commands. Each delegates to the library in a line or two and answers in
//! the shapes `ui/README.md` documents; errors reach the window as `{code, message}`.
//! A stored key never comes back: commands take keys in and say only whether one is set.

use protogate::config::RawConfig;
use protogate::controller::{Controller, GatewayState};
use protogate::providers::{Registry, Upstream};
use protogate::request_log::Record;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_opener::OpenerExt as _;

/// The Framer component designers paste, kept in one place (`ui/framer/`).
const FRAMER_COMPONENT: &str = include_str!("../../ui/framer/ProtogateChat.tsx");
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5711";

pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        gateway_status,
        gateway_start,
        gateway_stop,
        gateway_use_free_port,
        settings_get,
        settings_save,
        providers_list,
        provider_test,
        secret_set,
        secret_delete,
        secret_status,
        origin_approve,
        log_recent,
        log_clear,
        log_open_folder,
        framer_component,
        clipboard_write,
        autostart_get,
        autostart_set,
        tls_status,
        tls_trust,
        access_token_generate,
        usage_summary,
        usage_prices,
    ]
}

/// A failure as the window shows it.
#[derive(Debug, Serialize)]
pub struct CommandError {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl CommandError {
    fn new(code: &'static str, message: impl ToString) -> Self {
        CommandError {
            code,
            message: message.to_string(),
            field: None,
        }
    }
}

impl From<protogate::config::ConfigError> for CommandError {
    fn from(e: protogate::config::ConfigError) -> Self {
        let field = match &e {
            protogate::config::ConfigError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &e {
            protogate::config::ConfigError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        CommandError {
            code: "invalid",
            message,
            field,
        }
    }
}

type Answer<T> = Result<T, CommandError>;

/// The gateway's state for the window and the `gateway-state` event.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    state: &'static str,
    http: Option<String>,
    https: Option<String>,
    /// What other devices on the network call, when LAN serving is on.
    lan: Option<String>,
    port: Option<u16>,
    reason: Option<String>,
    /// The port another app holds, when that is why it failed.
    port_in_use: Option<u16>,
}

impl StatusView {
    pub fn of(state: &GatewayState) -> Self {
        let (name, port, reason, port_in_use) = match state {
            GatewayState::Starting => ("starting", None, None, None),
            GatewayState::Running { addr, .. } => ("running", Some(addr.port()), None, None),
            GatewayState::Stopped => ("stopped", None, None, None),
            GatewayState::Failed {
                reason,
                port_in_use,
            } => ("failed", None, Some(reason.clone()), *port_in_use),
        };
        StatusView {
            state: name,
            http: state.endpoint(),
            https: state.https_endpoint(),
            lan: state.lan_endpoint(),
            port,
            reason,
            port_in_use,
        }
    }
}

#[tauri::command]
fn gateway_status(controller: State<'_, Controller>) -> StatusView {
    StatusView::of(&controller.state())
}

#[tauri::command]
async fn gateway_start(controller: State<'_, Controller>) -> Answer<StatusView> {
    Ok(StatusView::of(&controller.start().await))
}

#[tauri::command]
async fn gateway_stop(controller: State<'_, Controller>) -> Answer<StatusView> {
    Ok(StatusView::of(&controller.stop().await))
}

/// "Port 5711 is in use": move to the next free port and start there, in one click.
#[tauri::command]
async fn gateway_use_free_port(controller: State<'_, Controller>) -> Answer<StatusView> {
    match controller.move_to_free_port().await? {
        Some(state) => Ok(StatusView::of(&state)),
        None => Err(CommandError::new(
            "no-free-port",
            "none of the next hundred ports is free: choose one in Settings",
        )),
    }
}

#[tauri::command]
fn settings_get(controller: State<'_, Controller>) -> RawConfig {
    controller.settings()
}

#[tauri::command]
async fn settings_save(controller: State<'_, Controller>, settings: Value) -> Answer<RawConfig> {
    let raw = protogate::config::parse_raw_value(settings, "the settings form")?;
    controller.save_settings(raw).await?;
    Ok(controller.settings())
}

/// A provider as the Providers view lists it.
#[derive(Debug, Serialize)]
struct ProviderView {
    id: String,
    kind: String,
    base_url: Option<String>,
    default_model: String,
    models: Vec<String>,
    is_default: bool,
    key_state: String,
    last_error: Option<String>,
    /// The provider's own limit ("100 requests per minute, burst 200"), when it has one.
    limit: Option<String>,
    /// Requests waiting for their turn under that limit now.
    waiting: usize,
    /// What it serves: `chat`, `voice`, `search`.
    capabilities: Vec<&'static str>,
}

fn registry(controller: &Controller) -> Registry {
    let config = controller.config();
    let upstream = Upstream::new(config.limits.clone(), controller.secrets().clone());
    Registry::new(&config, &upstream)
}

#[tauri::command]
async fn providers_list(controller: State<'_, Controller>) -> Answer<Vec<ProviderView>> {
    let config = controller.config();
    let mut views = vec![];
    // The running gateway's providers, so the queue counts are the live ones.
    let providers = controller
        .live_providers()
        .unwrap_or_else(|| registry(&controller));
    for p in providers.all() {
        let c = p.config();
        let last_error = controller
            .log()
            .recent()
            .into_iter()
            .rev()
            .find(|r| r.provider.as_deref() == Some(c.id.as_str()))
            .and_then(|r| r.error);
        views.push(ProviderView {
            id: c.id.clone(),
            kind: c.kind.to_string(),
            base_url: c.base_url.as_ref().map(|u| u.to_string()),
            default_model: c.default_model.clone(),
            models: c.models.clone(),
            is_default: c.id == config.default_provider,
            key_state: p.key_state(controller.secrets()).await,
            last_error,
            limit: p
                .queue()
                .map(|q| format!("{}, burst {}", q.limits(), q.limits().burst)),
            waiting: p.queue().map_or(0, |q| q.waiting()),
            capabilities: c.capabilities().into_iter().map(|c| c.name()).collect(),
        });
    }
    Ok(views)
}

#[derive(Debug, Serialize)]
struct TestView {
    ok: bool,
    message: String,
    latency_ms: f64,
}

#[tauri::command]
async fn provider_test(controller: State<'_, Controller>, id: String) -> Answer<TestView> {
    let registry = registry(&controller);
    let provider = registry
        .get(&id)
        .ok_or_else(|| CommandError::new("unknown", format!("no provider '{id}'")))?;
    let started = std::time::Instant::now();
    let result = provider.check().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(match result {
        Ok(answer) => TestView {
            ok: true,
            message: if answer.is_empty() {
                "It answered.".into()
            } else {
                answer
            },
            latency_ms,
        },
        Err(e) => TestView {
            ok: false,
            message: e,
            latency_ms,
        },
    })
}

#[derive(Debug, Serialize)]
struct KeyView {
    key_state: String,
}

async fn key_view(controller: &Controller, id: &str) -> KeyView {
    let registry = registry(controller);
    let key_state = match registry.get(id) {
        Some(p) => p.key_state(controller.secrets()).await,
        None => controller.secrets().status(id).await.describe(),
    };
    KeyView { key_state }
}

#[tauri::command]
async fn secret_set(
    controller: State<'_, Controller>,
    id: String,
    value: String,
) -> Answer<KeyView> {
    let value = SecretString::from(value.trim().to_string());
    let secrets = controller.secrets().clone();
    let account = id.clone();
    tauri::async_runtime::spawn_blocking(move || secrets.set_blocking(&account, &value))
        .await
        .map_err(|e| CommandError::new("keychain", e))?
        .map_err(|e| CommandError::new("keychain", e))?;
    Ok(key_view(&controller, &id).await)
}

/// Whether a secret is set, and where; never the secret (the Langfuse key's state).
#[tauri::command]
async fn secret_status(controller: State<'_, Controller>, id: String) -> Answer<KeyView> {
    Ok(key_view(&controller, &id).await)
}

#[tauri::command]
async fn secret_delete(controller: State<'_, Controller>, id: String) -> Answer<KeyView> {
    let secrets = controller.secrets().clone();
    let account = id.clone();
    tauri::async_runtime::spawn_blocking(move || secrets.delete_blocking(&account))
        .await
        .map_err(|e| CommandError::new("keychain", e))?
        .map_err(|e| CommandError::new("keychain", e))?;
    Ok(key_view(&controller, &id).await)
}

#[tauri::command]
async fn origin_approve(controller: State<'_, Controller>, origin: String) -> Answer<RawConfig> {
    controller.approve_origin(&origin).await?;
    Ok(controller.settings())
}

#[tauri::command]
fn log_recent(controller: State<'_, Controller>) -> Vec<Record> {
    controller.log().recent()
}

/// The Usage view's numbers over `range` (`today`, `7d`, `30d`), read from the log files
/// off the async threads: a month of records takes a moment.
#[tauri::command]
async fn usage_summary(
    controller: State<'_, Controller>,
    range: String,
) -> Answer<protogate::usage::Summary> {
    let range =
        protogate::usage::Range::parse(&range).map_err(|e| CommandError::new("range", e))?;
    let (log, config) = (controller.log().clone(), controller.config());
    tauri::async_runtime::spawn_blocking(move || {
        protogate::usage::summarize_log(&log, &config, range)
    })
    .await
    .map_err(|e| CommandError::new("usage", e))
}

/// The built-in prices (with their date) and the settings' own.
#[tauri::command]
fn usage_prices(controller: State<'_, Controller>) -> protogate::usage::PriceList {
    protogate::usage::price_list(&controller.config())
}

#[tauri::command]
fn log_clear(controller: State<'_, Controller>) {
    controller.log().clear();
}

#[tauri::command]
fn log_open_folder(app: AppHandle, controller: State<'_, Controller>) -> Answer<()> {
    let dir = controller
        .log()
        .dir()
        .ok_or_else(|| CommandError::new("no-folder", "the request log is kept in memory only"))?;
    app.opener()
        .open_path(dir.display().to_string(), None::<&str>)
        .map_err(|e| CommandError::new("opener", e))
}

/// The component with the running gateway's endpoint filled in.
#[tauri::command]
fn framer_component(controller: State<'_, Controller>) -> String {
    match controller.state().endpoint() {
        Some(endpoint) => FRAMER_COMPONENT.replace(DEFAULT_ENDPOINT, &endpoint),
        None => FRAMER_COMPONENT.to_string(),
    }
}

#[tauri::command]
fn clipboard_write(app: AppHandle, text: String) -> Answer<()> {
    app.clipboard()
        .write_text(text)
        .map_err(|e| CommandError::new("clipboard", e))
}

/// A new access token, stored in the keychain and put on the clipboard for the prototype
/// that needs it (LAN serving, `allow_any_origin`). The window never receives it.
#[tauri::command]
async fn access_token_generate(app: AppHandle, controller: State<'_, Controller>) -> Answer<()> {
    let token = format!(
        "pg_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let secret = SecretString::from(token.clone());
    app.clipboard()
        .write_text(token)
        .map_err(|e| CommandError::new("clipboard", e))?;
    let secrets = controller.secrets().clone();
    tauri::async_runtime::spawn_blocking(move || {
        secrets.set_blocking(protogate::secrets::ACCESS_TOKEN_ACCOUNT, &secret)
    })
    .await
    .map_err(|e| CommandError::new("keychain", e))?
    .map_err(|e| CommandError::new("keychain", e))?;
    Ok(())
}

/// The local CA behind `https://localhost`, for the Settings view.
#[derive(Debug, Serialize)]
struct TlsView {
    ca_exists: bool,
    fingerprint: Option<String>,
    trusted_in: Vec<String>,
}

fn tls_view(ca: Option<&protogate::tls::LocalCa>) -> TlsView {
    use protogate::tls::trust;
    TlsView {
        ca_exists: ca.is_some(),
        fingerprint: ca.map(|ca| ca.fingerprint()),
        trusted_in: trust::stores()
            .into_iter()
            .filter(|s| trust::is_trusted_in(s))
            .map(|s| s.display().to_string())
            .collect(),
    }
}

#[tauri::command]
async fn tls_status(controller: State<'_, Controller>) -> Answer<TlsView> {
    let ca = protogate::tls::load(controller.secrets())
        .await
        .map_err(|e| CommandError::new("keychain", e))?;
    Ok(tls_view(ca.as_ref()))
}

/// "Trust for Safari": the CA into this user's trust stores.
#[tauri::command]
async fn tls_trust(controller: State<'_, Controller>) -> Answer<TlsView> {
    let ca = protogate::tls::load_or_create(controller.secrets())
        .await
        .map_err(|e| CommandError::new("keychain", e))?;
    let file = tempfile::Builder::new()
        .suffix(".pem")
        .tempfile()
        .map_err(|e| CommandError::new("file", e))?;
    std::fs::write(file.path(), ca.cert_pem()).map_err(|e| CommandError::new("file", e))?;
    let path = file.path().to_path_buf();
    tauri::async_runtime::spawn_blocking(move || protogate::tls::trust::trust(&path))
        .await
        .map_err(|e| CommandError::new("trust", e))?
        .map_err(|e| CommandError::new("trust", e))?;
    Ok(tls_view(Some(&ca)))
}

#[tauri::command]
fn autostart_get(app: AppHandle) -> bool {
    app.autolaunch().is_enabled().unwrap_or(false)
}

#[tauri::command]
fn autostart_set(app: AppHandle, enabled: bool) -> Answer<bool> {
    let autostart = app.autolaunch();
    let result = if enabled {
        autostart.enable()
    } else {
        autostart.disable()
    };
    result.map_err(|e| CommandError::new("autostart", e))?;
    Ok(autostart.is_enabled().unwrap_or(enabled))
}
