//! The gateway as an app runs it: started, stopped and restarted on demand, its state
//! watchable, its settings changed while it runs. The tray, the window and the command
//! line share this; it knows nothing of Tauri.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigError, RawConfig};
use crate::gateway::{self, AppState, LiveRouter, Probes};
use crate::request_log::RequestLog;
use crate::secrets::SecretStore;

/// Where the gateway stands, as the tray's status line says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayState {
    Starting,
    /// Listening on `addr`, and on `https` for `https://localhost` when HTTPS is on.
    Running {
        addr: SocketAddr,
        https: Option<SocketAddr>,
    },
    Stopped,
    /// It could not start: "port 5711 on 127.0.0.1 is already in use ...".
    Failed {
        reason: String,
        /// Set when another app holds the port: the fix is another port.
        port_in_use: Option<u16>,
    },
}

impl GatewayState {
    /// The endpoint a prototype calls, while running.
    pub fn endpoint(&self) -> Option<String> {
        match self {
            GatewayState::Running { addr, .. } => Some(endpoint_url(*addr)),
            _ => None,
        }
    }

    /// The address other devices on the network use, while serving on all interfaces
    /// (or on one LAN address): `http://192.168.1.20:PORT`.
    pub fn lan_endpoint(&self) -> Option<String> {
        let GatewayState::Running { addr, .. } = self else {
            return None;
        };
        let ip = match addr.ip() {
            ip if ip.is_loopback() => return None,
            ip if ip.is_unspecified() => lan_address()?,
            ip => ip,
        };
        Some(format!("http://{}", SocketAddr::new(ip, addr.port())))
    }

    /// `https://localhost:PORT`, while running with HTTPS.
    pub fn https_endpoint(&self) -> Option<String> {
        match self {
            GatewayState::Running {
                https: Some(addr), ..
            } => Some(format!("https://localhost:{}", addr.port())),
            _ => None,
        }
    }
}

/// This machine's address on its network: the source address the OS picks for a route
/// outward. A UDP `connect` sends nothing; it only asks the routing table. `None` when
/// there is no route (no network).
pub fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    // TEST-NET-1 (RFC 5737): routed like any outside address, never answered.
    socket.connect(("192.0.2.1", 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// The first port after `after` (up to a hundred on) that `host` can bind now, never
/// `skip` (the HTTPS port). Binding is the only honest test: the port may be taken
/// again before the gateway binds it, which then fails with its reason as usual.
fn free_port_after(host: std::net::IpAddr, after: u16, skip: Option<u16>) -> Option<u16> {
    (after.saturating_add(1)..=after.saturating_add(100))
        .filter(|&port| Some(port) != skip)
        .find(|&port| std::net::TcpListener::bind((host, port)).is_ok())
}

/// `http://127.0.0.1:PORT` for a loopback or unspecified bind, else the bound address.
pub fn endpoint_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// A cheap-clone handle on the one gateway an app runs.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

struct Inner {
    settings_path: PathBuf,
    /// The settings as on disk; only valid ones are ever stored here.
    raw: Mutex<RawConfig>,
    log: RequestLog,
    secrets: SecretStore,
    state: watch::Sender<GatewayState>,
    /// Serialises start, stop and restart.
    running: tokio::sync::Mutex<Option<Running>>,
    /// `/livez` and `/readyz`, across restarts.
    probes: Probes,
    /// How long open requests may run on after a stop.
    drain: std::time::Duration,
    /// Fields the command line sets over the file's, applied to every read of it.
    overrides: Option<Overrides>,
}

/// Changes a file's settings as read; a note for the log when they apply.
type Overrides = Box<dyn Fn(&mut RawConfig) -> Option<String> + Send + Sync>;

struct Running {
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    https: Option<JoinHandle<std::io::Result<()>>>,
    live: LiveRouter,
}

impl Controller {
    /// A stopped gateway with the settings at `settings_path` (already read and valid).
    pub fn new(
        settings_path: PathBuf,
        raw: RawConfig,
        log: RequestLog,
        secrets: SecretStore,
    ) -> Self {
        Controller {
            inner: Arc::new(Inner {
                settings_path,
                raw: Mutex::new(raw),
                log,
                secrets,
                state: watch::channel(GatewayState::Stopped).0,
                running: tokio::sync::Mutex::new(None),
                probes: Probes::default(),
                drain: gateway::DRAIN,
                overrides: None,
            }),
        }
    }

    /// The same, letting open requests run on for `drain` when it stops (`protogate
    /// serve --grace-period`). Set up before the first clone.
    #[must_use]
    pub fn with_drain(mut self, drain: std::time::Duration) -> Self {
        self.setup().drain = drain;
        self
    }

    /// The same, with `overrides` applied to the file each time it is read again, so that
    /// `protogate serve --port 0` stays on its port when the file changes. What they
    /// return is logged when the settings read apply. Set up before the first clone.
    #[must_use]
    pub fn with_overrides(
        mut self,
        overrides: impl Fn(&mut RawConfig) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.setup().overrides = Some(Box::new(overrides));
        self
    }

    fn setup(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("a controller is set up before it is shared")
    }

    /// What `/livez` and `/readyz` answer from; more readiness checks can be added.
    pub fn probes(&self) -> &Probes {
        &self.inner.probes
    }

    /// Follows the state: the tray and the window redraw on each change.
    pub fn watch(&self) -> watch::Receiver<GatewayState> {
        self.inner.state.subscribe()
    }

    pub fn state(&self) -> GatewayState {
        self.inner.state.borrow().clone()
    }

    pub fn log(&self) -> &RequestLog {
        &self.inner.log
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.inner.secrets
    }

    pub fn settings_path(&self) -> &Path {
        &self.inner.settings_path
    }

    /// The settings as written in the file.
    pub fn settings(&self) -> RawConfig {
        self.inner.raw.lock().expect("settings lock").clone()
    }

    /// The running gateway's providers, whose queues are the live ones (how many wait);
    /// `None` when stopped, or while it is starting or stopping.
    pub fn live_providers(&self) -> Option<crate::providers::Registry> {
        let running = self.inner.running.try_lock().ok()?;
        Some(running.as_ref()?.live.state().providers.clone())
    }

    /// The settings, checked.
    pub fn config(&self) -> Config {
        let source = self.inner.settings_path.display().to_string();
        Config::from_raw(self.settings(), &source).expect("only valid settings are stored")
    }

    /// Starts listening; a port in use or another bind error becomes `Failed` with the
    /// reason. Starting a running gateway changes nothing.
    pub async fn start(&self) -> GatewayState {
        let mut running = self.inner.running.lock().await;
        if running.is_some() {
            return self.state();
        }
        self.inner.state.send_replace(GatewayState::Starting);
        let config = self.config();
        let listener = match gateway::bind(&config).await {
            Ok(listener) => listener,
            Err(e) => {
                return self.set(GatewayState::Failed {
                    reason: e.to_string(),
                    port_in_use: e.port_in_use(),
                })
            }
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                let reason = format!("cannot read the bound address: {e}");
                return self.set(GatewayState::Failed {
                    reason,
                    port_in_use: None,
                });
            }
        };
        let live = LiveRouter::new(self.app_state(config.clone()))
            .with_probes(self.inner.probes.clone())
            .with_drain(self.inner.drain);
        self.inner.probes.set_draining(false);
        let stop = CancellationToken::new();
        let serving = gateway::serve_live(listener, live.clone(), stop.clone().cancelled_owned());
        let task = tokio::spawn(serving);
        let secrets = &self.inner.secrets;
        let (https, https_task) =
            match gateway::start_https(&config, live.clone(), secrets, stop.clone()).await {
                Ok(Some((addr, task))) => (Some(addr), Some(task)),
                Ok(None) => (None, None),
                Err(why) => {
                    tracing::warn!(
                        "HTTPS (for Safari) is off: {why}. Plain http serves on; fix that, or \
                         set \"https\": {{\"enabled\": false}} to silence this"
                    );
                    (None, None)
                }
            };
        *running = Some(Running {
            stop,
            task,
            https: https_task,
            live,
        });
        self.set(GatewayState::Running { addr, https })
    }

    /// Stops listening and lets open streams finish for the drain time (five seconds
    /// unless set); `/readyz` says so meanwhile.
    pub async fn stop(&self) -> GatewayState {
        let mut running = self.inner.running.lock().await;
        if let Some(Running {
            stop,
            task,
            https,
            live,
        }) = running.take()
        {
            stop.cancel();
            let _ = task.await;
            if let Some(https) = https {
                let _ = https.await;
            }
            live.state().telemetry.flush().await;
        }
        self.set(GatewayState::Stopped)
    }

    /// Stops, then starts with the current settings.
    pub async fn restart(&self) -> GatewayState {
        self.stop().await;
        self.start().await
    }

    /// Checks `raw`, writes it atomically (a temporary file renamed over the old one, so
    /// the file is never half-written), and applies it to a running gateway: origins,
    /// providers, limits, token and log settings from the next request on, with no
    /// request failed; only a new host or port restarts the listener. A mistake leaves
    /// both the file and the running gateway as they were.
    pub async fn save_settings(&self, raw: RawConfig) -> Result<GatewayState, ConfigError> {
        let source = self.inner.settings_path.display().to_string();
        let config = Config::from_raw(raw.clone(), &source)?;
        config::write_atomically(&self.inner.settings_path, &raw.to_json())?;
        Ok(self.apply(raw, config).await)
    }

    /// Reads the settings file again, after an edit by hand, and applies it as
    /// [`Controller::save_settings`] does (without writing). A mistake in the file leaves
    /// the running gateway as it was and is returned, naming the field.
    pub async fn reload_from_disk(&self) -> Result<GatewayState, ConfigError> {
        let path = &self.inner.settings_path;
        let mut raw = config::read_raw(path)?;
        let note = self.inner.overrides.as_ref().and_then(|o| o(&mut raw));
        if raw.to_json() == self.settings().to_json() {
            return Ok(self.state());
        }
        let config = Config::from_raw(raw.clone(), &path.display().to_string())?;
        if let Some(note) = note {
            tracing::warn!("{note}");
        }
        Ok(self.apply(raw, config).await)
    }

    /// [`Controller::reload_from_disk`], with what came of it in the log: applied, or
    /// not applied and why (the running settings stay). For `SIGHUP` and the watcher.
    pub async fn reload_logged(&self) {
        let before = self.settings().to_json();
        match self.reload_from_disk().await {
            Ok(_) if self.settings().to_json() != before => tracing::info!(
                "applied the settings in {}",
                self.inner.settings_path.display()
            ),
            Ok(_) => tracing::debug!(
                "the settings in {} are unchanged",
                self.inner.settings_path.display()
            ),
            Err(e) => tracing::warn!("the settings are not applied, the running ones stay: {e}"),
        }
    }

    /// Follows the settings file: an edit by hand (another editor, a script) or a
    /// Kubernetes ConfigMap update applies within `every`; a broken edit is logged and
    /// the running settings stay. The file's content is compared, read through any
    /// symlink: a ConfigMap is updated by repointing a symlink to a new file, which leaves
    /// the link's own time as it was, and a file system may keep times to the second.
    pub fn watch_file(&self, every: std::time::Duration) -> JoinHandle<()> {
        let controller = self.clone();
        tokio::spawn(async move {
            let read = |path: &Path| std::fs::read(path).ok();
            let mut seen = read(&controller.inner.settings_path);
            loop {
                tokio::time::sleep(every).await;
                let now = read(&controller.inner.settings_path);
                if now == seen {
                    continue;
                }
                seen = now;
                controller.reload_logged().await;
            }
        })
    }

    async fn apply(&self, raw: RawConfig, config: Config) -> GatewayState {
        let before = self.config();
        *self.inner.raw.lock().expect("settings lock") = raw;
        let running = self.inner.running.lock().await;
        let Some(current) = running.as_ref() else {
            return self.state();
        };
        if (config.host, config.port) == (before.host, before.port) {
            let state = self.app_state(config).keeping_queues(&current.live.state());
            current.live.replace(state);
            return self.state();
        }
        drop(running);
        self.restart().await
    }

    fn app_state(&self, config: Config) -> AppState {
        let secrets = self.inner.secrets.clone();
        AppState::new(config, self.inner.log.clone(), secrets)
    }

    /// The one-click fix for "port 5711 is in use": the first port after the configured
    /// one that this machine can bind (the HTTPS port skipped), saved to the settings,
    /// and the gateway started there. `None` when none of the next hundred is free.
    pub async fn move_to_free_port(&self) -> Result<Option<GatewayState>, ConfigError> {
        let config = self.config();
        let Some(port) = free_port_after(config.host, config.port, config.https_port) else {
            return Ok(None);
        };
        let mut raw = self.settings();
        raw.port = port;
        self.save_settings(raw).await?;
        Ok(Some(self.start().await))
    }

    /// Approves one site: adds its exact origin to `cors.allowed_origins` and saves.
    pub async fn approve_origin(&self, origin: &str) -> Result<GatewayState, ConfigError> {
        let mut raw = self.settings();
        if !raw.cors.allowed_origins.iter().any(|o| o == origin) {
            raw.cors.allowed_origins.push(origin.to_string());
        }
        self.save_settings(raw).await
    }

    fn set(&self, state: GatewayState) -> GatewayState {
        self.inner.state.send_replace(state.clone());
        state
    }
}
