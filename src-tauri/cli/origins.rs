//! `protogate origins`: the sites whose pages may call the gateway, beyond the defaults.
//! With `--redis` (or the settings' `redis` section) the team's list in Redis, which every
//! replica reads within [`ORIGINS_REFRESH_EVERY`]; without, the settings file's
//! `cors.allowed_origins`, as the window's "Approve" does (a running gateway applies the
//! edit by itself).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{load_config, ServeArgs};
use protogate::config::{self, Config, OriginPattern};
use protogate::secrets::SecretStore;
use protogate::team::{RedisOrigins, ORIGINS_REFRESH_EVERY};

#[derive(Debug, clap::Args)]
pub struct OriginsArgs {
    /// Team mode: the origins approved in this Redis, as `serve --redis` reads them
    /// (the password from PROTOGATE_REDIS_PASSWORD, never the URL).
    #[arg(long, env = "PROTOGATE_REDIS_URL", global = true)]
    redis: Option<String>,
    #[command(subcommand)]
    command: OriginsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OriginsCommand {
    /// Approve a site by its origin, e.g. https://coffee-shop.framer.app.
    Add { origin: String },
    /// The approved origins and where each is kept.
    List,
    /// Withdraw an approval.
    Remove { origin: String },
}

pub fn run(config_path: Option<PathBuf>, args: OriginsArgs) -> Result<(), String> {
    let OriginsArgs { redis, command } = args;
    let flags = ServeArgs {
        redis,
        ..ServeArgs::default()
    };
    let (config, path) = load_config(config_path, &flags)?;
    let Some(url) = config.redis.url.clone() else {
        return local(&path, command);
    };
    let secrets = SecretStore::new().with_cache_ttl(config.keychain_cache);
    let team = RedisOrigins::new(&url, &config.redis.key_prefix, &secrets);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(shared(&team, &path, command))
}

/// The team's list in Redis.
async fn shared(team: &RedisOrigins, path: &Path, command: OriginsCommand) -> Result<(), String> {
    let within = ORIGINS_REFRESH_EVERY.as_secs();
    match command {
        OriginsCommand::Add { origin } => {
            let origin = checked(&origin)?;
            match team.add(&origin).await? {
                true => println!(
                    "Approved {origin} for the team: every gateway sharing this Redis lets \
                     its pages in within {within} s."
                ),
                false => println!("{origin} was already approved for the team."),
            }
        }
        OriginsCommand::List => {
            for origin in team.list().await? {
                println!("{origin}  (team, in Redis)");
            }
            let settings = config::read_raw_or_create(path).map_err(|e| e.to_string())?;
            for origin in settings.cors.allowed_origins {
                println!("{origin}  (settings)");
            }
            if settings.cors.allow_any_origin {
                println!("Any origin is allowed (cors.allow_any_origin in the settings).");
            }
        }
        OriginsCommand::Remove { origin } => {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            if team.remove(&origin).await? {
                println!(
                    "Removed {origin}: every gateway sharing this Redis refuses its pages \
                     within {within} s."
                );
            } else if settings_list(path)?.contains(&origin) {
                return Err(format!(
                    "{origin} is not in the team's list but in {}'s cors.allowed_origins; \
                     remove it there (or run this without --redis)",
                    path.display()
                ));
            } else {
                return Err(format!(
                    "{origin} is not approved; see `protogate origins list`"
                ));
            }
        }
    }
    Ok(())
}

/// The settings file's `cors.allowed_origins`, edited in place.
fn local(path: &Path, command: OriginsCommand) -> Result<(), String> {
    let mut raw = config::read_raw_or_create(path).map_err(|e| e.to_string())?;
    let list = &mut raw.cors.allowed_origins;
    let done = match command {
        OriginsCommand::List => {
            for origin in list {
                println!("{origin}");
            }
            return Ok(());
        }
        OriginsCommand::Add { origin } => {
            let origin = checked(&origin)?;
            if list.contains(&origin) {
                println!("{origin} was already approved.");
                return Ok(());
            }
            list.push(origin.clone());
            format!("Approved {origin} in {}.", path.display())
        }
        OriginsCommand::Remove { origin } => {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let before = list.len();
            list.retain(|o| !o.eq_ignore_ascii_case(&origin));
            if list.len() == before {
                return Err(format!(
                    "{origin} is not approved; see `protogate origins list`"
                ));
            }
            format!("Removed {origin} from {}.", path.display())
        }
    };
    Config::from_raw(raw.clone(), &path.display().to_string()).map_err(|e| e.to_string())?;
    config::write_atomically(path, &raw.to_json()).map_err(|e| e.to_string())?;
    println!("{done}");
    Ok(())
}

/// `origin` as browsers send it (lower case, no trailing slash), or why it is not one.
fn checked(origin: &str) -> Result<String, String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    OriginPattern::parse(&origin).map_err(|why| format!("not an origin: {why}"))?;
    Ok(origin)
}

fn settings_list(path: &Path) -> Result<Vec<String>, String> {
    let raw = config::read_raw_or_create(path).map_err(|e| e.to_string())?;
    Ok(raw.cors.allowed_origins)
}
