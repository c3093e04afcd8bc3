//! Which Redis the store talks to: one address (`redis://`, `rediss://`),
//! or the primary that Redis Sentinel names (`redis+sentinel://`), followed
//! through failovers. Either way the store holds one set of connections,
//! swapped as a whole when Sentinel names another primary, so a command
//! never goes to a demoted primary for longer than one check.
//!
//! While Sentinel fails over, the old primary still takes writes, and the
//! new one never sees them: an incident declared there is answered, then
//! forgotten, and a timer acted on there acts again. So the store also
//! listens to the Sentinels' events, and from the moment a failover of its
//! primary starts until it follows the new primary, nothing is written
//! (the [`Fence`]).

use super::{StoreError, StoreResult};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// How often Sentinel is asked which Redis is the primary: a failover is
/// followed within about this (Sentinel itself takes seconds to decide).
pub const SENTINEL_CHECK: Duration = Duration::from_secs(1);

/// The connections to one Redis: a shared one for every request's
/// commands, and one per blocking reader (each outbox stream, the inbox),
/// which would otherwise stall the shared one.
#[derive(Clone)]
pub struct Links {
    pub conn: ConnectionManager,
    pub blocking: ConnectionManager,
    pub anchors_blocking: ConnectionManager,
    pub alerts_blocking: ConnectionManager,
    pub inbox_blocking: ConnectionManager,
    /// `host:port`, to tell whether Sentinel moved the primary.
    addr: String,
}

/// How long each kind of connection may wait for an answer.
pub struct Timeouts {
    pub operation: Duration,
    pub outbox: Duration,
    pub inbox: Duration,
}

fn connection(client: redis::Client, response_timeout: Duration) -> StoreResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

impl Links {
    /// Connects lazily: the bot starts while Redis is down and `/readyz`
    /// says so until it is back.
    pub fn to(client: redis::Client, timeouts: &Timeouts) -> StoreResult<Links> {
        let addr = client.get_connection_info().addr().to_string();
        Ok(Links {
            conn: connection(client.clone(), timeouts.operation)?,
            blocking: connection(client.clone(), timeouts.outbox)?,
            anchors_blocking: connection(client.clone(), timeouts.outbox)?,
            alerts_blocking: connection(client.clone(), timeouts.outbox)?,
            inbox_blocking: connection(client, timeouts.inbox)?,
            addr,
        })
    }
}

/// How long a failover may hold writes back at most: Sentinel's own take
/// about a second, so this only matters when the end was never heard.
pub const FENCE_LIMIT: Duration = Duration::from_secs(10);

/// Whether a failover of the primary is under way: from its first event
/// until the follower has moved to the primary Sentinel names after it.
#[derive(Default)]
pub struct Fence {
    state: Mutex<FenceState>,
    /// Wakes the follower to ask Sentinel at once, rather than within a
    /// second, when a failover ends.
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct FenceState {
    since: Option<Instant>,
    ended: bool,
}

impl Fence {
    /// Whether writes must wait: a failover began, and the follower has not
    /// yet moved on from it (nor has [`FENCE_LIMIT`] passed).
    pub fn up(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.since.is_some_and(|since| since.elapsed() < FENCE_LIMIT)
    }

    fn heard(&self, event: FailoverEvent) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            FailoverEvent::Begins => {
                if state.since.is_none() {
                    tracing::warn!("Sentinel is failing the Redis primary over: nothing is written until it is done");
                }
                state.since.get_or_insert_with(Instant::now);
                state.ended = false;
            }
            FailoverEvent::Ends => {
                state.ended = true;
                self.wake.notify_one();
            }
        }
    }

    /// The follower asked Sentinel and is on the primary it names: a
    /// failover that ended is over for this store.
    fn followed(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.ended || state.since.is_some_and(|since| since.elapsed() >= FENCE_LIMIT) {
            if state.since.take().is_some() {
                tracing::warn!("the Redis failover is over: writing again");
            }
            state.ended = false;
        }
    }
}

/// What a Sentinel event says of a failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverEvent {
    Begins,
    Ends,
}

/// The Sentinel channels that tell a failover's progress.
const FAILOVER_CHANNELS: [&str; 12] = [
    "+try-failover",
    "+failover-state-select-slave",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+promoted-slave",
    "+switch-master",
    "+failover-end",
    "+failover-end-for-timeout",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
];

/// Reads one Sentinel event: `None` unless it is about `master`'s failover.
/// A master's events read `master <name> <ip> <port>`, a replica's name
/// the master after `@`, and `+switch-master` starts with the name.
pub fn failover_event(channel: &str, payload: &str, master: &str) -> Option<FailoverEvent> {
    let words: Vec<&str> = payload.split_whitespace().collect();
    let named = match (channel, words.as_slice()) {
        ("+switch-master", [name, ..]) => *name,
        (_, ["master", name, ..]) => *name,
        _ => words.iter().position(|w| *w == "@").and_then(|at| words.get(at + 1)).copied()?,
    };
    if named != master {
        return None;
    }
    match channel {
        "+switch-master" | "+failover-end" | "+failover-end-for-timeout" => Some(FailoverEvent::Ends),
        c if c.starts_with("-failover-abort") => Some(FailoverEvent::Ends),
        c if FAILOVER_CHANNELS.contains(&c) => Some(FailoverEvent::Begins),
        _ => None,
    }
}

/// The links in use; clones share them, and a Sentinel follower swaps them.
#[derive(Clone)]
pub struct Primary {
    links: Arc<RwLock<Links>>,
    fence: Arc<Fence>,
}

impl Primary {
    pub fn fixed(links: Links) -> Primary {
        Primary { links: Arc::new(RwLock::new(links)), fence: Arc::default() }
    }

    pub fn links(&self) -> Links {
        self.links.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a Sentinel failover holds writes back (see [`Fence`]).
    pub fn failing_over(&self) -> bool {
        self.fence.up()
    }
}

/// `redis+sentinel://[:password@]host:port[,host:port…]/<master name>`:
/// the Sentinels to ask and the name of the primary they watch. The
/// password, if any, is the primary's; Sentinels are asked without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelUrl {
    pub sentinels: Vec<String>,
    pub master: String,
    password: Option<String>,
}

impl SentinelUrl {
    pub const SCHEME: &'static str = "redis+sentinel://";

    /// `None`: not a Sentinel URL; `Some(Err)`: one that is malformed.
    pub fn parse(url: &str) -> Option<Result<SentinelUrl, String>> {
        let rest = url.strip_prefix(Self::SCHEME)?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let password = auth.map(|a| a.rsplit_once(':').map_or(a, |(_, p)| p).to_owned()).filter(|p| !p.is_empty());
        let Some((hosts, master)) = rest.split_once('/') else {
            return Some(
                Err("a Sentinel URL ends with the master's name: redis+sentinel://host:26379/mymaster".into()),
            );
        };
        let master = master.trim_end_matches('/');
        let sentinels: Vec<String> =
            hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("redis://{h}/")).collect();
        if sentinels.is_empty() || master.is_empty() || master.contains('/') {
            return Some(Err("a Sentinel URL is redis+sentinel://host:26379[,host:26379…]/<master name>".into()));
        }
        Some(Ok(SentinelUrl { sentinels, master: master.to_owned(), password }))
    }

    fn client(&self) -> StoreResult<SentinelClient> {
        let mut node = redis::RedisConnectionInfo::default();
        if let Some(password) = &self.password {
            node = node.set_password(password);
        }
        let info = SentinelNodeConnectionInfo::default().set_redis_connection_info(node);
        Ok(SentinelClient::build(self.sentinels.clone(), &self.master, Some(info), SentinelServerType::Master)?)
    }
}

/// Starts following the primary Sentinel names. Until Sentinel first
/// answers, the links point at the first Sentinel, which refuses the
/// store's commands, so the bot starts and `/readyz` says what is wrong.
/// The follower stops when the store is dropped.
pub fn follow(url: &SentinelUrl, timeouts: Timeouts) -> StoreResult<Primary> {
    let first = url.sentinels.first().ok_or_else(|| StoreError::Unavailable("no Sentinel given".into()))?;
    let primary = Primary::fixed(Links::to(redis::Client::open(first.as_str())?, &timeouts)?);
    let mut sentinel = url.client()?;
    let shared: Weak<RwLock<Links>> = Arc::downgrade(&primary.links);
    let fence: Weak<Fence> = Arc::downgrade(&primary.fence);
    let master = url.master.clone();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| StoreError::Unavailable("Sentinel is followed from within the bot's runtime".into()))?;
    for address in &url.sentinels {
        runtime.spawn(listen(redis::Client::open(address.as_str())?, url.master.clone(), fence.clone()));
    }
    runtime.spawn(async move {
        let mut told = None::<String>;
        loop {
            let Some(shared) = shared.upgrade() else { return };
            match sentinel.async_get_client().await {
                Ok(client) => {
                    let addr = client.get_connection_info().addr().to_string();
                    let current = shared.read().unwrap_or_else(|e| e.into_inner()).addr.clone();
                    let followed = addr == current
                        || match Links::to(client, &timeouts) {
                            Ok(links) => {
                                tracing::warn!(%master, primary = %addr, "Sentinel names a new Redis primary: following it");
                                *shared.write().unwrap_or_else(|e| e.into_inner()) = links;
                                true
                            }
                            Err(e) => {
                                tracing::warn!(%master, error = %e, "cannot connect to the primary Sentinel names");
                                false
                            }
                        };
                    if let (true, Some(fence)) = (followed, fence.upgrade()) {
                        fence.followed();
                    }
                    told = None;
                }
                Err(e) => {
                    let why = e.to_string();
                    if told.as_deref() != Some(why.as_str()) {
                        tracing::warn!(%master, error = %why, "Sentinel does not name a Redis primary");
                        told = Some(why);
                    }
                }
            }
            drop(shared);
            let Some(fence) = fence.upgrade() else { return };
            tokio::select! {
                () = tokio::time::sleep(SENTINEL_CHECK) => {}
                () = fence.wake.notified() => {}
            }
        }
    });
    Ok(primary)
}

/// Listens to one Sentinel's failover events for `master`, reconnecting
/// when it goes away, until the store is dropped.
async fn listen(sentinel: redis::Client, master: String, fence: Weak<Fence>) {
    /// How often a quiet listener checks that its store still exists.
    const QUIET: Duration = Duration::from_secs(5);
    while fence.strong_count() > 0 {
        let mut events = match sentinel.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&FAILOVER_CHANNELS[..]).await {
                Ok(()) => pubsub.into_on_message(),
                Err(_) => {
                    tokio::time::sleep(SENTINEL_CHECK).await;
                    continue;
                }
            },
            // Told by the follower already, which asks all the Sentinels.
            Err(_) => {
                tokio::time::sleep(SENTINEL_CHECK).await;
                continue;
            }
        };
        loop {
            match tokio::time::timeout(QUIET, events.next()).await {
                Ok(Some(message)) => {
                    let payload: String = message.get_payload().unwrap_or_default();
                    let event = failover_event(message.get_channel_name(), &payload, &master);
                    match (event, fence.upgrade()) {
                        (_, None) => return,
                        (Some(event), Some(fence)) => fence.heard(event),
                        (None, Some(_)) => {}
                    }
                }
                Ok(None) => break,
                Err(_) if fence.strong_count() == 0 => return,
                Err(_) => {}
            }
        }
        tokio::time::sleep(SENTINEL_CHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_events_tell_when_a_failover_of_our_primary_begins_and_ends() {
        let ours = |channel: &str, payload: &str| failover_event(channel, payload, "opsbot");
        assert_eq!(ours("+try-failover", "master opsbot 10.0.0.1 6379"), Some(FailoverEvent::Begins));
        assert_eq!(
            ours("+promoted-slave", "slave 10.0.0.2:6379 10.0.0.2 6379 @ opsbot 10.0.0.1 6379"),
            Some(FailoverEvent::Begins)
        );
        assert_eq!(ours("+switch-master", "opsbot 10.0.0.1 6379 10.0.0.2 6379"), Some(FailoverEvent::Ends));
        assert_eq!(ours("+failover-end", "master opsbot 10.0.0.1 6379"), Some(FailoverEvent::Ends));
        assert_eq!(ours("-failover-abort-no-good-slave", "master opsbot 10.0.0.1 6379"), Some(FailoverEvent::Ends));
        assert_eq!(ours("+try-failover", "master other 10.0.0.9 6379"), None, "another master's");
        assert_eq!(ours("+switch-master", "other 10.0.0.1 6379 10.0.0.2 6379"), None);
        assert_eq!(ours("+sdown", "master opsbot 10.0.0.1 6379"), None, "not a failover event");
        assert_eq!(ours("+try-failover", ""), None, "nothing to read");
    }

    #[test]
    fn a_fence_holds_from_a_failovers_start_until_its_end_has_been_followed() {
        let fence = Fence::default();
        assert!(!fence.up());
        fence.followed();
        assert!(!fence.up(), "following without a failover changes nothing");
        fence.heard(FailoverEvent::Begins);
        assert!(fence.up());
        fence.followed();
        assert!(fence.up(), "still on the old primary until the end is heard");
        fence.heard(FailoverEvent::Ends);
        assert!(fence.up(), "heard, but not yet followed");
        fence.followed();
        assert!(!fence.up());
    }

    #[test]
    fn sentinel_urls_name_their_sentinels_and_master() {
        let url =
            SentinelUrl::parse("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/mymaster").unwrap().unwrap();
        assert_eq!(url.sentinels, ["redis://10.0.0.1:26379/", "redis://10.0.0.2:26379/"]);
        assert_eq!((url.master.as_str(), url.password.as_deref()), ("mymaster", Some("s3cret")));
        assert!(SentinelUrl::parse("redis://10.0.0.1:6379/").is_none(), "not a Sentinel URL");
        for bad in ["redis+sentinel://10.0.0.1:26379", "redis+sentinel:///mymaster", "redis+sentinel://h:1/a/b"] {
            assert!(SentinelUrl::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
