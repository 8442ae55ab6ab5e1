//! ASAP signing settings, checked by the rules the reference verifiers apply
//! (atlassian/asap-authentication-python `key.py`, `verifier.py`).

use std::time::Duration;

use super::raw::{AsapSection, Audience};

/// Longest token lifetime a verifier accepts (`exp - iat`).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct AsapSettings {
    pub issuer: String,
    pub key_id: String,
    pub audience: Vec<String>,
    /// Defaults to the issuer; verifiers reject a different one by default.
    pub subject: String,
    pub lifetime: Duration,
}

impl AsapSettings {
    /// Checks a section; the error names the field and says what is wrong.
    pub fn from_section(s: AsapSection) -> Result<Self, (&'static str, String)> {
        if s.issuer.is_empty() {
            return Err(("issuer", "must not be empty".into()));
        }
        let kid = &s.key_id;
        let kid_chars = kid
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | '/'));
        let kid_segments = kid
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !kid_chars || kid.starts_with('/') || !kid_segments {
            return Err((
                "key_id",
                format!("`{kid}` may use letters, digits and _ . - + /, with no empty, `.` or `..` segments"),
            ));
        }
        if !kid.starts_with(&format!("{}/", s.issuer)) {
            return Err((
                "key_id",
                format!("`{kid}` must start with the issuer, `{}/`: verifiers refuse a key the issuer does not own", s.issuer),
            ));
        }
        let audience = match s.audience {
            Audience::One(a) => vec![a],
            Audience::Many(list) => list,
        };
        if audience.is_empty() || audience.iter().any(String::is_empty) {
            return Err(("audience", "must name at least one audience".into()));
        }
        let lifetime = Duration::from_secs(s.lifetime_s);
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(("lifetime_s", "must be between 1 and 3600 seconds".into()));
        }
        Ok(AsapSettings {
            subject: s.subject.unwrap_or_else(|| s.issuer.clone()),
            issuer: s.issuer,
            key_id: s.key_id,
            audience,
            lifetime,
        })
    }
}
