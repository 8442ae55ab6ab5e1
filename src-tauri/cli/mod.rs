//! The command line. `protogate serve` runs the gateway without a window; with no
//! subcommand the desktop app starts (the headless gateway until the desktop lands).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod commands;
mod members;
mod origins;
mod serve;
mod tls;
mod usage;

use protogate::config::{self, Config, RawConfig};

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
    /// People with a token of their own instead of the shared access token.
    Members(members::MembersArgs),
    /// Sites approved to call the gateway (the team's list in Redis with --redis).
    Origins(origins::OriginsArgs),
    /// List the configured providers and whether their keys are set.
    Providers,
    /// Check the settings and make one small call to every provider.
    Check,
    /// The local certificate authority behind https://localhost (for Safari).
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Requests, tokens and estimated cost per provider, model and site, from the log.
    Usage {
        /// today, 7d or 30d.
        #[arg(default_value = "today")]
        range: String,
    },
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

#[derive(Clone, Debug, Default, clap::Args)]
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
    /// After SIGTERM or Ctrl-C, how long open requests may run on before the gateway
    /// exits (25s, 1500ms, 2m) [default: 25s].
    #[arg(long, env = "PROTOGATE_GRACE_PERIOD", value_parser = serve::parse_duration)]
    pub grace_period: Option<Duration>,
    /// Team mode: share provider limits with other replicas through this Redis
    /// (redis://host:6379; the password from PROTOGATE_REDIS_PASSWORD, never the URL).
    #[arg(long, env = "PROTOGATE_REDIS_URL")]
    pub redis: Option<String>,
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
        Some(Command::Serve(args)) => serve::run(config, args),
        Some(Command::Secrets(command)) => commands::secrets(config, command),
        Some(Command::Members(command)) => members::run(config, command),
        Some(Command::Origins(command)) => origins::run(config, command),
        Some(Command::Providers) => commands::providers(config),
        Some(Command::Check) => commands::check(config),
        Some(Command::Tls(command)) => tls::run(config, command),
        Some(Command::Usage { range }) => usage::run(config, &range),
        None => match desktop {
            Some(app) if (app.available)() => (app.run)(config, cli.hidden),
            Some(_) => {
                eprintln!(
                    "protogate: no display to show the tray and window in; running the \
                     headless gateway (same as `protogate serve`)"
                );
                serve::run(config, ServeArgs::default())
            }
            None => serve::run(config, ServeArgs::default()),
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
    // Colours for a terminal only: not in a container's or a service manager's log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Loads the settings with the command line's overrides applied before validation.
pub fn load_config(path: Option<PathBuf>, args: &ServeArgs) -> Result<(Config, PathBuf), String> {
    let (raw, path) = load_raw(path, args)?;
    let config = Config::from_raw(raw, &path.display().to_string()).map_err(|e| e.to_string())?;
    Ok((config, path))
}

/// The settings as written, with the command line's overrides applied, not yet checked.
fn load_raw(path: Option<PathBuf>, args: &ServeArgs) -> Result<(RawConfig, PathBuf), String> {
    let path = match path {
        Some(path) => path,
        None => config::default_path().map_err(|e| e.to_string())?,
    };
    let mut raw = config::read_raw_or_create(&path).map_err(|e| e.to_string())?;
    apply_flags(&mut raw, args);
    Ok((raw, path))
}

/// `--host`, `--port`, `--https-port`, `--no-https` and `--redis` over the file's settings.
fn apply_flags(raw: &mut RawConfig, args: &ServeArgs) {
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
    if let Some(url) = &args.redis {
        raw.redis.url = Some(url.clone());
    }
}
