//! ASAP tokens (<https://s2sauth.bitbucket.io/spec/>): JWTs signed RS256 with the
//! issuer's private key, `kid` = key id, and a fresh `jti` each. A token is reused until
//! most of its lifetime has passed, not signed per request: RSA signing costs far more
//! than the rest of a request.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::AsapSettings;

/// A token is renewed once this share of its lifetime has passed.
const RENEW_AFTER: f64 = 0.8;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Aud<'a>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Aud<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// Why a token could not be made. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AsapError(String);

/// Signs and caches one provider's tokens.
#[derive(Clone, Debug)]
pub struct AsapSigner {
    settings: AsapSettings,
    cached: Arc<Mutex<Option<Cached>>>,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
    /// Which private key signed it, so a replaced key takes effect at once.
    key_hash: u64,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cached(<redacted>)")
    }
}

impl AsapSigner {
    pub fn new(settings: AsapSettings) -> Self {
        AsapSigner {
            settings,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// A valid token for `private_key_pem`, from the cache while it is fresh.
    pub fn token(&self, private_key_pem: &SecretString) -> Result<SecretString, AsapError> {
        let key_hash = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            private_key_pem.expose_secret().hash(&mut h);
            h.finish()
        };
        let mut cached = self.cached.lock().expect("token cache lock");
        if let Some(c) = cached.as_ref() {
            if c.key_hash == key_hash && Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let token = self.sign(private_key_pem)?;
        let lifetime = self.settings.lifetime;
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.mul_f64(RENEW_AFTER),
            key_hash,
        });
        Ok(token)
    }

    /// Forgets the cached token, e.g. after the gateway refused it.
    pub fn forget(&self) {
        *self.cached.lock().expect("token cache lock") = None;
    }

    fn sign(&self, private_key_pem: &SecretString) -> Result<SecretString, AsapError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().trim().as_bytes())
            .map_err(|_| {
                AsapError("it is not an RSA private key in PEM form (PKCS#8 or PKCS#1)".into())
            })?;
        let s = &self.settings;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let claims = Claims {
            iss: &s.issuer,
            sub: &s.subject,
            aud: match s.audience.as_slice() {
                [one] => Aud::One(one),
                many => Aud::Many(many),
            },
            iat: now,
            nbf: now,
            exp: now + s.lifetime.as_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(s.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &key)
            .map(SecretString::from)
            .map_err(|_| {
                AsapError("signing with it failed; is it an RSA key of at least 2048 bits?".into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const PRIVATE: &str = include_str!("../../tests/fixtures/asap-private.pem");
    const PUBLIC: &str = include_str!("../../tests/fixtures/asap-public.pem");

    fn signer(lifetime_s: u64) -> AsapSigner {
        AsapSigner::new(AsapSettings {
            issuer: "protogate".into(),
            key_id: "protogate/test-key".into(),
            audience: vec!["ai-gateway".into()],
            subject: "protogate".into(),
            lifetime: Duration::from_secs(lifetime_s),
        })
    }

    fn claims(token: &SecretString) -> (jsonwebtoken::Header, serde_json::Value) {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["ai-gateway"]);
        v.set_issuer(&["protogate"]);
        let key = DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token.expose_secret(), &key, &v).unwrap();
        (data.header, data.claims)
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_reused_within_their_lifetime_and_renewed_after() {
        let s = signer(600);
        let key = SecretString::from(PRIVATE);
        let first = s.token(&key).unwrap();
        let (header, c) = claims(&first);
        assert_eq!(header.kid.as_deref(), Some("protogate/test-key"));
        assert_eq!(c["sub"], "protogate");
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 600);
        assert_eq!(c["nbf"], c["iat"]);

        tokio::time::advance(Duration::from_secs(400)).await;
        assert_eq!(
            s.token(&key).unwrap().expose_secret(),
            first.expose_secret(),
            "reused while fresh"
        );

        tokio::time::advance(Duration::from_secs(100)).await; // 500 s > 80 % of 600 s
        let renewed = s.token(&key).unwrap();
        assert_ne!(
            renewed.expose_secret(),
            first.expose_secret(),
            "renewed before expiry"
        );
        assert_ne!(
            claims(&renewed).1["jti"],
            c["jti"],
            "each token has its own jti"
        );
    }

    #[test]
    fn a_bad_key_is_a_clear_error_without_the_key() {
        let e = signer(60)
            .token(&SecretString::from("not a pem at all"))
            .unwrap_err();
        assert!(e.to_string().contains("PEM"), "{e}");
        assert!(!e.to_string().contains("not a pem at all"));
    }
}
