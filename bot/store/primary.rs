//! Which Redis the store talks to: one address (`redis://`, `rediss://`),
//! or the primary that Redis Sentinel names (`redis+sentinel://`), followed
//! through failovers. Either way the store holds one set of connections,
//! swapped as a whole when Sentinel names another primary, so a command
//! never goes to a demoted primary for longer than one check.

use super::{StoreError, StoreResult};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

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
            alerts_blocking: connection(client.clone(), timeouts.outbox)?,
            inbox_blocking: connection(client, timeouts.inbox)?,
            addr,
        })
    }
}

/// The links in use; clones share them, and a Sentinel follower swaps them.
#[derive(Clone)]
pub struct Primary(Arc<RwLock<Links>>);

impl Primary {
    pub fn fixed(links: Links) -> Primary {
        Primary(Arc::new(RwLock::new(links)))
    }

    pub fn links(&self) -> Links {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
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
    let shared: Weak<RwLock<Links>> = Arc::downgrade(&primary.0);
    let master = url.master.clone();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| StoreError::Unavailable("Sentinel is followed from within the bot's runtime".into()))?;
    runtime.spawn(async move {
        let mut told = None::<String>;
        loop {
            let Some(shared) = shared.upgrade() else { return };
            match sentinel.async_get_client().await {
                Ok(client) => {
                    let addr = client.get_connection_info().addr().to_string();
                    let current = shared.read().unwrap_or_else(|e| e.into_inner()).addr.clone();
                    if addr != current {
                        match Links::to(client, &timeouts) {
                            Ok(links) => {
                                tracing::warn!(%master, primary = %addr, "Sentinel names a new Redis primary: following it");
                                *shared.write().unwrap_or_else(|e| e.into_inner()) = links;
                            }
                            Err(e) => tracing::warn!(%master, error = %e, "cannot connect to the primary Sentinel names"),
                        }
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
            tokio::time::sleep(SENTINEL_CHECK).await;
        }
    });
    Ok(primary)
}

#[cfg(test)]
mod tests {
    use super::*;

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
