//! The command line. `protogate serve` runs the gateway without a window; with no
//! subcommand the desktop app starts (the headless gateway until the desktop lands).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod tls;

use protogate::config::{self, Config};
use protogate::gateway::{self, AppState};
use protogate::request_log::RequestLog;
use protogate::secrets::SecretStore;

#[derive(Debug, Parser)]
#[command(
    name = "protogate",
    version,
    about = "An AI gateway on localhost for browser prototypes"
)]
pub struct Cli {
    /// Settings file (default: the OS config directory, e.g. ~/.config/protogate/settings.json).
    #[arg(long, env = "PROTOGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Start the desktop app in the tray without opening its window (as at login).
    #[arg(long)]
    pub hidden: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway without a window (a workstation, a container).
    Serve(ServeArgs),
    /// Provider keys in the system keychain.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// List the configured providers and whether their keys are set.
    Providers,
    /// Check the settings and make one small call to every provider.
    Check,
    /// The local certificate authority behind https://localhost (for Safari).
    #[command(subcommand)]
    Tls(TlsCommand),
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Its fingerprint and where it is trusted.
    Status,
    /// Trust it for this user (browsers' stores), so https://localhost works in Safari.
    Trust,
    /// Remove it from every store `trust` added it to.
    Untrust,
    /// Write its certificate (never its key) to PATH.
    Export { path: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a provider's key (or `protogate-access-token`), read from stdin or a hidden
    /// prompt; never from the command line, where other users and shell history see it.
    Set { id: String },
    /// Per provider: set in the keychain, from the environment, or missing.
    Status,
    /// Remove a provider's key from the keychain (removing a missing one succeeds).
    Delete { id: String },
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback requires the access token.
    #[arg(long, env = "PROTOGATE_HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on; 0 takes any free port.
    #[arg(long, env = "PROTOGATE_PORT")]
    pub port: Option<u16>,
    /// Port of `https://localhost` (for Safari); 0 takes any free port.
    #[arg(long, env = "PROTOGATE_HTTPS_PORT")]
    pub https_port: Option<u16>,
    /// Serve plain http only.
    #[arg(long)]
    pub no_https: bool,
}

/// The desktop app, when the binary has one: whether it can run here (a display), and
/// how to run it with a settings path.
pub struct DesktopApp {
    pub available: fn() -> bool,
    /// Runs the app with a settings path; `hidden` keeps the window closed at start.
    pub run: fn(Option<PathBuf>, bool) -> Result<(), String>,
}

/// Runs the command line; the exit code says whether it went well. Without a
/// subcommand the desktop app starts, or, with no display (or no desktop build), the
/// headless gateway, as `protogate serve`.
pub fn main(desktop: Option<DesktopApp>) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let config = cli.config;
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(config, args),
        Some(Command::Secrets(command)) => commands::secrets(config, command),
        Some(Command::Providers) => commands::providers(config),
        Some(Command::Check) => commands::check(config),
        Some(Command::Tls(command)) => tls::run(config, command),
        None => match desktop {
            Some(app) if (app.available)() => (app.run)(config, cli.hidden),
            Some(_) => {
                eprintln!(
                    "protogate: no display to show the tray and window in; running the \
                     headless gateway (same as `protogate serve`)"
                );
                serve(config, ServeArgs::default())
            }
            None => serve(config, ServeArgs::default()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("protogate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("protogate=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the settings with the command line's overrides applied before validation.
pub fn load_config(path: Option<PathBuf>, args: &ServeArgs) -> Result<(Config, PathBuf), String> {
    let path = match path {
        Some(path) => path,
        None => config::default_path().map_err(|e| e.to_string())?,
    };
    let mut raw = config::read_raw_or_create(&path).map_err(|e| e.to_string())?;
    if let Some(host) = args.host {
        raw.host = host.to_string();
    }
    if let Some(port) = args.port {
        raw.port = port;
    }
    if let Some(port) = args.https_port {
        raw.https.port = port;
    }
    if args.no_https {
        raw.https.enabled = false;
    }
    let config = Config::from_raw(raw, &path.display().to_string()).map_err(|e| e.to_string())?;
    Ok((config, path))
}

fn serve(config_path: Option<PathBuf>, args: ServeArgs) -> Result<(), String> {
    let (config, path) = load_config(config_path, &args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let log_dir = config.log.dir.clone().or_else(config::default_log_dir);
        let log = RequestLog::new(
            log_dir.as_deref(),
            config.log.retention_days,
            config.log.ring_size,
            config.log.max_text_chars,
        )
        .map_err(|e| format!("cannot open the request log: {e}"))?;
        let listener = gateway::bind(&config).await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shown_host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        eprintln!("protogate: settings {}", path.display());
        if let Some(dir) = &log_dir {
            eprintln!("protogate: request log {}", dir.display());
        }
        let secrets = SecretStore::new().with_cache_ttl(config.keychain_cache);
        let default_provider = config.default_provider.clone();
        let live = gateway::LiveRouter::new(AppState::new(config.clone(), log, secrets.clone()));
        let stop = tokio_util::sync::CancellationToken::new();
        let https = match gateway::start_https(&config, live.clone(), &secrets, stop.clone()).await {
            Ok(Some((addr, task))) => Some((format!(" and https://localhost:{}", addr.port()), task)),
            Ok(None) => None,
            Err(why) => {
                eprintln!(
                    "protogate: HTTPS (for Safari) is off: {why}. Plain http serves on; \
                     fix that, or set \"https\": {{\"enabled\": false}} to silence this"
                );
                None
            }
        };
        println!(
            "Protogate {} listening on http://{shown_host}:{}{} (default provider: {default_provider})",
            env!("CARGO_PKG_VERSION"),
            addr.port(),
            https.as_ref().map_or("", |(url, _)| url.as_str()),
        );
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        let served = gateway::serve_live(listener, live, stop.cancelled_owned()).await;
        if let Some((_, task)) = https {
            let _ = task.await;
        }
        served.map_err(|e| format!("the gateway stopped: {e}"))?;
        eprintln!("protogate: stopped");
        Ok(())
    })
}

/// Ctrl-C, or SIGTERM from a service manager or `docker stop`.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
