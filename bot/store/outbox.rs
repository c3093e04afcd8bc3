//! The outbox: what decisions owe Slack, in three streams that replicas
//! share through a consumer group each, and the dead letters Slack refused
//! for good.
//!
//! The first message of each incident, run or other subject of people's
//! (an incident's alert) has a stream of its own ([`OutboxStream::Anchors`]),
//! read ahead of the rest: under a storm of declares, a new incident's
//! alert reaches Slack while earlier incidents' playbooks wait. Alert
//! groups' effects have a stream of their own too: during an alert storm
//! they arrive far faster than the channels take posts, and in a stream of
//! their own they wait in the store, read only as fast as they are
//! delivered, while people's entries are never behind them. A commit
//! writes to every stream at once, so which stream an effect is in changes
//! nothing of its atomicity.

use super::subjects::{digested_fields, posted_fields};
use super::{Backend, StoreResult};
use opsbot_handlers::{Effect, Message, MessageRef, Subject};
use std::time::Duration;

/// How long a blocking outbox read waits for new entries.
pub const OUTBOX_BLOCK: Duration = Duration::from_millis(1000);

/// Dead letters kept, newest first; older ones are dropped.
pub(super) const DEAD_LETTERS_KEPT: usize = 1000;

/// Which of the three outbox streams an entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxStream {
    /// The first message of people's subjects, an incident's alert above
    /// all (`<prefix>:outbox:anchors`): read before [`OutboxStream::People`].
    Anchors,
    /// Incidents', runs' and people's own effects (`<prefix>:outbox`).
    People,
    /// Alert groups' effects: their messages, edits, thread notes
    /// (`<prefix>:outbox:alerts`).
    Alerts,
}

impl OutboxStream {
    pub const ALL: [OutboxStream; 3] = [OutboxStream::Anchors, OutboxStream::People, OutboxStream::Alerts];

    /// The stream an effect goes to: an alert group's effects to
    /// [`OutboxStream::Alerts`], the first post of any other subject to
    /// [`OutboxStream::Anchors`], everything else to [`OutboxStream::People`].
    pub fn of(effect: &Effect) -> OutboxStream {
        match effect {
            _ if matches!(effect.subject(), Some(Subject::Alert(_))) => OutboxStream::Alerts,
            Effect::Post(message) if message.is_anchor() => OutboxStream::Anchors,
            _ => OutboxStream::People,
        }
    }

    /// Where the stream sits in [`OutboxStream::ALL`], for per-stream arrays.
    pub fn index(self) -> usize {
        match self {
            OutboxStream::Anchors => 0,
            OutboxStream::People => 1,
            OutboxStream::Alerts => 2,
        }
    }

    /// Whether the stream holds people's work (anchors or the rest): read
    /// by one reader into lanes they share, anchors first.
    pub fn is_people(self) -> bool {
        matches!(self, OutboxStream::Anchors | OutboxStream::People)
    }

    /// For logs: `people` or `alerts`.
    pub fn name(self) -> &'static str {
        match self {
            OutboxStream::Anchors => "anchors",
            OutboxStream::People => "people",
            OutboxStream::Alerts => "alerts",
        }
    }
}

/// One outbox entry as read back from its stream. Ids are unique within a
/// stream only, so an entry is named by both.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub stream: OutboxStream,
    pub id: String,
    pub effect: Effect,
}

impl OutboxEntry {
    /// The entry's name for people (dead letters, `opsbot outbox`): its id,
    /// after its stream's name unless it is people's. One commit writes to
    /// several streams in the same millisecond, so ids alone repeat.
    pub fn name(&self) -> String {
        entry_name(self.stream, &self.id)
    }
}

/// See [`OutboxEntry::name`].
pub(super) fn entry_name(stream: OutboxStream, id: &str) -> String {
    match stream {
        OutboxStream::People => id.to_owned(),
        _ => format!("{}:{id}", stream.name()),
    }
}

/// Where a delivered message landed, recorded beside its subject when its
/// entry is settled (see [`OutboxStore::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Landed {
    /// Posted at `at`; `route` is the channel the anchor went to, as the
    /// runbook names it (anchors only).
    Posted { message: Message, at: MessageRef, route: Option<String> },
    /// Rolled into a storm digest, the digest's message standing in for it.
    Digested { message: Message, digest: MessageRef, route: String },
}

impl Landed {
    pub fn subject(&self) -> Subject {
        match self {
            Landed::Posted { message, .. } | Landed::Digested { message, .. } => message.subject(),
        }
    }

    /// Notes it in the subject's `posted`, as reading the fields back would.
    pub fn apply(&self, posted: &mut opsbot_handlers::subject::Posted) {
        match self {
            Landed::Posted { message, at, route } => {
                posted.messages.insert(message.key(), at.clone());
                if let Some(route) = route {
                    posted.route = Some(route.clone());
                }
            }
            Landed::Digested { message, digest, route } => {
                posted.messages.insert(message.key(), digest.clone());
                posted.route = Some(route.clone());
                posted.digested = true;
            }
        }
    }

    /// The subject hash's fields that record it, as `record_posted` and
    /// `record_digested` write them.
    pub(super) fn fields(&self) -> Vec<(String, String)> {
        match self {
            Landed::Posted { message, at, route } => posted_fields(message, at, route.as_deref()),
            Landed::Digested { message, digest, route } => digested_fields(message, digest, route),
        }
    }
}

/// The delivery streams; see the module's comment.
#[derive(Clone)]
pub struct OutboxStore {
    pub(super) backend: Backend,
}

impl OutboxStore {
    /// Effects that change no state (answers to mentions, notes to a user),
    /// each to its stream.
    pub async fn enqueue(&self, effects: &[Effect]) -> StoreResult<()> {
        dispatch!(self.enqueue(effects))
    }

    /// Creates every stream's consumer group (and the streams) unless they
    /// exist; needed at start and again after Redis lost its data.
    pub async fn prepare(&self) -> StoreResult<()> {
        dispatch!(self.outbox_prepare())
    }

    /// Reads entries of `stream` for `consumer`: with `own_pending_after`,
    /// the ones it was given before and never finished (after a restart),
    /// after that id; else new ones, waiting up to [`OUTBOX_BLOCK`] for some
    /// to arrive. Each stream's reads wait on a connection of their own, so
    /// neither reader waits behind the other.
    pub async fn read(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        // Both backends wait here, so no `dispatch!`.
        match &self.backend {
            Backend::Redis(store) => store.outbox_read(stream, consumer, count, own_pending_after).await,
            Backend::Memory(store) => store.outbox_read(stream, consumer, count, own_pending_after).await,
        }
    }

    /// Takes over entries of `stream` another consumer was given but has
    /// not finished for `min_idle`: that replica died.
    pub async fn claim_abandoned(
        &self,
        stream: OutboxStream,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        dispatch!(self.outbox_claim_abandoned(stream, consumer, min_idle, count))
    }

    /// Takes over entries of `stream` held by replicas whose heartbeat has
    /// lapsed or who left (see [`super::ReplicaStore`]), however recently
    /// they touched them; in stream order. A replica that never beat is
    /// left to [`Self::claim_abandoned`].
    pub async fn claim_departed(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        dispatch!(self.outbox_claim_departed(stream, consumer, count))
    }

    /// Resets an entry's idle time while we keep retrying it, so another
    /// replica does not think we died and deliver it twice.
    /// `false`: another replica holds it now (it took it over while ours
    /// seemed dead), or it is no longer pending; it is not taken back.
    pub async fn keep(&self, stream: OutboxStream, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        dispatch!(self.outbox_keep(stream, consumer, entry_id))
    }

    /// The entry is delivered (or dropped): it leaves its stream.
    pub async fn done(&self, stream: OutboxStream, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.outbox_done(stream, entry_id))
    }

    /// Records where messages landed (only on subjects that exist, as
    /// `record_posted` does) and takes delivered entries out of their
    /// streams, all in one step: the outbox worker settles what many lanes
    /// delivered in one round trip, and an entry never leaves its stream
    /// without its messages' places.
    pub async fn settle(&self, landed: &[Landed], done: &[(OutboxStream, String)]) -> StoreResult<()> {
        if landed.is_empty() && done.is_empty() {
            return Ok(());
        }
        dispatch!(self.outbox_settle(landed, done))
    }

    /// Moves an entry Slack refused for good to the dead letters, with why.
    pub async fn dead(&self, entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
        dispatch!(self.outbox_dead(entry, error, at))
    }

    pub async fn dead_letters(&self) -> StoreResult<Vec<serde_json::Value>> {
        dispatch!(self.dead_letters())
    }

    /// Takes entry `entry`'s dead letter out of the list, for an operator
    /// to retry (enqueue its effect again) or drop; `None`: no such letter.
    pub async fn take_dead_letter(&self, entry: &str) -> StoreResult<Option<serde_json::Value>> {
        dispatch!(self.take_dead_letter(entry))
    }

    /// Puts a dead letter (back) in the list, as the newest.
    pub async fn bury(&self, letter: serde_json::Value) -> StoreResult<()> {
        dispatch!(self.put_dead_letter(letter))
    }

    /// Puts a dead letter's effect back in the outbox; `Err` with why when
    /// the letter holds none that this version can read.
    pub async fn retry_dead_letter(&self, letter: &serde_json::Value) -> StoreResult<Result<(), String>> {
        let effect = match serde_json::from_value::<Effect>(letter["effect"].clone()) {
            Ok(effect) => effect,
            Err(e) => return Ok(Err(format!("its effect cannot be read ({e}); drop it instead"))),
        };
        self.enqueue(&[effect]).await.map(Ok)
    }

    /// Takes one of `channel`'s posting slots, shared by every replica:
    /// `None` when taken, else how long until one frees up. A channel
    /// takes a post every `every`, and up to `burst` at once after a pause.
    pub async fn take_post_slot(&self, channel: &str, every: Duration, burst: u32) -> StoreResult<Option<Duration>> {
        dispatch!(self.take_post_slot(channel, every, burst))
    }

    /// Entries not yet delivered (pending or unread) in all streams, for
    /// tests and metrics.
    pub async fn len(&self) -> StoreResult<u64> {
        let mut total = 0;
        for stream in OutboxStream::ALL {
            total += self.len_of(stream).await?;
        }
        Ok(total)
    }

    /// Entries not yet delivered in one stream.
    pub async fn len_of(&self, stream: OutboxStream) -> StoreResult<u64> {
        dispatch!(self.outbox_len(stream))
    }
}

/// An outbox entry's effect from its `effect` field; the error says why it
/// cannot be read (then the entry goes to the dead letters).
pub(super) fn decode_effect(json: Option<String>) -> Result<Effect, String> {
    json.ok_or_else(|| "no effect field".to_owned())
        .and_then(|json| serde_json::from_str::<Effect>(&json).map_err(|e| e.to_string()))
}

/// The dead letter for an entry Slack refused for good.
pub(super) fn dead_letter(entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({"entry": entry.name(), "effect": entry.effect, "error": error, "at": at})
}

/// The dead letter for an entry no version of us can read.
pub(super) fn unreadable_letter(stream: OutboxStream, entry_id: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({"entry": entry_name(stream, entry_id), "error": format!("unreadable: {reason}")})
}
