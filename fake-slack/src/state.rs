//! The fake workspace (team, channels, users) and everything the fake has
//! recorded: messages, ephemerals, opened views, call counters and queued
//! failures. Pure data plus the rules for minting Slack-looking ids; the HTTP
//! layer lives in `api.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

pub(crate) const TEAM_ID: &str = "T0OPSBOT";
pub(crate) const TEAM_NAME: &str = "Opsbot Sandbox";
pub(crate) const TEAM_DOMAIN: &str = "opsbot-sandbox";
pub(crate) const BOT_USER_ID: &str = "U0OPSBOT";
pub(crate) const BOT_USER_NAME: &str = "opsbot";
pub(crate) const BOT_ID: &str = "B0OPSBOT";
pub(crate) const APP_ID: &str = "A0OPSBOT";
/// Fixed creation time for the seeded channels and users, so responses are
/// reproducible between runs.
pub(crate) const CREATED: i64 = 1_700_000_000;
/// The scope `usergroups.users.list` needs.
pub(crate) const USERGROUPS_READ: &str = "usergroups:read";
/// The scope `usergroups.users.update` needs.
pub(crate) const USERGROUPS_WRITE: &str = "usergroups:write";
/// The scope `conversations.history` and `.replies` need in a public channel.
pub(crate) const CHANNELS_HISTORY: &str = "channels:history";
/// The scope they need in a direct message.
pub(crate) const IM_HISTORY: &str = "im:history";
/// The scope `conversations.open` needs for a direct message.
pub(crate) const IM_WRITE: &str = "im:write";
/// The bot token's scopes, as opsbot's manifest asks for them.
pub(crate) const SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "chat:write.public",
    "app_mentions:read",
    "users:read",
    "channels:read",
    USERGROUPS_READ,
    USERGROUPS_WRITE,
    CHANNELS_HISTORY,
    IM_HISTORY,
    IM_WRITE,
];

/// A Slack user group (`S…`) and its members.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserGroup {
    pub members: Vec<String>,
    pub enabled: bool,
}

/// A message as stored by the fake: top-level posts and thread replies alike.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// Channel id (never a name), e.g. `C0DEVOPS`.
    pub channel: String,
    pub ts: String,
    /// `None` for top-level messages, the parent's ts for thread replies.
    pub thread_ts: Option<String>,
    pub text: String,
    /// The Block Kit array as posted, or `Null` when the message has none.
    pub blocks: Value,
    /// How many successful `chat.update` calls touched this message.
    pub edits: u32,
    /// Author: the bot user id for everything posted through the API.
    pub user: String,
    /// The message's `metadata` (`event_type`, `event_payload`) as posted,
    /// or `Null`. Slack returns it only to `include_all_metadata`.
    pub metadata: Value,
}

/// A `chat.postEphemeral` message: only `user` would have seen it.
#[derive(Clone, Debug, Serialize)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub text: String,
    pub blocks: Value,
    /// The `message_ts` Slack answered with: orders it among the messages.
    pub ts: String,
}

/// Something the fake recorded, as [`crate::FakeSlack::subscribe`] reports
/// it: enough to know what to look at again, not a copy of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new message, top-level or in a thread.
    Posted { channel: String, ts: String, thread_ts: Option<String> },
    /// `chat.update` changed a message.
    Updated { channel: String, ts: String },
    /// An ephemeral message for `user` only.
    Ephemeral { channel: String, user: String, ts: String },
    /// `views.open` opened a modal.
    ViewOpened { id: String, trigger_id: String },
    /// `views.publish` set a user's App Home.
    HomePublished { user: String },
    /// [`crate::FakeSlack::reset`] forgot everything.
    Reset,
}

/// A member of the fake workspace, as the sandbox lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkspaceUser {
    pub id: String,
    /// The handle, e.g. `alice`.
    pub name: String,
    pub real_name: String,
    pub is_bot: bool,
}

/// A public channel of the fake workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkspaceChannel {
    pub id: String,
    /// Without `#`, e.g. `devops-alerts`.
    pub name: String,
    pub topic: String,
}

/// A modal opened through `views.open`.
#[derive(Clone, Debug, Serialize)]
pub struct OpenedView {
    pub trigger_id: String,
    /// The view as Slack echoed it back (the posted view plus `id`, `hash`, ...).
    pub view: Value,
    pub id: String,
}

/// A scripted failure for the next call of one method (see
/// [`crate::FakeSlack::fail_next`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// The call takes effect, but its answer never comes: as when the
    /// caller dies (or its connection does) after Slack did the work.
    NoAnswer,
    /// A bare HTTP error status, as a load balancer in front of Slack would send.
    HttpStatus(u16),
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    Error(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub id: String,
    pub name: String,
    pub is_general: bool,
    /// Set for direct-message channels: the other member.
    pub im_user: Option<String>,
    pub topic: String,
    pub purpose: String,
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub tz: Option<(&'static str, &'static str, i32)>,
    pub is_bot: bool,
}

/// The part of the fake that never changes after construction.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub token: String,
    /// The app-level token `apps.connections.open` takes.
    pub app_token: String,
    pub channels: Vec<Channel>,
    pub users: Vec<User>,
}

impl Workspace {
    pub fn new(token: &str) -> Self {
        let users = vec![
            user("U0OPSBOT", BOT_USER_NAME, "Opsbot", None, true),
            user("U0ALICE", "alice", "Alice Adler", Some(("Europe/Berlin", "Central European Time", 3600)), false),
            user("U0BOB", "bob", "Bob Baker", Some(("America/New_York", "Eastern Standard Time", -18000)), false),
            user("U0CAROL", "carol", "Carol Chen", Some(("Asia/Tokyo", "Japan Standard Time", 32400)), false),
            // Slack omits `tz` for some accounts; dave keeps that path exercised.
            user("U0DAVE", "dave", "Dave Dunn", None, false),
        ];
        let mut channels = vec![
            channel("C0ALERTS", "devops-alerts", false, "Automated alerts", "Where monitoring pages land"),
            channel("C0DEVOPS", "devops", false, "CI/CD and on-call", "DevOps chatter"),
            channel("C0GENERAL", "general", true, "Company-wide", "Announcements and work-based matters"),
        ];
        // Posting to a user id lands in the bot's DM with that user, as on Slack.
        for u in users.iter().filter(|u| !u.is_bot) {
            channels.push(Channel {
                id: format!("D{}", &u.id[1..]),
                name: u.id.clone(),
                is_general: false,
                im_user: Some(u.id.clone()),
                topic: String::new(),
                purpose: String::new(),
            });
        }
        Workspace { token: token.to_owned(), app_token: crate::DEFAULT_APP_TOKEN.to_owned(), channels, users }
    }

    /// Resolves what `chat.postMessage` accepts: an id, `#name`, `name`, or a
    /// user id (meaning the DM with that user).
    pub fn resolve_channel(&self, key: &str) -> Option<&Channel> {
        if let Some(name) = key.strip_prefix('#') {
            return self.channels.iter().find(|c| c.im_user.is_none() && c.name == name);
        }
        self.channels
            .iter()
            .find(|c| c.id == key)
            .or_else(|| self.channels.iter().find(|c| c.im_user.is_none() && c.name == key))
            .or_else(|| self.channels.iter().find(|c| c.im_user.as_deref() == Some(key)))
    }

    /// Methods such as `chat.update` and `conversations.info` only take ids.
    pub fn channel_by_id(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

fn user(id: &str, name: &str, real_name: &str, tz: Option<(&'static str, &'static str, i32)>, is_bot: bool) -> User {
    User { id: id.to_owned(), name: name.to_owned(), real_name: real_name.to_owned(), tz, is_bot }
}

fn channel(id: &str, name: &str, is_general: bool, topic: &str, purpose: &str) -> Channel {
    Channel {
        id: id.to_owned(),
        name: name.to_owned(),
        is_general,
        im_user: None,
        topic: topic.to_owned(),
        purpose: purpose.to_owned(),
    }
}

/// Everything that changes while the fake runs. Guarded by one std mutex that
/// is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub messages: Vec<Message>,
    /// ts -> index in `messages`; ts values are unique across channels.
    pub by_ts: HashMap<String, usize>,
    pub ephemerals: Vec<Ephemeral>,
    pub views: Vec<OpenedView>,
    /// Each user's App Home as last published.
    pub homes: HashMap<String, Value>,
    pub used_triggers: HashSet<String>,
    /// Minted `response_url`s by id.
    pub responses: HashMap<String, crate::responses::Target>,
    pub calls: HashMap<String, usize>,
    pub failures: HashMap<String, VecDeque<Failure>>,
    /// User groups by id.
    pub usergroups: HashMap<String, UserGroup>,
    /// Scopes taken from the bot token since it was set up.
    pub revoked_scopes: HashSet<String>,
    /// Survives `reset` so a ts is never handed out twice by one fake.
    last_ts_micros: u64,
    next_view: u64,
}

impl Recorded {
    pub fn clear(&mut self) {
        self.messages.clear();
        self.by_ts.clear();
        self.ephemerals.clear();
        self.views.clear();
        self.used_triggers.clear();
        self.responses.clear();
        self.calls.clear();
        self.failures.clear();
        self.usergroups.clear();
        self.revoked_scopes.clear();
    }

    pub fn count_call(&mut self, method: &str) {
        match self.calls.get_mut(method) {
            Some(n) => *n += 1,
            None => {
                self.calls.insert(method.to_owned(), 1);
            }
        }
    }

    pub fn take_failure(&mut self, method: &str) -> Option<Failure> {
        self.failures.get_mut(method)?.pop_front()
    }

    /// Slack ts: wall-clock seconds and microseconds, but strictly increasing so
    /// that two posts in the same microsecond still get distinct, ordered ts.
    pub fn next_ts(&mut self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let micros = now.max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    pub fn next_view_id(&mut self) -> String {
        self.next_view += 1;
        format!("V0FAKE{:04X}", self.next_view)
    }

    pub fn push_message(&mut self, message: Message) {
        self.by_ts.insert(message.ts.clone(), self.messages.len());
        self.messages.push(message);
    }

    pub fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Message> {
        let idx = *self.by_ts.get(ts)?;
        let message = &mut self.messages[idx];
        (message.channel == channel).then_some(message)
    }

    pub fn is_thread_parent(&self, channel: &str, ts: &str) -> bool {
        self.by_ts.get(ts).is_some_and(|&i| {
            let m = &self.messages[i];
            m.channel == channel && m.thread_ts.is_none()
        })
    }
}
