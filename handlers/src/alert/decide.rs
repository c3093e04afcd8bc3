//! Alert decisions: what a webhook signal, a KPI check or a click on an
//! alert's button does to its group. Each takes the group as loaded and
//! `now`, and returns a [`Decision`] as every feature does.
//!
//! A signal that repeats what the group already knows (Alertmanager's
//! repeat notifications, a redelivered run) decides nothing, so it neither
//! writes nor edits a message.

use super::render;
use super::signal::{AlertmanagerGroup, Conclusion, DeploymentStatus, Signal, WorkflowRun};
use super::{
    AlertChange, AlertGroup, AlertmanagerState, Declared, DeploymentFailures, Detail, Figures, GroupWrite, KpiBreach,
    Mute, Opening, RunSample, WorkflowFailures, MUTE_FOR, RUNS_KEPT,
};
use crate::codec::AlertButton;
use crate::decision::{Decision, Effect, Invocation, Modal};
use crate::runbook::alerts::{KpiAlert, Metric};
use crate::runbook::Runbook;
use crate::severity::Severity;
use crate::subject::{AlertId, AlertMessage, Message, Subject};
use crate::timer::{Declaration, Timer, TimerKind};
use chrono::{DateTime, Utc};

pub type AlertDecision = Decision<AlertChange>;

/// What an alert decision needs loaded first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// The source key's current group, and a fresh number in case the
    /// decision opens a new one.
    Current {
        key: String,
        may_open: bool,
    },
    One(AlertId),
    /// A KPI alert's current group and the finished runs since `since`.
    Kpi {
        key: String,
        since: DateTime<Utc>,
    },
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    Current { current: Option<AlertGroup>, new_id: Option<AlertId> },
    One(Option<AlertGroup>),
    Kpi { current: Option<AlertGroup>, new_id: Option<AlertId>, runs: Vec<RunSample> },
}

/// The key a signal's group is filed under: one per workflow and branch,
/// per deployment environment, per Alertmanager group.
pub fn source_key(signal: &Signal) -> String {
    match signal {
        Signal::WorkflowRun(run) => format!("github:workflow:{}:{}:{}", run.repo, run.workflow_id, run.branch),
        Signal::Deployment(d) => format!("github:deployment:{}:{}", d.repo, d.environment.to_ascii_lowercase()),
        Signal::Alertmanager(group) => format!("alertmanager:{}", group.group_key),
    }
}

/// What deciding `signal` needs; `Nothing` when the runbook says it does
/// not count (a feature branch, an ignored workflow, an environment without
/// a rule).
pub fn needs(signal: &Signal, runbook: &Runbook) -> Need {
    let rules = &runbook.alerts;
    let key = source_key(signal);
    match signal {
        Signal::WorkflowRun(run) => {
            if !counts(run, runbook) {
                return Need::Nothing;
            }
            Need::Current { key, may_open: run.conclusion() == Conclusion::Failed }
        }
        Signal::Deployment(d) => match rules.github.deployment(&d.environment) {
            Some(rule) => Need::Current { key, may_open: rule.failed_states.contains(&d.state) },
            None => Need::Nothing,
        },
        Signal::Alertmanager(group) => Need::Current { key, may_open: group.firing },
    }
}

fn counts(run: &WorkflowRun, runbook: &Runbook) -> bool {
    let github = &runbook.alerts.github;
    github.counts_branch(&run.branch, &run.default_branch)
        && !github.ignores_workflow(&run.workflow, &run.workflow_path)
}

/// The KPI checks a decided signal calls for: one per KPI alert, after a
/// finished run joined the window.
pub fn kpi_checks(change: &AlertChange, runbook: &Runbook) -> Vec<String> {
    match change.sample {
        Some(_) => runbook.alerts.kpi_alerts.iter().map(|a| a.id.clone()).collect(),
        None => Vec::new(),
    }
}

/// What a KPI check needs: its group, and the runs of its window.
pub fn kpi_needs(alert: &str, runbook: &Runbook, now: DateTime<Utc>) -> Need {
    match runbook.alerts.kpi_alerts.iter().find(|a| a.id == alert) {
        Some(kpi) => Need::Kpi { key: kpi.key(), since: now - kpi.window },
        None => Need::Nothing,
    }
}

fn group_message(id: AlertId) -> Message {
    Message::Alert(id, AlertMessage::Group)
}

fn in_thread(id: AlertId, text: String) -> Effect {
    Effect::InThread { subject: Subject::Alert(id), text }
}

fn written(
    group: AlertGroup,
    opens: Option<Opening>,
    sample: Option<RunSample>,
    effects: Vec<Effect>,
) -> AlertDecision {
    let mut decision = Decision::nothing();
    decision.change = Some(AlertChange { group: Some(GroupWrite { group, opens }), sample });
    decision.effects = effects;
    decision
}

/// Only the finished run for the KPI window, nothing else.
fn sample_only(sample: Option<RunSample>) -> AlertDecision {
    let mut decision = Decision::nothing();
    if sample.is_some() {
        decision.change = Some(AlertChange { group: None, sample });
    }
    decision
}

/// A group's message effects, unless it stays quiet (muted, or its
/// incident speaks for it).
fn tell(group: &AlertGroup, now: DateTime<Utc>, note: Option<String>) -> Vec<Effect> {
    if !group.posts() {
        return Vec::new();
    }
    let mut effects = vec![Effect::Refresh(group_message(group.id))];
    if let Some(note) = note.filter(|_| !group.is_muted(now)) {
        effects.push(in_thread(group.id, note));
    }
    effects
}

/// Decides a webhook signal against its source's current group.
pub fn signal(signal: &Signal, loaded: Loaded, runbook: &Runbook, now: DateTime<Utc>) -> AlertDecision {
    let Loaded::Current { current, new_id } = loaded else { return Decision::nothing() };
    let key = source_key(signal);
    match signal {
        Signal::WorkflowRun(run) => workflow_run(run, key, current, new_id, runbook, now),
        Signal::Deployment(d) => deployment(d, key, current, new_id, runbook, now),
        Signal::Alertmanager(group) => alertmanager(group, key, current, new_id, runbook, now),
    }
}

/// A new group for `key`, succeeding `previous`.
fn open(
    id: AlertId,
    key: String,
    channel: &str,
    detail: Detail,
    previous: Option<&AlertGroup>,
    now: DateTime<Utc>,
) -> (AlertGroup, Opening) {
    let group = AlertGroup {
        id,
        key,
        channel: channel.to_owned(),
        firing: true,
        opened: now,
        updated: now,
        resolved: None,
        // A mute outlives the episode it was pressed on: muting a flapping
        // workflow for an hour must cover its next failure too.
        muted: previous.and_then(|p| p.muted.clone()).filter(|m| m.until > now),
        declared: None,
        quiet: false,
        detail,
        posted: Default::default(),
    };
    (group, Opening { replaces: previous.map(|p| p.id) })
}

/// The group's first message, or nothing when it keeps quiet.
fn first_message(group: &AlertGroup) -> Vec<Effect> {
    if group.posts() {
        vec![Effect::Post(group_message(group.id))]
    } else {
        Vec::new()
    }
}

fn workflow_run(
    run: &WorkflowRun,
    key: String,
    current: Option<AlertGroup>,
    new_id: Option<AlertId>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> AlertDecision {
    let conclusion = run.conclusion();
    let sample = (conclusion != Conclusion::Neither).then(|| RunSample {
        run_id: run.run_id,
        attempt: run.attempt,
        failed: conclusion == Conclusion::Failed,
        seconds: run.duration().num_seconds(),
        finished: run.finished,
    });
    let firing = current.filter(|g| g.firing);
    match (conclusion, firing) {
        (Conclusion::Failed, Some(mut group)) => {
            let Detail::Workflow(failures) = &mut group.detail else { return sample_only(sample) };
            let note = match failures.runs.iter().position(|r| r.run_id == run.run_id) {
                // A re-run attempt of a run already counted: the same
                // failure, its entry now showing the latest attempt.
                Some(i) if failures.runs[i].attempt >= run.attempt => return sample_only(sample),
                Some(i) => {
                    failures.runs[i] = run.clone();
                    render::run_line("❌ Re-run failed again", run)
                }
                None => {
                    failures.failures += 1;
                    failures.runs.push(run.clone());
                    if failures.runs.len() > RUNS_KEPT {
                        failures.runs.remove(0);
                    }
                    render::run_line(&format!("❌ Failure {}", failures.failures), run)
                }
            };
            group.updated = now;
            let effects = tell(&group, now, Some(note));
            written(group, None, sample, effects)
        }
        (Conclusion::Failed, previous) => {
            let Some(id) = new_id else { return sample_only(sample) };
            let previous = previous.as_ref();
            let detail = Detail::Workflow(WorkflowFailures {
                repo: run.repo.clone(),
                workflow: run.workflow.clone(),
                branch: run.branch.clone(),
                failures: 1,
                runs: vec![run.clone()],
                recovered_by: None,
            });
            let (group, opening) = open(id, key, &runbook.alerts.github.channel, detail, previous, now);
            let effects = first_message(&group);
            written(group, Some(opening), sample, effects)
        }
        (Conclusion::Passed, Some(mut group)) => {
            let Detail::Workflow(failures) = &mut group.detail else { return sample_only(sample) };
            // A pass of an older run arriving late says nothing about the
            // newer failure.
            let latest = failures.latest().map_or(0, |r| r.run_number);
            if run.run_number < latest {
                return sample_only(sample);
            }
            failures.recovered_by = Some(run.clone());
            let note = format!(
                "✅ Recovered after {} ({}), by run #{}: {}",
                plural(failures.failures, "failure", "failures"),
                crate::text::duration(now - group.opened),
                run.run_number,
                render::link(&run.url, "the run")
            );
            group.firing = false;
            group.resolved = Some(now);
            group.updated = now;
            let effects = tell(&group, now, Some(note));
            written(group, None, sample, effects)
        }
        _ => sample_only(sample),
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn deployment(
    d: &DeploymentStatus,
    key: String,
    current: Option<AlertGroup>,
    new_id: Option<AlertId>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> AlertDecision {
    let Some(rule) = runbook.alerts.github.deployment(&d.environment) else { return Decision::nothing() };
    let failed = rule.failed_states.contains(&d.state);
    let firing = current.filter(|g| g.firing);
    match (failed, firing) {
        (true, Some(mut group)) => {
            let Detail::Deployment(failures) = &mut group.detail else { return Decision::nothing() };
            if failures.failed.iter().any(|f| f.deployment_id == d.deployment_id && f.state == d.state) {
                return Decision::nothing();
            }
            failures.failed.push(d.clone());
            if failures.failed.len() > RUNS_KEPT {
                failures.failed.remove(0);
            }
            group.updated = now;
            let note = render::deployment_line(d);
            let effects = tell(&group, now, Some(note));
            written(group, None, None, effects)
        }
        (true, previous) => {
            let Some(id) = new_id else { return Decision::nothing() };
            let detail = Detail::Deployment(DeploymentFailures {
                repo: d.repo.clone(),
                environment: d.environment.clone(),
                failed: vec![d.clone()],
                recovered_by: None,
            });
            let (mut group, opening) = open(id, key, &rule.channel, detail, previous.as_ref(), now);
            let mut timers = Vec::new();
            if let Some(severity) = rule.declare {
                // The incident is the message: its alert, playbook and
                // pages say everything a second post would.
                group.quiet = true;
                group.declared = Some(Declared { severity, by: None, at: now });
                let declaration = Declaration {
                    severity,
                    title: render::deployment_title(d),
                    details: render::deployment_details(d),
                    announce: false,
                };
                timers.push(Timer { due: now, kind: TimerKind::DeclareFromAlert { alert: id, declaration } });
            }
            let effects = first_message(&group);
            let mut decision = written(group, Some(opening), None, effects);
            decision.timers = timers;
            decision
        }
        (false, Some(mut group)) if d.state == "success" => {
            let Detail::Deployment(failures) = &mut group.detail else { return Decision::nothing() };
            failures.recovered_by = Some(d.clone());
            let note = format!(
                "✅ Deployed to {} again after {}: {}",
                d.environment,
                crate::text::duration(now - group.opened),
                render::link(&d.url, "the deployment")
            );
            group.firing = false;
            group.resolved = Some(now);
            group.updated = now;
            let effects = tell(&group, now, Some(note));
            written(group, None, None, effects)
        }
        _ => Decision::nothing(),
    }
}

fn alertmanager(
    notified: &AlertmanagerGroup,
    key: String,
    current: Option<AlertGroup>,
    new_id: Option<AlertId>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> AlertDecision {
    let route = runbook.alerts.alertmanager_route(&notified.common_labels);
    let firing = current.filter(|g| g.firing);
    match (notified.firing, firing) {
        (_, Some(mut group)) => {
            let Detail::Alertmanager(state) = &mut group.detail else { return Decision::nothing() };
            let before = state.clone();
            merge(state, notified);
            let resolved = !notified.firing;
            if *state == before && !resolved {
                // Alertmanager's repeat notification: nothing new to show.
                return Decision::nothing();
            }
            state.notifications += 1;
            group.updated = now;
            let note = resolved.then(|| format!("✅ Resolved after {}.", crate::text::duration(now - group.opened)));
            if resolved {
                group.firing = false;
                group.resolved = Some(now);
            }
            let effects = tell(&group, now, note);
            written(group, None, None, effects)
        }
        (true, previous) => {
            let Some(id) = new_id else { return Decision::nothing() };
            let mut state = AlertmanagerState {
                group_key: notified.group_key.clone(),
                receiver: notified.receiver.clone(),
                common_labels: Default::default(),
                common_annotations: Default::default(),
                external_url: String::new(),
                alerts: Default::default(),
                notifications: 1,
            };
            merge(&mut state, notified);
            let channel = route.map_or(runbook.channels.team.as_str(), |r| r.channel.as_str());
            let (mut group, opening) = open(id, key, channel, Detail::Alertmanager(state), previous.as_ref(), now);
            group.quiet = route.is_some_and(|r| r.mute);
            let mut timers = Vec::new();
            if let Some(severity) = route.and_then(|r| r.declare) {
                group.declared = Some(Declared { severity, by: None, at: now });
                let declaration = Declaration {
                    severity,
                    title: render::title(&group),
                    details: render::details(&group),
                    announce: group.posts(),
                };
                timers.push(Timer { due: now, kind: TimerKind::DeclareFromAlert { alert: id, declaration } });
            }
            let effects = first_message(&group);
            let mut decision = written(group, Some(opening), None, effects);
            decision.timers = timers;
            decision
        }
        // A resolution of a group opsbot never saw fire: nothing to update.
        (false, None) => Decision::nothing(),
    }
}

/// What a notification says about the group, over what was known: its
/// alerts by fingerprint (an alert not mentioned keeps its last state, as
/// Alertmanager sends only what changed since its last notification when
/// alerts are truncated), and the labels and annotations it now shares.
fn merge(state: &mut AlertmanagerState, notified: &AlertmanagerGroup) {
    state.common_labels = notified.common_labels.clone();
    state.common_annotations = notified.common_annotations.clone();
    state.external_url = notified.external_url.clone();
    for alert in &notified.alerts {
        let mut alert = alert.clone();
        if !notified.firing {
            alert.firing = false;
        }
        state.alerts.insert(alert.fingerprint.clone(), alert);
    }
}

/// Re-checks a KPI alert against the runs in its window: it fires when its
/// condition starts to hold, stays quiet while it holds, and recovers when
/// it stops; the next crossing is a new group.
pub fn kpi_check(alert: &str, loaded: Loaded, runbook: &Runbook, now: DateTime<Utc>) -> AlertDecision {
    let Some(kpi) = runbook.alerts.kpi_alerts.iter().find(|a| a.id == alert) else { return Decision::nothing() };
    let Loaded::Kpi { current, new_id, runs } = loaded else { return Decision::nothing() };
    let figures = figures(&runs, now - kpi.window);
    if figures.runs < kpi.min_runs {
        return Decision::nothing();
    }
    let holds = kpi.condition.holds(measure(kpi, &figures));
    let firing = current.filter(|g| g.firing);
    match (holds, firing) {
        (true, Some(_)) | (false, None) => Decision::nothing(),
        (true, previous) => {
            let Some(id) = new_id else { return Decision::nothing() };
            let detail = Detail::Kpi(KpiBreach { alert: kpi.id.clone(), crossed: figures, latest: figures });
            let (group, opening) = open(id, kpi.key(), &kpi.channel, detail, previous.as_ref(), now);
            let effects = first_message(&group);
            written(group, Some(opening), None, effects)
        }
        (false, Some(mut group)) => {
            let Detail::Kpi(breach) = &mut group.detail else { return Decision::nothing() };
            breach.latest = figures;
            group.firing = false;
            group.resolved = Some(now);
            group.updated = now;
            let note = format!(
                "✅ Back within bounds after {}: {}.",
                crate::text::duration(now - group.opened),
                render::kpi_figures(kpi, &figures)
            );
            let effects = tell(&group, now, Some(note));
            written(group, None, None, effects)
        }
    }
}

/// The window's figures: every finished attempt since `since` counts as a
/// build, as GitHub counts them.
pub fn figures(runs: &[RunSample], since: DateTime<Utc>) -> Figures {
    let mut f = Figures::default();
    for run in runs.iter().filter(|r| r.finished >= since) {
        f.runs += 1;
        if run.failed {
            f.failed += 1;
        } else {
            f.passed += 1;
        }
        f.seconds += run.seconds;
    }
    f
}

/// The KPI alert's metric over these figures, in its condition's unit.
pub fn measure(kpi: &KpiAlert, figures: &Figures) -> f64 {
    match kpi.condition.metric {
        Metric::FailureRate => figures.failure_rate(),
        Metric::SuccessRate => figures.success_rate(),
        Metric::AverageBuildTime => figures.average_seconds(),
    }
}

/// A click on one of a group's buttons.
pub fn click(
    button: AlertButton,
    id: AlertId,
    found: Option<AlertGroup>,
    who: &Invocation,
    now: DateTime<Utc>,
) -> AlertDecision {
    let Some(mut group) = found else {
        return refuse(who, format!("{id} is no longer stored."));
    };
    match button {
        AlertButton::Declare => {
            let mut decision = Decision::nothing();
            decision.modal = Some(Modal {
                view: render::declare_modal(&group, suggested_severity(&group)),
                fallback: format!(
                    "I could not open the form. Declare it with `/incident {} {}`.",
                    suggested_severity(&group).as_str().to_ascii_lowercase(),
                    render::title(&group)
                ),
            });
            decision
        }
        AlertButton::Mute => {
            let until = now + MUTE_FOR;
            group.muted = Some(Mute { until, by: who.user.clone() });
            group.updated = now;
            let note = format!(
                "🔕 <@{}> muted this for {} (until {}).",
                who.user,
                crate::text::duration(MUTE_FOR),
                crate::text::slack_date(until)
            );
            let mut effects = vec![Effect::Refresh(group_message(group.id))];
            effects.push(in_thread(group.id, note));
            written(group, None, None, effects)
        }
        AlertButton::Unmute => {
            if !group.is_muted(now) {
                return refuse(who, format!("{} is not muted.", render::title(&group)));
            }
            group.muted = None;
            group.updated = now;
            let note = format!("🔔 <@{}> unmuted this.", who.user);
            let effects = vec![Effect::Refresh(group_message(group.id)), in_thread(group.id, note)];
            written(group, None, None, effects)
        }
    }
}

fn refuse(who: &Invocation, text: String) -> AlertDecision {
    let mut decision = Decision::nothing();
    decision.effects = vec![Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text }];
    decision
}

/// The severity the declare form starts at: what a rule would declare, P1
/// for a failed deployment or a critical alert, P2 otherwise.
pub fn suggested_severity(group: &AlertGroup) -> Severity {
    if let Some(declared) = &group.declared {
        return declared.severity;
    }
    match &group.detail {
        Detail::Deployment(_) => Severity::P1,
        Detail::Alertmanager(state) if state.common_labels.get("severity").is_some_and(|s| s == "critical") => {
            Severity::P1
        }
        _ => Severity::P2,
    }
}

impl AlertGroup {
    /// Whether the group has a Slack message of its own: not when its
    /// route is muted or a declared incident speaks for it.
    pub fn posts(&self) -> bool {
        !self.quiet
    }
}
