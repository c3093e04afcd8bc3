//! An in-process fake of Slack's Web API for opsbot's end-to-end tests, load
//! benchmark and browser sandbox.
//!
//! It serves `/{method}` the way `https://slack.com/api/{method}` does for the
//! methods opsbot uses (chat.postMessage with its `metadata`, chat.update,
//! chat.postEphemeral, views.open, views.publish, auth.test, users.*,
//! conversations.list, .info, .open, .history and .replies,
//! usergroups.users.list and .update,
//! apps.connections.open), enforces Block Kit limits, serves Socket Mode
//! connections (envelopes out, acknowledgements in, `disconnect`s, dropped
//! sockets), and records everything so tests can assert on it:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let slack = opsbot_fake_slack::FakeSlack::new();
//! let server = slack.spawn().await?; // point SLACK_API_URL at server.api_url
//! // ... drive the bot ...
//! let posted = slack
//!     .wait_for(std::time::Duration::from_secs(5), |s| {
//!         s.messages("#devops").into_iter().next()
//!     })
//!     .await;
//! # drop(server); Ok(()) }
//! ```

mod api;
pub mod blockkit;
mod responses;
mod socket_mode;
mod state;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, Notify};

pub use socket_mode::{Ack, EnvelopeKind, DEFAULT_APP_TOKEN, MAX_CONNECTIONS};
pub use state::{Change, Ephemeral, Failure, Message, OpenedView, WorkspaceChannel, WorkspaceUser};
use state::{Recorded, Workspace};

/// The token [`FakeSlack::new`] accepts.
pub const DEFAULT_TOKEN: &str = "xoxb-test-token";

/// A fake Slack workspace. Cheap to clone; clones share state, so a test can
/// keep one handle while the server holds another.
#[derive(Clone, Debug)]
pub struct FakeSlack {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    workspace: Workspace,
    recorded: Mutex<Recorded>,
    unavailable: AtomicBool,
    /// Signalled on every recorded change so `wait_for` need not poll.
    changed: Notify,
    /// What changed, for subscribers such as the sandbox's live page.
    changes: broadcast::Sender<Change>,
    /// Socket Mode: the connections, envelopes and acknowledgements.
    sockets: Mutex<socket_mode::Sockets>,
    /// Where Socket Mode connections are accepted, once one was asked for.
    link_server: tokio::sync::OnceCell<SocketAddr>,
}

/// How many changes a slow subscriber may fall behind before it is told it
/// lagged (and should look at everything again).
const CHANGE_BUFFER: usize = 256;

impl Inner {
    /// A test that panicked while holding the lock must not take every later
    /// assertion down with it, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_unavailable(&self) -> bool {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Tells waiters and subscribers; call it after the lock is released.
    fn emit(&self, change: Change) {
        // No subscriber is the usual case in tests, not an error.
        let _ = self.changes.send(change);
        self.changed.notify_waiters();
    }

    fn record_ephemeral(&self, channel: &str, user: &str, text: String, blocks: serde_json::Value) -> String {
        let ts = {
            let mut rec = self.lock();
            let ts = rec.next_ts();
            rec.ephemerals.push(Ephemeral {
                channel: channel.to_owned(),
                user: user.to_owned(),
                text,
                blocks,
                ts: ts.clone(),
            });
            ts
        };
        self.emit(Change::Ephemeral { channel: channel.to_owned(), user: user.to_owned(), ts: ts.clone() });
        ts
    }
}

impl Default for FakeSlack {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeSlack {
    /// The default workspace (team `T0OPSBOT`, bot `U0OPSBOT`, channels
    /// `#devops-alerts`, `#devops`, `#general`, users alice/bob/carol/dave),
    /// accepting the bot token `xoxb-test-token` and the app-level token
    /// [`DEFAULT_APP_TOKEN`].
    pub fn new() -> Self {
        Self::with_token(DEFAULT_TOKEN)
    }

    /// The default workspace, accepting `token` as the bot token.
    pub fn with_token(token: &str) -> Self {
        FakeSlack {
            inner: Arc::new(Inner {
                workspace: Workspace::new(token),
                recorded: Mutex::new(Recorded::default()),
                unavailable: AtomicBool::new(false),
                changed: Notify::new(),
                changes: broadcast::channel(CHANGE_BUFFER).0,
                sockets: Mutex::default(),
                link_server: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Routes `/{method}`; nest it where the API should live, e.g. `/api`.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves the API on `127.0.0.1` at an ephemeral port under `/api` until
    /// the returned handle is dropped.
    pub async fn spawn(&self) -> std::io::Result<SpawnedFake> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().nest("/api", self.router()).nest("/responses", self.responses_router());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                // A dropped sender means the same as an explicit stop.
                let _ = rx.await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        Ok(SpawnedFake {
            addr,
            api_url: format!("http://{addr}/api"),
            responses_url: format!("http://{addr}/responses"),
            shutdown: Some(tx),
        })
    }

    /// The `response_url`s [`FakeSlack::response_url`] mints, to be served
    /// at the `base` given there (`/responses` of [`FakeSlack::spawn`]).
    pub fn responses_router(&self) -> axum::Router {
        responses::router(self.clone())
    }

    /// A `response_url` for a slash command or click by `user` in
    /// `channel`, as Slack puts in the payload: what the app posts there is
    /// recorded as an ephemeral message to that user ([`FakeSlack::ephemerals`]).
    /// `None` for an unknown channel or user.
    pub fn response_url(&self, base: &str, channel: &str, user: &str) -> Option<String> {
        let channel = self.inner.workspace.resolve_channel(channel)?.id.clone();
        let user = self.inner.workspace.user(user)?.id.clone();
        let mut rec = self.inner.lock();
        let key = format!("T0OPSBOT-{}", rec.responses.len() + 1);
        rec.responses.insert(key.clone(), responses::Target { channel, user, uses: 0 });
        Some(format!("{}/{key}", base.trim_end_matches('/')))
    }

    /// Messages in a channel (id, `#name` or `name`), top-level posts and
    /// thread replies together, in the order they were posted.
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        let Some(id) = self.channel_id(channel) else {
            return Vec::new();
        };
        let rec = self.inner.lock();
        rec.messages.iter().filter(|m| m.channel == id).cloned().collect()
    }

    /// Replies in the thread under `thread_ts`, without the parent.
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Message> {
        let Some(id) = self.channel_id(channel) else {
            return Vec::new();
        };
        let rec = self.inner.lock();
        rec.messages.iter().filter(|m| m.channel == id && m.thread_ts.as_deref() == Some(thread_ts)).cloned().collect()
    }

    /// Every stored message across channels, in post order.
    pub fn all_messages(&self) -> Vec<Message> {
        self.inner.lock().messages.clone()
    }

    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.inner.lock().ephemerals.clone()
    }

    pub fn views(&self) -> Vec<OpenedView> {
        self.inner.lock().views.clone()
    }

    /// `user`'s App Home as opsbot last published it.
    pub fn home(&self, user: &str) -> Option<serde_json::Value> {
        self.inner.lock().homes.get(user).cloned()
    }

    /// Requests received for `method`, including failed and rejected ones.
    pub fn calls(&self, method: &str) -> usize {
        self.inner.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Makes `group` (an `S…` id) a user group with these members, as
    /// `usergroups.users.list` answers; `enabled: false` disables it.
    pub fn set_usergroup(&self, group: &str, members: &[&str], enabled: bool) {
        let members = members.iter().map(|m| (*m).to_owned()).collect();
        self.inner.lock().usergroups.insert(group.to_owned(), state::UserGroup { members, enabled });
    }

    /// A user group's members as they are now (after any
    /// `usergroups.users.update`); `None` for a group that does not exist.
    pub fn usergroup(&self, group: &str) -> Option<Vec<String>> {
        self.inner.lock().usergroups.get(group).map(|g| g.members.clone())
    }

    /// Takes a scope from the bot token: methods that need it answer
    /// `missing_scope`, as Slack does after an admin narrowed the app.
    pub fn revoke_scope(&self, scope: &str) {
        self.inner.lock().revoked_scopes.insert(scope.to_owned());
    }

    /// Queues a failure for the next call of `method`. Queued failures are
    /// consumed first-in first-out, one per call, before auth or validation.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.inner.lock().failures.entry(method.to_owned()).or_default().push_back(failure);
    }

    /// While set, every method answers HTTP 503 (calls are still counted,
    /// queued failures are left for later).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.unavailable.store(unavailable, Ordering::Relaxed);
        self.inner.changed.notify_waiters();
    }

    /// Channel id for `#name`, `name` or an id of a known channel.
    pub fn channel_id(&self, name: &str) -> Option<String> {
        self.inner.workspace.resolve_channel(name).map(|c| c.id.clone())
    }

    /// Forgets messages, ephemerals, views, used trigger ids, call counters and
    /// queued failures, and ends an outage; the workspace stays as it is.
    pub fn reset(&self) {
        self.inner.lock().clear();
        self.inner.unavailable.store(false, Ordering::Relaxed);
        self.inner.emit(Change::Reset);
    }

    /// Every change recorded from now on: posts, edits, ephemerals, opened
    /// views. A receiver that falls more than a few hundred changes behind
    /// gets `RecvError::Lagged` and should look at the whole state again.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Records an ephemeral message only `user` sees, as Slack shows the
    /// answer to a slash command. Returns its ts, or `None` for an unknown
    /// channel or user.
    pub fn add_ephemeral(&self, channel: &str, user: &str, text: &str, blocks: serde_json::Value) -> Option<String> {
        let channel = self.inner.workspace.resolve_channel(channel)?.id.clone();
        let user = self.inner.workspace.user(user)?.id.clone();
        let blocks = match blocks {
            serde_json::Value::Array(a) if !a.is_empty() => serde_json::Value::Array(a),
            _ => serde_json::Value::Null,
        };
        Some(self.inner.record_ephemeral(&channel, &user, text.to_owned(), blocks))
    }

    /// The workspace's members, the bot first.
    pub fn users(&self) -> Vec<WorkspaceUser> {
        let ws = &self.inner.workspace;
        ws.users
            .iter()
            .map(|u| WorkspaceUser {
                id: u.id.clone(),
                name: u.name.clone(),
                real_name: u.real_name.clone(),
                is_bot: u.is_bot,
            })
            .collect()
    }

    /// The public channels (not the bot's direct messages).
    pub fn channels(&self) -> Vec<WorkspaceChannel> {
        let ws = &self.inner.workspace;
        ws.channels
            .iter()
            .filter(|c| c.im_user.is_none())
            .map(|c| WorkspaceChannel { id: c.id.clone(), name: c.name.clone(), topic: c.topic.clone() })
            .collect()
    }

    /// Stores a message from a human (or another app), e.g. to start a thread
    /// the bot replies in or to check that the bot cannot edit it. Returns its
    /// ts, or `None` for an unknown channel or a `thread_ts` that is not a
    /// top-level message there.
    pub fn post_as_user(&self, channel: &str, user: &str, text: &str, thread_ts: Option<&str>) -> Option<String> {
        let channel = self.inner.workspace.resolve_channel(channel)?;
        let ts = {
            let mut rec = self.inner.lock();
            if let Some(parent) = thread_ts {
                if !rec.is_thread_parent(&channel.id, parent) {
                    return None;
                }
            }
            let ts = rec.next_ts();
            rec.push_message(Message {
                channel: channel.id.clone(),
                ts: ts.clone(),
                thread_ts: thread_ts.map(str::to_owned),
                text: text.to_owned(),
                blocks: serde_json::Value::Null,
                edits: 0,
                user: user.to_owned(),
                metadata: serde_json::Value::Null,
            });
            ts
        };
        self.inner.emit(Change::Posted {
            channel: channel.id.clone(),
            ts: ts.clone(),
            thread_ts: thread_ts.map(str::to_owned),
        });
        Some(ts)
    }

    /// Re-evaluates `f` after every change to the fake until it returns `Some`
    /// or `timeout` elapses (then `f` gets one last look).
    pub async fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&FakeSlack) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Registering before looking means a change made between the look
            // and the await still wakes us.
            notified.as_mut().enable();
            if let Some(found) = f(self) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(self);
            }
        }
    }
}

/// A running fake server; dropping it stops the server.
#[derive(Debug)]
pub struct SpawnedFake {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/api`, the value for `SLACK_API_URL`.
    pub api_url: String,
    /// Where [`FakeSlack::responses_router`] is served: the base for
    /// [`FakeSlack::response_url`].
    pub responses_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for SpawnedFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
