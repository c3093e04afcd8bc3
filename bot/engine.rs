//! Runs every decision the same way: ask the core what to load, load it,
//! decide, and commit atomically, starting again from a fresh load when
//! someone else changed the same incident or run meanwhile. Commands,
//! clicks, modal submissions, timers, schedule slots and mentions all go
//! through the one loop, [`Engine::until_committed`].

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::{Commit, CommitOutcome, OpeningGroup, StoreResult, Stored, Versioned};
use opsbot_handlers::alert::decide::{kpi_crosses, Loaded as AlertLoaded, Need as AlertNeed};
use opsbot_handlers::alert::signal::Signal;
use opsbot_handlers::codec::{Button, Submission};
use opsbot_handlers::command::{self, SlashCommand};
use opsbot_handlers::decision::{FieldError, Modal};
use opsbot_handlers::deploy::decide::{preview_wanted, InGroup, Loaded as DeployLoaded, Need as DeployNeed};
use opsbot_handlers::event::{self, Change, Event, Loaded, Need};
use opsbot_handlers::incident::command::Command as IncidentCommand;
use opsbot_handlers::incident::decide::{Loaded as IncidentLoaded, Need as IncidentNeed};
use opsbot_handlers::oncall::handoff::{Loaded as HandoffLoaded, Need as HandoffNeed};
use opsbot_handlers::oncall::overrides::{Loaded as OverrideLoaded, Need as OverrideNeed};
use opsbot_handlers::oncall::report::ShiftReport;
use opsbot_handlers::oncall::swap::{Loaded as SwapLoaded, Need as SwapNeed};
use opsbot_handlers::pipeline::rerun::{Loaded as RerunLoaded, Need as RerunNeed};
use opsbot_handlers::pipeline::{Loaded as PipelineLoaded, Need as PipelineNeed};
use opsbot_handlers::run::decide::{Loaded as RunLoaded, Need as RunNeed};
use opsbot_handlers::timer::TimerKind;
use opsbot_handlers::{replies, Decision, Effect, Invocation, Reply, Runbook, Timer};
use std::sync::Arc;

/// Commit attempts before telling the person to try again; conflicts need
/// several people changing one incident in the same few milliseconds.
const COMMIT_ATTEMPTS: usize = 8;

/// What deciding needs: the store, the runbook, the time and the counters.
pub struct Engine {
    pub store: Store,
    pub runbook: Arc<Runbook>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// How `/pipeline` reaches GitHub (what it is connected to).
    pub github: crate::github::GitHub,
    /// `runbook` with the on-call overrides: what decisions see.
    pub roster: Arc<crate::roster::Roster>,
    /// Slack's user groups, for permissions that name them.
    pub user_groups: crate::slack::usergroups::UserGroups,
}

/// How a signal's decisions ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalled {
    /// Every decision it called for committed.
    Decided,
    /// Others kept changing the same group: at least one decision was not
    /// written, and the signal should be decided again.
    Contended,
}

/// What a slash command answers: the text only its typer sees, and a
/// modal to open with the command's `trigger_id` when it asks for one.
pub struct Answer {
    pub reply: Reply,
    pub modal: Option<Modal>,
}

/// How a load–decide–commit cycle ended.
pub enum Settled {
    /// Committed: the decision that was.
    Done(Box<Decision<Change>>),
    /// The timer it acted on was taken by another replica: nothing written.
    TimerGone,
    /// Others kept changing the same incident or run: nothing written.
    Contended,
}

impl Engine {
    pub fn new(
        store: Store,
        runbook: Arc<Runbook>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        github: crate::github::GitHub,
        user_groups: crate::slack::usergroups::UserGroups,
    ) -> Engine {
        let roster = Arc::new(crate::roster::Roster::new(runbook.clone()));
        Engine { store, runbook, clock, metrics, github, roster, user_groups }
    }

    /// A slash command, from its text to the answer shown to the person
    /// (and the modal it opens, if any).
    pub async fn command(&self, name: &str, text: &str, who: &Invocation) -> Answer {
        let command = match command::parse(name, text) {
            Ok(command) => command,
            Err(usage) => return Answer { reply: usage.reply(), modal: None },
        };
        let declares = matches!(command, SlashCommand::Incident(IncidentCommand::Declare { .. }));
        let event = Event::Command { command, who: who.clone() };
        match self.until_committed(&event, None).await {
            Ok(Settled::Done(decision)) => {
                if let Some(Change::Incident(c)) = &decision.change {
                    let inc = &c.incident;
                    tracing::info!(incident = %inc.id, severity = %inc.severity, status = inc.status.as_str(), user = %who.user, "incident changed");
                    if declares {
                        self.metrics
                            .declared
                            .get_or_create(&crate::metrics::SeverityLabels { severity: inc.severity.as_str() })
                            .inc();
                    }
                }
                if let Some(Change::Run(run)) = &decision.change {
                    tracing::info!(run = %run.id, checklist = %run.checklist, user = %who.user, "run changed");
                }
                let decision = *decision;
                Answer { reply: decision.reply, modal: decision.modal }
            }
            Ok(_) => Answer { reply: Reply::text(replies::CONTENDED), modal: None },
            Err(crate::store::StoreError::Lost) => Answer { reply: Reply::text(replies::STORE_LOST), modal: None },
            Err(e) => {
                tracing::warn!(error = %e, "command not run: store unavailable");
                Answer { reply: Reply::text(replies::STORE_DOWN), modal: None }
            }
        }
    }

    /// A click on one of opsbot's buttons. Refusals reach the clicker as
    /// ephemeral notes through the outbox. Returns a modal to open right
    /// away when the click asks for one.
    pub async fn click(&self, button: Button, who: &Invocation) -> StoreResult<Option<Modal>> {
        match self.until_committed(&Event::Click { button, who: who.clone() }, None).await? {
            Settled::Done(decision) => Ok(decision.modal),
            Settled::TimerGone | Settled::Contended => {
                self.tell(who, replies::CONTENDED).await?;
                Ok(None)
            }
        }
    }

    /// A modal was submitted: `None` closes it, a [`FieldError`] keeps it
    /// open showing why.
    pub async fn submission(&self, submission: Submission, who: &Invocation) -> StoreResult<Option<FieldError>> {
        let field = submission.field();
        match self.until_committed(&Event::Submission { submission, who: who.clone() }, None).await? {
            Settled::Done(decision) => {
                if let Some(Change::Deployment(d)) = &decision.change {
                    tracing::info!(deployment = %d.id, environment = %d.environment, git_ref = %d.git_ref, user = %who.user, "deployment asked for");
                }
                Ok(decision.invalid)
            }
            Settled::TimerGone | Settled::Contended => Ok(Some(FieldError { field, text: replies::CONTENDED.into() })),
        }
    }

    /// A due timer: decided against its subject as it is now, and consumed
    /// in the same commit, so it takes effect once however many replicas
    /// see it.
    pub async fn timer(&self, stored: &str, timer: &Timer) -> StoreResult<()> {
        match self.until_committed(&Event::Timer(timer.clone()), Some(stored)).await? {
            Settled::Done(decision) => {
                if let Some(why) = &decision.log {
                    tracing::warn!(timer = %timer.describe(), "{why}");
                }
                if decision.changes_state() || !decision.effects.is_empty() {
                    self.metrics.timers_acted.inc();
                    tracing::info!(timer = %timer.describe(), "timer acted");
                }
            }
            Settled::Contended => {
                tracing::warn!(timer = %timer.describe(), "timer contended; will try again on the next tick")
            }
            Settled::TimerGone => {}
        }
        Ok(())
    }

    /// `@opsbot …` in a channel, answered in the thread.
    pub async fn mention(&self, text: &str, channel: &str, thread_ts: &str) -> StoreResult<()> {
        let event = Event::Mention { text: text.to_owned(), channel: channel.to_owned(), ts: thread_ts.to_owned() };
        self.until_committed(&event, None).await.map(drop)
    }

    /// A webhook's signal, decided against its group, then the KPI checks
    /// it calls for. Each decision is idempotent (a repeated signal changes
    /// nothing), so a signal retried after a crash between them is safe,
    /// and so is retrying the whole signal when one of them stayed
    /// contended.
    pub async fn signal(&self, signal: Signal) -> StoreResult<Signalled> {
        let mut outcome = Signalled::Decided;
        let mut pending = vec![Event::Signal(signal)];
        while let Some(event) = pending.pop() {
            match self.until_committed(&event, None).await? {
                Settled::Done(decision) => {
                    if let Some(Change::Alert(change)) = &decision.change {
                        if let Some(write) = &change.group {
                            let g = &write.group;
                            let what = if write.opens.is_some() { "alert group opened" } else { "alert group changed" };
                            tracing::info!(alert = %g.id, key = %g.key, firing = g.firing, "{what}");
                        }
                    }
                    if let Some(Change::Deployment(d)) = &decision.change {
                        tracing::info!(deployment = %d.id, environment = %d.environment, state = ?d.state, "deployment changed");
                    }
                    pending.extend(event::follow_ups(&event, &decision, &self.runbook));
                }
                Settled::Contended => {
                    tracing::warn!("an alert stayed contended; it is decided again on redelivery");
                    outcome = Signalled::Contended;
                }
                Settled::TimerGone => {}
            }
        }
        Ok(outcome)
    }

    /// A note only `who` sees, outside any decision.
    pub async fn tell(&self, who: &Invocation, text: &str) -> StoreResult<()> {
        let note = Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text: text.to_owned() };
        self.store.outbox.enqueue(&[note]).await
    }

    /// Loads what the core asks for, decides, and commits; when a concurrent
    /// change refuses the commit, starts again from a fresh load. `consume`
    /// is the stored timer the event is, taken by the same commit.
    pub async fn until_committed(&self, event: &Event, consume: Option<&str>) -> StoreResult<Settled> {
        let with_groups = self.with_groups(event).await;
        let event = with_groups.as_ref().unwrap_or(event);
        for _ in 0..COMMIT_ATTEMPTS {
            let now = self.clock.now();
            let runbook = self.roster.runbook();
            let need = event::needs(event, &runbook, now);
            let (loaded, versions) = self.load(need, now).await?;
            let decision = event::decide(event, loaded, &runbook, now);
            // A re-run press writes the alert group loaded beside the
            // request when the group follows the run: its version guards.
            let version = match (&decision.change, versions.alert) {
                (Some(Change::Alert(_)), Some(alert)) => alert,
                _ => versions.subject,
            };
            match self.commit(event, &decision, version, consume).await? {
                CommitOutcome::Committed => {
                    let covers: Vec<_> = match &decision.change {
                        Some(Change::Override(o)) => vec![o.id],
                        Some(Change::Swap(c)) => c.overrides.iter().map(|o| o.id).collect(),
                        _ => Vec::new(),
                    };
                    if !covers.is_empty() {
                        // This replica follows them from the next decision on.
                        if let Err(e) = self.roster.refresh(&self.store).await {
                            tracing::warn!(covers = ?covers, error = %e, "override stored; pages follow it once reloaded");
                        }
                    }
                    return Ok(Settled::Done(Box::new(decision)));
                }
                CommitOutcome::TimerGone => return Ok(Settled::TimerGone),
                CommitOutcome::Conflict => continue,
            }
        }
        Ok(Settled::Contended)
    }

    /// The event with the person's user groups filled in, when the
    /// runbook's permissions name any: which of them Slack says the person
    /// is in (cached, and at most a second's wait), so the core can tell
    /// who may. `None`: nothing to fill.
    async fn with_groups(&self, event: &Event) -> Option<Event> {
        let runbook = self.roster.runbook();
        let groups = runbook.permissions.user_groups(&runbook.roles);
        if groups.is_empty() {
            return None;
        }
        let mut event = event.clone();
        let who = match &mut event {
            Event::Command { who, .. } | Event::Click { who, .. } | Event::Submission { who, .. } => who,
            _ => return None,
        };
        let membership = self.user_groups.membership(&who.user, &groups).await;
        for (group, answer) in membership.0 {
            match answer {
                InGroup::Yes => who.groups.push(group),
                InGroup::No => {}
                // Refused then, with who may named; the log says why.
                InGroup::Unread(why) => {
                    tracing::warn!(%group, %why, "user group unread: its members count as not in it")
                }
            }
        }
        Some(event)
    }

    async fn load(&self, need: Need, now: chrono::DateTime<chrono::Utc>) -> StoreResult<(Loaded, Versions)> {
        let store = &self.store;
        let only = |loaded, subject| (loaded, Versions { subject, alert: None });
        Ok(match need {
            Need::Nothing => only(Loaded::Nothing, 0),
            Need::Incident(need) => {
                let (loaded, version) = match need {
                    IncidentNeed::Nothing => (IncidentLoaded::Nothing, 0),
                    IncidentNeed::NewId => (IncidentLoaded::NewId(store.subjects.next_incident_id().await?), 0),
                    IncidentNeed::One(id) => {
                        let (incident, version) = split(store.subjects.load_incident(id).await?);
                        (IncidentLoaded::One(incident), version)
                    }
                    IncidentNeed::WithTimeline(id) => match store.subjects.load_incident(id).await? {
                        Some(v) => {
                            let timeline = store.subjects.load_timeline(id).await?;
                            (IncidentLoaded::WithTimeline(Some((v.value, timeline))), v.version)
                        }
                        None => (IncidentLoaded::WithTimeline(None), 0),
                    },
                    IncidentNeed::OpenFirst(limit) => {
                        let (first, total) = store.subjects.open_incidents_first(limit).await?;
                        (IncidentLoaded::Page(first, total), 0)
                    }
                    IncidentNeed::Tallies(days) => {
                        let window = opsbot_handlers::incident::stats::window(now, days);
                        let counts = store.subjects.incident_tallies(&window).await?;
                        let since = window.last().copied();
                        (IncidentLoaded::Tallies(opsbot_handlers::incident::stats::Tallies { since, counts }), 0)
                    }
                };
                only(Loaded::Incident(loaded), version)
            }
            Need::Run(need) => {
                let (loaded, version) = match need {
                    RunNeed::Nothing => (RunLoaded::Nothing, 0),
                    RunNeed::NewId => (RunLoaded::NewId(store.subjects.next_run_id().await?), 0),
                    RunNeed::One(id) => {
                        let (run, version) = split(store.subjects.load_run(id).await?);
                        (RunLoaded::One(run), version)
                    }
                    RunNeed::History { checklist, limit } => {
                        (RunLoaded::Many(store.subjects.runs_of(&checklist, limit).await?), 0)
                    }
                };
                only(Loaded::Run(loaded), version)
            }
            Need::Alert(need) => {
                let (loaded, version) = match need {
                    AlertNeed::Nothing => (AlertLoaded::Nothing, 0),
                    AlertNeed::One(id) => {
                        let (group, version) = split(store.subjects.load_alert(id).await?);
                        (AlertLoaded::One(group), version)
                    }
                    AlertNeed::Current { key, may_open } => {
                        let (current, version) = split(store.subjects.current_alert(&key).await?);
                        let new_id = self.alert_id_if_opening(may_open, current.as_ref()).await?;
                        // A group that opens is new: version 0, guarded by
                        // the key's current group instead.
                        let version = if new_id.is_some() { 0 } else { version };
                        (AlertLoaded::Current { current, new_id }, version)
                    }
                    AlertNeed::Kpi { alert, key, since } => {
                        let (current, version) = split(store.subjects.current_alert(&key).await?);
                        let runs = store.subjects.run_samples_since(since).await?;
                        let opens = kpi_crosses(&alert, current.as_ref(), &runs, &self.runbook, now);
                        let new_id = self.alert_id_if_opening(opens, current.as_ref()).await?;
                        let version = if new_id.is_some() { 0 } else { version };
                        (AlertLoaded::Kpi { current, new_id, runs }, version)
                    }
                };
                only(Loaded::Alert(loaded), version)
            }
            Need::Pipeline(PipelineNeed::Setup) => {
                only(Loaded::Pipeline(PipelineLoaded::Setup(self.github.setup())), 0)
            }
            Need::Deploy(need) => {
                let (loaded, version) = match need {
                    DeployNeed::Nothing => (DeployLoaded::Nothing, 0),
                    DeployNeed::Preview { repo, environment, action, git_ref, user, groups } => {
                        let setup = self.github.setup();
                        // Slack first: GitHub is asked only for someone who may.
                        let membership = self.user_groups.membership(&user, &groups).await;
                        let preview = match repo.or_else(|| setup.repository.clone()) {
                            Some(repo) if setup.connected && preview_wanted(&groups, &membership) => {
                                Some(self.github.preview(&repo, &environment, action, git_ref.as_deref()).await)
                            }
                            _ => None,
                        };
                        (DeployLoaded::Preview { setup, preview, membership }, 0)
                    }
                    DeployNeed::New { user, groups } => {
                        let membership = self.user_groups.membership(&user, &groups).await;
                        let id = store.subjects.next_deployment_id().await?;
                        let open = store.subjects.open_incidents().await?;
                        let open_incidents = open.iter().map(|i| i.id).collect();
                        (DeployLoaded::New { id, setup: self.github.setup(), open_incidents, membership }, 0)
                    }
                    DeployNeed::One(id) => {
                        let (found, version) = split(store.subjects.load_deployment(id).await?);
                        (DeployLoaded::One(found), version)
                    }
                };
                only(Loaded::Deploy(loaded), version)
            }
            Need::Rerun(RerunNeed::Pressed { alert_key, run_id }) => {
                let (group, alert) = split(store.subjects.current_alert(&alert_key).await?);
                let group = group.map(Box::new);
                let (asked, subject) = split(store.subjects.load_rerun(run_id).await?);
                (Loaded::Rerun(RerunLoaded::Pressed { group, asked }), Versions { subject, alert: Some(alert) })
            }
            Need::Rerun(RerunNeed::One(run_id)) => {
                let (found, version) = split(store.subjects.load_rerun(run_id).await?);
                only(Loaded::Rerun(RerunLoaded::One(found)), version)
            }
            Need::Handoff(HandoffNeed::New { since }) => {
                let id = store.subjects.next_handoff_id().await?;
                only(Loaded::Handoff(HandoffLoaded::New { id, report: self.shift_report(since).await? }), 0)
            }
            Need::Handoff(HandoffNeed::Report { since }) => {
                only(Loaded::Handoff(HandoffLoaded::Report(self.shift_report(since).await?)), 0)
            }
            Need::Handoff(HandoffNeed::One(id)) => {
                let (found, version) = split(store.subjects.load_handoff(id).await?);
                only(Loaded::Handoff(HandoffLoaded::One(found)), version)
            }
            Need::Override(OverrideNeed::New) => {
                only(Loaded::Override(OverrideLoaded::New(store.subjects.next_override_id().await?)), 0)
            }
            Need::Override(OverrideNeed::One(id)) => {
                let (found, version) = split(store.subjects.load_override(id).await?);
                only(Loaded::Override(OverrideLoaded::One(found)), version)
            }
            Need::Swap(SwapNeed::New) => {
                let (id, open) = tokio::try_join!(store.subjects.next_swap_id(), store.subjects.open_swaps())?;
                only(Loaded::Swap(SwapLoaded::New { id, open }), 0)
            }
            Need::Swap(SwapNeed::One(id)) => {
                let (found, version) = split(store.subjects.load_swap(id).await?);
                only(Loaded::Swap(SwapLoaded::One(found)), version)
            }
            Need::Swap(SwapNeed::Accept(id)) => {
                let (found, version) = split(store.subjects.load_swap(id).await?);
                // A refused click leaves a gap in the overrides' numbers,
                // as a refused override does.
                let overrides = [store.subjects.next_override_id().await?, store.subjects.next_override_id().await?];
                only(Loaded::Swap(SwapLoaded::Accept { found, overrides }), version)
            }
        })
    }

    /// What a shift that started at `since` hands over.
    async fn shift_report(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<ShiftReport> {
        let subjects = &self.store.subjects;
        Ok(ShiftReport {
            open: subjects.open_incidents().await?,
            recent: subjects.incidents_declared_since(since).await?,
            runs: subjects.open_runs().await?,
            alerts: subjects.open_alerts().await?,
        })
    }

    /// A number for a group that may open: only when the key has no firing
    /// group (a firing one takes the signal itself).
    async fn alert_id_if_opening(
        &self,
        may_open: bool,
        current: Option<&opsbot_handlers::alert::AlertGroup>,
    ) -> StoreResult<Option<opsbot_handlers::subject::AlertId>> {
        if may_open && !current.is_some_and(|g| g.firing) {
            Ok(Some(self.store.subjects.next_alert_id().await?))
        } else {
            Ok(None)
        }
    }

    async fn commit(
        &self,
        event: &Event,
        decision: &Decision<Change>,
        version: u64,
        consume: Option<&str>,
    ) -> StoreResult<CommitOutcome> {
        let tally = match &decision.change {
            Some(Change::Incident(c)) => c.tally.as_ref(),
            _ => None,
        };
        let (mut subject, timeline) = match &decision.change {
            Some(Change::Incident(c)) => (Some(Stored::Incident(&c.incident, version)), c.timeline.as_slice()),
            Some(Change::Run(run)) => (Some(Stored::Run(run, version)), &[][..]),
            Some(Change::Deployment(d)) => (Some(Stored::Deployment(d, version)), &[][..]),
            Some(Change::Handoff(h)) => (Some(Stored::Handoff(h, version)), &[][..]),
            Some(Change::Override(o)) => (Some(Stored::Override(o, version)), &[][..]),
            Some(Change::Rerun(r)) => (Some(Stored::Rerun(r, version)), &[][..]),
            Some(Change::Swap(c)) => (Some(Stored::Swap(&c.swap, version)), &[][..]),
            Some(Change::Alert(_)) | None => (None, &[][..]),
        };
        // An accepted swap's overrides are new: written at version 0 with it.
        let also: Vec<Stored> = match &decision.change {
            Some(Change::Swap(c)) => c.overrides.iter().map(|o| Stored::Override(o, 0)).collect(),
            _ => Vec::new(),
        };
        let (mut opens, mut sample) = (None, None);
        if let Some(Change::Alert(c)) = &decision.change {
            if let Some(write) = &c.group {
                subject = Some(Stored::Alert(&write.group, version));
                opens = write.opens.as_ref().map(|o| OpeningGroup { key: &write.group.key, replaces: o.replaces });
            }
            sample = c.sample.as_ref();
        }
        // A schedule slot is marked handled in the same commit, so no slot
        // ever runs twice, whichever replica or restart handles it.
        let slot = match event {
            Event::Timer(Timer { kind: TimerKind::ScheduledRun { checklist, slot }, .. }) => {
                Some((checklist.as_str(), *slot))
            }
            _ => None,
        };
        let nothing_to_write = subject.is_none()
            && sample.is_none()
            && decision.effects.is_empty()
            && decision.timers.is_empty()
            && consume.is_none()
            && slot.is_none();
        if nothing_to_write {
            return Ok(CommitOutcome::Committed);
        }
        self.store
            .subjects
            .commit(&Commit {
                subject,
                also: &also,
                timeline,
                effects: &decision.effects,
                timers: &decision.timers,
                consume,
                slot,
                opens,
                sample,
                tally,
            })
            .await
    }
}

/// The versions of what a decision loaded, for the commit's guard.
struct Versions {
    /// Of the subject loaded (0: none, or new).
    subject: u64,
    /// Of the alert group a re-run press loaded beside the request.
    alert: Option<u64>,
}

fn split<T>(loaded: Option<Versioned<T>>) -> (Option<T>, u64) {
    match loaded {
        Some(v) => (Some(v.value), v.version),
        None => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use opsbot_handlers::codec::IncidentButton;
    use opsbot_handlers::incident::TimelineEvent;
    use opsbot_handlers::run::RunId;
    use opsbot_handlers::timer::IncidentReminder;
    use opsbot_handlers::IncidentId;

    /// Hours away from any routine of the seed runbook, as in the e2e tests.
    fn start() -> chrono::DateTime<chrono::Utc> {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 25, 3, 0, 0).unwrap()
    }

    fn engine_on(store: Store, clock: &TestClock) -> Engine {
        Engine::new(
            store,
            Arc::new(Runbook::seed()),
            Arc::new(clock.clone()),
            Arc::new(Metrics::default()),
            crate::github::GitHub::disconnected(None),
            // Never asked: the seed's permissions name no user group.
            crate::slack::usergroups::UserGroups::new(
                crate::slack::client::SlackApi::new(
                    "http://127.0.0.1:9/api",
                    &crate::config::Secret::new("xoxb-unused"),
                )
                .unwrap(),
                Arc::new(clock.clone()),
            ),
        )
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    fn bob() -> Invocation {
        Invocation {
            user: "U0BOB".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    /// Every effect waiting in the outbox, people's then alerts', read by a
    /// consumer no worker uses.
    async fn queued_effects(store: &Store) -> Vec<Effect> {
        store.outbox.prepare().await.unwrap();
        let mut effects = Vec::new();
        for stream in crate::store::OutboxStream::ALL {
            // An empty stream's read would wait for an entry.
            if store.outbox.len_of(stream).await.unwrap() > 0 {
                let entries = store.outbox.read(stream, "probe", 10_000, None).await.unwrap();
                effects.extend(entries.into_iter().map(|e| e.effect));
            }
        }
        effects
    }

    #[tokio::test]
    async fn a_declare_commits_the_incident_its_effects_and_its_timers_at_once() {
        let engine = engine_on(Store::memory(), &TestClock::new(start()));
        let reply = engine.command("/incident", "p0 API down", &alice()).await.reply;
        assert!(reply.text.contains("INC-1"), "{}", reply.text);
        let stored = engine.store.subjects.load_incident(IncidentId(1)).await.unwrap().expect("the incident is stored");
        assert_eq!(stored.value.title, "API down");
        assert!(stored.version > 0, "a stored incident has a version");
        assert!(engine.store.outbox.len().await.unwrap() > 0, "its effects are queued");
        assert!(engine.store.timers.count().await.unwrap() >= 2, "its escalation and resolution timers are set");
        let effects = queued_effects(&engine.store).await;
        assert!(
            effects.iter().any(|e| matches!(e, Effect::Post(m) if m.is_anchor())),
            "the alert is among the effects: {effects:?}"
        );
    }

    /// The memory store answers without yielding, so two engines on it never
    /// interleave between load and commit; Redis does, so this runs on a
    /// private Redis: both clicks load the open incident, one commits, the
    /// other's commit is refused and it decides again on the fresh load.
    #[tokio::test]
    async fn a_version_conflict_reloads_and_decides_again() {
        let redis = opsbot_test_redis::RedisServer::start(opsbot_test_redis::Persistence::InMemory);
        let store = Store::connect(&redis.url(), "engine-test").unwrap();
        let engine = engine_on(store, &TestClock::new(start()));
        engine.command("/incident", "p1 deploys stuck", &alice()).await;
        let before = engine.store.subjects.load_incident(IncidentId(1)).await.unwrap().unwrap().version;
        let ack = Button::Incident(IncidentId(1), IncidentButton::Acknowledge);
        let (alice, bob) = (alice(), bob());
        let (a, b) = tokio::join!(engine.click(ack.clone(), &alice), engine.click(ack, &bob));
        assert!(a.unwrap().is_none() && b.unwrap().is_none(), "an acknowledgement opens no modal");

        let after = engine.store.subjects.load_incident(IncidentId(1)).await.unwrap().unwrap();
        assert_eq!(after.version, before + 1, "exactly one acknowledgement was written");
        let acked_by = after.value.acknowledged.as_ref().expect("acknowledged").user.clone();
        let acks = engine
            .store
            .subjects
            .load_timeline(IncidentId(1))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == TimelineEvent::Acknowledged)
            .count();
        assert_eq!(acks, 1);
        let refusals: Vec<(String, String)> = queued_effects(&engine.store)
            .await
            .into_iter()
            .filter_map(|e| match e {
                Effect::Ephemeral { user, text, .. } => Some((user, text)),
                _ => None,
            })
            .collect();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        let (refused, text) = &refusals[0];
        assert_ne!(refused, &acked_by, "the one who lost the race is told");
        assert!(text.contains("already acknowledged"), "{text}");
    }

    #[tokio::test]
    async fn a_timer_taken_by_another_replica_writes_nothing() {
        let clock = TestClock::new(start());
        let store = Store::memory();
        let (one, two) = (engine_on(store.clone(), &clock), engine_on(store.clone(), &clock));
        one.command("/incident", "p0 API down", &alice()).await;
        let _ = queued_effects(&store).await; // what the declare queued is not under test
        clock.advance(chrono::TimeDelta::minutes(6));
        let (stored, timer) = store
            .timers
            .due(clock.now(), 100)
            .await
            .unwrap()
            .into_iter()
            .find(|(_, t)| matches!(t.kind, TimerKind::Incident { reminder: IncidentReminder::Escalate { .. }, .. }))
            .expect("the first escalation is due after the 5 minutes to respond");
        let timers_before = store.timers.count().await.unwrap();

        let (a, b) = tokio::join!(one.timer(&stored, &timer), two.timer(&stored, &timer));
        a.unwrap();
        b.unwrap();
        // A replica that saw it late (after the other one committed) too.
        two.timer(&stored, &timer).await.unwrap();

        let escalations = store
            .subjects
            .load_timeline(IncidentId(1))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| matches!(e.event, TimelineEvent::Escalated { .. }))
            .count();
        assert_eq!(escalations, 1, "escalated once");
        let notes: Vec<String> = queued_effects(&store)
            .await
            .into_iter()
            .filter_map(|e| match e {
                Effect::InThread { text, .. } if text.contains("Escalating") => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(store.timers.count().await.unwrap(), timers_before, "one timer consumed, the next level set");
        assert!(!store.timers.due(clock.now(), 100).await.unwrap().iter().any(|(s, _)| s == &stored));
    }

    #[tokio::test]
    async fn a_refused_submission_keeps_the_modal_open_and_changes_nothing() {
        let engine = engine_on(Store::memory(), &TestClock::new(start()));
        let reply = engine.command("/runbook", "start morning health check", &alice()).await.reply;
        let run =
            engine.store.subjects.load_run(RunId(1)).await.unwrap().unwrap_or_else(|| panic!("no run: {}", reply.text));
        let queued = engine.store.outbox.len().await.unwrap();

        let flag = Submission::Flag { run: RunId(1), phase: 0, step: 0, note: "   ".into() };
        let refused = engine.submission(flag, &alice()).await.unwrap().expect("the modal stays open");
        assert_eq!(refused.field, opsbot_handlers::codec::NOTE_FIELD);
        assert!(!refused.text.is_empty());
        let after = engine.store.subjects.load_run(RunId(1)).await.unwrap().unwrap();
        assert_eq!(after.version, run.version, "the run is as it was");
        assert_eq!(after.value, run.value);
        assert_eq!(engine.store.outbox.len().await.unwrap(), queued, "nothing is sent");

        // The same flag with a note goes through, so the refusal was the note's.
        let flag = Submission::Flag { run: RunId(1), phase: 0, step: 0, note: "dashboards red".into() };
        assert_eq!(engine.submission(flag, &alice()).await.unwrap(), None);
        assert_eq!(engine.store.subjects.load_run(RunId(1)).await.unwrap().unwrap().version, run.version + 1);
    }

    #[tokio::test]
    async fn a_typo_gets_usage_help_and_touches_no_state() {
        let engine = engine_on(Store::memory(), &TestClock::new(start()));
        for (command, text) in
            [("/incident", "decalre p0 API down"), ("/incident", "ack"), ("/incidnet", "p0 API down")]
        {
            let reply = engine.command(command, text, &alice()).await.reply;
            assert!(reply.text.contains("Usage") || reply.text.contains("commands are"), "{command} {text}: {reply:?}");
        }
        assert_eq!(engine.store.outbox.len().await.unwrap(), 0);
        assert_eq!(engine.store.timers.count().await.unwrap(), 0);
        assert!(engine.store.subjects.open_incidents().await.unwrap().is_empty());
        // No incident number was taken either.
        let reply = engine.command("/incident", "p0 API down", &alice()).await.reply;
        assert!(reply.text.contains("INC-1"), "{}", reply.text);
    }
}
