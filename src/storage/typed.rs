//! A typed view of the short-lived store: one kind of value, under one key
//! prefix, as JSON. Capabilities build their stores from it (codes, access
//! tokens, sessions…), so no caller writes a key string or a JSON value by hand.
//!
//! A value this version cannot read is absent to it: during a rolling upgrade
//! the store is shared by two versions, and a newer one may write a value (a
//! new state of a parked sign-in, say) the older one does not know. The older
//! one then answers as for an expired value (« demande expirée », a refused
//! code) rather than with a server error; refusing is the safe side for every
//! kind kept here.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ShortLived;

pub struct Kind<T> {
    store: ShortLived,
    prefix: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Kind<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.prefix,
            value: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Kind<T> {
    /// Values of this kind live under `prefix:` (each prefix names one kind).
    pub fn new(store: &ShortLived, prefix: &'static str) -> Self {
        Self {
            store: store.clone(),
            prefix,
            value: PhantomData,
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}:{id}", self.prefix)
    }

    /// The value `json` holds, or none if this version cannot read it (the
    /// value itself is not logged: it may be a secret).
    fn read(&self, json: Option<String>) -> Option<T> {
        let json = json?;
        serde_json::from_str(&json)
            .inspect_err(|e| {
                tracing::warn!(
                    kind = self.prefix,
                    error = %e,
                    "a short-lived value this version cannot read is treated as absent \
                     (written by another version of Clef?)"
                );
            })
            .ok()
    }

    pub async fn put(&self, id: &str, value: &T, ttl: Duration) -> anyhow::Result<()> {
        let json = serde_json::to_string(value)?;
        self.store.put(&self.key(id), &json, ttl).await
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<T>> {
        Ok(self.read(self.store.get(&self.key(id)).await?))
    }

    /// Reads and removes atomically: of two concurrent takers, one gets it.
    pub async fn take(&self, id: &str) -> anyhow::Result<Option<T>> {
        Ok(self.read(self.store.take(&self.key(id)).await?))
    }

    /// Replaces the value under `id`, if any, with `value` for `ttl`,
    /// atomically; returns the value replaced.
    pub async fn replace(&self, id: &str, value: &T, ttl: Duration) -> anyhow::Result<Option<T>> {
        let json = serde_json::to_string(value)?;
        Ok(self.read(self.store.replace(&self.key(id), &json, ttl).await?))
    }

    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.store.delete(&self.key(id)).await
    }

    /// Counts under `id` (atomic on both stores), the window starting at the first count.
    pub async fn count(&self, id: &str, ttl: Duration) -> anyhow::Result<u64> {
        self.store.incr(&self.key(id), ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kinds_do_not_see_each_other() {
        let store = ShortLived::memory();
        let codes: Kind<Vec<u8>> = Kind::new(&store, "code");
        let tokens: Kind<Vec<u8>> = Kind::new(&store, "access");
        codes
            .put("x", &vec![1], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(tokens.get("x").await.unwrap(), None);
        assert_eq!(codes.take("x").await.unwrap(), Some(vec![1]));
        assert_eq!(codes.take("x").await.unwrap(), None);
    }

    #[tokio::test]
    async fn replace_writes_only_over_a_live_value_and_returns_it() {
        let store = ShortLived::memory();
        let codes: Kind<u8> = Kind::new(&store, "code");
        let minute = Duration::from_secs(60);
        assert_eq!(codes.replace("x", &2, minute).await.unwrap(), None);
        assert_eq!(codes.get("x").await.unwrap(), None, "nothing written");
        codes.put("x", &1, minute).await.unwrap();
        assert_eq!(codes.replace("x", &2, minute).await.unwrap(), Some(1));
        assert_eq!(codes.replace("x", &3, minute).await.unwrap(), Some(2));
        assert_eq!(codes.get("x").await.unwrap(), Some(3));
        codes.put("y", &1, Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            codes.replace("y", &2, minute).await.unwrap(),
            None,
            "expired"
        );
    }

    /// What a newer version might write: a state this one does not know.
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        Issued,
        Redeemed,
    }

    #[tokio::test]
    async fn a_value_this_version_cannot_read_is_absent_and_taken_as_such() {
        let store = ShortLived::memory();
        let states: Kind<State> = Kind::new(&store, "code");
        let minute = Duration::from_secs(60);
        for id in ["get", "take", "replace"] {
            store
                .put(
                    &format!("code:{id}"),
                    r#"{"answered":{"accepted":true}}"#,
                    minute,
                )
                .await
                .unwrap();
        }
        assert_eq!(states.get("get").await.unwrap(), None);
        assert_eq!(states.take("take").await.unwrap(), None);
        assert_eq!(store.get("code:take").await.unwrap(), None, "taken");
        assert_eq!(
            states
                .replace("replace", &State::Redeemed, minute)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            states.get("replace").await.unwrap(),
            Some(State::Redeemed),
            "replaced all the same: a code so marked is spent"
        );
        states.put("ok", &State::Issued, minute).await.unwrap();
        assert_eq!(states.get("ok").await.unwrap(), Some(State::Issued));
    }
}
