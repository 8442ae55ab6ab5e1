//! `protogate members`: people with a token of their own. `add` prints the new token once,
//! alone on stdout so a script can take it; nothing prints a stored hash.

use std::path::PathBuf;

use clap::Subcommand;
use secrecy::ExposeSecret;
use time::format_description::well_known::Rfc3339;

use super::{load_config, ServeArgs};
use protogate::members::{self, Member};
use protogate::secrets::SecretStore;

#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    /// Team mode: the members kept in this Redis, as `serve --redis` reads them
    /// (the password from PROTOGATE_REDIS_PASSWORD, never the URL).
    #[arg(long, env = "PROTOGATE_REDIS_URL", global = true)]
    redis: Option<String>,
    #[command(subcommand)]
    command: MembersCommand,
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add a member and print their token, once (only its hash is kept).
    Add { name: String },
    /// Every member: name, when added, when last used. Never a token.
    List,
    /// Revoke a member's token: running gateways refuse it within `keychain_cache_ms`.
    Revoke { name: String },
}

pub fn run(config_path: Option<PathBuf>, args: MembersArgs) -> Result<(), String> {
    let MembersArgs { redis, command } = args;
    let flags = ServeArgs {
        redis,
        ..ServeArgs::default()
    };
    let (config, _) = load_config(config_path, &flags)?;
    let secrets = SecretStore::new().with_cache_ttl(config.keychain_cache);
    let store = members::store_for(&config, &secrets);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        match command {
            MembersCommand::Add { name } => {
                members::check_name(&name).map_err(|e| e.to_string())?;
                let (token, hash) = members::new_token().map_err(|e| e.to_string())?;
                let member = Member {
                    name: name.clone(),
                    hash,
                    created: members::unix_now(),
                    last_used: None,
                };
                store
                    .add(member)
                    .await
                    .map_err(|e| format!("not added: {e}"))?;
                println!("{}", token.expose_secret());
                eprintln!(
                    "Added member '{name}'. Their token is above and is shown only this once: \
                     Protogate keeps only its hash. Give it to them privately; their \
                     prototypes send it as `Authorization: Bearer <token>` (or `X-API-Key`)."
                );
                if !config.require_access_token {
                    eprintln!(
                        "Note: tokens are checked only with \"require_access_token\": true in \
                         the settings; without it, this gateway asks for none."
                    );
                }
                Ok(())
            }
            MembersCommand::List => {
                let mut list = store.list().await.map_err(|e| e.to_string())?;
                if list.is_empty() {
                    println!("No members yet; add one with `protogate members add NAME`.");
                    return Ok(());
                }
                list.sort_by(|a, b| a.name.cmp(&b.name));
                let width = list
                    .iter()
                    .map(|m| m.name.chars().count())
                    .max()
                    .unwrap_or(0);
                let width = width.max("NAME".len());
                println!("{:<width$}  {:<20}  LAST USED", "NAME", "CREATED");
                for m in list {
                    let used = m.last_used.map_or_else(|| "never".to_string(), when);
                    println!("{:<width$}  {:<20}  {used}", m.name, when(m.created));
                }
                Ok(())
            }
            MembersCommand::Revoke { name } => {
                if store.revoke(&name).await.map_err(|e| e.to_string())? {
                    println!(
                        "Revoked '{name}': running gateways refuse their token within {} s.",
                        config.keychain_cache.as_secs_f64()
                    );
                    return Ok(());
                }
                let names: Vec<String> = store
                    .list()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|m| m.name)
                    .collect();
                Err(match names.is_empty() {
                    true => format!("no member named '{name}'; there are no members"),
                    false => format!("no member named '{name}'; members: {}", names.join(", ")),
                })
            }
        }
    })
}

/// Unix seconds as RFC 3339, UTC.
fn when(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}
