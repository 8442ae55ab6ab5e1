//! `protogate serve`: the gateway without a window, on a workstation or in a container.
//! It runs through the same [`Controller`] as the desktop app, so its settings file is
//! followed while it runs (an edit, a Kubernetes ConfigMap update, `SIGHUP`), and a stop
//! drains: `SIGTERM` closes the listener, open requests finish within the grace period,
//! and the process exits 0.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use protogate::config::{self, Config, RawConfig};
use protogate::controller::{Controller, GatewayState};
use protogate::request_log::RequestLog;
use protogate::secrets::SecretStore;

use super::{apply_flags, load_raw, ServeArgs};

/// Open requests' time to finish after `SIGTERM`: Kubernetes waits 30 s by default before
/// it kills a pod, and this leaves some of that for the rest of the exit.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(25);

/// How often the settings file is read for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

pub fn run(config_path: Option<PathBuf>, args: ServeArgs) -> Result<(), String> {
    let (raw, path) = load_raw(config_path, &args)?;
    let config =
        Config::from_raw(raw.clone(), &path.display().to_string()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(serve(config, raw, path, args));
    // A keychain read that never came back must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(
    config: Config,
    raw: RawConfig,
    path: PathBuf,
    args: ServeArgs,
) -> Result<(), String> {
    eprintln!("protogate: settings {}", path.display());
    let log_dir = config.log.dir.clone().or_else(config::default_log_dir);
    let log = RequestLog::new(
        log_dir.as_deref(),
        config.log.retention_days,
        config.log.ring_size,
        config.log.max_text_chars,
    )
    .map_err(|e| format!("cannot open the request log: {e}"))?;
    if let Some(dir) = &log_dir {
        eprintln!("protogate: request log {}", dir.display());
    }
    let secrets = SecretStore::new().with_cache_ttl(config.keychain_cache);
    let grace = args.grace_period.unwrap_or(DEFAULT_GRACE_PERIOD);
    let controller = Controller::new(path, raw.clone(), log, secrets)
        .with_drain(grace)
        .with_overrides(keep_listening(args, &raw));
    // Signals are caught from before the gateway says it listens: one sent right after
    // must not meet the default action (the end of the process, mid-request).
    let stop = stop_signals();
    reload_on_hangup(&controller);
    let (addr, https) = match controller.start().await {
        GatewayState::Running { addr, https } => (addr, https),
        GatewayState::Failed { reason, .. } => return Err(reason),
        other => return Err(format!("the gateway did not start ({other:?})")),
    };
    let shown_host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let https = https.map_or(String::new(), |a| {
        format!(" and https://localhost:{}", a.port())
    });
    println!(
        "Protogate {} listening on http://{shown_host}:{}{https} (default provider: {})",
        env!("CARGO_PKG_VERSION"),
        addr.port(),
        config.default_provider,
    );
    controller.watch_file(WATCH_EVERY);
    stop.await;
    eprintln!(
        "protogate: stopping: no new connections; open requests have {} s to finish \
         (a second Ctrl-C or SIGTERM stops at once)",
        grace.as_secs_f32()
    );
    let again = stop_signals();
    tokio::spawn(async move {
        again.await;
        eprintln!("protogate: stopped at once; open requests were cut");
        std::process::exit(1);
    });
    controller.stop().await;
    eprintln!("protogate: stopped");
    Ok(())
}

/// The file's settings as `serve` applies them on each read: the command line's flags
/// over them, and the host and ports it listens on kept, since moving the listener under
/// a running service would drop its traffic. The note for the log says when the file
/// asks for that.
fn keep_listening(
    args: ServeArgs,
    started: &RawConfig,
) -> impl Fn(&mut RawConfig) -> Option<String> {
    let listening = Listening::of(started);
    move |raw: &mut RawConfig| {
        apply_flags(raw, &args);
        let asked = Listening::of(raw);
        listening.set(raw);
        (asked != listening).then(|| {
            format!(
                "the settings ask to listen on {}, but a running `protogate serve` stays on \
                 {} until it is restarted; the other settings apply now",
                asked.describe(),
                listening.describe()
            )
        })
    }
}

#[derive(PartialEq)]
struct Listening {
    host: String,
    port: u16,
    https: Option<u16>,
}

impl Listening {
    fn of(raw: &RawConfig) -> Self {
        Listening {
            host: raw.host.clone(),
            port: raw.port,
            https: raw.https.enabled.then_some(raw.https.port),
        }
    }

    fn set(&self, raw: &mut RawConfig) {
        raw.host.clone_from(&self.host);
        raw.port = self.port;
        raw.https.enabled = self.https.is_some();
        if let Some(port) = self.https {
            raw.https.port = port;
        }
    }

    fn describe(&self) -> String {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        };
        match self.https {
            Some(https) => format!("{host}:{} (https {https})", self.port),
            None => format!("{host}:{}", self.port),
        }
    }
}

/// `SIGHUP` reads the settings file again, as services are told to.
#[cfg(unix)]
fn reload_on_hangup(controller: &Controller) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => return tracing::warn!("SIGHUP will not reload the settings: {e}"),
    };
    let controller = controller.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let path = controller.settings_path().display();
            tracing::info!("SIGHUP: reading the settings in {path} again");
            controller.reload_logged().await;
        }
    });
}

#[cfg(not(unix))]
fn reload_on_hangup(_: &Controller) {}

/// Ctrl-C, or SIGTERM from a service manager, `docker stop` or Kubernetes; caught from
/// the call on, not from the first poll.
#[cfg(unix)]
fn stop_signals() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn next(signal: &mut Option<Signal>) -> Option<()> {
        match signal {
            Some(signal) => signal.recv().await,
            None => std::future::pending().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            Some(()) = next(&mut term) => {}
            Some(()) = next(&mut interrupt) => {}
            else => {}
        }
    }
}

#[cfg(not(unix))]
async fn stop_signals() {
    let _ = tokio::signal::ctrl_c().await;
}

/// `25s`, `1500ms`, `2m`, or bare seconds (`25`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write it as 25s, 1500ms or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!(
            "`{text}`: unknown unit `{unit}`; write it as 25s, 1500ms or 2m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_read_as_people_write_them() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("25"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        let wrong = parse_duration("25 seconds").unwrap_err();
        assert!(wrong.contains("25s, 1500ms or 2m"), "{wrong}");
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn a_new_port_in_the_file_is_not_taken_by_a_running_serve() {
        let started: RawConfig = config::parse_raw_value(
            serde_json::json!({"port": 0, "cors": {"allowed_origins": []}}),
            "test",
        )
        .unwrap();
        let keep = keep_listening(ServeArgs::default(), &started);
        let mut edited = started.clone();
        edited.port = 8080;
        edited.host = "0.0.0.0".into();
        edited.cors.allowed_origins = vec!["https://coffee-app.framer.app".into()];
        let note = keep(&mut edited).expect("a note for the log");
        assert!(
            note.contains("0.0.0.0:8080") && note.contains("restarted"),
            "{note}"
        );
        assert_eq!((edited.host.as_str(), edited.port), ("127.0.0.1", 0));
        assert_eq!(
            edited.cors.allowed_origins,
            ["https://coffee-app.framer.app"],
            "the rest of the edit applies"
        );
    }
}
