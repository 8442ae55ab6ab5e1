//! `redis` in the settings: team mode's shared state (see `team/`). Absent, everything
//! stays in this process, as the desktop app needs.
//!
//! ```json
//! "redis": {"url": "redis://redis.team.svc:6379/0", "key_prefix": "protogate"}
//! ```
//!
//! The password is never in the file: it comes from `PROTOGATE_REDIS_PASSWORD` or the
//! keychain (account `redis-password`).

use ::redis::IntoConnectionInfo;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Starts every key, so several gateways (or other programs) can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        RedisSection {
            url: None,
            key_prefix: "protogate".into(),
        }
    }
}

impl RedisSection {
    /// No Redis: nothing to write back to the file either.
    pub fn is_off(&self) -> bool {
        *self == RedisSection::default()
    }

    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err((
                "key_prefix".into(),
                "must be a word without spaces, such as `protogate`".into(),
            ));
        }
        let Some(url) = &self.url else {
            return Ok(());
        };
        let info = url.as_str().into_connection_info().map_err(|e| {
            let message = format!("is not a Redis URL ({e}); use redis://host:6379");
            ("url".to_string(), message)
        })?;
        if info.redis.password.is_some() {
            return Err((
                "url".into(),
                "holds a password; settings never hold secrets: set PROTOGATE_REDIS_PASSWORD \
                 or the keychain's `redis-password` instead"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str) -> RedisSection {
        RedisSection {
            url: Some(url.into()),
            ..RedisSection::default()
        }
    }

    #[test]
    fn a_plain_url_is_fine_and_nothing_is_off() {
        section("redis://127.0.0.1:6379/0").check().unwrap();
        assert!(RedisSection::default().is_off());
        assert!(!section("redis://h").is_off());
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        let (field, why) = section("redis://:hunter2@h:6379").check().unwrap_err();
        assert_eq!(field, "url");
        assert!(why.contains("PROTOGATE_REDIS_PASSWORD"), "{why}");
        assert!(!why.contains("hunter2"), "{why}");
    }

    #[test]
    fn a_wrong_url_says_so() {
        let (field, why) = section("http://h").check().unwrap_err();
        assert_eq!(field, "url");
        assert!(why.starts_with("is not a Redis URL"), "{why}");
    }
}
