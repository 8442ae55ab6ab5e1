//! A member store in memory, counting its calls: the reference the cache is tested on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{Member, MemberError, MemberStore, StoreFuture, TokenHash};
use crate::secrets::SecretError;

#[derive(Default)]
pub struct MemoryMembers {
    members: Mutex<Vec<Member>>,
    lists: AtomicUsize,
    touches: AtomicUsize,
    failing: AtomicBool,
}

impl MemoryMembers {
    /// Times `list` was called.
    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::Relaxed)
    }

    /// Times `touch` was called.
    pub fn touches(&self) -> usize {
        self.touches.load(Ordering::Relaxed)
    }

    /// Makes every call fail as a locked keychain does.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), MemberError> {
        match self.failing.load(Ordering::Relaxed) {
            true => Err(SecretError::Locked.into()),
            false => Ok(()),
        }
    }
}

impl MemberStore for MemoryMembers {
    fn add(&self, member: Member) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.check()?;
            let mut members = self.members.lock().unwrap();
            if members.iter().any(|m| m.name == member.name) {
                return Err(MemberError::Exists(member.name));
            }
            members.push(member);
            Ok(())
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Member>> {
        Box::pin(async move {
            self.lists.fetch_add(1, Ordering::Relaxed);
            self.check()?;
            Ok(self.members.lock().unwrap().clone())
        })
    }

    fn revoke<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check()?;
            let mut members = self.members.lock().unwrap();
            let before = members.len();
            members.retain(|m| m.name != name);
            Ok(members.len() < before)
        })
    }

    fn touch(&self, used: Vec<(TokenHash, u64)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.touches.fetch_add(1, Ordering::Relaxed);
            self.check()?;
            let mut members = self.members.lock().unwrap();
            for (hash, at) in used {
                if let Some(m) = members.iter_mut().find(|m| m.hash == hash) {
                    m.last_used = m.last_used.max(Some(at));
                }
            }
            Ok(())
        })
    }
}
