//! The store: incidents, runs, their timelines, the open-incident index, the
//! outbox stream, timers and event de-duplication.
//!
//! Two backends behind one type: Redis (`REDIS_URL` set; shared by replicas,
//! survives restarts) and an embedded in-memory store (nothing persists, one
//! replica only) for trying opsbot on a laptop. They keep the same data model
//! (a state hash per incident or run, sorted indexes, a consumer-group
//! stream) and decode it with the same functions below, and
//! `tests/store_contract.rs` runs one suite against both, so neither drifts.
//!
//! `Store` is an enum rather than a trait object: two backends, known at
//! compile time, and async methods without boxed futures.

mod memory;
mod redis;

use opsbot_handlers::delivery::State;
use opsbot_handlers::run::{Run, RunId};
use opsbot_handlers::subject::{Posted, ANCHOR_KEY};
use opsbot_handlers::{Effect, Incident, IncidentId, Message, MessageRef, Subject, TimelineEntry, Timer};
use std::collections::HashMap;
use std::time::Duration;

/// How long a blocking outbox read waits for new entries.
pub const OUTBOX_BLOCK: Duration = Duration::from_millis(1000);

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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An incident with the version it was loaded at, for the commit's guard.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Whether a guarded commit went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Someone else changed the incident since it was loaded.
    Conflict,
    /// The timer this decision consumed was already consumed elsewhere
    /// (another replica acted on it): nothing was written.
    TimerGone,
}

/// One decision, as the store commits it: all of it or none of it.
pub struct Commit<'a> {
    /// The incident's or run's new state and the version it was loaded at
    /// (0: new).
    pub subject: Option<Stored<'a>>,
    pub timeline: &'a [TimelineEntry],
    pub effects: &'a [Effect],
    /// Timers to set.
    pub timers: &'a [Timer],
    /// The due timer (as stored) this decision acts on; the commit fails
    /// with [`CommitOutcome::TimerGone`] if someone else already took it.
    pub consume: Option<&'a str>,
    /// A checklist's schedule slot this decision handles (checklist id, slot):
    /// refused as [`CommitOutcome::TimerGone`] unless the slot is later than
    /// any handled before, so no slot ever runs twice.
    pub slot: Option<(&'a str, chrono::DateTime<chrono::Utc>)>,
}

/// What a commit writes state for.
#[derive(Clone, Copy)]
pub enum Stored<'a> {
    Incident(&'a Incident, u64),
    Run(&'a Run, u64),
}

/// One outbox entry as read back from the stream.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: String,
    pub effect: Effect,
}

/// The store the bot runs on; clones share it.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Redis(redis::RedisStore),
    Memory(memory::MemoryStore),
}

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

impl Store {
    /// Connects lazily: the bot starts while Redis is down and `/readyz`
    /// says so until it is back.
    pub fn connect(url: &str, prefix: &str) -> StoreResult<Store> {
        Ok(Store { backend: Backend::Redis(redis::RedisStore::connect(url, prefix)?) })
    }

    /// A fresh, empty store in this process's memory: nothing persists, and
    /// only this process sees it (so only one replica may run).
    pub fn memory() -> Store {
        Store { backend: Backend::Memory(memory::MemoryStore::new()) }
    }

    /// Whether what is stored survives this process (Redis) or not (memory).
    pub fn is_persistent(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }

    /// Numbers are never reused; a declare that fails after this leaves a gap.
    pub async fn next_incident_id(&self) -> StoreResult<IncidentId> {
        dispatch!(self.next_incident_id())
    }

    pub async fn load_incident(&self, id: IncidentId) -> StoreResult<Option<Versioned<Incident>>> {
        dispatch!(self.load_incident(id))
    }

    pub async fn load_timeline(&self, id: IncidentId) -> StoreResult<Vec<TimelineEntry>> {
        dispatch!(self.load_timeline(id))
    }

    /// Open incidents, newest first.
    pub async fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        dispatch!(self.open_incidents())
    }

    /// Incidents declared since `since`, open or resolved, newest first.
    pub async fn incidents_declared_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<Incident>> {
        dispatch!(self.incidents_declared_since(since))
    }

    /// Commits a decision: the incident's new state, its timeline entries,
    /// its place in the open index, the outbox effects and timers, all or
    /// nothing, and only if the incident is still at the version it was
    /// loaded at and the consumed timer is still there.
    pub async fn commit(&self, change: &Commit<'_>) -> StoreResult<CommitOutcome> {
        dispatch!(self.commit(change))
    }

    /// Timers due at `now`, oldest first, as stored (the raw member is what
    /// a commit consumes). Reading does not take them: the commit does.
    pub async fn due_timers(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Timer)>> {
        dispatch!(self.due_timers(now, limit))
    }

    /// How many timers are set, for tests and metrics.
    pub async fn timer_count(&self) -> StoreResult<u64> {
        dispatch!(self.timer_count())
    }

    /// Effects that change no state (answers to mentions, notes to a user).
    pub async fn enqueue(&self, effects: &[Effect]) -> StoreResult<()> {
        dispatch!(self.enqueue(effects))
    }

    /// Slack retries events it thinks we missed; true only the first time an
    /// event id is seen within `ttl`.
    pub async fn first_sighting(&self, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self.first_sighting(event_id, ttl))
    }

    // --- Where messages landed, written by the outbox worker ---------------

    /// Records where a message landed (and, for an anchor, the channel as
    /// the runbook names it), so it is edited later and never posted twice.
    pub async fn record_posted(&self, message: &Message, at: &MessageRef, route: Option<&str>) -> StoreResult<()> {
        dispatch!(self.record_posted(message, at, route))
    }

    /// Remembers that the anchor could not be posted for good, so messages
    /// in its thread stop waiting and go to the dead letters too.
    pub async fn record_anchor_failed(&self, subject: Subject, error: &str) -> StoreResult<()> {
        dispatch!(self.record_anchor_failed(subject, error))
    }

    pub async fn anchor_failure(&self, subject: Subject) -> StoreResult<Option<String>> {
        dispatch!(self.anchor_failure(subject))
    }

    /// A subject as stored, with where its messages are.
    pub async fn load(&self, subject: Subject) -> StoreResult<Option<Versioned<State>>> {
        Ok(match subject {
            Subject::Incident(id) => {
                self.load_incident(id).await?.map(|v| Versioned { value: State::Incident(v.value), version: v.version })
            }
            Subject::Run(id) => {
                self.load_run(id).await?.map(|v| Versioned { value: State::Run(v.value), version: v.version })
            }
        })
    }

    // --- Checklist runs -----------------------------------------------------

    pub async fn next_run_id(&self) -> StoreResult<RunId> {
        dispatch!(self.next_run_id())
    }

    pub async fn load_run(&self, id: RunId) -> StoreResult<Option<Versioned<Run>>> {
        dispatch!(self.load_run(id))
    }

    /// A checklist's last `limit` runs, newest first.
    pub async fn runs_of(&self, checklist: &str, limit: usize) -> StoreResult<Vec<Run>> {
        dispatch!(self.runs_of(checklist, limit))
    }

    /// The latest schedule slot of a checklist that was handled (run or
    /// skipped), if any.
    pub async fn last_handled_slot(&self, checklist: &str) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        dispatch!(self.last_handled_slot(checklist))
    }

    /// Sets a timer unless it is already set (the same timer from several
    /// replicas stays one).
    pub async fn set_timer(&self, timer: &Timer) -> StoreResult<()> {
        dispatch!(self.set_timer(timer))
    }

    // --- Outbox ------------------------------------------------------------

    /// Creates the consumer group (and stream) unless it exists; needed at
    /// start and again after Redis lost its data.
    pub async fn outbox_prepare(&self) -> StoreResult<()> {
        dispatch!(self.outbox_prepare())
    }

    /// Reads entries for `consumer`: with `own_pending_after`, the ones it
    /// was given before and never finished (after a restart), after that
    /// id; else new ones, waiting up to [`OUTBOX_BLOCK`] for some to arrive.
    pub async fn outbox_read(
        &self,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        // Both backends wait here, so no `dispatch!`.
        match &self.backend {
            Backend::Redis(store) => store.outbox_read(consumer, count, own_pending_after).await,
            Backend::Memory(store) => store.outbox_read(consumer, count, own_pending_after).await,
        }
    }

    /// Takes over entries another consumer was given but has not finished
    /// for `min_idle`: that replica died.
    pub async fn outbox_claim_abandoned(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        dispatch!(self.outbox_claim_abandoned(consumer, min_idle, count))
    }

    /// Resets an entry's idle time while we keep retrying it, so another
    /// replica does not think we died and deliver it twice.
    pub async fn outbox_keep(&self, consumer: &str, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.outbox_keep(consumer, entry_id))
    }

    pub async fn outbox_done(&self, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.outbox_done(entry_id))
    }

    /// Moves an entry Slack refused for good to the dead letters, with why.
    pub async fn outbox_dead(
        &self,
        entry: &OutboxEntry,
        error: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        dispatch!(self.outbox_dead(entry, error, at))
    }

    pub async fn dead_letters(&self) -> StoreResult<Vec<serde_json::Value>> {
        dispatch!(self.dead_letters())
    }

    /// Entries not yet delivered (pending or unread), for tests and metrics.
    pub async fn outbox_len(&self) -> StoreResult<u64> {
        dispatch!(self.outbox_len())
    }
}

// --- Encoding shared by both backends --------------------------------------
//
// Both keep an incident or run as a hash of string fields (`state`, `v`,
// and the message locations the outbox worker writes), so both decode it
// with these functions and cannot disagree on what a load returns.

/// Dead letters kept, newest first; older ones are dropped.
const DEAD_LETTERS_KEPT: usize = 1000;

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("our own types serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}

/// The hash field that records where a checklist or step message landed.
fn message_field(part_key: &str) -> String {
    format!("msg:{part_key}")
}

/// A message location as a hash value: `<channel> <ts>`.
fn message_value(at: &MessageRef) -> String {
    format!("{} {}", at.channel, at.ts)
}

/// A message location read back from [`message_value`].
fn parse_message_value(value: &str) -> Option<MessageRef> {
    value.split_once(' ').map(|(channel, ts)| MessageRef { channel: channel.to_owned(), ts: ts.to_owned() })
}

/// Where a subject's messages are, from its hash fields: `msg:<key>` for
/// each message (the anchor is `msg:anchor`) and `route`. Hashes written by
/// earlier versions named the alert `alert_channel`/`alert_ts`/`alert_route`
/// and a run's header `header`; both are still read.
fn posted_from_fields(fields: &HashMap<String, String>) -> Posted {
    let mut posted = Posted::default();
    for (field, value) in fields {
        let key = match field.as_str() {
            "header" => ANCHOR_KEY,
            other => match other.strip_prefix("msg:") {
                Some(key) => key,
                None => continue,
            },
        };
        if let Some(at) = parse_message_value(value) {
            posted.messages.insert(key.to_owned(), at);
        }
    }
    if let (Some(channel), Some(ts)) = (fields.get("alert_channel"), fields.get("alert_ts")) {
        posted.messages.entry(ANCHOR_KEY.to_owned()).or_insert(MessageRef { channel: channel.clone(), ts: ts.clone() });
    }
    posted.route = fields.get("route").or_else(|| fields.get("alert_route")).cloned();
    posted
}

/// The hash fields that record a message's location.
fn posted_fields(message: &Message, at: &MessageRef, route: Option<&str>) -> Vec<(String, String)> {
    let mut fields = vec![(message_field(&message.key()), message_value(at))];
    if let Some(route) = route {
        fields.push(("route".to_owned(), route.to_owned()));
    }
    fields
}

/// Why the anchor could not be posted, if it could not.
const ANCHOR_ERROR: &str = "anchor_error";

/// The fields that may say so: today's, then the one earlier versions wrote.
const ANCHOR_ERROR_FIELDS: [&str; 2] = [ANCHOR_ERROR, "alert_error"];

fn anchor_error(fields: &HashMap<String, String>) -> Option<String> {
    ANCHOR_ERROR_FIELDS.iter().find_map(|f| fields.get(*f)).cloned()
}

/// The fields a listed incident is read from: its state and its alert.
const LISTED_FIELDS: &[&str] = &["state", "msg:anchor", "alert_channel", "alert_ts"];

/// The alert of a listed incident, from [`LISTED_FIELDS`].
fn listed_anchor(field: impl Fn(&str) -> Option<String>) -> Option<MessageRef> {
    field("msg:anchor")
        .as_deref()
        .and_then(parse_message_value)
        .or_else(|| field("alert_channel").zip(field("alert_ts")).map(|(channel, ts)| MessageRef { channel, ts }))
}

/// An incident from all its hash fields, with where its messages are.
fn incident_from_fields(key: &str, mut fields: HashMap<String, String>) -> StoreResult<Option<Versioned<Incident>>> {
    let Some(state) = fields.remove("state") else { return Ok(None) };
    let mut incident: Incident = from_json(key, &state)?;
    let version = fields.get("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    incident.posted = posted_from_fields(&fields);
    Ok(Some(Versioned { value: incident, version }))
}

/// An incident as listed (open, recent): state and alert only, the cheap
/// fetch lists use.
fn listed_incident(key: &str, state: &str, alert: Option<MessageRef>) -> StoreResult<Incident> {
    let mut incident: Incident = from_json(key, state)?;
    if let Some(alert) = alert {
        incident.posted.messages.insert(ANCHOR_KEY.to_owned(), alert);
    }
    Ok(incident)
}

/// A run from all its hash fields, with where its messages are.
fn run_from_fields(key: &str, mut fields: HashMap<String, String>) -> StoreResult<Option<Versioned<Run>>> {
    let Some(state) = fields.remove("state") else { return Ok(None) };
    let mut run: Run = from_json(key, &state)?;
    let version = fields.get("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    run.posted = posted_from_fields(&fields);
    Ok(Some(Versioned { value: run, version }))
}

/// An outbox entry's effect from its `effect` field; the error says why it
/// cannot be read (then the entry goes to the dead letters).
fn decode_effect(json: Option<String>) -> Result<Effect, String> {
    json.ok_or_else(|| "no effect field".to_owned())
        .and_then(|json| serde_json::from_str::<Effect>(&json).map_err(|e| e.to_string()))
}

/// The dead letter for an entry Slack refused for good.
fn dead_letter(entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({"entry": entry.id, "effect": entry.effect, "error": error, "at": at})
}

/// The dead letter for an entry no version of us can read.
fn unreadable_letter(entry_id: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({"entry": entry_id, "error": format!("unreadable: {reason}")})
}
