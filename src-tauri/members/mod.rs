//! Members: people (or prototypes) with a token of their own instead of the one shared
//! access token, so each can be named in the log and revoked alone.
//!
//! A token is `pgm_` and 256 random bits; only its SHA-256 is stored. A fast hash is
//! the right one here: a slow password hash (Argon2, bcrypt) exists to make guessing a
//! low-entropy password expensive, and a random 256-bit token cannot be guessed at any
//! speed, while the gateway hashes the presented token on every request.
//!
//! - [`MemberStore`]: where members live (the keychain here; Redis in team mode).
//! - [`Members`]: the gateway's view of a store: the set cached in memory, refreshed
//!   every `keychain_cache_ms`, and last-used times written at most once a minute.
//! - [`LocalMembers`]: the desktop and workstation store, in the OS keychain.

mod cache;
mod local;
#[cfg(test)]
mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;

pub use cache::{Members, TOUCH_EVERY};
pub use local::{LocalMembers, LAST_USED_ACCOUNT, MEMBERS_ACCOUNT};

use crate::config::Config;
use crate::secrets::{SecretError, SecretStore};

/// What every member token starts with, so the gateway hashes only what may be one (the
/// access token never costs a hash) and a leaked token is recognisable in a scan.
pub const TOKEN_PREFIX: &str = "pgm_";
/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// Names show in logs and metrics labels: short, printable, no spaces.
const MAX_NAME_CHARS: usize = 64;

/// A member as a store keeps it. Its `Debug` shows no hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub hash: TokenHash,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last request with this token, to within [`TOUCH_EVERY`].
    pub last_used: Option<u64>,
}

/// SHA-256 of a member token. Not a secret (the token has 256 random bits, so the hash
/// cannot be reversed or guessed back), but never shown either: `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        TokenHash(bytes)
    }

    /// Base64url, as stores keep it.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(TokenHash(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A new member token and its hash. The token is shown once and never stored.
pub fn new_token() -> Result<(SecretString, TokenHash), MemberError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; TOKEN_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| MemberError::Backend("the system's random generator failed".into()))?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&token);
    Ok((SecretString::from(token), hash))
}

/// Checks a member name: it goes into log records, metrics labels and the terminal.
pub fn check_name(name: &str) -> Result<(), MemberError> {
    let fine = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(fine) {
        return Err(MemberError::BadName(format!(
            "`{}` is not a member name: use up to {MAX_NAME_CHARS} letters, digits and \
             - _ . @ (e.g. an email address or `ana`)",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Why members could not be read or changed. Never carries a token or a hash.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemberError {
    #[error("{0}")]
    Keychain(#[from] SecretError),
    #[error("the stored member list cannot be read ({0}); revoke and add the members again")]
    Corrupt(String),
    #[error("a member named '{0}' already exists; revoke it first to give them a new token")]
    Exists(String),
    #[error("{0}")]
    BadName(String),
    #[error(
        "the members come from the environment variable {0}, which this command cannot \
         change; change the variable instead"
    )]
    ReadOnly(String),
    #[error("the member store failed: {0}")]
    Backend(String),
}

/// A store's answer, later.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MemberError>> + Send + 'a>>;

/// Where members live. Each call may be a round trip (a keychain read over D-Bus, a
/// Redis command), so the gateway calls [`MemberStore::list`] once per refresh and checks
/// tokens against its copy ([`Members`]); the other calls are for the command line and
/// for the last-used times. Boxed futures keep the trait usable as `dyn MemberStore`,
/// chosen once at start (the keychain here; a Redis store for team mode).
pub trait MemberStore: Send + Sync + 'static {
    /// Adds `member`, refusing a name already in use.
    fn add(&self, member: Member) -> StoreFuture<'_, ()>;
    /// Every member, with hashes and last-used times.
    fn list(&self) -> StoreFuture<'_, Vec<Member>>;
    /// Removes `name`; whether there was such a member.
    fn revoke<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool>;
    /// Notes when tokens were last used (Unix seconds, by hash). Times of members no
    /// longer there are dropped; an older time never replaces a newer one.
    fn touch(&self, used: Vec<(TokenHash, u64)>) -> StoreFuture<'_, ()>;
    /// The member `token` belongs to, asked of the store itself (no cache). A store that
    /// can look a hash up directly should do so instead of listing everyone.
    fn verify<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let hash = TokenHash::of(token);
            let members = self.list().await?;
            Ok(members.into_iter().find(|m| m.hash == hash).map(|m| m.name))
        })
    }
}

/// The member store these settings use: Redis in team mode (`redis.url`), else the
/// keychain-backed one.
pub fn store_for(config: &Config, secrets: &SecretStore) -> Arc<dyn MemberStore> {
    match &config.redis.url {
        Some(url) => Arc::new(crate::team::RedisMembers::new(
            url,
            &config.redis.key_prefix,
            secrets,
        )),
        None => Arc::new(LocalMembers::new(secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_token_has_the_prefix_256_random_bits_and_its_hash() {
        let (a, hash) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        let a = a.expose_secret();
        assert!(a.starts_with(TOKEN_PREFIX), "{a}");
        let random = URL_SAFE_NO_PAD.decode(&a[TOKEN_PREFIX.len()..]).unwrap();
        assert_eq!(random.len(), 32);
        assert_ne!(a, b.expose_secret(), "two tokens differ");
        assert_eq!(hash, TokenHash::of(a));
        assert_eq!(TokenHash::decode(&hash.encode()), Some(hash));
        assert!(!format!("{hash:?}").contains(&hash.encode()));
    }

    #[test]
    fn the_hash_is_sha256_of_the_whole_token() {
        // `printf %s pgm_x | sha256sum`
        assert_eq!(
            TokenHash::of("pgm_x").0[..4],
            [0xc6, 0x7c, 0xe6, 0xc0],
            "{:02x?}",
            TokenHash::of("pgm_x").0
        );
    }

    #[test]
    fn names_are_short_and_printable() {
        for good in ["ana", "ana.lima@example.com", "team-1", "José"] {
            check_name(good).unwrap();
        }
        for bad in ["", "two words", "tab\there", "a/b", &"x".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("is not a member name"), "{e}");
        }
    }
}
