//! Incidents, checklist runs, alert groups, deployments, handoffs, on-call overrides and swaps as stored: their state,
//! timelines and indexes, the commit of a decision, and where their Slack
//! messages are; the per-day incident tallies `/incident stats` reads,
//! and their rebuild; the window of finished workflow runs the KPI alerts
//! read; and the re-runs people asked for from `/pipeline runs`, stored
//! like a subject's state (versioned, committed with their effects) by the
//! run's id.

use super::{from_json, Backend, StoreResult, Versioned};
use chrono::NaiveDate;
use opsbot_handlers::alert::{AlertGroup, RunSample};
use opsbot_handlers::delivery::State;
use opsbot_handlers::deploy::Deployment;
use opsbot_handlers::incident::stats::{self, Tally};
use opsbot_handlers::oncall::handoff::Handoff;
use opsbot_handlers::oncall::overrides::Override;
use opsbot_handlers::oncall::swap::Swap;
use opsbot_handlers::pipeline::rerun::RerunRequest;
use opsbot_handlers::run::{Run, RunId};
use opsbot_handlers::subject::AlertId;
use opsbot_handlers::subject::{DeployId, HandoffId, OverrideId, SwapId};
use opsbot_handlers::subject::{Posted, ANCHOR_KEY};
use opsbot_handlers::{Effect, Incident, IncidentId, Message, MessageRef, Runbook, Subject, TimelineEntry, Timer};
use std::collections::{BTreeMap, HashMap};

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

/// One decision, as the store commits it: all of it or none of it. The
/// default writes nothing: a commit names only what it changes.
#[derive(Default)]
pub struct Commit<'a> {
    /// The incident's or run's new state and the version it was loaded at
    /// (0: new).
    pub subject: Option<Stored<'a>>,
    /// Other subjects written with it, each guarded by its version the same
    /// way: the two overrides an accepted swap makes.
    pub also: &'a [Stored<'a>],
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
    /// The alert group in `subject` opens: its source key names it from now on, if
    /// the key still names the group it replaces (else a conflict, so two
    /// replicas never open two groups for one source).
    pub opens: Option<OpeningGroup<'a>>,
    /// A finished workflow run for the KPI window (kept by run and attempt,
    /// so a redelivery adds nothing).
    pub sample: Option<&'a RunSample>,
    /// What the incident's commit changes in its declaration day's tally
    /// (`/incident stats` reads those, never the incidents).
    pub tally: Option<&'a Tally>,
}

/// The incidents declared on one UTC day, as read to rebuild its tally.
#[derive(Clone, Debug)]
pub struct DeclaredOn {
    pub day: NaiveDate,
    /// Every number the declared index holds for the day, with the version
    /// read (0: nothing stored under it): the rebuilt tally is written only
    /// if these are still the day's incidents, at these versions.
    pub versions: Vec<(IncidentId, u64)>,
    pub incidents: Vec<Incident>,
}

/// How rebuilding a day's tally went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TallyRebuild {
    /// The tally holds what this many incidents count for.
    Rebuilt { incidents: usize },
    /// Its incidents changed between read and write at every attempt
    /// (commits to them, or new ones declared that day), so it was left as
    /// it was; a rebuild later, when the day is quieter, is as safe.
    KeptChanging { attempts: u32 },
}

/// How often a day's rebuild reads again after its incidents changed
/// under it, before it gives up on the day.
pub const TALLY_REBUILD_ATTEMPTS: u32 = 5;

/// See [`Commit::opens`].
#[derive(Clone, Copy, Debug)]
pub struct OpeningGroup<'a> {
    pub key: &'a str,
    pub replaces: Option<AlertId>,
}

/// What a commit writes state for.
#[derive(Clone, Copy)]
pub enum Stored<'a> {
    Incident(&'a Incident, u64),
    Run(&'a Run, u64),
    Alert(&'a AlertGroup, u64),
    Deployment(&'a Deployment, u64),
    Handoff(&'a Handoff, u64),
    Override(&'a Override, u64),
    Rerun(&'a RerunRequest, u64),
    Swap(&'a Swap, u64),
}

/// Incidents and runs; see the module's comment.
#[derive(Clone)]
pub struct SubjectStore {
    pub(super) backend: Backend,
}

impl SubjectStore {
    /// Numbers are never reused; a declare that fails after this leaves a gap.
    pub async fn next_incident_id(&self) -> StoreResult<IncidentId> {
        dispatch!(self.next_incident_id())
    }

    /// The re-run a person asked for of GitHub run `run_id`, if any.
    pub async fn load_rerun(&self, run_id: u64) -> StoreResult<Option<Versioned<RerunRequest>>> {
        dispatch!(self.load_rerun(run_id))
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

    /// The newest `limit` open incidents, and how many are open: what a
    /// list shows costs the same however many are open.
    pub async fn open_incidents_first(&self, limit: usize) -> StoreResult<(Vec<Incident>, usize)> {
        dispatch!(self.open_incidents_first(limit))
    }

    /// The tallies of incidents declared on `days` (UTC), summed: field →
    /// count (see `opsbot_handlers::incident::stats`).
    pub async fn incident_tallies(&self, days: &[NaiveDate]) -> StoreResult<BTreeMap<String, i64>> {
        dispatch!(self.incident_tallies(days))
    }

    /// The incidents declared on `day` (UTC), oldest first, with their
    /// versions.
    pub async fn incidents_declared_on(&self, day: NaiveDate) -> StoreResult<DeclaredOn> {
        dispatch!(self.incidents_declared_on(day))
    }

    /// Replaces the tally of `read.day` with `tally` (field → count), only
    /// if the incidents declared that day are still those read, at the
    /// versions read: else [`CommitOutcome::Conflict`], and nothing is
    /// written. Checked and written in one step, so no commit's increment
    /// is lost under the new tally or counted twice in it.
    pub async fn replace_incident_tally(
        &self,
        read: &DeclaredOn,
        tally: &BTreeMap<String, i64>,
    ) -> StoreResult<CommitOutcome> {
        dispatch!(self.replace_incident_tally(read, tally))
    }

    /// Rebuilds the tally of `day` from its incidents as they stand (what
    /// they count for against `runbook`'s targets): reads them, counts, and
    /// replaces the tally if they did not change meanwhile, else reads
    /// again, up to [`TALLY_REBUILD_ATTEMPTS`] times. Safe while bots
    /// commit: their increments land either before the read or after the
    /// replacement.
    pub async fn rebuild_incident_tally(&self, day: NaiveDate, runbook: &Runbook) -> StoreResult<TallyRebuild> {
        // Short pauses: a commit takes milliseconds, so a clash is usually
        // over by the next attempt.
        let mut pause = std::time::Duration::from_millis(20);
        for attempt in 1..=TALLY_REBUILD_ATTEMPTS {
            let read = self.incidents_declared_on(day).await?;
            let tally = stats::day_tally(&read.incidents, runbook);
            if self.replace_incident_tally(&read, &tally).await? == CommitOutcome::Committed {
                return Ok(TallyRebuild::Rebuilt { incidents: read.incidents.len() });
            }
            if attempt < TALLY_REBUILD_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Ok(TallyRebuild::KeptChanging { attempts: TALLY_REBUILD_ATTEMPTS })
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

    /// Records where a message landed (and, for an anchor, the channel as
    /// the runbook names it), so it is edited later and never posted twice.
    pub async fn record_posted(&self, message: &Message, at: &MessageRef, route: Option<&str>) -> StoreResult<()> {
        dispatch!(self.record_posted(message, at, route))
    }

    /// Records that an anchor went into its channel's storm digest (`digest`
    /// is the digest's message), so it is never posted on its own later.
    pub async fn record_digested(&self, message: &Message, digest: &MessageRef, route: &str) -> StoreResult<()> {
        dispatch!(self.record_digested(message, digest, route))
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
            Subject::Alert(id) => {
                self.load_alert(id).await?.map(|v| Versioned { value: State::Alert(v.value), version: v.version })
            }
            Subject::Deployment(id) => self
                .load_deployment(id)
                .await?
                .map(|v| Versioned { value: State::Deployment(v.value), version: v.version }),
            Subject::Handoff(id) => {
                self.load_handoff(id).await?.map(|v| Versioned { value: State::Handoff(v.value), version: v.version })
            }
            Subject::Override(id) => {
                self.load_override(id).await?.map(|v| Versioned { value: State::Override(v.value), version: v.version })
            }
            Subject::Swap(id) => {
                self.load_swap(id).await?.map(|v| Versioned { value: State::Swap(v.value), version: v.version })
            }
        })
    }

    /// A rotation's plan as last stored (see `oncall::plan`), as JSON.
    pub async fn rotation_plan(&self, role: &str) -> StoreResult<Option<String>> {
        dispatch!(self.rotation_plan(role))
    }

    /// Stores a rotation's plan if the stored one is still `expected`
    /// (`None`: none yet), so of several replicas starting with a new
    /// runbook exactly one sees the change and tells the people it moves.
    pub async fn replace_rotation_plan(&self, role: &str, expected: Option<&str>, plan: &str) -> StoreResult<bool> {
        dispatch!(self.replace_rotation_plan(role, expected, plan))
    }

    /// Numbers are never reused; an override refused after this leaves a gap.
    pub async fn next_override_id(&self) -> StoreResult<OverrideId> {
        dispatch!(self.next_override_id())
    }

    pub async fn load_override(&self, id: OverrideId) -> StoreResult<Option<Versioned<Override>>> {
        dispatch!(self.load_override(id))
    }

    /// Overrides not cancelled and not marked over, oldest first: the ones
    /// pages follow (or will).
    /// Swap offers nobody has answered yet, oldest first.
    pub async fn open_swaps(&self) -> StoreResult<Vec<Swap>> {
        dispatch!(self.open_swaps())
    }

    pub async fn open_overrides(&self) -> StoreResult<Vec<Override>> {
        dispatch!(self.open_overrides())
    }

    /// Numbers are never reused; an offer refused after this leaves a gap.
    pub async fn next_swap_id(&self) -> StoreResult<SwapId> {
        dispatch!(self.next_swap_id())
    }

    pub async fn load_swap(&self, id: SwapId) -> StoreResult<Option<Versioned<Swap>>> {
        dispatch!(self.load_swap(id))
    }

    /// Numbers are never reused; a shift change that fails after this
    /// leaves a gap.
    pub async fn next_handoff_id(&self) -> StoreResult<HandoffId> {
        dispatch!(self.next_handoff_id())
    }

    pub async fn load_handoff(&self, id: HandoffId) -> StoreResult<Option<Versioned<Handoff>>> {
        dispatch!(self.load_handoff(id))
    }

    /// Numbers are never reused; a confirmation that fails after this
    /// leaves a gap.
    pub async fn next_deployment_id(&self) -> StoreResult<DeployId> {
        dispatch!(self.next_deployment_id())
    }

    pub async fn load_deployment(&self, id: DeployId) -> StoreResult<Option<Versioned<Deployment>>> {
        dispatch!(self.load_deployment(id))
    }

    /// Numbers are never reused; an opening that loses to another replica's
    /// leaves a gap.
    pub async fn next_alert_id(&self) -> StoreResult<AlertId> {
        dispatch!(self.next_alert_id())
    }

    pub async fn load_alert(&self, id: AlertId) -> StoreResult<Option<Versioned<AlertGroup>>> {
        dispatch!(self.load_alert(id))
    }

    /// The group a source key names now (firing, or the last one, resolved).
    pub async fn current_alert(&self, key: &str) -> StoreResult<Option<Versioned<AlertGroup>>> {
        dispatch!(self.current_alert(key))
    }

    /// Checklist runs not completed, newest first.
    pub async fn open_runs(&self) -> StoreResult<Vec<Run>> {
        dispatch!(self.open_runs())
    }

    /// Firing alert groups, newest first.
    pub async fn open_alerts(&self) -> StoreResult<Vec<AlertGroup>> {
        dispatch!(self.open_alerts())
    }

    /// Finished workflow runs since `since`, oldest first.
    pub async fn run_samples_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<RunSample>> {
        dispatch!(self.run_samples_since(since))
    }

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
}

/// The hash field that records where a checklist or step message landed.
pub(super) fn message_field(part_key: &str) -> String {
    format!("msg:{part_key}")
}

/// A message location as a hash value: `<channel> <ts>`.
pub(super) fn message_value(at: &MessageRef) -> String {
    format!("{} {}", at.channel, at.ts)
}

/// A message location read back from [`message_value`].
pub(super) fn parse_message_value(value: &str) -> Option<MessageRef> {
    value.split_once(' ').map(|(channel, ts)| MessageRef { channel: channel.to_owned(), ts: ts.to_owned() })
}

/// Where a subject's messages are, from its hash fields: `msg:<key>` for
/// each message (the anchor is `msg:anchor`) and `route`. Hashes written by
/// earlier versions named the alert `alert_channel`/`alert_ts`/`alert_route`
/// and a run's header `header`; both are still read.
pub(super) fn posted_from_fields(fields: &HashMap<String, String>) -> Posted {
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
    posted.digested = fields.contains_key(DIGESTED);
    posted
}

/// Set when a subject's anchor went into a storm digest.
pub(super) const DIGESTED: &str = "digested";

/// The hash fields that record an anchor rolled into a digest.
pub(super) fn digested_fields(message: &Message, digest: &MessageRef, route: &str) -> Vec<(String, String)> {
    let mut fields = posted_fields(message, digest, Some(route));
    fields.push((DIGESTED.to_owned(), "1".to_owned()));
    fields
}

/// The hash fields that record a message's location.
pub(super) fn posted_fields(message: &Message, at: &MessageRef, route: Option<&str>) -> Vec<(String, String)> {
    let mut fields = vec![(message_field(&message.key()), message_value(at))];
    if let Some(route) = route {
        fields.push(("route".to_owned(), route.to_owned()));
    }
    fields
}

/// Why the anchor could not be posted, if it could not.
pub(super) const ANCHOR_ERROR: &str = "anchor_error";

/// The fields that may say so: today's, then the one earlier versions wrote.
pub(super) const ANCHOR_ERROR_FIELDS: [&str; 2] = [ANCHOR_ERROR, "alert_error"];

pub(super) fn anchor_error(fields: &HashMap<String, String>) -> Option<String> {
    ANCHOR_ERROR_FIELDS.iter().find_map(|f| fields.get(*f)).cloned()
}

/// The fields a listed incident is read from: its state and its alert.
pub(super) const LISTED_FIELDS: &[&str] = &["state", "msg:anchor", "alert_channel", "alert_ts"];

/// The alert of a listed incident, from [`LISTED_FIELDS`].
pub(super) fn listed_anchor(field: impl Fn(&str) -> Option<String>) -> Option<MessageRef> {
    field("msg:anchor")
        .as_deref()
        .and_then(parse_message_value)
        .or_else(|| field("alert_channel").zip(field("alert_ts")).map(|(channel, ts)| MessageRef { channel, ts }))
}

/// An incident from all its hash fields, with where its messages are.
pub(super) fn incident_from_fields(
    key: &str,
    mut fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<Incident>>> {
    let Some(state) = fields.remove("state") else { return Ok(None) };
    let mut incident: Incident = from_json(key, &state)?;
    let version = fields.get("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    incident.posted = posted_from_fields(&fields);
    Ok(Some(Versioned { value: incident, version }))
}

/// The declared index's bounds for `day`, in its scores (ms): from, and
/// to (excluded).
pub(super) fn declared_on_millis(day: NaiveDate) -> (i64, i64) {
    let (from, to) = stats::day_span(day);
    (from.timestamp_millis(), to.timestamp_millis())
}

/// The incidents declared on `day` from what is stored under each number
/// the declared index holds for it: (number, key, state, version), in the
/// index's order.
pub(super) fn declared_on<'a>(
    day: NaiveDate,
    stored: impl IntoIterator<Item = (u64, String, Option<&'a str>, Option<&'a str>)>,
) -> StoreResult<DeclaredOn> {
    let mut read = DeclaredOn { day, versions: Vec::new(), incidents: Vec::new() };
    for (number, key, state, version) in stored {
        // An index entry without its incident would be a bug: it counts for
        // nothing, but its absence is checked like any version.
        let version = version.and_then(|v| v.parse().ok()).unwrap_or(0);
        read.versions.push((IncidentId(number), version));
        if let Some(state) = state {
            read.incidents.push(from_json(&key, state)?);
        }
    }
    Ok(read)
}

/// An incident as listed (open, recent): state and alert only, the cheap
/// fetch lists use.
pub(super) fn listed_incident(key: &str, state: &str, alert: Option<MessageRef>) -> StoreResult<Incident> {
    let mut incident: Incident = from_json(key, state)?;
    if let Some(alert) = alert {
        incident.posted.messages.insert(ANCHOR_KEY.to_owned(), alert);
    }
    Ok(incident)
}

/// Reads one kind of subject from its hash fields (`*_from_fields`).
pub(super) type FromFields<T> = fn(&str, HashMap<String, String>) -> StoreResult<Option<Versioned<T>>>;

/// A subject from all its hash fields (`state`, `v` and where its
/// messages are); `posted` says where the state keeps the latter.
fn subject_from_fields<T: serde::de::DeserializeOwned>(
    key: &str,
    mut fields: HashMap<String, String>,
    posted: impl FnOnce(&mut T) -> &mut Posted,
) -> StoreResult<Option<Versioned<T>>> {
    let Some(state) = fields.remove("state") else { return Ok(None) };
    let mut value: T = from_json(key, &state)?;
    let version = fields.get("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    *posted(&mut value) = posted_from_fields(&fields);
    Ok(Some(Versioned { value, version }))
}

/// An alert group from all its hash fields, with where its message is.
pub(super) fn alert_from_fields(
    key: &str,
    fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<AlertGroup>>> {
    subject_from_fields(key, fields, |g: &mut AlertGroup| &mut g.posted)
}

/// A deployment from all its hash fields, with where its message is.
pub(super) fn deployment_from_fields(
    key: &str,
    fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<Deployment>>> {
    subject_from_fields(key, fields, |d: &mut Deployment| &mut d.posted)
}

/// An override from all its hash fields, with where its message is.
pub(super) fn override_from_fields(
    key: &str,
    fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<Override>>> {
    subject_from_fields(key, fields, |o: &mut Override| &mut o.posted)
}

/// A swap offer from all its hash fields, with where its DM is.
pub(super) fn swap_from_fields(key: &str, fields: HashMap<String, String>) -> StoreResult<Option<Versioned<Swap>>> {
    subject_from_fields(key, fields, |s: &mut Swap| &mut s.posted)
}

/// A handoff from all its hash fields, with where its messages are.
pub(super) fn handoff_from_fields(
    key: &str,
    fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<Handoff>>> {
    subject_from_fields(key, fields, |h: &mut Handoff| &mut h.posted)
}

/// A person's re-run from its hash fields.
pub(super) fn rerun_from_fields(
    key: &str,
    mut fields: HashMap<String, String>,
) -> StoreResult<Option<Versioned<RerunRequest>>> {
    let Some(state) = fields.remove("state") else { return Ok(None) };
    let request: RerunRequest = from_json(key, &state)?;
    let version = fields.get("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Some(Versioned { value: request, version }))
}

/// The KPI window: how long and how many runs it keeps.
pub(super) fn sample_trim(sample: &RunSample) -> (i64, usize) {
    let oldest = sample.finished - opsbot_handlers::alert::SAMPLES_KEPT_FOR;
    (oldest.timestamp_millis(), opsbot_handlers::alert::SAMPLES_KEPT)
}

/// A run from all its hash fields, with where its messages are.
pub(super) fn run_from_fields(key: &str, fields: HashMap<String, String>) -> StoreResult<Option<Versioned<Run>>> {
    subject_from_fields(key, fields, |r: &mut Run| &mut r.posted)
}
