//! A short-lived answer cache with one fetch in flight per question: ten
//! people typing `/pipeline status` within a few seconds cost GitHub one
//! call, and the ones who asked while it was on its way wait for it rather
//! than asking again.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Questions remembered at most; older ones go first when it is full, so
/// whatever people type cannot grow it without bound.
const MAX_KEYS: usize = 256;

type Slot<V> = Arc<tokio::sync::Mutex<Option<(DateTime<Utc>, V)>>>;
/// Each question's slot, with when it was last asked.
type Slots<K, V> = HashMap<K, (DateTime<Utc>, Slot<V>)>;

pub struct Cache<K, V> {
    ttl: TimeDelta,
    slots: Mutex<Slots<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub fn new(ttl: TimeDelta) -> Cache<K, V> {
        Cache { ttl, slots: Mutex::new(HashMap::new()) }
    }

    /// The answer to `key` fetched less than the TTL before `now`, or a
    /// fresh one from `fetch`. Errors are not kept: the next asker tries
    /// again (those already waiting share the error).
    pub async fn get_or_fetch<E, F, Fut>(&self, key: &K, now: DateTime<Utc>, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key, now);
        let mut held = slot.lock().await;
        if let Some((at, value)) = held.as_ref() {
            if now - *at < self.ttl && now >= *at {
                return Ok(value.clone());
            }
        }
        let value = fetch().await?;
        *held = Some((now, value.clone()));
        Ok(value)
    }

    fn slot(&self, key: &K, now: DateTime<Utc>) -> Slot<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(key) && slots.len() >= MAX_KEYS {
            let ttl = self.ttl;
            slots.retain(|_, (asked, _)| now - *asked < ttl);
            if slots.len() >= MAX_KEYS {
                if let Some(oldest) = slots.iter().min_by_key(|(_, (asked, _))| *asked).map(|(k, _)| k.clone()) {
                    slots.remove(&oldest);
                }
            }
        }
        let entry = slots.entry(key.clone()).or_insert_with(|| (now, Arc::default()));
        entry.0 = now;
        entry.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t0() -> DateTime<Utc> {
        "2026-12-01T09:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn ten_askers_at_once_share_one_fetch() {
        let cache: Arc<Cache<&str, u32>> = Arc::new(Cache::new(TimeDelta::seconds(30)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let asks = (0..10).map(|_| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch(&"status", t0(), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            })
        });
        for ask in asks {
            assert_eq!(ask.await.unwrap(), Ok(7));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_expire_and_errors_are_not_kept() {
        let cache: Cache<&str, u32> = Cache::new(TimeDelta::seconds(30));
        assert_eq!(cache.get_or_fetch(&"k", t0(), || async { Err::<u32, _>("down") }).await, Err("down"));
        assert_eq!(cache.get_or_fetch(&"k", t0(), || async { Ok::<_, ()>(1) }).await, Ok(1));
        assert_eq!(cache.get_or_fetch(&"k", t0() + TimeDelta::seconds(29), || async { Ok::<_, ()>(2) }).await, Ok(1));
        assert_eq!(cache.get_or_fetch(&"k", t0() + TimeDelta::seconds(30), || async { Ok::<_, ()>(3) }).await, Ok(3));
    }

    #[tokio::test]
    async fn many_questions_cannot_grow_it_without_bound() {
        let cache: Cache<u32, u32> = Cache::new(TimeDelta::seconds(30));
        for k in 0..(MAX_KEYS as u32 * 2) {
            cache.get_or_fetch(&k, t0(), || async { Ok::<_, ()>(k) }).await.unwrap();
        }
        assert!(cache.slots.lock().unwrap().len() <= MAX_KEYS);
    }
}
