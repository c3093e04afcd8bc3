//! The storm guard: alerts that arrive by themselves never flood Slack, and
//! never get ahead of what people asked for.
//!
//! - Priority, in this replica: people's actions and pages first (answers,
//!   new incidents and checklists, notes and pages in their threads), then
//!   updates of incidents' and runs' messages, then alerts. An alert waits
//!   while any entry of people's is dispatched and not settled (alerts have
//!   lanes of their own, so none is ever behind it); an update waits while
//!   an action is being delivered (not merely queued: an action may be
//!   queued behind that very update in its incident's lane).
//! - Budget: every alert post (a group's message, a line in its thread)
//!   takes one of its channel's posting slots, shared by all replicas
//!   through the store; Slack allows about one `chat.postMessage` per
//!   channel per second.
//! - Digest: an alert post that finds no slot (or comes while the channel's
//!   digest collects: the storm is on) is rolled into the channel's digest
//!   instead — one message per channel and window, edited in place
//!   with the count, every alert listed in its thread in batches — so
//!   nothing is dropped and the channel still sees one post a second.
//! - Coalescing: an edit superseded by a later edit of the same message is
//!   skipped (delivery renders the subject as it is when it sends, so the
//!   later edit shows everything), so is an edit of a message that shows
//!   its group's current version already (alerts wait in their stream
//!   during a storm, so the first of a group's entries to be delivered
//!   usually shows all its changes), and an alert's message is edited at
//!   most once per `refresh_gap`.

use crate::clock::Clock;
use crate::slack::client::{DeliveryError, SlackApi};
use crate::store::OutboxStore;
use opsbot_handlers::alert::render;
use opsbot_handlers::subject::AlertId;
use opsbot_handlers::MessageRef;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct StormSettings {
    /// One alert post per channel this often…
    pub post_every: Duration,
    /// …and this many at once after a quiet spell.
    pub burst: u32,
    /// How long an alert post waits for a slot before it goes to the
    /// digest: a few alerts at once are posted one by one, a storm is not.
    pub digest_after: Duration,
    /// How long a digest collects before the next one starts.
    pub digest_window: Duration,
    /// How long a digest waits for more lines before it shows them.
    pub flush_after: Duration,
    /// Lines per message in a digest's thread.
    pub lines_per_message: usize,
    /// The least time between two edits of one alert's message.
    pub refresh_gap: Duration,
}

impl Default for StormSettings {
    fn default() -> StormSettings {
        StormSettings {
            post_every: Duration::from_secs(1),
            burst: 3,
            digest_after: Duration::from_secs(3),
            digest_window: Duration::from_secs(60),
            flush_after: Duration::from_millis(1000),
            lines_per_message: 25,
            refresh_gap: Duration::from_secs(2),
        }
    }
}

/// The order in which entries go to Slack when several wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// What people asked for and pages: answers, new incidents and runs,
    /// notes and pages in their threads.
    Action,
    /// An incident's or run's message edited to show its state.
    Update,
    /// Anything of an alert group.
    Alert,
}

impl Priority {
    pub fn of(effect: &opsbot_handlers::Effect) -> Priority {
        use opsbot_handlers::{Effect, Subject};
        match effect {
            _ if matches!(effect.subject(), Some(Subject::Alert(_))) => Priority::Alert,
            Effect::Refresh(_) => Priority::Update,
            _ => Priority::Action,
        }
    }
}

/// What the guard shares between lanes.
pub struct StormGuard {
    queue: OutboxStore,
    slack: SlackApi,
    clock: Arc<dyn Clock>,
    settings: StormSettings,
    shutdown: CancellationToken,
    /// People's entries (actions and updates) dispatched and not settled.
    people: AtomicUsize,
    /// Alert entries dispatched and not settled.
    alerts: AtomicUsize,
    /// Actions being delivered right now.
    delivering_actions: AtomicUsize,
    /// The current digest of each channel.
    digests: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Digest>>>>,
    /// Per message (channel and ts): the newest edit dispatched, by entry id.
    latest_edit: Mutex<HashMap<String, String>>,
    /// Per alert message: when it was last edited.
    edited: Mutex<HashMap<String, Instant>>,
    /// Per alert message (as `latest_edit` names it): the group's version
    /// it shows, and since when.
    shown: Mutex<HashMap<String, (u64, Instant)>>,
}

/// One channel's digest for one window.
struct Digest {
    channel: String,
    started: Instant,
    since: chrono::DateTime<chrono::Utc>,
    /// The digest's own message, once posted.
    top: Option<MessageRef>,
    lines: Vec<String>,
    groups: HashSet<AlertId>,
    /// The thread's messages; message `i` holds lines `i * per .. (i + 1) * per`.
    batches: Vec<MessageRef>,
    /// Lines Slack shows already; waiters watch it.
    shown: watch::Sender<usize>,
    /// Why the digest cannot be shown, if Slack refused it for good.
    refused: Option<String>,
    flushing: bool,
}

impl StormGuard {
    pub fn new(
        queue: OutboxStore,
        slack: SlackApi,
        clock: Arc<dyn Clock>,
        settings: StormSettings,
        shutdown: CancellationToken,
    ) -> StormGuard {
        StormGuard {
            queue,
            slack,
            clock,
            settings,
            shutdown,
            people: AtomicUsize::new(0),
            alerts: AtomicUsize::new(0),
            delivering_actions: AtomicUsize::new(0),
            digests: Mutex::new(HashMap::new()),
            latest_edit: Mutex::new(HashMap::new()),
            edited: Mutex::new(HashMap::new()),
            shown: Mutex::new(HashMap::new()),
        }
    }

    /// An entry was dispatched (or is tried again after waiting); alerts
    /// wait until people's settle.
    pub fn dispatched(&self, priority: Priority) {
        self.counter(priority).fetch_add(1, Ordering::AcqRel);
    }

    /// It settled, waits for something later, or stopped.
    pub fn settled(&self, priority: Priority) {
        self.counter(priority).fetch_sub(1, Ordering::AcqRel);
    }

    fn counter(&self, priority: Priority) -> &AtomicUsize {
        match priority {
            Priority::Alert => &self.alerts,
            Priority::Action | Priority::Update => &self.people,
        }
    }

    /// People's entries dispatched and not settled.
    pub fn people(&self) -> usize {
        self.people.load(Ordering::Acquire)
    }

    /// Alert entries dispatched and not settled.
    pub fn alerts(&self) -> usize {
        self.alerts.load(Ordering::Acquire)
    }

    /// Waits until nothing of a higher class is ahead, then runs `deliver`
    /// (counted as an action being delivered when it is one).
    pub async fn in_turn<T>(&self, priority: Priority, deliver: impl std::future::Future<Output = T>) -> T {
        let ahead = |s: &Self| match priority {
            Priority::Action => 0,
            Priority::Update => s.delivering_actions.load(Ordering::Acquire),
            Priority::Alert => s.people(),
        };
        while ahead(self) > 0 && !self.shutdown.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if priority != Priority::Action {
            return deliver.await;
        }
        self.delivering_actions.fetch_add(1, Ordering::AcqRel);
        let result = deliver.await;
        self.delivering_actions.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// Remembers `entry` as the newest edit of `message_key`.
    pub fn edit_dispatched(&self, message_key: String, entry: &str) {
        lock(&self.latest_edit).insert(message_key, entry.to_owned());
    }

    /// Whether a later edit of the same message was dispatched after `entry`.
    pub fn edit_superseded(&self, message_key: &str, entry: &str) -> bool {
        lock(&self.latest_edit).get(message_key).is_some_and(|latest| latest != entry)
    }

    pub fn edit_settled(&self, message_key: &str, entry: &str) {
        let mut latest = lock(&self.latest_edit);
        if latest.get(message_key).is_some_and(|l| l == entry) {
            latest.remove(message_key);
        }
    }

    /// Whether the alert message `message_key` shows its group's `version`
    /// (or a later one) already.
    pub fn shows(&self, message_key: &str, version: u64) -> bool {
        lock(&self.shown).get(message_key).is_some_and(|(shown, _)| *shown >= version)
    }

    /// The alert message `message_key` shows its group at `version` (or
    /// later) now.
    pub fn shown(&self, message_key: String, version: u64) {
        let mut shown = lock(&self.shown);
        // Forgetting one only costs an edit that changes nothing; keep the
        // map to the messages of the last few minutes.
        if shown.len() > 10_000 {
            if let Some(horizon) = Instant::now().checked_sub(self.settings.digest_window) {
                shown.retain(|_, (_, at)| *at > horizon);
            }
        }
        let entry = shown.entry(message_key).or_insert((version, Instant::now()));
        *entry = (entry.0.max(version), Instant::now());
    }

    /// Waits out the gap since an alert message's last edit, then counts
    /// this one.
    pub async fn edit_gap(&self, at: &MessageRef) {
        let key = format!("{} {}", at.channel, at.ts);
        let last = lock(&self.edited).get(&key).copied();
        if let Some(last) = last {
            let next = last + self.settings.refresh_gap;
            if next > Instant::now() {
                tokio::select! {
                    _ = self.shutdown.cancelled() => {}
                    _ = tokio::time::sleep_until(next) => {}
                }
            }
        }
        let mut edited = lock(&self.edited);
        // Edits older than the gap say nothing any more; keep the map small.
        if edited.len() > 10_000 {
            let horizon = Instant::now() - self.settings.refresh_gap;
            edited.retain(|_, at| *at > horizon);
        }
        edited.insert(key, Instant::now());
    }

    /// Takes a posting slot of `channel` if one frees up within
    /// `digest_after`; `false`: the post belongs in the digest.
    pub async fn try_post_slot(&self, channel: &str) -> Result<bool, DeliveryError> {
        let give_up = Instant::now() + self.settings.digest_after;
        loop {
            match self.queue.take_post_slot(channel, self.settings.post_every, self.settings.burst).await {
                Ok(None) => return Ok(true),
                Ok(Some(wait)) if Instant::now() + wait <= give_up => tokio::select! {
                    _ = self.shutdown.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(wait) => {}
                },
                Ok(Some(_)) => return Ok(false),
                Err(e) => return Err(DeliveryError::Transient { reason: e.to_string(), retry_after: None }),
            }
        }
    }

    /// Waits for a posting slot of `channel` (the digest's own posts: at
    /// most one a window, and a thread message per batch of lines).
    async fn post_slot(&self, channel: &str) -> Result<(), DeliveryError> {
        loop {
            match self.queue.take_post_slot(channel, self.settings.post_every, self.settings.burst).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => tokio::select! {
                    _ = self.shutdown.cancelled() => return Err(DeliveryError::Transient { reason: "shutting down".into(), retry_after: None }),
                    _ = tokio::time::sleep(wait) => {}
                },
                Err(e) => return Err(DeliveryError::Transient { reason: e.to_string(), retry_after: None }),
            }
        }
    }

    /// Rolls `line` (about `group`) into `channel`'s digest and returns
    /// once Slack shows it, with where the digest is.
    pub async fn digest(
        self: &Arc<Self>,
        channel: &str,
        group: AlertId,
        line: String,
    ) -> Result<MessageRef, DeliveryError> {
        let digest = self.current_digest(channel);
        let (index, mut shown, top) = {
            let mut d = digest.lock().await;
            if d.top.is_none() {
                self.post_slot(channel).await?;
                let msg = render::digest(1, 1, d.since);
                d.top = Some(self.slack.post(channel, None, &msg.text, Some(&msg.blocks)).await?);
            }
            d.lines.push(line);
            d.groups.insert(group);
            if !d.flushing {
                d.flushing = true;
                let (guard, digest) = (self.clone(), digest.clone());
                tokio::spawn(async move { guard.flush(digest).await });
            }
            (d.lines.len(), d.shown.subscribe(), d.top.clone().expect("posted above"))
        };
        loop {
            if *shown.borrow_and_update() >= index {
                return Ok(top);
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    return Err(DeliveryError::Transient { reason: "shutting down".into(), retry_after: None })
                }
                changed = shown.changed() => {
                    if changed.is_err() {
                        return Err(DeliveryError::Transient { reason: "the digest went away".into(), retry_after: None });
                    }
                }
            }
            if let Some(why) = &digest.lock().await.refused {
                return Err(DeliveryError::Permanent { code: why.clone() });
            }
        }
    }

    /// Whether `channel` has a digest collecting now: a storm is on, so a
    /// new group or a thread note goes there at once rather than wait for
    /// a post of its own.
    pub fn storming(&self, channel: &str) -> bool {
        let window = self.settings.digest_window;
        lock(&self.digests).get(channel).is_some_and(|d| d.try_lock().map_or(true, |d| d.started.elapsed() < window))
    }

    /// The channel's digest for this window, a new one when the last is
    /// over.
    fn current_digest(&self, channel: &str) -> Arc<tokio::sync::Mutex<Digest>> {
        let mut digests = lock(&self.digests);
        let window = self.settings.digest_window;
        if let Some(d) = digests.get(channel) {
            let fresh = d.try_lock().map_or(true, |d| d.started.elapsed() < window);
            if fresh {
                return d.clone();
            }
        }
        let digest = Arc::new(tokio::sync::Mutex::new(Digest {
            channel: channel.to_owned(),
            started: Instant::now(),
            since: self.clock.now(),
            top: None,
            lines: Vec::new(),
            groups: HashSet::new(),
            batches: Vec::new(),
            shown: watch::channel(0).0,
            refused: None,
            flushing: false,
        }));
        digests.insert(channel.to_owned(), digest.clone());
        digest
    }

    /// Shows a digest's new lines: after `flush_after` (so lines from many
    /// lanes go out together), the thread's last message edited or a new
    /// one posted, and the count on the digest's message. Retries Slack's
    /// transient failures; a refusal for good fails the waiting entries.
    async fn flush(&self, digest: Arc<tokio::sync::Mutex<Digest>>) {
        let mut attempt = 0u32;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.settings.flush_after) => {}
            }
            let mut d = digest.lock().await;
            match self.show(&mut d).await {
                Ok(()) => {
                    attempt = 0;
                    let shown = d.lines.len();
                    d.shown.send_replace(shown);
                    if *d.shown.borrow() == d.lines.len() {
                        d.flushing = false;
                        return;
                    }
                }
                Err(DeliveryError::Permanent { code }) => {
                    tracing::error!(channel = %d.channel, error = %code, "Slack refused an alert digest for good");
                    d.refused = Some(code);
                    let shown = d.lines.len();
                    d.shown.send_replace(shown);
                    d.flushing = false;
                    return;
                }
                Err(e) => {
                    attempt += 1;
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(channel = %d.channel, error = %e, attempt, "alert digest not shown yet; will retry");
                    }
                    let wait = e.retry_after().unwrap_or(Duration::from_millis(200 * u64::from(attempt.min(50))));
                    drop(d);
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn show(&self, d: &mut Digest) -> Result<(), DeliveryError> {
        let Some(top) = d.top.clone() else { return Ok(()) };
        let per = self.settings.lines_per_message.max(1);
        let first_changed = *d.shown.borrow() / per;
        for batch in first_changed..d.lines.len().div_ceil(per) {
            let lines = &d.lines[batch * per..((batch + 1) * per).min(d.lines.len())];
            let msg = render::digest_batch(lines);
            match d.batches.get(batch) {
                Some(at) => self.slack.update(at, &msg.text, Some(&msg.blocks)).await?,
                None => {
                    self.post_slot(&d.channel).await?;
                    let at = self.slack.post(&top.channel, Some(&top.ts), &msg.text, Some(&msg.blocks)).await?;
                    d.batches.push(at);
                }
            }
        }
        let msg = render::digest(d.lines.len(), d.groups.len(), d.since);
        self.slack.update(&top, &msg.text, Some(&msg.blocks)).await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
