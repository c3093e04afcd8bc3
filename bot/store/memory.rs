//! The embedded backend: the Redis data model in this process's memory, for
//! running opsbot without Redis. Nothing persists and no other process sees
//! it, so only one replica may run on it.
//!
//! It mirrors the Redis backend command for command rather than keeping
//! typed values: a state hash of string fields per incident or run, sorted
//! sets ordered like Redis's (score, then member bytes), and streams with
//! one consumer group each. Loads then decode with the same functions as
//! Redis (`super::incident_from_fields` …), so both answer alike, JSON
//! round trip included. All state sits behind one `std::sync::Mutex`, never held across
//! an `.await`: each method is one critical section, which is what makes a
//! commit all-or-nothing, as the Lua script is in Redis.

use super::inbox::{decode_hook, hook_fields, Accepted, HookSource, InboxEntry, INBOX_BLOCK};
use super::outbox::{
    dead_letter, decode_effect, unreadable_letter, Landed, OutboxEntry, OutboxStream, DEAD_LETTERS_KEPT, OUTBOX_BLOCK,
};
use super::subjects::{
    alert_from_fields, anchor_error, deployment_from_fields, digested_fields, handoff_from_fields,
    incident_from_fields, listed_anchor, listed_incident, override_from_fields, posted_fields, rerun_from_fields,
    run_from_fields, sample_trim, swap_from_fields, Commit, CommitOutcome, Stored, ANCHOR_ERROR,
};
use super::{from_json, to_json, EnvelopeClaim, StoreError, StoreResult, Versioned};
use opsbot_handlers::alert::{AlertGroup, RunSample};
use opsbot_handlers::deploy::Deployment;
use opsbot_handlers::oncall::handoff::Handoff;
use opsbot_handlers::oncall::overrides::Override;
use opsbot_handlers::oncall::swap::Swap;
use opsbot_handlers::pipeline::rerun::RerunRequest;
use opsbot_handlers::run::{Run, RunId};
use opsbot_handlers::subject::{AlertId, DeployId, HandoffId, OverrideId, SwapId};
use opsbot_handlers::{Effect, Incident, IncidentId, Message, MessageRef, TimelineEntry, Timer};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// The streams' names in errors, as the Redis keys would name them.
const INBOX: &str = "memory:hooks";

/// An outbox stream's name in errors, as its Redis key would name it.
fn outbox_name(stream: OutboxStream) -> &'static str {
    match stream {
        OutboxStream::Anchors => "memory:outbox:anchors",
        OutboxStream::People => "memory:outbox",
        OutboxStream::Alerts => "memory:outbox:alerts",
    }
}

#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken on every append to an outbox stream (anchors', people's, alerts'), so
    /// its waiting reader gets new entries at once, as a blocked XREADGROUP
    /// does.
    outbox_appended: [Notify; 3],
    /// The same for the inbox.
    inbox_appended: Notify,
}

/// A state hash: an incident's or run's fields, as Redis keeps them.
type Hash = HashMap<String, String>;

/// What a hash or timeline belongs to (the Redis key, typed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Subject {
    Incident(u64),
    Run(u64),
    Alert(u64),
    Deployment(u64),
    Handoff(u64),
    Override(u64),
    /// A person's re-run, by GitHub's run id.
    Rerun(u64),
    Swap(u64),
}

impl Subject {
    fn number(&self) -> u64 {
        match *self {
            Subject::Incident(n)
            | Subject::Run(n)
            | Subject::Alert(n)
            | Subject::Deployment(n)
            | Subject::Handoff(n)
            | Subject::Override(n)
            | Subject::Swap(n)
            | Subject::Rerun(n) => n,
        }
    }

    fn of(subject: opsbot_handlers::Subject) -> Subject {
        match subject {
            opsbot_handlers::Subject::Incident(id) => Subject::Incident(id.0),
            opsbot_handlers::Subject::Run(id) => Subject::Run(id.0),
            opsbot_handlers::Subject::Alert(id) => Subject::Alert(id.0),
            opsbot_handlers::Subject::Deployment(id) => Subject::Deployment(id.0),
            opsbot_handlers::Subject::Handoff(id) => Subject::Handoff(id.0),
            opsbot_handlers::Subject::Override(id) => Subject::Override(id.0),
            opsbot_handlers::Subject::Swap(id) => Subject::Swap(id.0),
        }
    }
}

impl fmt::Display for Subject {
    /// Names the subject as the Redis key would, for corruption errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Incident(id) => write!(f, "memory:incident:{id}"),
            Subject::Run(id) => write!(f, "memory:run:{id}"),
            Subject::Alert(id) => write!(f, "memory:alert:{id}"),
            Subject::Deployment(id) => write!(f, "memory:deployment:{id}"),
            Subject::Handoff(id) => write!(f, "memory:handoff:{id}"),
            Subject::Override(id) => write!(f, "memory:override:{id}"),
            Subject::Rerun(id) => write!(f, "memory:rerun:{id}"),
            Subject::Swap(id) => write!(f, "memory:swap:{id}"),
        }
    }
}

/// The sorted sets (the Redis keys, typed).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Index {
    /// Open incidents, scored by number.
    OpenIncidents,
    /// Open runs, scored by number.
    OpenRuns,
    /// Every incident, scored by declaration time (ms).
    Declared,
    /// A checklist's runs, scored by start time (ms).
    ChecklistRuns(String),
    /// Timers (their JSON), scored by due time (ms).
    Timers,
    /// Firing alert groups, scored by number.
    OpenAlerts,
    /// Every alert group, scored by when it opened (ms).
    AlertsOpened,
    /// Deployments waiting for their run, scored by number.
    OpenDeployments,
    /// Every deployment, scored by when it was asked for (ms).
    DeploymentsRequested,
    /// Handoffs waiting for "I have it", scored by number.
    OpenHandoffs,
    /// Every handoff, scored by when it was posted (ms).
    HandoffsPosted,
    /// Overrides in force or to come, scored by number.
    OpenOverrides,
    /// Every override, scored by when it starts (ms).
    OverridesStarting,
    /// Re-runs waiting for GitHub's answer, scored by run id.
    OpenReruns,
    /// Every re-run, scored by when it was asked for (ms).
    RerunsAsked,
    /// Swap offers waiting for an answer, scored by number.
    OpenSwaps,
    /// Every swap offer, scored by when it was made (ms).
    SwapsOffered,
    /// Finished workflow runs (their JSON), scored by when they finished (ms).
    RunSamples,
}

#[derive(Default)]
struct State {
    incident_sequence: u64,
    run_sequence: u64,
    alert_sequence: u64,
    deployment_sequence: u64,
    handoff_sequence: u64,
    override_sequence: u64,
    swap_sequence: u64,
    /// Source key → the number of its current alert group.
    current_alerts: HashMap<String, u64>,
    hashes: HashMap<Subject, Hash>,
    /// Timeline entries as JSON, oldest first.
    timelines: HashMap<Subject, Vec<String>>,
    indexes: HashMap<Index, SortedSet>,
    /// A checklist's latest handled slot (ms).
    last_slots: HashMap<String, i64>,
    /// What the incidents declared on each day count for (`incidents:tally:<day>`).
    tallies: HashMap<chrono::NaiveDate, HashMap<String, i64>>,
    /// Each rotation's last plan, by role id.
    rotation_plans: HashMap<String, String>,
    /// A channel's theoretical arrival time for its next post (POST_SLOT_LUA).
    post_slots: HashMap<String, Instant>,
    /// Slack event ids seen.
    events: Sightings,
    /// Webhook delivery ids seen.
    hook_deliveries: Sightings,
    /// Socket Mode envelopes: `None` while one is being handled, then the
    /// answer its acknowledgement carried.
    envelopes: Expiring<Option<String>>,
    /// Effects' JSON: the outbox streams, as [`OutboxStream::index`] orders
    /// them (see [`State::outbox`]).
    outboxes: [Stream<String>; 3],
    /// Deliveries' fields, as [`hook_fields`] lists them.
    inbox: Stream<HookFields>,
    /// Newest first, at most [`DEAD_LETTERS_KEPT`].
    dead_letters: VecDeque<serde_json::Value>,
    /// Each replica's heartbeat: alive until then (BEAT_LUA).
    replicas: HashMap<String, Instant>,
}

/// A Redis sorted set: unique members, ordered by score then by member
/// bytes (ties matter: equal times list in the same order as Redis). Scores
/// are integers here (milliseconds and numbers), which Redis's doubles hold
/// exactly.
#[derive(Default)]
struct SortedSet {
    scores: HashMap<String, i64>,
    ordered: BTreeSet<(i64, String)>,
}

impl SortedSet {
    /// ZADD: adds the member or moves it to the new score.
    fn add(&mut self, score: i64, member: &str) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.ordered.remove(&(old, member.to_owned()));
        }
        self.ordered.insert((score, member.to_owned()));
    }

    /// ZADD NX: adds the member only if it is not there.
    fn add_new(&mut self, score: i64, member: &str) {
        if !self.scores.contains_key(member) {
            self.add(score, member);
        }
    }

    /// ZREM: whether it was there.
    fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => self.ordered.remove(&(score, member.to_owned())),
            None => false,
        }
    }

    /// ZREVRANGE: highest score first.
    fn newest_first(&self) -> impl Iterator<Item = &(i64, String)> {
        self.ordered.iter().rev()
    }
}

/// Keys set with NX and a TTL, each remembered until it expires.
struct Sightings {
    until: HashMap<String, Instant>,
    /// Count at which expired keys are next swept out.
    sweep_at: usize,
}

impl Default for Sightings {
    fn default() -> Sightings {
        Sightings { until: HashMap::new(), sweep_at: 1024 }
    }
}

/// Keys with a value and a TTL (SET … PX), swept like [`Sightings`].
struct Expiring<V> {
    entries: HashMap<String, (V, Instant)>,
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Expiring<V> {
        Expiring { entries: HashMap::new(), sweep_at: 1024 }
    }
}

impl<V: Clone> Expiring<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| v.clone())
    }

    /// SET NX PX when `only_new`, else SET PX; true when it was set.
    fn set(&mut self, key: &str, value: V, ttl: Duration, only_new: bool) -> bool {
        let now = Instant::now();
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.entries.len() * 2).max(1024);
        }
        if only_new && self.get(key).is_some() {
            return false;
        }
        self.entries.insert(key.to_owned(), (value, now + ttl.max(Duration::from_millis(1))));
        true
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

impl Sightings {
    /// SET NX EX: whole seconds, at least one, as Redis is given them; true
    /// when the key was not set.
    fn first(&mut self, key: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        if self.until.len() >= self.sweep_at {
            // Redis expires keys by itself; here expired keys are swept out
            // whenever the map has doubled, so it stays bounded by the keys
            // of one TTL at a cost that amortizes to nothing.
            self.until.retain(|_, until| *until > now);
            self.sweep_at = (self.until.len() * 2).max(1024);
        }
        if self.until.get(key).is_some_and(|until| *until > now) {
            return false;
        }
        self.until.insert(key.to_owned(), now + Duration::from_secs(ttl.as_secs().max(1)));
        true
    }
}

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct EntryId {
    ms: u64,
    seq: u64,
}

impl EntryId {
    /// Parses `<ms>-<seq>` or `<ms>` (sequence 0), as Redis accepts them;
    /// `stream` names the stream for the error.
    fn parse(stream: &str, id: &str) -> StoreResult<EntryId> {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => Ok(EntryId { ms, seq }),
            _ => Err(StoreError::Corrupt { key: stream.to_owned(), reason: format!("invalid stream id {id:?}") }),
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A delivery's stream fields: source, event, body.
type HookFields = [Vec<u8>; 3];

/// A Redis stream with one consumer group, created with it; `T` is what an
/// entry holds.
struct Stream<T> {
    /// Entries not yet deleted.
    entries: BTreeMap<EntryId, T>,
    /// The last id handed out, so ids never go back even when the wall
    /// clock does or entries were deleted.
    last_id: EntryId,
    /// The group's cursor: entries after it are new to every consumer.
    last_delivered: EntryId,
    /// The group's pending entries: given to a consumer, not yet acked.
    pending: BTreeMap<EntryId, Pending>,
}

impl<T> Default for Stream<T> {
    fn default() -> Stream<T> {
        Stream {
            entries: BTreeMap::new(),
            last_id: EntryId::default(),
            last_delivered: EntryId::default(),
            pending: BTreeMap::new(),
        }
    }
}

struct Pending {
    consumer: String,
    /// When it was last given to (or kept by) its consumer; idle time
    /// counts from here.
    delivered_at: Instant,
    deliveries: u64,
}

impl<T: Clone> Stream<T> {
    /// XADD `*`: the wall clock's millisecond, or the last id's with the
    /// next sequence number when the clock has not moved on.
    fn append(&mut self, entry: T) {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let id = if now_ms > self.last_id.ms {
            EntryId { ms: now_ms, seq: 0 }
        } else {
            EntryId { ms: self.last_id.ms, seq: self.last_id.seq + 1 }
        };
        self.last_id = id;
        self.entries.insert(id, entry);
    }

    /// XACK and XDEL.
    fn remove(&mut self, id: EntryId) {
        self.pending.remove(&id);
        self.entries.remove(&id);
    }

    /// XREADGROUP `>`: entries after the group's cursor, now pending on
    /// `consumer`.
    fn read_new(&mut self, consumer: &str, count: usize) -> Vec<(EntryId, T)> {
        let after = self.last_delivered;
        let fresh: Vec<(EntryId, T)> = self
            .entries
            .range(after..)
            .filter(|(id, _)| **id > after)
            .take(read_limit(count))
            .map(|(id, entry)| (*id, entry.clone()))
            .collect();
        let now = Instant::now();
        for (id, _) in &fresh {
            self.last_delivered = *id;
            self.pending.insert(*id, Pending { consumer: consumer.to_owned(), delivered_at: now, deliveries: 1 });
        }
        fresh
    }

    /// XREADGROUP with an id: `consumer`'s own pending entries after it,
    /// each counted as delivered again (which resets its idle time).
    fn read_own(&mut self, consumer: &str, after: EntryId, count: usize) -> Vec<(EntryId, T)> {
        let now = Instant::now();
        let mut mine = Vec::new();
        for (id, pending) in self.pending.range_mut(after..) {
            if mine.len() >= read_limit(count) {
                break;
            }
            if *id <= after || pending.consumer != consumer {
                continue;
            }
            // A pending entry deleted from the stream has nothing to read;
            // it cannot happen here (ack and delete go together).
            let Some(entry) = self.entries.get(id) else { continue };
            pending.delivered_at = now;
            pending.deliveries += 1;
            mine.push((*id, entry.clone()));
        }
        mine
    }

    /// XAUTOCLAIM from `0`: pending entries idle at least `min_idle`, on any
    /// consumer, become `consumer`'s. Like Redis it looks at no more than ten
    /// times `count` pending entries per call.
    fn claim_abandoned(&mut self, consumer: &str, min_idle: Duration, count: usize) -> Vec<(EntryId, T)> {
        let now = Instant::now();
        let mut attempts = count.saturating_mul(10);
        let mut claimed = Vec::new();
        let mut vanished = Vec::new();
        for (id, pending) in self.pending.iter_mut() {
            if attempts == 0 || claimed.len() >= count {
                break;
            }
            attempts -= 1;
            let Some(entry) = self.entries.get(id) else {
                vanished.push(*id);
                continue;
            };
            if now.duration_since(pending.delivered_at) < min_idle {
                continue;
            }
            pending.consumer = consumer.to_owned();
            pending.delivered_at = now;
            pending.deliveries += 1;
            claimed.push((*id, entry.clone()));
        }
        for id in vanished {
            self.pending.remove(&id);
        }
        claimed
    }

    /// CLAIM_DEPARTED_LUA: the pending entries of every other consumer
    /// that `departed` says is gone become `consumer`'s, up to `count`.
    fn claim_departed(&mut self, consumer: &str, departed: impl Fn(&str) -> bool, count: usize) -> Vec<(EntryId, T)> {
        let now = Instant::now();
        let mut claimed = Vec::new();
        for (id, pending) in self.pending.iter_mut() {
            if claimed.len() >= count.max(1) {
                break;
            }
            if pending.consumer == consumer || !departed(&pending.consumer) {
                continue;
            }
            // A pending entry deleted from the stream cannot happen here
            // (ack and delete go together); XCLAIM would drop it.
            let Some(entry) = self.entries.get(id) else { continue };
            pending.consumer = consumer.to_owned();
            pending.delivered_at = now;
            pending.deliveries += 1;
            claimed.push((*id, entry.clone()));
        }
        claimed
    }

    /// KEEP_LUA: the entry, if `consumer` holds it, is idle from now (true);
    /// one another consumer took over stays theirs.
    fn keep(&mut self, consumer: &str, id: EntryId) -> bool {
        if !self.entries.contains_key(&id) {
            self.pending.remove(&id);
            return false;
        }
        match self.pending.get_mut(&id) {
            Some(pending) if pending.consumer == consumer => {
                pending.delivered_at = Instant::now();
                true
            }
            _ => false,
        }
    }
}

/// Where an outbox stream's state sits in the arrays above.
fn slot(stream: OutboxStream) -> usize {
    stream.index()
}

/// COUNT 0 reads everything, as in Redis.
fn read_limit(count: usize) -> usize {
    if count == 0 {
        usize::MAX
    } else {
        count
    }
}

/// A subject's place in a commit: its hash, open and created indexes,
/// and (expected version, state JSON, open, created at).
type Placed = (Subject, Index, Index, (u64, String, bool, chrono::DateTime<chrono::Utc>));

fn placed(stored: Stored<'_>) -> Placed {
    match stored {
        Stored::Incident(inc, v) => (
            Subject::Incident(inc.id.0),
            Index::OpenIncidents,
            Index::Declared,
            (v, to_json(inc), inc.is_open(), inc.declared.at),
        ),
        Stored::Run(run, v) => (
            Subject::Run(run.id.0),
            Index::OpenRuns,
            Index::ChecklistRuns(run.checklist.clone()),
            (v, to_json(run), run.is_open(), run.started.at),
        ),
        Stored::Alert(group, v) => (
            Subject::Alert(group.id.0),
            Index::OpenAlerts,
            Index::AlertsOpened,
            (v, to_json(group), group.is_open(), group.opened),
        ),
        Stored::Deployment(d, v) => (
            Subject::Deployment(d.id.0),
            Index::OpenDeployments,
            Index::DeploymentsRequested,
            (v, to_json(d), d.is_open(), d.at),
        ),
        Stored::Handoff(h, v) => {
            (Subject::Handoff(h.id.0), Index::OpenHandoffs, Index::HandoffsPosted, (v, to_json(h), h.is_open(), h.at))
        }
        Stored::Override(o, v) => (
            Subject::Override(o.id.0),
            Index::OpenOverrides,
            Index::OverridesStarting,
            (v, to_json(o), o.is_open(), o.starts),
        ),
        Stored::Swap(swap, v) => (
            Subject::Swap(swap.id.0),
            Index::OpenSwaps,
            Index::SwapsOffered,
            (v, to_json(swap), swap.is_open(), swap.at),
        ),
        Stored::Rerun(r, v) => {
            (Subject::Rerun(r.run_id), Index::OpenReruns, Index::RerunsAsked, (v, to_json(r), r.is_open(), r.at))
        }
    }
}

impl State {
    /// One of the outbox streams.
    fn outbox(&mut self, stream: OutboxStream) -> &mut Stream<String> {
        &mut self.outboxes[slot(stream)]
    }

    fn index(&mut self, index: Index) -> &mut SortedSet {
        self.indexes.entry(index).or_default()
    }

    /// The subjects an index lists, in its order; an index entry without
    /// its hash is skipped, as in Redis.
    fn listed<T>(
        &self,
        ids: &[u64],
        subject: fn(u64) -> Subject,
        read: super::subjects::FromFields<T>,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let subject = subject(*id);
            let fields = self.hashes.get(&subject).cloned().unwrap_or_default();
            if let Some(v) = read(&subject.to_string(), fields)? {
                found.push(v.value);
            }
        }
        Ok(found)
    }

    fn members_newest_first(&self, index: &Index) -> Vec<u64> {
        self.indexes
            .get(index)
            .map(|set| set.newest_first().filter_map(|(_, member)| member.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The numbers the declared index holds for `day`, in its order.
    fn declared_on(&self, day: chrono::NaiveDate) -> Vec<u64> {
        let (from, to) = super::subjects::declared_on_millis(day);
        let Some(set) = self.indexes.get(&Index::Declared) else { return Vec::new() };
        set.ordered.range((from, String::new())..(to, String::new())).filter_map(|(_, n)| n.parse().ok()).collect()
    }

    /// The listed form of these incidents (state and alert), skipping an
    /// index entry without its incident as Redis's list does.
    fn incidents(&self, ids: &[u64]) -> StoreResult<Vec<Incident>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let subject = Subject::Incident(*id);
            let Some(hash) = self.hashes.get(&subject) else { continue };
            let Some(state) = hash.get("state") else { continue };
            found.push(listed_incident(&subject.to_string(), state, listed_anchor(|f| hash.get(f).cloned()))?);
        }
        Ok(found)
    }

    /// HSET only if the subject's state is there (SET_IF_EXISTS_LUA).
    fn set_if_exists(&mut self, subject: Subject, fields: &[(&str, &str)]) {
        let Some(hash) = self.hashes.get_mut(&subject).filter(|h| h.contains_key("state")) else { return };
        for (field, value) in fields {
            hash.insert((*field).to_owned(), (*value).to_owned());
        }
    }

    /// The subject's stored version when it is `expected` (0: not stored
    /// at all), else `None`: a conflict.
    fn version_if(&self, subject: &Subject, expected: u64) -> Option<u64> {
        let hash = self.hashes.get(subject);
        let current = hash.and_then(|h| h.get("v")).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (current == expected && !(current == 0 && hash.is_some())).then_some(current)
    }

    /// A subject's new state, at version `current` + 1, and its place in
    /// its indexes.
    fn write_state(&mut self, (subject, open, created_index, state): Placed, current: u64) {
        let (_, json, is_open, created) = state;
        let number = subject.number();
        let hash = self.hashes.entry(subject).or_default();
        hash.insert("state".into(), json);
        hash.insert("v".into(), (current + 1).to_string());
        if current == 0 {
            self.index(created_index).add(created.timestamp_millis(), &number.to_string());
        }
        if is_open {
            self.index(open).add(number as i64, &number.to_string());
        } else {
            self.index(open).remove(&number.to_string());
        }
    }

    /// COMMIT_LUA, step for step: every check before the first write, in
    /// the same order, so a refusal writes nothing and the outcome matches.
    fn commit(&mut self, change: &Commit<'_>) -> CommitOutcome {
        // What the state is for; a decision without state names incident 0,
        // whose hash it never touches (its timeline it does, as in Redis).
        let (subject, open, created_index, state) = match change.subject {
            Some(stored) => {
                let (subject, open, created_index, state) = placed(stored);
                (subject, open, created_index, Some(state))
            }
            None => (Subject::Incident(0), Index::OpenIncidents, Index::Declared, None),
        };
        let number = subject.number();
        let mut current = 0;
        if let Some((expected, ..)) = &state {
            match self.version_if(&subject, *expected) {
                Some(v) => current = v,
                None => return CommitOutcome::Conflict,
            }
        }
        let mut also = Vec::with_capacity(change.also.len());
        for stored in change.also {
            let placed = placed(*stored);
            match self.version_if(&placed.0, placed.3 .0) {
                Some(v) => also.push((placed, v)),
                None => return CommitOutcome::Conflict,
            }
        }
        if let Some((checklist, slot)) = change.slot {
            let handled = self.last_slots.get(checklist).copied().unwrap_or(0);
            if handled >= slot.timestamp_millis() {
                // As the script: a timer for a handled slot can never act.
                if let Some(timer) = change.consume {
                    self.index(Index::Timers).remove(timer);
                }
                return CommitOutcome::TimerGone;
            }
        }
        if let Some(opening) = &change.opens {
            if self.current_alerts.get(opening.key).copied() != opening.replaces.map(|r| r.0) {
                return CommitOutcome::Conflict;
            }
        }
        // The last check is also the first write, as ZREM is in the script.
        if let Some(timer) = change.consume {
            if !self.index(Index::Timers).remove(timer) {
                return CommitOutcome::TimerGone;
            }
        }
        if let Some((checklist, slot)) = change.slot {
            self.last_slots.insert(checklist.to_owned(), slot.timestamp_millis());
        }
        if let Some(state) = state {
            self.write_state((subject, open, created_index, state), current);
        }
        for (placed, v) in also {
            self.write_state(placed, v);
        }
        if let Some(opening) = &change.opens {
            self.current_alerts.insert(opening.key.to_owned(), number);
        }
        if let Some(tally) = change.tally {
            let day = self.tallies.entry(tally.day).or_default();
            for (field, delta) in &tally.deltas {
                *day.entry(field.clone()).or_insert(0) += delta;
            }
        }
        if let Some(sample) = change.sample {
            let (oldest, kept) = sample_trim(sample);
            let samples = self.index(Index::RunSamples);
            samples.add(sample.finished.timestamp_millis(), &to_json(sample));
            let stale: Vec<String> =
                samples.ordered.iter().take_while(|(score, _)| *score < oldest).map(|(_, m)| m.clone()).collect();
            for member in stale {
                samples.remove(&member);
            }
            let extra: Vec<String> = samples
                .ordered
                .iter()
                .take(samples.ordered.len().saturating_sub(kept))
                .map(|(_, m)| m.clone())
                .collect();
            for member in extra {
                samples.remove(&member);
            }
        }
        if !change.timeline.is_empty() {
            self.timelines.entry(subject).or_default().extend(change.timeline.iter().map(to_json));
        }
        for effect in change.effects {
            self.outbox(OutboxStream::of(effect)).append(to_json(effect));
        }
        for timer in change.timers {
            self.index(Index::Timers).add(timer.due.timestamp_millis(), &to_json(timer));
        }
        CommitOutcome::Committed
    }

    /// Decodes entries read from an outbox stream; one that cannot be read
    /// goes to the dead letters, as in Redis.
    fn decode(&mut self, stream: OutboxStream, raw: Vec<(EntryId, String)>) -> Vec<OutboxEntry> {
        let mut entries = Vec::with_capacity(raw.len());
        for (id, json) in raw {
            match decode_effect(Some(json)) {
                Ok(effect) => entries.push(OutboxEntry { stream, id: id.to_string(), effect }),
                Err(reason) => {
                    tracing::error!(entry = %id, %reason, "outbox entry cannot be read; moved to dead letters");
                    self.bury(unreadable_letter(stream, &id.to_string(), &reason));
                    self.outbox(stream).remove(id);
                }
            }
        }
        entries
    }

    /// LPUSH and LTRIM.
    fn bury(&mut self, letter: serde_json::Value) {
        self.dead_letters.push_front(letter);
        self.dead_letters.truncate(DEAD_LETTERS_KEPT);
    }

    /// An outbox stream's XREADGROUP `>`, decoded.
    fn read_new(&mut self, stream: OutboxStream, consumer: &str, count: usize) -> Vec<OutboxEntry> {
        let fresh = self.outbox(stream).read_new(consumer, count);
        self.decode(stream, fresh)
    }

    /// An outbox stream's XREADGROUP with an id, decoded.
    fn read_own(&mut self, stream: OutboxStream, consumer: &str, after: EntryId, count: usize) -> Vec<OutboxEntry> {
        let mine = self.outbox(stream).read_own(consumer, after, count);
        self.decode(stream, mine)
    }

    /// Whether `replica`'s heartbeat has run out (or it left); a replica
    /// that never beat is not judged here.
    fn departed(replicas: &HashMap<String, Instant>, replica: &str, now: Instant) -> bool {
        replicas.get(replica).is_some_and(|until| *until <= now)
    }

    /// An outbox stream's CLAIM_DEPARTED_LUA, decoded.
    fn claim_departed(&mut self, stream: OutboxStream, consumer: &str, count: usize) -> Vec<OutboxEntry> {
        let now = Instant::now();
        let replicas = std::mem::take(&mut self.replicas);
        let claimed =
            self.outbox(stream).claim_departed(consumer, |holder| Self::departed(&replicas, holder, now), count);
        self.replicas = replicas;
        self.decode(stream, claimed)
    }

    /// An outbox stream's XAUTOCLAIM, decoded.
    fn claim_abandoned(
        &mut self,
        stream: OutboxStream,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Vec<OutboxEntry> {
        let claimed = self.outbox(stream).claim_abandoned(consumer, min_idle, count);
        self.decode(stream, claimed)
    }
}

/// Inbox entries as Redis's backend decodes them, by the same function.
fn inbox_entries(raw: Vec<(EntryId, HookFields)>) -> Vec<InboxEntry> {
    raw.into_iter()
        .map(|(id, [source, event, body])| InboxEntry {
            id: id.to_string(),
            hook: decode_hook(Some(source), Some(event), Some(body)),
        })
        .collect()
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                outbox_appended: [Notify::new(), Notify::new(), Notify::new()],
                inbox_appended: Notify::new(),
            }),
        }
    }

    /// The state, even after a panic elsewhere while it was held: every
    /// critical section checks before it writes, so what is there is whole.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    pub fn next_incident_id(&self) -> StoreResult<IncidentId> {
        let mut state = self.lock();
        state.incident_sequence += 1;
        Ok(IncidentId(state.incident_sequence))
    }

    pub fn load_incident(&self, id: IncidentId) -> StoreResult<Option<Versioned<Incident>>> {
        let subject = Subject::Incident(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        incident_from_fields(&subject.to_string(), fields)
    }

    pub fn load_timeline(&self, id: IncidentId) -> StoreResult<Vec<TimelineEntry>> {
        let subject = Subject::Incident(id.0);
        let raw = self.lock().timelines.get(&subject).cloned().unwrap_or_default();
        let key = format!("{subject}:timeline");
        raw.iter().map(|json| from_json(&key, json)).collect()
    }

    pub fn next_deployment_id(&self) -> StoreResult<DeployId> {
        let mut state = self.lock();
        state.deployment_sequence += 1;
        Ok(DeployId(state.deployment_sequence))
    }

    pub fn load_rerun(&self, run_id: u64) -> StoreResult<Option<Versioned<RerunRequest>>> {
        let subject = Subject::Rerun(run_id);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        rerun_from_fields(&subject.to_string(), fields)
    }

    pub fn load_deployment(&self, id: DeployId) -> StoreResult<Option<Versioned<Deployment>>> {
        let subject = Subject::Deployment(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        deployment_from_fields(&subject.to_string(), fields)
    }

    pub fn next_handoff_id(&self) -> StoreResult<HandoffId> {
        let mut state = self.lock();
        state.handoff_sequence += 1;
        Ok(HandoffId(state.handoff_sequence))
    }

    pub fn load_handoff(&self, id: HandoffId) -> StoreResult<Option<Versioned<Handoff>>> {
        let subject = Subject::Handoff(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        handoff_from_fields(&subject.to_string(), fields)
    }

    pub fn rotation_plan(&self, role: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().rotation_plans.get(role).cloned())
    }

    pub fn replace_rotation_plan(&self, role: &str, expected: Option<&str>, plan: &str) -> StoreResult<bool> {
        let mut state = self.lock();
        if state.rotation_plans.get(role).map(String::as_str) != expected {
            return Ok(false);
        }
        state.rotation_plans.insert(role.to_owned(), plan.to_owned());
        Ok(true)
    }

    pub fn next_override_id(&self) -> StoreResult<OverrideId> {
        let mut state = self.lock();
        state.override_sequence += 1;
        Ok(OverrideId(state.override_sequence))
    }

    pub fn load_override(&self, id: OverrideId) -> StoreResult<Option<Versioned<Override>>> {
        let subject = Subject::Override(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        override_from_fields(&subject.to_string(), fields)
    }

    pub fn next_swap_id(&self) -> StoreResult<SwapId> {
        let mut state = self.lock();
        state.swap_sequence += 1;
        Ok(SwapId(state.swap_sequence))
    }

    pub fn load_swap(&self, id: SwapId) -> StoreResult<Option<Versioned<Swap>>> {
        let subject = Subject::Swap(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        swap_from_fields(&subject.to_string(), fields)
    }

    /// Oldest first, as Redis's `ZRANGE` lists them.
    pub fn open_overrides(&self) -> StoreResult<Vec<Override>> {
        let state = self.lock();
        let ids: Vec<u64> = state.members_newest_first(&Index::OpenOverrides).into_iter().rev().collect();
        state.listed(&ids, Subject::Override, override_from_fields)
    }

    /// Oldest first, as Redis's `ZRANGE` lists them.
    pub fn open_swaps(&self) -> StoreResult<Vec<Swap>> {
        let state = self.lock();
        let ids: Vec<u64> = state.members_newest_first(&Index::OpenSwaps).into_iter().rev().collect();
        state.listed(&ids, Subject::Swap, swap_from_fields)
    }

    pub fn open_runs(&self) -> StoreResult<Vec<Run>> {
        let state = self.lock();
        state.listed(&state.members_newest_first(&Index::OpenRuns), Subject::Run, run_from_fields)
    }

    pub fn next_alert_id(&self) -> StoreResult<AlertId> {
        let mut state = self.lock();
        state.alert_sequence += 1;
        Ok(AlertId(state.alert_sequence))
    }

    pub fn load_alert(&self, id: AlertId) -> StoreResult<Option<Versioned<AlertGroup>>> {
        let subject = Subject::Alert(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        alert_from_fields(&subject.to_string(), fields)
    }

    pub fn current_alert(&self, source: &str) -> StoreResult<Option<Versioned<AlertGroup>>> {
        let id = self.lock().current_alerts.get(source).copied();
        match id {
            Some(id) => self.load_alert(AlertId(id)),
            None => Ok(None),
        }
    }

    pub fn open_alerts(&self) -> StoreResult<Vec<AlertGroup>> {
        let state = self.lock();
        state.listed(&state.members_newest_first(&Index::OpenAlerts), Subject::Alert, alert_from_fields)
    }

    pub fn run_samples_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<RunSample>> {
        let since = since.timestamp_millis();
        let state = self.lock();
        let Some(samples) = state.indexes.get(&Index::RunSamples) else { return Ok(Vec::new()) };
        samples
            .ordered
            .iter()
            .filter(|(score, _)| *score >= since)
            .map(|(_, json)| from_json("memory:kpi:runs", json))
            .collect()
    }

    pub fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        let state = self.lock();
        let ids = state.members_newest_first(&Index::OpenIncidents);
        state.incidents(&ids)
    }

    pub fn open_incidents_first(&self, limit: usize) -> StoreResult<(Vec<Incident>, usize)> {
        let state = self.lock();
        let ids = state.members_newest_first(&Index::OpenIncidents);
        Ok((state.incidents(&ids[..limit.min(ids.len())])?, ids.len()))
    }

    pub fn incident_tallies(&self, days: &[chrono::NaiveDate]) -> StoreResult<BTreeMap<String, i64>> {
        let state = self.lock();
        let mut summed = BTreeMap::new();
        for (field, n) in days.iter().filter_map(|day| state.tallies.get(day)).flatten() {
            *summed.entry(field.clone()).or_insert(0) += n;
        }
        Ok(summed)
    }

    pub fn incidents_declared_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<Incident>> {
        let since = since.timestamp_millis();
        let state = self.lock();
        let ids: Vec<u64> = state
            .indexes
            .get(&Index::Declared)
            .map(|set| {
                set.newest_first()
                    .take_while(|(score, _)| *score >= since)
                    .filter_map(|(_, member)| member.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        state.incidents(&ids)
    }

    pub fn incidents_declared_on(&self, day: chrono::NaiveDate) -> StoreResult<super::DeclaredOn> {
        let state = self.lock();
        let stored = state.declared_on(day).into_iter().map(|number| {
            let subject = Subject::Incident(number);
            let hash = state.hashes.get(&subject);
            let field = |name: &str| hash.and_then(|h| h.get(name)).map(String::as_str);
            (number, subject.to_string(), field("state"), field("v"))
        });
        super::subjects::declared_on(day, stored)
    }

    /// REPLACE_TALLY_LUA's checks and writes, in one critical section.
    pub fn replace_incident_tally(
        &self,
        read: &super::DeclaredOn,
        tally: &BTreeMap<String, i64>,
    ) -> StoreResult<CommitOutcome> {
        let mut state = self.lock();
        let mut declared = state.declared_on(read.day);
        let mut numbers: Vec<u64> = read.versions.iter().map(|(id, _)| id.0).collect();
        declared.sort_unstable();
        numbers.sort_unstable();
        let unchanged = declared == numbers
            && read.versions.iter().all(|(id, version)| {
                let hash = state.hashes.get(&Subject::Incident(id.0));
                hash.and_then(|h| h.get("v")).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) == *version
            });
        if !unchanged {
            return Ok(CommitOutcome::Conflict);
        }
        state.tallies.remove(&read.day);
        if !tally.is_empty() {
            state.tallies.insert(read.day, tally.iter().map(|(field, n)| (field.clone(), *n)).collect());
        }
        Ok(CommitOutcome::Committed)
    }

    pub fn commit(&self, change: &Commit<'_>) -> StoreResult<CommitOutcome> {
        let outcome = self.lock().commit(change);
        if outcome == CommitOutcome::Committed {
            self.appended(change.effects);
        }
        Ok(outcome)
    }

    /// Wakes the readers of the streams these effects went to.
    fn appended(&self, effects: &[Effect]) {
        for stream in OutboxStream::ALL {
            if effects.iter().any(|e| OutboxStream::of(e) == stream) {
                self.shared.outbox_appended[slot(stream)].notify_waiters();
            }
        }
    }

    pub fn due_timers(&self, now: chrono::DateTime<chrono::Utc>, limit: usize) -> StoreResult<Vec<(String, Timer)>> {
        let now = now.timestamp_millis();
        let mut state = self.lock();
        let timers = state.index(Index::Timers);
        let raw: Vec<String> =
            timers.ordered.iter().take_while(|(due, _)| *due <= now).take(limit).map(|(_, m)| m.clone()).collect();
        let mut due = Vec::with_capacity(raw.len());
        for member in raw {
            match serde_json::from_str::<Timer>(&member) {
                Ok(timer) => due.push((member, timer)),
                Err(e) => {
                    tracing::error!(%member, error = %e, "unreadable timer dropped");
                    timers.remove(&member);
                }
            }
        }
        Ok(due)
    }

    pub fn timer_count(&self) -> StoreResult<u64> {
        Ok(self.lock().indexes.get(&Index::Timers).map_or(0, |set| set.scores.len() as u64))
    }

    pub fn enqueue(&self, effects: &[Effect]) -> StoreResult<()> {
        if effects.is_empty() {
            return Ok(());
        }
        {
            let mut state = self.lock();
            for effect in effects {
                state.outbox(OutboxStream::of(effect)).append(to_json(effect));
            }
        }
        self.appended(effects);
        Ok(())
    }

    pub fn first_sighting(&self, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        Ok(self.lock().events.first(event_id, ttl))
    }

    pub fn claim_envelope(&self, envelope_id: &str, ttl: Duration) -> StoreResult<EnvelopeClaim> {
        let mut state = self.lock();
        if state.envelopes.set(envelope_id, None, ttl, true) {
            return Ok(EnvelopeClaim::First);
        }
        Ok(match state.envelopes.get(envelope_id) {
            Some(Some(answer)) => EnvelopeClaim::Answered(answer),
            _ => EnvelopeClaim::Busy,
        })
    }

    pub fn envelope_answer(&self, envelope_id: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().envelopes.get(envelope_id).flatten())
    }

    pub fn answer_envelope(&self, envelope_id: &str, answer: &str, ttl: Duration) -> StoreResult<()> {
        self.lock().envelopes.set(envelope_id, Some(answer.to_owned()), ttl, false);
        Ok(())
    }

    pub fn release_envelope(&self, envelope_id: &str) -> StoreResult<()> {
        self.lock().envelopes.remove(envelope_id);
        Ok(())
    }

    pub fn record_posted(&self, message: &Message, at: &MessageRef, route: Option<&str>) -> StoreResult<()> {
        let fields = posted_fields(message, at, route);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
        self.lock().set_if_exists(Subject::of(message.subject()), &fields);
        Ok(())
    }

    pub fn record_digested(&self, message: &Message, digest: &MessageRef, route: &str) -> StoreResult<()> {
        let fields = digested_fields(message, digest, route);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
        self.lock().set_if_exists(Subject::of(message.subject()), &fields);
        Ok(())
    }

    pub fn record_anchor_failed(&self, subject: opsbot_handlers::Subject, error: &str) -> StoreResult<()> {
        self.lock().set_if_exists(Subject::of(subject), &[(ANCHOR_ERROR, error)]);
        Ok(())
    }

    pub fn anchor_failure(&self, subject: opsbot_handlers::Subject) -> StoreResult<Option<String>> {
        Ok(self.lock().hashes.get(&Subject::of(subject)).and_then(anchor_error))
    }

    pub fn next_run_id(&self) -> StoreResult<RunId> {
        let mut state = self.lock();
        state.run_sequence += 1;
        Ok(RunId(state.run_sequence))
    }

    pub fn load_run(&self, id: RunId) -> StoreResult<Option<Versioned<Run>>> {
        let subject = Subject::Run(id.0);
        let fields = self.lock().hashes.get(&subject).cloned().unwrap_or_default();
        run_from_fields(&subject.to_string(), fields)
    }

    pub fn runs_of(&self, checklist: &str, limit: usize) -> StoreResult<Vec<Run>> {
        let state = self.lock();
        let ids = state.members_newest_first(&Index::ChecklistRuns(checklist.to_owned()));
        let mut runs = Vec::new();
        // ZREVRANGE 0 (limit - 1): a limit of 0 still lists one, as in Redis.
        for id in ids.into_iter().take(limit.saturating_sub(1) + 1) {
            let subject = Subject::Run(id);
            if let Some(json) = state.hashes.get(&subject).and_then(|h| h.get("state")) {
                runs.push(from_json(&subject.to_string(), json)?);
            }
        }
        Ok(runs)
    }

    pub fn last_handled_slot(&self, checklist: &str) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.lock().last_slots.get(checklist).copied().and_then(chrono::DateTime::from_timestamp_millis))
    }

    pub fn set_timer(&self, timer: &Timer) -> StoreResult<()> {
        self.lock().index(Index::Timers).add_new(timer.due.timestamp_millis(), &to_json(timer));
        Ok(())
    }

    /// The groups exist from the start and memory never loses them.
    pub fn outbox_prepare(&self) -> StoreResult<()> {
        Ok(())
    }

    pub async fn outbox_read(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        if let Some(after) = own_pending_after {
            let after = EntryId::parse(outbox_name(stream), after)?;
            return Ok(self.lock().read_own(stream, consumer, after, count));
        }
        let deadline = tokio::time::Instant::now() + OUTBOX_BLOCK;
        loop {
            // Registered before looking, so an append between the look and
            // the wait still wakes us.
            let appended = self.shared.outbox_appended[slot(stream)].notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let fresh = self.lock().read_new(stream, consumer, count);
            if !fresh.is_empty() {
                return Ok(fresh);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    pub fn outbox_claim_abandoned(
        &self,
        stream: OutboxStream,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        Ok(self.lock().claim_abandoned(stream, consumer, min_idle, count))
    }

    pub fn outbox_claim_departed(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        Ok(self.lock().claim_departed(stream, consumer, count))
    }

    pub fn replica_beat(&self, replica: &str, lasts: Duration) -> StoreResult<()> {
        let now = Instant::now();
        let mut state = self.lock();
        state.replicas.insert(replica.to_owned(), now + lasts);
        state.replicas.retain(|_, until| now.saturating_duration_since(*until) < Duration::from_secs(86_400));
        Ok(())
    }

    pub fn replica_leave(&self, replica: &str) -> StoreResult<()> {
        self.lock().replicas.insert(replica.to_owned(), Instant::now());
        Ok(())
    }

    pub fn replica_is_alive(&self, replica: &str) -> StoreResult<Option<bool>> {
        Ok(self.lock().replicas.get(replica).map(|until| *until > Instant::now()))
    }

    pub fn outbox_keep(&self, stream: OutboxStream, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        let id = EntryId::parse(outbox_name(stream), entry_id)?;
        Ok(self.lock().outbox(stream).keep(consumer, id))
    }

    pub fn outbox_done(&self, stream: OutboxStream, entry_id: &str) -> StoreResult<()> {
        let id = EntryId::parse(outbox_name(stream), entry_id)?;
        self.lock().outbox(stream).remove(id);
        Ok(())
    }

    /// SETTLE_LUA: the records on subjects that exist, then the entries
    /// out of their streams, in one critical section.
    pub fn outbox_settle(&self, landed: &[Landed], done: &[(OutboxStream, String)]) -> StoreResult<()> {
        let ids = done
            .iter()
            .map(|(stream, id)| Ok((*stream, EntryId::parse(outbox_name(*stream), id)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut state = self.lock();
        for record in landed {
            let fields = record.fields();
            let fields: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
            state.set_if_exists(Subject::of(record.subject()), &fields);
        }
        for (stream, id) in ids {
            state.outbox(stream).remove(id);
        }
        Ok(())
    }

    pub fn outbox_dead(&self, entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
        let id = EntryId::parse(outbox_name(entry.stream), &entry.id)?;
        let letter = dead_letter(entry, error, at);
        let mut state = self.lock();
        state.bury(letter);
        state.outbox(entry.stream).remove(id);
        Ok(())
    }

    pub fn dead_letters(&self) -> StoreResult<Vec<serde_json::Value>> {
        Ok(self.lock().dead_letters.iter().cloned().collect())
    }

    pub fn put_dead_letter(&self, letter: serde_json::Value) -> StoreResult<()> {
        self.lock().bury(letter);
        Ok(())
    }

    pub fn take_dead_letter(&self, entry: &str) -> StoreResult<Option<serde_json::Value>> {
        let mut state = self.lock();
        let at = state.dead_letters.iter().position(|l| l["entry"] == entry);
        Ok(at.and_then(|i| state.dead_letters.remove(i)))
    }

    pub fn outbox_len(&self, stream: OutboxStream) -> StoreResult<u64> {
        Ok(self.lock().outbox(stream).entries.len() as u64)
    }

    /// POST_SLOT_LUA, on this process's monotonic clock.
    pub fn take_post_slot(&self, channel: &str, every: Duration, burst: u32) -> StoreResult<Option<Duration>> {
        let now = Instant::now();
        let mut state = self.lock();
        let tat = state.post_slots.get(channel).copied().unwrap_or(now).max(now);
        let wait = (tat - now).saturating_sub(every * (burst.max(1) - 1));
        if !wait.is_zero() {
            return Ok(Some(wait));
        }
        state.post_slots.insert(channel.to_owned(), tat + every);
        Ok(None)
    }

    pub fn inbox_accept(
        &self,
        source: HookSource,
        event: &str,
        dedupe: Option<&str>,
        body: &[u8],
        ttl: Duration,
    ) -> StoreResult<Accepted> {
        {
            let mut state = self.lock();
            if let Some(dedupe) = dedupe {
                if !state.hook_deliveries.first(dedupe, ttl) {
                    return Ok(Accepted::Duplicate);
                }
            }
            state.inbox.append(hook_fields(source, event, body).map(|(_, value)| value.to_vec()));
        }
        self.shared.inbox_appended.notify_waiters();
        Ok(Accepted::Stored)
    }

    /// The group exists from the start and memory never loses it.
    pub fn inbox_prepare(&self) -> StoreResult<()> {
        Ok(())
    }

    pub async fn inbox_read(
        &self,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<InboxEntry>> {
        if let Some(after) = own_pending_after {
            let after = EntryId::parse(INBOX, after)?;
            return Ok(inbox_entries(self.lock().inbox.read_own(consumer, after, count)));
        }
        let deadline = tokio::time::Instant::now() + INBOX_BLOCK;
        loop {
            // Registered before looking, so an append between the look and
            // the wait still wakes us.
            let appended = self.shared.inbox_appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let fresh = self.lock().inbox.read_new(consumer, count);
            if !fresh.is_empty() {
                return Ok(inbox_entries(fresh));
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    pub fn inbox_claim_abandoned(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<InboxEntry>> {
        Ok(inbox_entries(self.lock().inbox.claim_abandoned(consumer, min_idle, count)))
    }

    pub fn inbox_claim_departed(&self, consumer: &str, count: usize) -> StoreResult<Vec<InboxEntry>> {
        let now = Instant::now();
        let mut state = self.lock();
        let replicas = std::mem::take(&mut state.replicas);
        let claimed = state.inbox.claim_departed(consumer, |holder| State::departed(&replicas, holder, now), count);
        state.replicas = replicas;
        Ok(inbox_entries(claimed))
    }

    pub fn inbox_keep(&self, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        let id = EntryId::parse(INBOX, entry_id)?;
        Ok(self.lock().inbox.keep(consumer, id))
    }

    pub fn inbox_done(&self, entry_id: &str) -> StoreResult<()> {
        let id = EntryId::parse(INBOX, entry_id)?;
        self.lock().inbox.remove(id);
        Ok(())
    }

    pub fn inbox_len(&self) -> StoreResult<u64> {
        Ok(self.lock().inbox.entries.len() as u64)
    }
}
