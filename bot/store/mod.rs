//! The store, by concern: [`SubjectStore`] (incidents and runs, their
//! timelines, indexes and where their messages are; the commit of a
//! decision), [`OutboxStore`] (the delivery streams and dead letters),
//! [`InboxStore`] (webhook deliveries waiting to be decided), [`TimerStore`],
//! [`DedupeStore`] (Slack event ids, Socket Mode envelopes) and
//! [`ReplicaStore`] (which replicas are alive). Each is a handle on the
//! same backend; a worker is given only the handles it uses.
//!
//! Two backends behind it: Redis (`REDIS_URL` set; shared by replicas,
//! survives restarts) and an embedded in-memory store (nothing persists, one
//! replica only) for trying opsbot on a laptop. They keep the same data model
//! (a state hash per incident or run, sorted indexes, a consumer-group
//! stream) and decode it with the same functions (in each concern's module),
//! and `tests/store_contract.rs` runs one suite against both, so neither
//! drifts.
//!
//! The backend is an enum rather than a trait object: two backends, known at
//! compile time, and async methods without boxed futures.

use std::time::Duration;

/// Calls the same method on whichever backend this is: Redis answers
/// asynchronously, memory at once (it never waits while holding its lock).
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Redis(store) => store.$method($($arg),*).await,
            Backend::Memory(store) => store.$method($($arg),*),
        }
    };
}

mod dedupe;
mod inbox;
mod memory;
mod outbox;
mod primary;
mod redis;
mod replicas;
mod subjects;
mod timers;

pub use dedupe::{DedupeStore, EnvelopeClaim};
pub use inbox::{Accepted, Hook, HookSource, InboxEntry, InboxStore, INBOX_BLOCK};
pub use outbox::{Landed, OutboxEntry, OutboxStore, OutboxStream, OUTBOX_BLOCK};
pub use redis::EpochCheck;
pub use replicas::ReplicaStore;
pub use subjects::{
    Commit, CommitOutcome, DeclaredOn, OpeningGroup, Stored, SubjectStore, TallyRebuild, TALLY_REBUILD_ATTEMPTS,
};
pub use timers::TimerStore;

/// Why the store could not do something. The same type whichever backend
/// runs; only the Redis backend can be unreachable or slow, and its errors
/// say so in their text (never with the URL or its password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the command.
    #[error("{0}")]
    Unavailable(String),
    #[error("{backend} did not answer within {after:?}")]
    Timeout { backend: &'static str, after: Duration },
    #[error("stored data is corrupt at {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// Redis no longer holds what this replica saw in it (see
    /// `redis::Epoch`): nothing is numbered or committed until adopted.
    #[error("Redis lost opsbot's data (it came back empty, or is another database): nothing is written until an operator runs `opsbot redis adopt`")]
    Lost,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Why `url` is not a Redis URL opsbot can use, if it is not:
/// `redis://`, `rediss://` or `redis+sentinel://host:port,…/<master>`.
pub fn check_url(url: &str) -> Result<(), String> {
    match primary::SentinelUrl::parse(url) {
        Some(parsed) => parsed.map(drop),
        None => ::redis::Client::open(url)
            .map(drop)
            .map_err(|_| "not a valid redis://, rediss:// or redis+sentinel:// URL".to_owned()),
    }
}

/// The numberings `opsbot redis adopt` can continue, by their ids' prefix.
pub const NUMBERINGS: [&str; 7] = ["INC", "RUN", "ALR", "DEP", "HND", "OVR", "SWP"];

/// An incident with the version it was loaded at, for the commit's guard.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// The store the bot runs on; clones share it.
#[derive(Clone)]
pub struct Store {
    pub subjects: SubjectStore,
    pub outbox: OutboxStore,
    pub inbox: InboxStore,
    pub timers: TimerStore,
    pub dedupe: DedupeStore,
    pub replicas: ReplicaStore,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// Boxed: its connections and scripts make it far bigger than memory's
    /// one pointer, and the handles are cloned often.
    Redis(Box<redis::RedisStore>),
    Memory(memory::MemoryStore),
}

impl Store {
    fn on(backend: Backend) -> Store {
        Store {
            subjects: SubjectStore { backend: backend.clone() },
            outbox: OutboxStore { backend: backend.clone() },
            inbox: InboxStore { backend: backend.clone() },
            timers: TimerStore { backend: backend.clone() },
            dedupe: DedupeStore { backend: backend.clone() },
            replicas: ReplicaStore { backend: backend.clone() },
            backend,
        }
    }

    /// Connects lazily: the bot starts while Redis is down and `/readyz`
    /// says so until it is back.
    pub fn connect(url: &str, prefix: &str) -> StoreResult<Store> {
        Store::connect_with_ca(url, prefix, None)
    }

    /// [`Store::connect`] to a `rediss://` Redis whose certificate a
    /// private certificate authority signed (`OPSBOT_REDIS_CA_FILE`, PEM).
    pub fn connect_with_ca(url: &str, prefix: &str, ca: Option<&[u8]>) -> StoreResult<Store> {
        Ok(Store::on(Backend::Redis(Box::new(redis::RedisStore::connect(url, prefix, ca)?))))
    }

    /// A fresh, empty store in this process's memory: nothing persists, and
    /// only this process sees it (so only one replica may run).
    pub fn memory() -> Store {
        Store::on(Backend::Memory(memory::MemoryStore::new()))
    }

    /// Whether what is stored survives this process (Redis) or not (memory).
    pub fn is_persistent(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }

    /// Makes each commit wait for `replicas` Redis replicas to have it, at
    /// most `timeout` (`OPSBOT_REDIS_WAIT_REPLICAS`); the memory store has
    /// none to wait for.
    pub fn wait_for_replicas(self, replicas: u32, timeout: Duration) -> Store {
        match self.backend {
            Backend::Redis(mut store) => {
                store.wait_for(replicas, timeout);
                Store::on(Backend::Redis(store))
            }
            memory => Store::on(memory),
        }
    }

    /// Commits not known to have reached the replicas asked for, since start.
    pub fn unreplicated_commits(&self) -> u64 {
        match &self.backend {
            Backend::Redis(store) => store.unreplicated_commits(),
            Backend::Memory(_) => 0,
        }
    }

    /// Whether Redis still holds what this replica saw in it; the memory
    /// store, which lives and dies with the process, always does.
    pub async fn check_epoch(&self) -> StoreResult<EpochCheck> {
        match &self.backend {
            Backend::Redis(store) => store.check_epoch().await,
            Backend::Memory(_) => Ok(EpochCheck::Kept),
        }
    }

    /// See `redis::RedisStore::adopt`; the memory store has nothing to adopt.
    pub async fn adopt(&self, next: &[(String, u64)]) -> StoreResult<Vec<String>> {
        match &self.backend {
            Backend::Redis(store) => store.adopt(next).await,
            Backend::Memory(_) => Ok(vec!["the in-memory store keeps nothing to adopt".to_owned()]),
        }
    }
}

// --- JSON, shared by every concern and both backends ----------------------
//
// Both keep an incident or run as a hash of string fields (`state`, `v`,
// and the message locations the outbox worker writes), so both decode it
// with these functions and cannot disagree on what a load returns.

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("our own types serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}
