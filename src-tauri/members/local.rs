//! The members of a desktop or workstation gateway, in the OS keychain beside the access
//! token they stand in for (service `protogate`). Two entries, JSON:
//!
//! - `protogate-members`: the list (name, token hash, created), written only by
//!   `members add` and `members revoke`;
//! - `protogate-members-last-used`: when each token was last used, written by the
//!   gateway at most once a minute per member.
//!
//! Kept apart, a gateway noting a use can never write back a member that another
//! process revoked meanwhile. A headless machine without a keychain may give the list
//! as `PROTOGATE_SECRET_PROTOGATE_MEMBERS` (the same JSON), which is then read-only, and
//! last-used times are not kept.
//! Windows' Credential Manager holds at most 2,560 bytes (1,280 UTF-16 characters) per
//! entry: about a dozen members there; a larger team runs team mode.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Member, MemberError, MemberStore, StoreFuture, TokenHash};
use crate::secrets::{env_var_name, SecretError, SecretSource, SecretStore};

/// Keychain account of the member list.
pub const MEMBERS_ACCOUNT: &str = "protogate-members";
/// Keychain account of the members' last-used times.
pub const LAST_USED_ACCOUNT: &str = "protogate-members-last-used";
/// A keychain waiting on an unlock prompt must not hold every later write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Every change is a read, then a write of a whole entry: one at a time in a process.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Default, Serialize, Deserialize)]
struct StoredList {
    members: Vec<StoredMember>,
}

#[derive(Serialize, Deserialize)]
struct StoredMember {
    name: String,
    /// SHA-256 of the token, base64url.
    hash: String,
    /// Unix seconds.
    created: u64,
}

/// Unix seconds by base64url hash: a member revoked and added again starts afresh.
type LastUsed = BTreeMap<String, u64>;

/// The keychain-backed [`MemberStore`].
pub struct LocalMembers {
    /// Read fresh every time: the gateway's [`super::Members`] is the cache.
    secrets: SecretStore,
}

impl LocalMembers {
    pub fn new(secrets: &SecretStore) -> Self {
        LocalMembers {
            secrets: secrets.clone().with_cache_ttl(Duration::ZERO),
        }
    }

    async fn read(
        &self,
        account: &str,
    ) -> Result<Option<(SecretString, SecretSource)>, SecretError> {
        self.secrets.get(account).await
    }

    /// The list, and whether it came from the environment (then it cannot be changed).
    async fn stored(&self) -> Result<(StoredList, bool), MemberError> {
        let Some((text, source)) = self.read(MEMBERS_ACCOUNT).await? else {
            return Ok((StoredList::default(), false));
        };
        let list = serde_json::from_str(text.expose_secret())
            .map_err(|e| MemberError::Corrupt(e.to_string()))?;
        Ok((list, source == SecretSource::Environment))
    }

    /// Last-used times; unreadable ones are lost, never a reason to refuse a member.
    async fn last_used(&self) -> LastUsed {
        match self.read(LAST_USED_ACCOUNT).await {
            Ok(Some((text, _))) => serde_json::from_str(text.expose_secret()).unwrap_or_default(),
            _ => LastUsed::default(),
        }
    }

    /// Replaces `account`'s entry with `value`'s JSON, or removes it for `None`.
    async fn write<T: Serialize>(
        &self,
        account: &'static str,
        value: Option<&T>,
    ) -> Result<(), MemberError> {
        let json = value
            .map(|v| serde_json::to_string(v).map(SecretString::from))
            .transpose()
            .map_err(|e| MemberError::Backend(e.to_string()))?;
        let secrets = self.secrets.clone();
        let write = tokio::task::spawn_blocking(move || match json {
            Some(json) => secrets.set_blocking(account, &json),
            None => secrets.delete_blocking(account).map(|_| ()),
        });
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(join)) => Err(MemberError::Backend(join.to_string())),
            Err(_) => Err(SecretError::Unavailable(
                "it did not answer; is it waiting to be unlocked?".into(),
            )
            .into()),
        }
    }

    fn read_only() -> MemberError {
        MemberError::ReadOnly(env_var_name(MEMBERS_ACCOUNT))
    }
}

fn decode(stored: StoredMember, last_used: &LastUsed) -> Result<Member, MemberError> {
    let hash = TokenHash::decode(&stored.hash).ok_or_else(|| {
        MemberError::Corrupt(format!("the token hash of '{}' is malformed", stored.name))
    })?;
    Ok(Member {
        last_used: last_used.get(&stored.hash).copied(),
        name: stored.name,
        hash,
        created: stored.created,
    })
}

impl MemberStore for LocalMembers {
    fn add(&self, member: Member) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let _writing = WRITING.lock().await;
            let (mut list, from_env) = self.stored().await?;
            if from_env {
                return Err(Self::read_only());
            }
            if list.members.iter().any(|m| m.name == member.name) {
                return Err(MemberError::Exists(member.name));
            }
            list.members.push(StoredMember {
                name: member.name,
                hash: member.hash.encode(),
                created: member.created,
            });
            self.write(MEMBERS_ACCOUNT, Some(&list)).await
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Member>> {
        Box::pin(async move {
            let (list, _) = self.stored().await?;
            let last_used = match list.members.is_empty() {
                true => LastUsed::default(),
                false => self.last_used().await,
            };
            list.members
                .into_iter()
                .map(|m| decode(m, &last_used))
                .collect()
        })
    }

    fn revoke<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let _writing = WRITING.lock().await;
            let (mut list, from_env) = self.stored().await?;
            if from_env {
                return Err(Self::read_only());
            }
            let Some(at) = list.members.iter().position(|m| m.name == name) else {
                return Ok(false);
            };
            let gone = list.members.remove(at);
            let rest = (!list.members.is_empty()).then_some(&list);
            self.write(MEMBERS_ACCOUNT, rest).await?;
            // Its last-used time goes too; left behind, it would only be pruned later.
            let mut last_used = self.last_used().await;
            if last_used.remove(&gone.hash).is_some() {
                let rest = (!last_used.is_empty()).then_some(&last_used);
                let _ = self.write(LAST_USED_ACCOUNT, rest).await;
            }
            Ok(true)
        })
    }

    fn touch(&self, used: Vec<(TokenHash, u64)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let _writing = WRITING.lock().await;
            let (list, from_env) = self.stored().await?;
            if from_env {
                // Nothing is written for a list given by the environment: there is
                // usually no keychain to write to.
                return Ok(());
            }
            let before = self.last_used().await;
            let mut after = before.clone();
            for (hash, at) in used {
                let slot = after.entry(hash.encode()).or_default();
                *slot = (*slot).max(at);
            }
            after.retain(|hash, _| list.members.iter().any(|m| &m.hash == hash));
            if after == before {
                return Ok(());
            }
            self.write(LAST_USED_ACCOUNT, Some(&after)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[tokio::test]
    async fn a_list_from_the_environment_is_read_and_cannot_be_changed() {
        let hash = TokenHash::of("pgm_env-token");
        let json = format!(
            r#"{{"members": [{{"name": "ci", "hash": "{}", "created": 1700000000}}]}}"#,
            hash.encode()
        );
        let env = HashMap::from([(env_var_name(MEMBERS_ACCOUNT), json)]);
        let store = LocalMembers::new(&SecretStore::with_environment(env));
        let members = store.list().await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!((members[0].name.as_str(), members[0].hash), ("ci", hash));
        assert_eq!(members[0].created, 1_700_000_000);
        assert_eq!(
            store.verify("pgm_env-token").await.unwrap().as_deref(),
            Some("ci")
        );
        let e = store.revoke("ci").await.unwrap_err().to_string();
        assert!(e.contains("PROTOGATE_SECRET_PROTOGATE_MEMBERS"), "{e}");
    }

    #[tokio::test]
    async fn a_malformed_list_is_an_error_in_plain_words() {
        for json in [
            "not json",
            r#"{"members": [{"name": "x", "hash": "??", "created": 1}]}"#,
        ] {
            let env = HashMap::from([(env_var_name(MEMBERS_ACCOUNT), json.to_string())]);
            let store = LocalMembers::new(&SecretStore::with_environment(env));
            let e = store.list().await.unwrap_err().to_string();
            assert!(
                e.starts_with("the stored member list cannot be read"),
                "{e}"
            );
        }
    }
}
