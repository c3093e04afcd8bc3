//! The outbox worker: delivers what decisions promised to Slack.
//!
//! Entries come from three Redis streams, each read through a consumer
//! group, so replicas share the work and an entry is handed to one of them:
//! anchors (each incident's alert, each run's first message), people's
//! (the rest of incidents, runs, answers) and alert groups' (see
//! [`OutboxStream`]). Each stream has a reader of its own, so people's
//! entries are never behind an alert storm in a stream, and alerts are read
//! only as fast as they are delivered: a storm's backlog waits in the store,
//! not in this process. People's stream is not read while anchors wait in
//! theirs, so under a storm of declares every new incident's alert goes
//! out ahead of earlier incidents' playbooks. Entries of one subject go
//! through one lane, in order (anchors and people's share lanes); lanes run
//! concurrently.
//! Transient failures are retried with backoff (a 429's `Retry-After` pauses
//! every lane, as Slack's limit is per app); permanent refusals go to the
//! dead letters, logged once with the incident id. An entry leaves the
//! stream only once delivered, so a crash loses nothing: the next start
//! (same replica name) takes it back, or another replica takes it over as
//! soon as the holder's heartbeat lapses (or it left), and after
//! `reclaim_after` from a holder that never beat.
//!
//! Alerts that arrive by themselves go through the [`storm`] guard: after
//! people's work, within each channel's posting budget, rolled into a
//! digest when a storm exceeds it.

pub mod storm;

use crate::clock::Clock;
use crate::slack::client::{DeliveryError, SlackApi};
use crate::store::{Landed, OutboxEntry, OutboxStore, OutboxStream, StoreError, SubjectStore, TimerStore};
use opsbot_handlers::blocks::SlackMessage;
use opsbot_handlers::decision::Caller;
use opsbot_handlers::delivery::{self, State};
use opsbot_handlers::github::{Call, Unavailable};
use opsbot_handlers::timer::TimerKind;
use opsbot_handlers::{Effect, Message, MessageRef, Reply, Runbook, Subject};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storm::{Priority, StormGuard, StormSettings};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// This replica's consumer name; a restarted replica with the same name
    /// resumes its unfinished entries at once.
    pub consumer: String,
    /// Entries read per batch.
    pub batch: usize,
    /// Alert entries in lanes at once (dispatched and not settled): the
    /// alerts' stream is read only while fewer are, so the rest of a storm
    /// waits in the store. Enough to keep every channel's posting slots
    /// and digest busy; each settled entry lets the next be read.
    pub alerts_held: usize,
    /// Slack calls in flight at once.
    pub concurrency: usize,
    /// Entries another replica has held this long are taken over, whether
    /// or not it has a heartbeat: the last resort, for replicas of a version
    /// that did not beat.
    pub reclaim_after: Duration,
    /// How often this replica's heartbeat is refreshed, and how often it
    /// looks for entries held by replicas whose heartbeat lapsed.
    pub heartbeat_every: Duration,
    /// How long one heartbeat says a replica is alive: past it, the others
    /// take over what it holds. Several `heartbeat_every`, so a slow beat
    /// or two does not get a live replica's work taken.
    pub heartbeat_lasts: Duration,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
    /// How long an update waits for its incident's alert to be posted.
    pub alert_wait_limit: Duration,
    /// How alerts are kept from flooding Slack.
    pub storm: StormSettings,
}

impl WorkerSettings {
    pub fn new(consumer: impl Into<String>) -> WorkerSettings {
        WorkerSettings {
            consumer: consumer.into(),
            batch: 128,
            alerts_held: 256,
            concurrency: 32,
            reclaim_after: Duration::from_secs(120),
            // Taken over within about 15 s of a crash: up to 10 s for the
            // last heartbeat to run out, then up to 3 s to the next look.
            heartbeat_every: Duration::from_secs(3),
            heartbeat_lasts: Duration::from_secs(10),
            backoff_first: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            alert_wait_limit: Duration::from_secs(15 * 60),
            storm: StormSettings::default(),
        }
    }
}

/// What the outbox worker needs: where entries and subjects are, where
/// they go, how to render them, the time and the counters.
pub struct Outbox {
    /// The entries to deliver.
    pub queue: OutboxStore,
    /// The incidents and runs they render, and where their messages landed.
    pub subjects: SubjectStore,
    pub slack: SlackApi,
    /// Answers `/pipeline`'s lookups, carries out GitHub calls, and
    /// fetches the figures of the checks a checklist's steps show.
    pub github: crate::github::GitHub,
    /// Where a call GitHub refused is reported back, as a timer due at once.
    pub timers: TimerStore,
    pub runbook: Arc<Runbook>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This replica's heartbeat: nothing is posted while it has lapsed, and
    /// what was held across a lapse is checked to be ours still.
    pub liveness: Arc<crate::heartbeat::Liveness>,
    pub settings: WorkerSettings,
}

/// What a lane needs to deliver one entry.
struct Delivery {
    queue: OutboxStore,
    subjects: SubjectStore,
    slack: SlackApi,
    github: crate::github::GitHub,
    timers: TimerStore,
    runbook: Arc<Runbook>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    settings: WorkerSettings,
    /// Slack's rate limit is per app: a 429 pauses all lanes.
    paused_until: Mutex<Option<Instant>>,
    slack_calls: Semaphore,
    shutdown: CancellationToken,
    /// Entries (stream, id) handed to a lane and not yet settled, so a
    /// reclaim of our own slow entries does not deliver them twice.
    in_flight: Mutex<HashSet<(OutboxStream, String)>>,
    /// Entries (stream, id) that may have been posted already (read back
    /// after a restart, taken over, or an attempt whose answer may have
    /// been lost), with when we last tried or got them: before posting one,
    /// we look in Slack for it.
    maybe_posted: Mutex<HashMap<(OutboxStream, String), Instant>>,
    /// Recent searches of Slack for marked messages, by (channel id,
    /// thread): one at a time, as they are rare and one serves many.
    searches: tokio::sync::Mutex<HashMap<(String, Option<String>), Search>>,
    storm: Arc<StormGuard>,
    /// Where the messages of entries being delivered landed, by entry
    /// (stream, id): written with the entry's settlement, in one step.
    landed: Mutex<HashMap<(OutboxStream, String), Vec<Landed>>>,
    /// The settler (see [`settler`]): lanes hand it what they settled.
    settling: mpsc::UnboundedSender<Settling>,
    /// Reads of people's stream so far (each read, new or taken over, that
    /// returned entries): an entry carries the number of the read that
    /// brought it, a lane's remembered subject the number seen when it was
    /// loaded. Every entry of a read was committed before the read, so a
    /// subject loaded after it is at least as new as the entry's commit.
    people_reads: std::sync::atomic::AtomicU64,
    /// Anchor entries dispatched and not settled.
    anchors_held: AtomicUsize,
    /// Whether anchors are waiting in their stream, as far as the last read
    /// of it tells: its reader took all it asked for (or has no room). While
    /// they are, people's stream is not read.
    anchors_behind: std::sync::atomic::AtomicBool,
    liveness: Arc<crate::heartbeat::Liveness>,
    /// Entries a `keep` found held by another replica (it took them over
    /// while this one's heartbeat had lapsed): their lanes drop them.
    lost: Mutex<HashSet<(OutboxStream, String)>>,
}

/// What the reader knows of an entry it hands a lane: the read that
/// brought it (see `people_reads`) and the heartbeat's lapses then.
#[derive(Clone, Copy)]
struct Origin {
    read: u64,
    lapses: u64,
}

/// What a lane remembers of its subject between its entries, so that one
/// incident's alert, page, playbook and link cost one load, not four.
struct Remembered {
    state: Arc<State>,
    version: u64,
    /// `people_reads` when the load was asked for.
    loaded_after: u64,
}

/// What delivering one entry may use of its lane: the subject the lane
/// remembers, and which read brought the entry. Only entries read for the
/// first time from people's stream use the memory; entries that may have
/// been posted already (read back, taken over, or after a failed attempt)
/// and alert groups' (whose storm guard compares versions) load afresh.
struct Ctx<'a> {
    memory: &'a Mutex<Option<Remembered>>,
    /// The read that brought the entry; `None`: do not use the memory.
    read: Option<u64>,
}

/// What a lane hands the settler: messages' places to record, and the
/// entry delivered (none when only places are written, before a retry).
struct Settling {
    landed: Vec<Landed>,
    done: Option<(OutboxStream, String)>,
    written: oneshot::Sender<()>,
}

/// Settlements per round trip at most.
const SETTLE_BATCH: usize = 256;

/// Writes what lanes settled, many at a time: whatever arrived while the
/// previous write was in flight goes in the next, so under load one round
/// trip (one script) settles many entries, and alone an entry waits for no
/// timer. A write is retried until the store takes it (Slack already has
/// the messages), or until shutdown; each lane waits for its own before it
/// goes on, so its next entry loads what it recorded.
async fn settler(
    queue: OutboxStore,
    mut incoming: mpsc::UnboundedReceiver<Settling>,
    shutdown: CancellationToken,
    settings: WorkerSettings,
) {
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match incoming.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let landed: Vec<Landed> = batch.iter().flat_map(|s| s.landed.iter().cloned()).collect();
        let done: Vec<(OutboxStream, String)> = batch.iter().filter_map(|s| s.done.clone()).collect();
        let mut attempt = 0;
        while let Err(e) = queue.settle(&landed, &done).await {
            attempt += 1;
            if attempt == 1 {
                tracing::warn!(error = %e, "cannot record deliveries in Redis; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff(settings.backoff_first, settings.backoff_max, attempt)) => {}
            }
        }
        for settled in batch {
            let _ = settled.written.send(());
        }
    }
}

/// What one search of a thread or channel found: each marked message's
/// mark and place, among those posted after `oldest` (s).
struct Search {
    made: Instant,
    oldest: u64,
    marks: HashMap<String, MessageRef>,
}

/// How far before an entry was written its message is looked for.
const SEARCH_LOOKBACK: Duration = Duration::from_secs(10 * 60);
/// How long a search is kept for other entries of its thread or channel.
const SEARCH_KEPT: Duration = Duration::from_secs(60);

/// The lanes of one or more streams' readers: a subject's lane is shared by
/// the streams its entries come from (anchors and people's), so its alert
/// goes out before its playbook.
#[derive(Default)]
struct Lanes {
    by_key: Mutex<HashMap<String, Lane>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
}

impl Lanes {
    /// Lets the lanes finish the attempt in flight; what is left stays in
    /// the stream.
    async fn close(&self) {
        lock(&self.by_key).clear();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        while tasks.join_next().await.is_some() {}
    }
}

struct Lane {
    /// Entries, each with the read that brought it (see `people_reads`).
    tx: mpsc::UnboundedSender<(OutboxEntry, Origin)>,
    /// Entries sent to the lane and not yet finished.
    queued: Arc<AtomicUsize>,
}

pub async fn run(outbox: Outbox, shutdown: CancellationToken) {
    let Outbox { queue, subjects, slack, github, timers, runbook, clock, metrics, liveness, settings } = outbox;
    let (settling, incoming) = mpsc::unbounded_channel();
    // Not a task of its own: stopping (or killing) the worker stops it too.
    let settler = settler(queue.clone(), incoming, shutdown.clone(), settings.clone());
    let storm = Arc::new(StormGuard::new(
        queue.clone(),
        slack.clone(),
        clock.clone(),
        settings.storm.clone(),
        shutdown.clone(),
    ));
    let delivery = Arc::new(Delivery {
        storm,
        slack_calls: Semaphore::new(settings.concurrency),
        queue,
        subjects,
        slack,
        github,
        timers,
        runbook,
        clock,
        metrics,
        settings,
        paused_until: Mutex::new(None),
        shutdown,
        in_flight: Mutex::new(HashSet::new()),
        maybe_posted: Mutex::new(HashMap::new()),
        searches: tokio::sync::Mutex::new(HashMap::new()),
        landed: Mutex::new(HashMap::new()),
        settling,
        people_reads: std::sync::atomic::AtomicU64::new(0),
        anchors_held: AtomicUsize::new(0),
        // Unknown until their stream is first read: people's wait for it.
        anchors_behind: std::sync::atomic::AtomicBool::new(true),
        liveness,
        lost: Mutex::new(HashSet::new()),
    });
    // One reader per stream. A subject's anchor and the rest of its effects
    // are in two streams, so those two readers share lanes; alert groups'
    // effects are all in theirs.
    let readers = async move {
        let (people, alerts) = (Lanes::default(), Lanes::default());
        tokio::join!(
            read(&delivery, OutboxStream::Anchors, &people),
            read(&delivery, OutboxStream::People, &people),
            read(&delivery, OutboxStream::Alerts, &alerts),
        );
        tokio::join!(people.close(), alerts.close());
        // The lanes are done: once their last settlement is written, the
        // settler sees no sender left and ends too.
        drop(delivery);
    };
    tokio::join!(readers, settler);
}

/// Where the reader got an entry: an entry read for the first time cannot
/// have been posted yet; one read back or taken over may have been, by a
/// process that stopped before it could record so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// New to the group.
    New,
    /// Ours before a restart, read back.
    OwnBefore,
    /// Another replica's, taken over.
    TakenOver,
}

/// Reads `stream` into lanes until shutdown: first this replica's own
/// unfinished entries (after a restart), then new ones; every
/// `heartbeat_every` what replicas whose heartbeat lapsed (or who left)
/// hold, and every quarter of `reclaim_after` what a replica without a
/// heartbeat left. Reads only as much as [`Delivery::room`] allows.
async fn read(delivery: &Arc<Delivery>, stream: OutboxStream, lanes: &Lanes) {
    let d = delivery;
    // Replaying our own unfinished entries from an earlier run: the id after
    // which to read next; `None` once caught up.
    let mut own_cursor: Option<String> = Some("0".to_owned());
    // The group must exist before reading; a Redis that restarted empty
    // has lost it, so it is created again after every read error.
    let mut prepared = false;
    let mut next_reclaim = Instant::now();
    let mut next_departed = Instant::now();
    let mut failures = 0u32;

    while !d.shutdown.is_cancelled() {
        let room = d.room(stream);
        if room == 0 {
            tokio::select! {
                _ = d.shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(5)) => continue,
            }
        }
        let count = room.min(d.settings.batch);
        lock(&lanes.by_key).retain(|_, lane| lane.queued.load(Ordering::Acquire) > 0);
        while lock(&lanes.tasks).try_join_next().is_some() {}

        // Every quarter of `reclaim_after`: tell the other replicas we still
        // hold what our lanes hold (queued behind a retrying entry too), then
        // take over what a stopped replica left.
        let reclaim_now = own_cursor.is_none() && Instant::now() >= next_reclaim;
        if reclaim_now {
            next_reclaim = Instant::now() + d.settings.reclaim_after / 4;
        }
        let departed_now = own_cursor.is_none() && Instant::now() >= next_departed;
        if departed_now {
            next_departed = Instant::now() + d.settings.heartbeat_every;
        }
        let consumer = &d.settings.consumer;
        let read = async {
            if !prepared {
                d.queue.prepare().await?;
            }
            if let Some(after) = &own_cursor {
                let mine = d.queue.read(stream, consumer, count, Some(after)).await?;
                return Ok::<_, StoreError>((mine, Source::OwnBefore));
            }
            if departed_now {
                let claimed = d.queue.claim_departed(stream, consumer, count).await?;
                if !claimed.is_empty() {
                    tracing::info!(
                        entries = claimed.len(),
                        stream = stream.name(),
                        "took over outbox entries from a replica that left or whose heartbeat lapsed"
                    );
                    return Ok((claimed, Source::TakenOver));
                }
            }
            if reclaim_now {
                let held: Vec<String> =
                    lock(&d.in_flight).iter().filter(|(s, _)| *s == stream).map(|(_, id)| id.clone()).collect();
                for id in &held {
                    if !d.queue.keep(stream, consumer, id).await? {
                        lock(&d.lost).insert((stream, id.clone()));
                    }
                }
                let claimed = d.queue.claim_abandoned(stream, consumer, d.settings.reclaim_after, count).await?;
                if !claimed.is_empty() {
                    tracing::info!(
                        entries = claimed.len(),
                        stream = stream.name(),
                        "took over outbox entries from a replica that stopped"
                    );
                    return Ok((claimed, Source::TakenOver));
                }
            }
            Ok((d.queue.read(stream, consumer, count, None).await?, Source::New))
        };
        let result = tokio::select! {
            _ = d.shutdown.cancelled() => break,
            r = read => r,
        };
        match result {
            Ok((entries, source)) => {
                failures = 0;
                prepared = true;
                if !entries.is_empty() {
                    tracing::debug!(entries = entries.len(), ?source, stream = stream.name(), "outbox read");
                }
                if source == Source::OwnBefore {
                    // An empty answer means we are caught up with our own.
                    own_cursor = entries.last().map(|e| e.id.clone());
                }
                // A read that got all it asked for probably left more.
                let full = entries.len() >= count;
                let read = if entries.is_empty() || !stream.is_people() {
                    0
                } else {
                    d.people_reads.fetch_add(1, Ordering::AcqRel) + 1
                };
                for entry in entries {
                    dispatch(delivery, lanes, entry, source, read);
                }
                if stream == OutboxStream::Anchors && source == Source::New {
                    // After dispatching, so people's reader, which waits
                    // for anchors held too, never sees neither.
                    d.anchors_behind.store(full, Ordering::Release);
                }
            }
            Err(e) => {
                failures += 1;
                prepared = false;
                if failures == 1 || failures.is_multiple_of(30) || tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::warn!(error = %e, stream = stream.name(), "outbox cannot read from Redis; retrying");
                }
                let pause = backoff(d.settings.backoff_first, d.settings.backoff_max, failures);
                tokio::select! {
                    _ = d.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

fn dispatch(delivery: &Arc<Delivery>, lanes: &Lanes, entry: OutboxEntry, source: Source, read: u64) {
    let fresh = lock(&delivery.in_flight).insert((entry.stream, entry.id.clone()));
    if !fresh {
        return;
    }
    if source != Source::New {
        lock(&delivery.maybe_posted).insert((entry.stream, entry.id.clone()), Instant::now());
    }
    let key = entry.effect.lane();
    if is_alert(&entry.effect) {
        if let Effect::Refresh(message) = &entry.effect {
            delivery.storm.edit_dispatched(edit_key(message), &entry.id);
        }
    }
    delivery.hold(&entry);
    let mut by_key = lock(&lanes.by_key);
    let lane = by_key.entry(key).or_insert_with(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<(OutboxEntry, Origin)>();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        let delivery = delivery.clone();
        lock(&lanes.tasks).spawn(async move {
            // Entries waiting for something later in the lane (an update
            // whose alert arrives after it, as when entries are taken over
            // from a stopped replica): they step aside instead of blocking.
            let mut deferred: VecDeque<((OutboxEntry, Origin), Instant)> = VecDeque::new();
            let memory = Mutex::new(None);
            // Whether the last entry settled: what a deferred entry waits
            // for (its alert, read from the anchors' stream) may have just
            // gone out, so it is tried again at once.
            let mut progressed = false;
            loop {
                let ((entry, origin), since) = if progressed && !deferred.is_empty() {
                    let (entry, since) = deferred.pop_front().expect("deferred is not empty");
                    delivery.hold(&entry.0);
                    (entry, since)
                } else if deferred.is_empty() {
                    match rx.recv().await {
                        Some(entry) => (entry, Instant::now()),
                        None => break,
                    }
                } else {
                    tokio::select! {
                        biased;
                        _ = delivery.shutdown.cancelled() => break,
                        Some(entry) = rx.recv() => (entry, Instant::now()),
                        _ = tokio::time::sleep(delivery.settings.backoff_first) => {
                            let (entry, since) = deferred.pop_front().expect("deferred is not empty");
                            delivery.hold(&entry.0);
                            (entry, since)
                        }
                    }
                };
                let fresh = entry.stream.is_people()
                    && !lock(&delivery.maybe_posted).contains_key(&(entry.stream, entry.id.clone()));
                let ctx = Ctx { memory: &memory, read: fresh.then_some(origin.read) };
                let settlement = delivery.deliver_until_settled(&entry, since, &ctx, origin.lapses).await;
                // An entry that waits (or stops) lets lower classes go meanwhile.
                delivery.release(&entry);
                progressed = matches!(settlement, Settlement::Settled);
                match settlement {
                    Settlement::Settled | Settlement::Lost => {
                        if matches!(settlement, Settlement::Lost) {
                            delivery.metrics.delivery("lost");
                            tracing::info!(entry = %entry.name(), subject = %subject_of(&entry.effect), "another replica took this entry over while this one's heartbeat had lapsed; leaving it to that one");
                        }
                        delivery.forget(&entry);
                        if let Effect::Refresh(message) = &entry.effect {
                            delivery.storm.edit_settled(&edit_key(message), &entry.id);
                        }
                        counter.fetch_sub(1, Ordering::AcqRel);
                    }
                    Settlement::Deferred => deferred.push_back(((entry, origin), since)),
                    Settlement::Stopped => break,
                }
            }
        });
        Lane { tx, queued }
    });
    lane.queued.fetch_add(1, Ordering::AcqRel);
    let origin = Origin { read, lapses: delivery.liveness.lapses() };
    if let Err(unsent) = lane.tx.send((entry, origin)) {
        // Only happens while shutting down; the entry stays in the stream.
        let unsent = unsent.0 .0;
        lane.queued.fetch_sub(1, Ordering::AcqRel);
        delivery.release(&unsent);
        delivery.forget(&unsent);
    }
}

/// Whether an effect is about an alert group: delivered after people's
/// work and within the channels' budgets.
fn is_alert(effect: &Effect) -> bool {
    matches!(effect.subject(), Some(Subject::Alert(_)))
}

/// Where the subject's messages are, to note one that landed.
fn posted_mut(state: &mut State) -> &mut opsbot_handlers::subject::Posted {
    match state {
        State::Incident(inc) => &mut inc.posted,
        State::Run(run) => &mut run.posted,
        State::Alert(group) => &mut group.posted,
        State::Deployment(d) => &mut d.posted,
        State::Handoff(h) => &mut h.posted,
        State::Override(o) => &mut o.posted,
        State::Swap(s) => &mut s.posted,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names a message across subjects, for coalescing its edits.
fn edit_key(message: &Message) -> String {
    format!("{} {}", message.subject(), message.key())
}

/// What a delivery that succeeded did.
enum Delivered {
    /// Slack was called (or had it already, before a crash).
    Sent,
    /// Slack shows it already: the message was last shown at the subject's
    /// current version.
    Shown,
}

/// What became of one attempt to deliver an entry.
enum Settlement {
    /// Delivered, dropped or dead-lettered: it leaves the lane.
    Settled,
    /// Waiting for something later in the lane; tried again after it.
    Deferred,
    /// Another replica took it over while this one's heartbeat had lapsed:
    /// it leaves the lane, and the stream is that replica's to settle.
    Lost,
    /// Shutting down; the entry stays in the stream for next time.
    Stopped,
}

/// For logs: the incident or run an effect concerns, or `-`.
fn subject_of(effect: &Effect) -> String {
    effect.subject().map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// Exponential backoff from `first`, capped at `max`, with ±25 % random
/// jitter so replicas that failed together do not retry together.
pub(crate) fn backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let mut random = [0u8; 2];
    // Without randomness the wait is still correct, only not spread out.
    let _ = getrandom::fill(&mut random);
    let jitter = u16::from_le_bytes(random) as f64 / f64::from(u16::MAX);
    exp.min(max).mul_f64(0.75 + jitter / 2.0)
}

impl Delivery {
    /// How many more entries of `stream` may be read now. Anchors': while
    /// fewer than two batches are dispatched and not settled. People's:
    /// none while anchors wait in their stream or are being delivered (a
    /// playbook waits for its alert anyway), else while fewer than four
    /// batches are dispatched and not settled (a slow Slack stops reading).
    /// Alerts': up to `alerts_held`, so they are read as
    /// fast as they are delivered. Entries that wait for something later
    /// in their lane are not counted, so they never stop the reading that
    /// would bring it.
    fn room(&self, stream: OutboxStream) -> usize {
        match stream {
            OutboxStream::Anchors => {
                let room = (2 * self.settings.batch).saturating_sub(self.anchors_held.load(Ordering::Acquire));
                if room < self.settings.batch / 2 {
                    // Full: more anchors are likely waiting in the store.
                    self.anchors_behind.store(true, Ordering::Release);
                    return 0;
                }
                room
            }
            OutboxStream::People
                if self.anchors_behind.load(Ordering::Acquire) || self.anchors_held.load(Ordering::Acquire) > 0 =>
            {
                0
            }
            OutboxStream::People => (4 * self.settings.batch).saturating_sub(self.storm.people()),
            OutboxStream::Alerts => self.settings.alerts_held.saturating_sub(self.storm.alerts()),
        }
    }

    /// The entry leaves this replica's hands: settled, lost to another
    /// replica, or never handed to its lane.
    fn forget(&self, entry: &OutboxEntry) {
        let key = (entry.stream, entry.id.clone());
        lock(&self.in_flight).remove(&key);
        lock(&self.maybe_posted).remove(&key);
        lock(&self.landed).remove(&key);
    }

    /// Tells the other replicas we are still on `entry`; one of them took
    /// it over if the store says it holds it (see [`Self::still_ours`]).
    async fn keep(&self, entry: &OutboxEntry) {
        if let Ok(false) = self.queue.keep(entry.stream, &self.settings.consumer, &entry.id).await {
            lock(&self.lost).insert((entry.stream, entry.id.clone()));
        }
    }

    /// Before each attempt: waits while this replica's heartbeat has lapsed
    /// (the others may be taking over what it holds, and must not find it
    /// posted twice), then says whether `entry` is still ours. Only after a
    /// lapse since `seen_lapses`, or a keep that found another holder, is
    /// the store asked; a keep that finds it ours also tells the others we
    /// are on it again. `None`: shutting down.
    async fn still_ours(&self, entry: &OutboxEntry, seen_lapses: &mut u64) -> Option<bool> {
        let key = (entry.stream, entry.id.clone());
        let mut waits = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if self.liveness.alive() {
                let lapses = self.liveness.lapses();
                if lapses == *seen_lapses && !lock(&self.lost).contains(&key) {
                    return Some(true);
                }
                if let Ok(ours) = self.queue.keep(entry.stream, &self.settings.consumer, &entry.id).await {
                    lock(&self.lost).remove(&key);
                    *seen_lapses = lapses;
                    return Some(ours);
                }
            }
            waits += 1;
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                // At most a second: once the heartbeat is back, go on soon.
                _ = tokio::time::sleep(backoff(self.settings.backoff_first, self.settings.backoff_max.min(Duration::from_secs(1)), waits)) => {}
            }
        }
    }

    /// An entry is dispatched (or tried again after waiting): counted until
    /// it settles, waits, or stops.
    fn hold(&self, entry: &OutboxEntry) {
        self.storm.dispatched(Priority::of(&entry.effect));
        if entry.stream == OutboxStream::Anchors {
            self.anchors_held.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// It settled, waits for something later, or stopped.
    fn release(&self, entry: &OutboxEntry) {
        self.storm.settled(Priority::of(&entry.effect));
        if entry.stream == OutboxStream::Anchors {
            self.anchors_held.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Delivers one entry, retrying until it is delivered, refused for good,
    /// or the worker shuts down (then it stays in the stream for next time).
    async fn deliver_until_settled(
        &self,
        entry: &OutboxEntry,
        since: Instant,
        ctx: &Ctx<'_>,
        lapses: u64,
    ) -> Settlement {
        let mut attempt = 0u32;
        let mut seen_lapses = lapses;
        loop {
            match self.still_ours(entry, &mut seen_lapses).await {
                Some(true) => {}
                Some(false) => return Settlement::Lost,
                None => return Settlement::Stopped,
            }
            if let Effect::Refresh(message) = &entry.effect {
                if self.storm.edit_superseded(&edit_key(message), &entry.id) {
                    // A later edit of the same message shows all of this.
                    self.metrics.delivery("coalesced");
                    self.finish(entry, true, ctx).await;
                    return Settlement::Settled;
                }
            }
            let priority = Priority::of(&entry.effect);
            self.wait_out_rate_limit().await;
            attempt += 1;
            tracing::debug!(entry = %entry.id, effect = ?entry.effect, attempt, "delivering");
            let result = self
                .storm
                .in_turn(priority, async {
                    if priority == Priority::Alert {
                        // Alerts wait in their channel's digest or budget,
                        // not on the Slack calls people's work needs.
                        self.deliver_alert(entry, ctx).await
                    } else {
                        let _permit = self.slack_calls.acquire().await;
                        self.deliver(entry, ctx).await.map(|()| Delivered::Sent)
                    }
                })
                .await;
            let result = match result {
                Err(DeliveryError::Waiting { reason }) if since.elapsed() > self.settings.alert_wait_limit => {
                    Err(DeliveryError::Permanent {
                        code: format!("gave up after {:?}: {reason}", self.settings.alert_wait_limit),
                    })
                }
                other => other,
            };
            match result {
                Ok(delivered) => {
                    self.metrics.delivery(match delivered {
                        Delivered::Sent => "delivered",
                        Delivered::Shown => "coalesced",
                    });
                    self.finish(entry, true, ctx).await;
                    return Settlement::Settled;
                }
                Err(DeliveryError::Permanent { code }) if entry.effect.is_best_effort() => {
                    tracing::info!(subject = %subject_of(&entry.effect), error = %code, "courtesy note not delivered; dropped");
                    self.metrics.delivery("dropped");
                    self.finish(entry, true, ctx).await;
                    return Settlement::Settled;
                }
                Err(DeliveryError::Permanent { code }) => {
                    self.finish(entry, false, ctx).await;
                    self.metrics.delivery("dead");
                    tracing::error!(subject = %subject_of(&entry.effect), error = %code, effect = ?entry.effect, "Slack refused a message for good; kept in the dead letters");
                    if let Effect::Post(message) = &entry.effect {
                        if message.is_anchor() {
                            let subject = message.subject();
                            self.settle(|| self.subjects.record_anchor_failed(subject, &code)).await;
                        }
                    }
                    let at = self.clock.now();
                    self.settle(|| self.queue.dead(entry, &code, at)).await;
                    return Settlement::Settled;
                }
                Err(DeliveryError::Waiting { .. }) => {
                    self.finish(entry, false, ctx).await;
                    // Let the rest of the lane go first; back here later.
                    self.keep(entry).await;
                    return Settlement::Deferred;
                }
                Err(retry @ DeliveryError::Transient { .. }) => {
                    self.finish(entry, false, ctx).await;
                    self.metrics.delivery("retried");
                    let wait = match retry.retry_after() {
                        Some(wait) => {
                            let until = Instant::now() + wait;
                            let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                            *paused = Some(paused.map_or(until, |p| p.max(until)));
                            wait
                        }
                        None => backoff(self.settings.backoff_first, self.settings.backoff_max, attempt),
                    };
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(subject = %subject_of(&entry.effect), reason = %retry, attempt, retry_in = ?wait, "Slack delivery failed; will retry");
                    }
                    // Tell the other replicas we are still on it.
                    self.keep(entry).await;
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Settlement::Stopped,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Notes where a message of `entry` landed, to be recorded when the
    /// entry settles.
    fn land(&self, entry: &OutboxEntry, landed: Landed) {
        lock(&self.landed).entry((entry.stream, entry.id.clone())).or_default().push(landed);
    }

    /// Hands the settler where `entry`'s messages landed and, when `done`,
    /// the entry itself, and waits until that is written. Without `done`
    /// (an attempt that failed after a message landed, which does not
    /// happen today) only the places are written, so a retry sees them.
    async fn finish(&self, entry: &OutboxEntry, done: bool, ctx: &Ctx<'_>) {
        let landed = lock(&self.landed).remove(&(entry.stream, entry.id.clone())).unwrap_or_default();
        if !done {
            // A failed attempt: what the lane remembers may be what failed
            // (a message another replica posted, a state moved on).
            *lock(ctx.memory) = None;
            if landed.is_empty() {
                return;
            }
        }
        let (written, wait) = oneshot::channel();
        let settled = done.then(|| (entry.stream, entry.id.clone()));
        if self.settling.send(Settling { landed: landed.clone(), done: settled, written }).is_ok() {
            let _ = wait.await;
        }
        // The lane's subject now has these places in the store too.
        if let Some(remembered) = lock(ctx.memory).as_mut() {
            let subject = remembered.state.subject();
            let state = Arc::make_mut(&mut remembered.state);
            for record in landed.iter().filter(|r| r.subject() == subject) {
                record.apply(posted_mut(state));
            }
        }
    }

    async fn wait_out_rate_limit(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep_until(until) => {}
                    }
                }
                _ => return,
            }
        }
    }

    /// A bookkeeping write after Slack already has the message: it must not
    /// be skipped (or the message would be sent again), so it is retried
    /// until Redis takes it or we shut down.
    async fn settle<F, Fut>(&self, write: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut attempt = 0;
        while let Err(e) = write().await {
            attempt += 1;
            if attempt == 1 {
                tracing::warn!(error = %e, "cannot record a delivery in Redis; retrying");
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff(self.settings.backoff_first, self.settings.backoff_max, attempt)) => {}
            }
        }
    }

    async fn deliver(&self, entry: &OutboxEntry, ctx: &Ctx<'_>) -> Result<(), DeliveryError> {
        match &entry.effect {
            Effect::Post(message) => {
                let state = self.state(message.subject(), ctx).await?;
                if state.posted().get(message).is_some() {
                    // Delivered before a crash, bookkeeping finished: do not post twice.
                    return Ok(());
                }
                let msg = self.render_checked(&state, message).await?;
                if let Some(to) = state.direct_to(message) {
                    // A message of its own (a handoff's DM), not a reply in
                    // the anchor's thread: it waits for nothing.
                    let posted = self.post_once(entry, to, None, &msg.text, Some(&msg.blocks)).await?;
                    self.land(entry, Landed::Posted { message: *message, at: posted, route: None });
                } else if message.is_anchor() {
                    let route = state.route(&self.runbook);
                    let posted = self.post_once(entry, route, None, &msg.text, Some(&msg.blocks)).await?;
                    let route = Some(route.to_owned());
                    self.land(entry, Landed::Posted { message: *message, at: posted, route });
                } else {
                    let anchor = self.anchor_of(&state).await?;
                    let posted =
                        self.post_once(entry, &anchor.channel, Some(&anchor.ts), &msg.text, Some(&msg.blocks)).await?;
                    self.land(entry, Landed::Posted { message: *message, at: posted, route: None });
                }
                Ok(())
            }
            Effect::Refresh(message) => {
                let state = self.state(message.subject(), ctx).await?;
                let Some(at) = state.posted().get(message).cloned() else {
                    self.anchor_of(&state).await?;
                    return Err(DeliveryError::Waiting {
                        reason: format!("the message {} of {} is not posted yet", message.key(), state.subject()),
                    });
                };
                let msg = self.render_checked(&state, message).await?;
                self.slack.update(&at, &msg.text, Some(&msg.blocks)).await
            }
            Effect::InThread { subject, text } => {
                let state = self.state(*subject, ctx).await?;
                let anchor = self.anchor_of(&state).await?;
                self.post_once(entry, &anchor.channel, Some(&anchor.ts), text, None).await.map(drop)
            }
            Effect::MoveAlert { incident } => {
                let state = self.state(Subject::Incident(*incident), ctx).await?;
                let inc = Self::incident_of(&state)?;
                let old = self.anchor_of(&state).await?;
                let route = state.route(&self.runbook);
                if state.posted().route.as_deref() == Some(route) {
                    return Ok(()); // moved before a crash
                }
                let alert = Message::anchor_of(state.subject());
                let msg = self.render(&state, &alert)?;
                let new = self.post_once(entry, route, None, &msg.text, Some(&msg.blocks)).await?;
                self.land(entry, Landed::Posted { message: alert, at: new.clone(), route: Some(route.to_owned()) });
                // Pointers both ways; the move itself is done, so these are
                // best effort rather than a reason to post the alert again.
                let moved = opsbot_handlers::incident::render::moved_alert(inc, &new);
                if let Err(e) = self.slack.update(&old, &moved.text, Some(&moved.blocks)).await {
                    tracing::warn!(incident = %inc.id, error = %e, "could not point the old alert at the new one");
                }
                let note = delivery::moved_here(inc, &old);
                if let Err(e) = self.slack.post(&new.channel, Some(&new.ts), &note, None).await {
                    tracing::warn!(incident = %inc.id, error = %e, "could not link the new thread to the old one");
                }
                Ok(())
            }
            Effect::SendAlertLink { incident, channel, user } => {
                let state = self.state(Subject::Incident(*incident), ctx).await?;
                let inc = Self::incident_of(&state)?;
                let alert = self.anchor_of(&state).await?;
                self.slack.post_ephemeral(channel, user, &delivery::alert_link(inc, &alert), None).await
            }
            Effect::Ephemeral { channel, user, text } => self.slack.post_ephemeral(channel, user, text, None).await,
            Effect::SyncUserGroup { group, users } => self.slack.set_usergroup_members(group, users).await,
            Effect::Say { channel, thread_ts, text } => {
                self.post_once(entry, channel, thread_ts.as_deref(), text, None).await.map(drop)
            }
            Effect::Lookup { lookup, to } => {
                // Asked again on a retry: the answer is cached, so a Slack
                // hiccup does not cost a second GitHub call.
                let found = self.github.lookup(lookup).await;
                if let Err(why) = &found {
                    tracing::info!(repo = %lookup.repo(), reason = ?why, "GitHub could not answer a lookup");
                }
                let reply = opsbot_handlers::pipeline::answer(lookup, &found, &self.runbook, self.clock.now());
                self.answer(to, &reply).await
            }
            Effect::Call { call, caller } => self.call_github(call, *caller).await,
            Effect::Answer { to, text } => self.answer(to, &Reply::text(text.clone())).await,
        }
    }

    /// Asks GitHub to do what a decision asked. An outage or a rate limit
    /// is retried like Slack's (a rate limit no sooner than it resets); a
    /// refusal goes back to the caller (an alert group, a deployment) as a
    /// timer due at once, so the core decides what it shows.
    async fn call_github(&self, call: &Call, caller: Caller) -> Result<(), DeliveryError> {
        let now = self.clock.now();
        match self.github.call(call).await {
            Ok(run) => {
                tracing::info!(%caller, call = %call.describe(), "GitHub did what was asked");
                // The deployment links the run it made at once; its webhook
                // says how it ended.
                let (Caller::Deployment(deployment), Some(run)) = (caller, run) else { return Ok(()) };
                let kind = TimerKind::DeploymentDispatched { deployment, run };
                self.timers
                    .set(&opsbot_handlers::Timer { due: now, kind })
                    .await
                    .map_err(|e| DeliveryError::Transient { reason: e.to_string(), retry_after: None })
            }
            Err(Unavailable::Down { why }) => {
                Err(DeliveryError::Transient { reason: format!("GitHub: {why}"), retry_after: None })
            }
            Err(Unavailable::RateLimited { resets }) => Err(DeliveryError::Transient {
                reason: "GitHub's rate limit is spent".into(),
                retry_after: (resets - now).to_std().ok(),
            }),
            Err(refused) => {
                tracing::info!(%caller, call = %call.describe(), reason = ?refused, "GitHub refused a call");
                let kind = TimerKind::GitHubRefused { caller, call: call.clone(), why: refused.in_words() };
                self.timers
                    .set(&opsbot_handlers::Timer { due: now, kind })
                    .await
                    .map_err(|e| DeliveryError::Transient { reason: e.to_string(), retry_after: None })
            }
        }
    }

    /// A later answer to a person: through the command's `response_url`,
    /// replacing the acknowledgement, else (no URL, not Slack's, expired,
    /// used up, or not answering) at once as an ephemeral message in the
    /// channel: the person is waiting, and a `response_url` lives 30 min.
    async fn answer(&self, to: &opsbot_handlers::decision::AnswerTo, reply: &Reply) -> Result<(), DeliveryError> {
        if let Some(url) = &to.response_url {
            match self.slack.respond(url, &reply.text, reply.blocks.as_ref()).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::info!(reason = %e, "the response_url took no answer; sending an ephemeral message"),
            }
        }
        self.slack.post_ephemeral(&to.channel, &to.user, &reply.text, reply.blocks.as_ref()).await
    }

    /// An alert group's effect, through the storm guard: its own message and
    /// thread while its channel has posting slots, the channel's digest when
    /// it has none or the group is in a digest already. An edit of a message
    /// that shows the group's current version already is skipped: during a
    /// storm alerts are read late, so by then a group's later changes are
    /// usually in, and its first delivery showed them all.
    async fn deliver_alert(&self, entry: &OutboxEntry, ctx: &Ctx<'_>) -> Result<Delivered, DeliveryError> {
        let effect = &entry.effect;
        let sent = |r: Result<(), DeliveryError>| r.map(|()| Delivered::Sent);
        let Some(subject) = effect.subject() else { return sent(self.deliver(entry, ctx).await) };
        let (state, version) = self.versioned_state(subject, ctx).await?;
        let delivery::State::Alert(group) = &*state else { return sent(self.deliver(entry, ctx).await) };
        let route = state.route(&self.runbook).to_owned();
        let now = self.clock.now();
        let posted = state.posted();
        match effect {
            Effect::Post(message) => {
                if posted.get(message).is_some() {
                    return Ok(Delivered::Sent); // posted or digested before a crash
                }
                // While the channel's digest collects, a new group goes to
                // it at once: waiting for a slot would only take one from
                // the digest, which shows 25 lines a post.
                if !self.storm.storming(&route) && self.storm.try_post_slot(&route).await? {
                    self.deliver(entry, ctx).await?;
                } else {
                    let line = opsbot_handlers::alert::render::digest_line(group, now);
                    let digest = self.storm.digest(&route, group.id, line).await?;
                    self.metrics.delivery("digested");
                    self.land(entry, Landed::Digested { message: *message, digest, route: route.clone() });
                }
                self.storm.shown(edit_key(message), version);
                Ok(Delivered::Sent)
            }
            Effect::Refresh(message) if self.storm.shows(&edit_key(message), version) => Ok(Delivered::Shown),
            Effect::Refresh(message) if posted.digested => {
                let line = opsbot_handlers::alert::render::digest_line(group, now);
                self.storm.digest(&route, group.id, line).await?;
                self.storm.shown(edit_key(message), version);
                Ok(Delivered::Sent)
            }
            Effect::Refresh(message) => {
                if let Some(at) = posted.get(message) {
                    self.storm.edit_gap(at).await;
                }
                // Renders the group as it is after the gap: this version or
                // a later one.
                self.deliver(entry, ctx).await?;
                self.storm.shown(edit_key(message), version);
                Ok(Delivered::Sent)
            }
            Effect::InThread { text, .. } => {
                let own_thread = !posted.digested && posted.anchor().is_some() && !self.storm.storming(&route);
                if own_thread && self.storm.try_post_slot(&route).await? {
                    return sent(self.deliver(entry, ctx).await);
                }
                if posted.anchor().is_none() {
                    // Waits for the group's message like any thread reply.
                    return sent(self.deliver(entry, ctx).await);
                }
                let line = opsbot_handlers::alert::render::digest_note(group, text);
                sent(self.storm.digest(&route, group.id, line).await.map(drop))
            }
            _ => sent(self.deliver(entry, ctx).await),
        }
    }

    /// The subject as stored now (or as its lane remembers it, when that is
    /// at least as new as the entry: see [`Ctx`]).
    async fn state(&self, subject: Subject, ctx: &Ctx<'_>) -> Result<Arc<State>, DeliveryError> {
        self.versioned_state(subject, ctx).await.map(|(state, _)| state)
    }

    /// The subject as stored now, with its version.
    async fn versioned_state(&self, subject: Subject, ctx: &Ctx<'_>) -> Result<(Arc<State>, u64), DeliveryError> {
        if let Some(read) = ctx.read {
            let memory = lock(ctx.memory);
            if let Some(m) = memory.as_ref().filter(|m| m.loaded_after >= read && m.state.subject() == subject) {
                return Ok((m.state.clone(), m.version));
            }
        }
        let loaded_after = self.people_reads.load(Ordering::Acquire);
        match self.subjects.load(subject).await {
            Ok(Some(v)) => {
                let state = Arc::new(v.value);
                if ctx.read.is_some() {
                    let remembered = Remembered { state: state.clone(), version: v.version, loaded_after };
                    *lock(ctx.memory) = Some(remembered);
                }
                Ok((state, v.version))
            }
            Ok(None) => Err(DeliveryError::Permanent { code: format!("{subject} does not exist") }),
            Err(e) => Err(DeliveryError::Transient { reason: e.to_string(), retry_after: None }),
        }
    }

    /// The incident an incident-only effect is about; anything else is a
    /// stored entry no version of us wrote, refused rather than a panic.
    fn incident_of(state: &State) -> Result<&opsbot_handlers::Incident, DeliveryError> {
        state
            .incident()
            .ok_or_else(|| DeliveryError::Permanent { code: format!("{} is not an incident", state.subject()) })
    }

    fn render(&self, state: &State, message: &Message) -> Result<SlackMessage, DeliveryError> {
        state.render(message, &self.runbook, self.clock.now()).ok_or_else(|| DeliveryError::Permanent {
            code: format!("{} has no message {}", state.subject(), message.key()),
        })
    }

    /// [`Self::render`], with the figures of the message's live checks
    /// fetched from GitHub first: each window once, within a bounded wait.
    async fn render_checked(&self, state: &State, message: &Message) -> Result<SlackMessage, DeliveryError> {
        let checks = state.checks(message);
        if checks.is_empty() {
            return self.render(state, message);
        }
        let sources = opsbot_handlers::pipeline::checks::sources(checks);
        let fetched = self.github.fetch_checks(&sources, crate::github::checks::CHECKS_WAIT).await;
        state.render_checked(message, &self.runbook, self.clock.now(), Some(&fetched)).ok_or_else(|| {
            DeliveryError::Permanent { code: format!("{} has no message {}", state.subject(), message.key()) }
        })
    }

    /// Posts `entry`'s message to `channel` (in the thread of `thread_ts`),
    /// marked with the entry in its metadata. When a process may have
    /// posted it before (the entry was read back after a restart or taken
    /// over, or an earlier attempt's answer was lost), it first looks in
    /// Slack for a message with that mark, and returns it rather than post
    /// again. A first attempt, by far the most common, asks Slack nothing
    /// more than the post.
    async fn post_once(
        &self,
        entry: &OutboxEntry,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<MessageRef, DeliveryError> {
        let key = (entry.stream, entry.id.clone());
        let mark = format!("{}/{}", entry.stream.name(), entry.id);
        let since = lock(&self.maybe_posted).get(&key).copied();
        if let Some(since) = since {
            match self.find_posted(entry, &mark, since, channel, thread_ts).await {
                Ok(Some(found)) => {
                    tracing::info!(entry = %mark, subject = %subject_of(&entry.effect), ts = %found.ts, "found in Slack: posted before its replica stopped; not posting it again");
                    self.metrics.delivery("found");
                    return Ok(found);
                }
                Ok(None) => {}
                Err(DeliveryError::Permanent { code }) => {
                    // Better a message twice than an alert never.
                    tracing::warn!(entry = %mark, subject = %subject_of(&entry.effect), error = %code, "cannot look in Slack for an earlier post; posting, which may show it twice");
                }
                Err(e) => return Err(e),
            }
            // A search from now on must be newer than this attempt.
            lock(&self.maybe_posted).insert(key.clone(), Instant::now());
        }
        let posted = self.slack.post_marked(channel, thread_ts, text, blocks, &mark).await;
        if let Err(DeliveryError::Transient { retry_after: None, .. }) = &posted {
            // The post may have reached Slack and only its answer been lost.
            lock(&self.maybe_posted).insert(key, Instant::now());
        }
        posted
    }

    /// Looks in Slack for the message marked `mark`: in the thread, or
    /// among the channel's top-level messages, since a while before the
    /// entry was written. A search is shared by the entries of one thread
    /// or channel, as long as it was made after each one's last attempt
    /// (`since`): a replica taking over many entries asks once per thread.
    async fn find_posted(
        &self,
        entry: &OutboxEntry,
        mark: &str,
        since: Instant,
        channel: &str,
        thread_ts: Option<&str>,
    ) -> Result<Option<MessageRef>, DeliveryError> {
        let channel = self.slack.channel_id(channel).await?;
        // Slack's clock and Redis's may differ a little; a message is never
        // older than its entry, so from a while before it is enough.
        let written_ms = entry.id.split('-').next().and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0);
        let oldest = written_ms.saturating_sub(SEARCH_LOOKBACK.as_millis() as u64) / 1000;
        let key = (channel.clone(), thread_ts.map(str::to_owned));
        let mut searches = self.searches.lock().await;
        searches.retain(|_, s| s.made.elapsed() < SEARCH_KEPT);
        if let Some(search) = searches.get(&key).filter(|s| s.made >= since && s.oldest <= oldest) {
            return Ok(search.marks.get(mark).cloned());
        }
        let made = Instant::now();
        let marks = self.slack.marked_messages(&channel, thread_ts, &format!("{oldest}.000000")).await?;
        let found = marks.get(mark).cloned();
        searches.insert(key, Search { made, oldest, marks });
        Ok(found)
    }

    /// Where the subject's anchor is; waits (as a transient failure) while
    /// it is still being posted, gives up if posting it failed for good.
    async fn anchor_of(&self, state: &State) -> Result<MessageRef, DeliveryError> {
        if let Some(anchor) = state.posted().anchor() {
            return Ok(anchor.clone());
        }
        let subject = state.subject();
        match self.subjects.anchor_failure(subject).await {
            Ok(Some(error)) => Err(DeliveryError::Permanent {
                code: format!("the first message of {subject} was never posted ({error})"),
            }),
            Ok(None) => {
                Err(DeliveryError::Waiting { reason: format!("the first message of {subject} is not posted yet") })
            }
            Err(e) => Err(DeliveryError::Transient { reason: e.to_string(), retry_after: None }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::config::Secret;
    use crate::engine::Engine;
    use crate::store::{Commit, Store, Stored};
    use opsbot_fake_slack::{Failure, FakeSlack, SpawnedFake};
    use opsbot_handlers::event::{self, Event, Loaded};
    use opsbot_handlers::incident::decide::Loaded as IncidentLoaded;
    use opsbot_handlers::{Change, Invocation};

    /// Long enough for any delivery on a loaded machine; tests wait on
    /// conditions, never for fixed times.
    const PATIENCE: Duration = Duration::from_secs(30);
    const ALERTS: &str = "#devops-alerts";

    /// A fake Slack, a memory store, an engine to make real incidents on it,
    /// and a worker delivering between them until the test ends.
    struct Rig {
        slack: FakeSlack,
        _server: SpawnedFake,
        api_url: String,
        engine: Engine,
        shutdown: CancellationToken,
        workers: Vec<tokio::task::JoinHandle<()>>,
    }

    fn settings(consumer: &str) -> WorkerSettings {
        let mut settings = WorkerSettings::new(consumer);
        settings.backoff_first = Duration::from_millis(20);
        settings.backoff_max = Duration::from_millis(200);
        settings.reclaim_after = Duration::from_millis(400);
        settings
    }

    impl Rig {
        async fn new() -> Rig {
            let slack = FakeSlack::new();
            let server = slack.spawn().await.expect("fake Slack starts");
            let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 25, 3, 0, 0).unwrap();
            let clock = Arc::new(TestClock::new(start));
            let api = SlackApi::new(&server.api_url, &Secret::new(opsbot_fake_slack::DEFAULT_TOKEN)).unwrap();
            let engine = Engine::new(
                Store::memory(),
                Arc::new(Runbook::seed()),
                clock.clone(),
                Arc::new(crate::metrics::Metrics::default()),
                crate::github::GitHub::disconnected(None),
                crate::slack::usergroups::UserGroups::new(api, clock),
            );
            Rig {
                slack,
                api_url: server.api_url.clone(),
                _server: server,
                engine,
                shutdown: CancellationToken::new(),
                workers: Vec::new(),
            }
        }

        fn start_worker(&mut self, settings: WorkerSettings) {
            let outbox = Outbox {
                queue: self.engine.store.outbox.clone(),
                subjects: self.engine.store.subjects.clone(),
                slack: SlackApi::new(&self.api_url, &Secret::new(opsbot_fake_slack::DEFAULT_TOKEN)).unwrap(),
                github: self.engine.github.clone(),
                timers: self.engine.store.timers.clone(),
                runbook: self.engine.runbook.clone(),
                clock: self.engine.clock.clone(),
                metrics: self.engine.metrics.clone(),
                liveness: {
                    // No heartbeat runs here: alive for the test's length.
                    let liveness = crate::heartbeat::Liveness::default();
                    liveness.recorded(Instant::now(), Duration::from_secs(3600));
                    Arc::new(liveness)
                },
                settings,
            };
            self.workers.push(tokio::spawn(run(outbox, self.shutdown.clone())));
        }

        async fn incident(&self, text: &str) {
            let who = Invocation {
                user: "U0ALICE".into(),
                channel: "C0GENERAL".into(),
                team_domain: None,
                response_url: None,
                groups: Vec::new(),
            };
            let reply = self.engine.command("/incident", text, &who).await.reply;
            assert!(reply.text.contains("INC-"), "{text}: {}", reply.text);
        }

        /// The top-level message in `channel` whose text has `needle`.
        fn alert(&self, needle: &str) -> Option<opsbot_fake_slack::Message> {
            self.slack.messages(ALERTS).into_iter().find(|m| m.thread_ts.is_none() && m.text.contains(needle))
        }

        async fn wait_for_alert(&self, needle: &str) -> opsbot_fake_slack::Message {
            self.slack
                .wait_for(PATIENCE, |_| self.alert(needle))
                .await
                .unwrap_or_else(|| panic!("no alert with {needle:?}: {:#?}", self.slack.all_messages()))
        }

        /// Replies in the thread of `alert`, as texts, once `count` are there.
        async fn wait_for_replies(&self, alert: &opsbot_fake_slack::Message, count: usize) -> Vec<String> {
            let texts = |s: &FakeSlack| -> Vec<String> {
                s.thread(&alert.channel, &alert.ts).into_iter().map(|m| m.text).collect()
            };
            self.slack
                .wait_for(PATIENCE, |s| Some(texts(s)).filter(|t| t.len() >= count))
                .await
                .unwrap_or_else(|| panic!("fewer than {count} replies: {:#?}", texts(&self.slack)))
        }

        /// Polls the store (it has no change notification) until `f` holds.
        async fn wait_for_store<F, Fut>(&self, what: &str, f: F)
        where
            F: Fn(Store) -> Fut,
            Fut: std::future::Future<Output = bool>,
        {
            let deadline = Instant::now() + PATIENCE;
            while !f(self.engine.store.clone()).await {
                assert!(Instant::now() < deadline, "never: {what}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        async fn stop(self) {
            self.shutdown.cancel();
            for worker in self.workers {
                worker.await.expect("the worker stops cleanly");
            }
        }
    }

    #[tokio::test]
    async fn effects_of_one_incident_arrive_in_order() {
        let mut rig = Rig::new().await;
        rig.incident("p0 API down").await;
        let who = Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        };
        for n in 1..=5 {
            rig.engine.command("/incident", &format!("update 1 update number {n}"), &who).await;
        }
        rig.start_worker(settings("test"));

        let alert = rig.wait_for_alert("API down").await;
        let first = rig.slack.messages(ALERTS).into_iter().next().expect("a message");
        assert_eq!(first.ts, alert.ts, "the alert comes first");
        let update = |t: &String| t.split("update number ").nth(1).map(|n| n.trim().to_owned());
        let texts = |s: &FakeSlack| -> Vec<String> {
            s.thread(&alert.channel, &alert.ts).into_iter().map(|m| m.text).collect()
        };
        let replies = rig
            .slack
            .wait_for(PATIENCE, |s| Some(texts(s)).filter(|t| t.iter().filter_map(update).count() >= 5))
            .await
            .unwrap_or_else(|| panic!("not all updates arrived: {:#?}", texts(&rig.slack)));
        let updates: Vec<String> = replies.iter().filter_map(update).collect();
        assert_eq!(updates, ["1", "2", "3", "4", "5"], "{replies:#?}");
        let first_update = replies.iter().position(|t| update(t).is_some()).unwrap();
        assert!(
            first_update > 0 && replies[0].contains("Paging"),
            "the declare's own replies come first: {replies:#?}"
        );
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_429_pauses_every_lane_until_retry_after() {
        let mut rig = Rig::new().await;
        rig.slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 1 });
        rig.incident("p0 API down").await;
        rig.start_worker(settings("test"));

        // The first alert got the 429. The test runs on one thread, so once
        // the retry is counted the pause is in place.
        let retried = crate::metrics::OutcomeLabels { outcome: "retried" };
        let deadline = Instant::now() + PATIENCE;
        while rig.engine.metrics.deliveries.get_or_create(&retried).get() == 0 {
            assert!(Instant::now() < deadline, "the 429 was never answered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let limited_at = Instant::now();
        rig.incident("p1 DB slow").await;

        let early =
            rig.slack.wait_for(Duration::from_millis(700), |s| (!s.all_messages().is_empty()).then_some(())).await;
        assert!(early.is_none(), "nothing is posted during the pause: {:#?}", rig.slack.all_messages());
        rig.wait_for_alert("API down").await;
        rig.wait_for_alert("DB slow").await;
        assert!(limited_at.elapsed() >= Duration::from_millis(700));
        assert!(rig.slack.calls("chat.postMessage") >= 3, "the 429, then both alerts");
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_thread_reply_queued_before_its_alert_steps_aside_and_arrives_after_it() {
        let mut rig = Rig::new().await;
        let store = rig.engine.store.clone();
        // Decide a declare, but commit it with a thread note as its only
        // effect, and queue the alert after it: the order a takeover from a
        // stopped replica can produce.
        let who = Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        };
        let command = opsbot_handlers::command::parse("/incident", "p0 API down").unwrap();
        let declare = Event::Command { command, who };
        let now = rig.engine.clock.now();
        let id = store.subjects.next_incident_id().await.unwrap();
        let decision = event::decide(&declare, Loaded::Incident(IncidentLoaded::NewId(id)), &rig.engine.runbook, now);
        let Some(Change::Incident(change)) = &decision.change else { panic!("a declare changes an incident") };
        let subject = opsbot_handlers::Subject::Incident(id);
        let note = Effect::InThread { subject, text: "queued before the alert".into() };
        let commit = Commit {
            subject: Some(Stored::Incident(&change.incident, 0)),
            timeline: &change.timeline,
            effects: std::slice::from_ref(&note),
            ..Commit::default()
        };
        assert_eq!(store.subjects.commit(&commit).await.unwrap(), crate::store::CommitOutcome::Committed);
        store.outbox.enqueue(&[Effect::Post(Message::anchor_of(subject))]).await.unwrap();
        rig.start_worker(settings("test"));

        let alert = rig.wait_for_alert("API down").await;
        let replies = rig.wait_for_replies(&alert, 1).await;
        assert_eq!(replies, ["queued before the alert"]);
        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        assert!(store.outbox.dead_letters().await.unwrap().is_empty());
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_permanent_refusal_goes_to_the_dead_letters_once() {
        let mut rig = Rig::new().await;
        rig.slack.fail_next("chat.postMessage", Failure::Error("channel_not_found".into()));
        rig.incident("p0 API down").await;
        let who = Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        };
        rig.engine.command("/incident", "update 1 rolled back", &who).await;
        rig.start_worker(settings("test"));

        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        let dead = rig.engine.store.outbox.dead_letters().await.unwrap();
        let error = |d: &serde_json::Value| d["error"].as_str().unwrap_or_default().to_owned();
        let alerts: Vec<_> = dead.iter().filter(|d| error(d).starts_with("channel_not_found")).collect();
        assert_eq!(alerts.len(), 1, "the alert is dead-lettered once: {dead:#?}");
        assert_eq!(rig.slack.calls("chat.postMessage"), 1, "a permanent refusal is not retried");
        assert!(
            dead.iter().any(|d| d["effect"].to_string().contains("rolled back") && error(d).contains("never posted")),
            "the update in its thread is dead-lettered rather than waiting: {dead:#?}"
        );
        assert!(rig.slack.all_messages().is_empty());
        rig.stop().await;
    }

    #[tokio::test]
    async fn entries_a_stopped_replica_held_are_taken_over() {
        let mut rig = Rig::new().await;
        rig.incident("p0 API down").await;
        let store = rig.engine.store.clone();
        store.outbox.prepare().await.unwrap();
        let held = store.outbox.read(OutboxStream::People, "a", 1000, None).await.unwrap();
        assert!(!held.is_empty());
        let more = store.outbox.read(OutboxStream::People, "a", 1000, None).await.unwrap();
        assert_eq!(more.len(), 0, "replica a holds them all");

        rig.start_worker(settings("b"));
        let alert = rig.wait_for_alert("API down").await;
        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        assert_eq!(rig.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count(), 1, "posted once");
        assert!(!rig.slack.thread(&alert.channel, &alert.ts).is_empty(), "its thread messages too");
        rig.stop().await;
    }

    /// An Alertmanager group firing one alert, routed to the team channel.
    fn warning_group(n: usize) -> opsbot_handlers::alert::signal::Signal {
        warning_group_firing(n, 1)
    }

    /// An Alertmanager group firing `alerts` alerts, routed to the team
    /// channel.
    fn warning_group_firing(n: usize, alerts: usize) -> opsbot_handlers::alert::signal::Signal {
        let labels = |pairs: &[(&str, String)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let name = format!("DiskFull{n}");
        opsbot_handlers::alert::signal::Signal::Alertmanager(opsbot_handlers::alert::signal::AlertmanagerGroup {
            group_key: format!("{{}}:{{alertname=\"{name}\"}}"),
            firing: true,
            receiver: "opsbot".into(),
            group_labels: labels(&[("alertname", name.clone())]),
            common_labels: labels(&[("alertname", name.clone()), ("severity", "warning".into())]),
            common_annotations: Default::default(),
            external_url: String::new(),
            alerts: (0..alerts)
                .map(|a| opsbot_handlers::alert::signal::AlertmanagerAlert {
                    fingerprint: format!("fp{n}-{a}"),
                    firing: true,
                    labels: labels(&[("alertname", name.clone()), ("instance", format!("host-{n}-{a}"))]),
                    annotations: Default::default(),
                    starts_at: None,
                    ends_at: None,
                    generator_url: String::new(),
                })
                .collect(),
        })
    }

    #[tokio::test]
    async fn a_storm_of_alerts_keeps_within_the_channel_budget_and_lists_every_alert_in_a_digest() {
        let mut rig = Rig::new().await;
        let groups = 40;
        for n in 0..groups {
            rig.engine.signal(warning_group(n)).await.unwrap();
        }
        let mut settings = settings("test");
        settings.storm.post_every = Duration::from_millis(100);
        settings.storm.burst = 2;
        settings.storm.digest_after = Duration::from_millis(300);
        settings.storm.flush_after = Duration::from_millis(50);
        settings.storm.lines_per_message = 10;
        let started = std::time::Instant::now();
        rig.start_worker(settings);

        // Every group is visible: as its own message, or as a line of the digest.
        let team = "#devops";
        let all_visible = |slack: &FakeSlack| {
            let text: String = slack.messages(team).iter().map(|m| format!("{} {}\n", m.text, m.blocks)).collect();
            (1..=groups as u64)
                .all(|id| text.contains(&format!("ALR-{id}*")) || text.contains(&format!("ALR-{id} ·")))
                .then_some(())
        };
        rig.slack.wait_for(PATIENCE, all_visible).await.expect("every alert visible");
        let elapsed = started.elapsed();
        let posts = rig.slack.messages(team);
        let top: Vec<_> = posts.iter().filter(|m| m.thread_ts.is_none()).collect();
        let digests: Vec<_> = top.iter().filter(|m| m.text.starts_with("⚠")).collect();
        assert_eq!(digests.len(), 1, "one digest for the storm: {:?}", top.iter().map(|m| &m.text).collect::<Vec<_>>());
        assert!(top.len() < groups / 2, "most groups were rolled into the digest, not posted one by one");
        let budget = 2 + (elapsed.as_millis() / 100) as usize + 1;
        assert!(posts.len() <= budget, "{} posts in {elapsed:?}, budget {budget}", posts.len());
        let thread = rig.slack.thread(team, &digests[0].ts);
        assert!(thread.len() >= 2, "lines in batches of 10: {}", thread.len());
        // Top-level: the digest, and the groups that had a posting slot.
        let digested = groups - (top.len() - 1);
        rig.slack
            .wait_for(PATIENCE, |slack| {
                let digest = slack.messages(team).into_iter().find(|m| m.text.starts_with("⚠"))?;
                digest.text.contains(&format!("in {digested} groups")).then_some(())
            })
            .await
            .expect("the digest counts the groups it holds");
        rig.stop().await;
    }

    #[tokio::test]
    async fn an_incident_declared_behind_a_storm_of_alerts_is_posted_before_them() {
        let mut rig = Rig::new().await;
        for n in 0..30 {
            rig.engine.signal(warning_group(n)).await.unwrap();
        }
        rig.incident("p1 API down").await;
        let mut settings = settings("test");
        settings.storm.post_every = Duration::from_millis(50);
        settings.storm.digest_after = Duration::from_millis(100);
        settings.storm.flush_after = Duration::from_millis(50);
        rig.start_worker(settings);

        let incident = rig.wait_for_alert("API down").await;
        let first_alert_post = rig
            .slack
            .wait_for(PATIENCE, |slack| {
                let posts = slack.messages("#devops");
                let all = (1..=30u64)
                    .all(|id| posts.iter().any(|m| format!("{} {}", m.text, m.blocks).contains(&format!("ALR-{id}"))));
                all.then(|| {
                    posts
                        .iter()
                        .map(|m| m.ts.clone())
                        .min_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()))
                })
            })
            .await
            .flatten()
            .expect("every alert visible");
        let ts = |t: &str| t.parse::<f64>().unwrap();
        assert!(ts(&incident.ts) < ts(&first_alert_post), "the incident went ahead of the alerts queued before it");
        rig.stop().await;
    }

    #[tokio::test]
    async fn alerts_are_read_only_as_fast_as_they_are_delivered_and_all_arrive() {
        let mut rig = Rig::new().await;
        let groups = 30;
        for n in 0..groups {
            rig.engine.signal(warning_group(n)).await.unwrap();
        }
        rig.incident("p1 API down").await;
        let store = rig.engine.store.clone();
        assert_eq!(store.outbox.len_of(OutboxStream::Alerts).await.unwrap(), groups as u64);
        let mut settings = settings("test");
        settings.alerts_held = 2;
        settings.storm.post_every = Duration::from_millis(50);
        settings.storm.digest_after = Duration::from_millis(100);
        settings.storm.flush_after = Duration::from_millis(50);
        rig.start_worker(settings);

        // The incident is not behind the alerts in any stream.
        rig.wait_for_alert("API down").await;
        let alerts_left = store.outbox.len_of(OutboxStream::Alerts).await.unwrap();
        assert!(alerts_left > 2, "the alerts wait in the store, not in the worker: {alerts_left} left");
        let team = "#devops";
        rig.slack
            .wait_for(PATIENCE, |slack| {
                let text: String = slack.messages(team).iter().map(|m| format!("{} {}\n", m.text, m.blocks)).collect();
                (1..=groups as u64).all(|id| text.contains(&format!("ALR-{id}"))).then_some(())
            })
            .await
            .expect("every alert visible");
        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        rig.stop().await;
    }

    #[tokio::test]
    async fn an_alert_edit_that_would_show_nothing_new_is_skipped() {
        let mut rig = Rig::new().await;
        // A group that changed four times before its message was posted.
        for alerts in 1..=5 {
            rig.engine.signal(warning_group_firing(7, alerts)).await.unwrap();
        }
        let store = rig.engine.store.clone();
        assert_eq!(store.outbox.len_of(OutboxStream::Alerts).await.unwrap(), 5, "a post and four edits");
        let mut settings = settings("test");
        // One at a time: no edit is superseded by a later one in the worker.
        settings.alerts_held = 1;
        rig.start_worker(settings);

        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        let posted = rig.slack.messages("#devops");
        assert_eq!(posted.len(), 1, "{posted:#?}");
        assert!(posted[0].text.contains("DiskFull7") || posted[0].blocks.to_string().contains("DiskFull7"));
        assert!(posted[0].blocks.to_string().contains("host-7-4"), "it shows all five alerts: {}", posted[0].blocks);
        assert_eq!(rig.slack.calls("chat.update"), 0, "the message showed the latest version when it was posted");

        // A change after it is shown is an edit as before.
        rig.engine.signal(warning_group_firing(7, 6)).await.unwrap();
        rig.wait_for_store("the outbox is empty", |s| async move { s.outbox.len().await.unwrap() == 0 }).await;
        assert_eq!(rig.slack.calls("chat.update"), 1);
        rig.stop().await;
    }
}
