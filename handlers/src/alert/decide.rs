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
    Mute, Opening, Rerun, RunSample, WorkflowFailures, MUTE_FOR, RUNS_KEPT,
};
use crate::codec::AlertButton;
use crate::decision::{Decision, Effect, Invocation, Modal};
use crate::github::Call;
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
    /// A KPI alert's current group and the finished runs since `since`;
    /// a fresh number only if [`kpi_crosses`] says the check opens a group.
    Kpi {
        alert: String,
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
        Signal::WorkflowRun(run) | Signal::WorkflowRunStarted(run) => {
            workflow_key(&run.repo, run.workflow_id, &run.branch)
        }
        Signal::Deployment(d) => format!("github:deployment:{}:{}", d.repo, d.environment.to_ascii_lowercase()),
        Signal::Alertmanager(group) => format!("alertmanager:{}", group.group_key),
    }
}

/// The source key of a workflow's failures on a branch: one group at a
/// time follows them.
pub fn workflow_key(repo: &str, workflow_id: u64, branch: &str) -> String {
    format!("github:workflow:{repo}:{workflow_id}:{branch}")
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
        // A run that started is not an alert; only a deployment follows it.
        Signal::WorkflowRunStarted(_) => Need::Nothing,
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
        Some(kpi) => Need::Kpi { alert: kpi.id.clone(), key: kpi.key(), since: now - kpi.window },
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
        Signal::WorkflowRunStarted(_) => Decision::nothing(),
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
    match (conclusion, current) {
        (Conclusion::Failed, Some(mut group)) if group.firing => {
            let Detail::Workflow(failures) = &mut group.detail else { return sample_only(sample) };
            let note = match failures.runs.iter().position(|r| r.run_id == run.run_id) {
                // A re-run attempt of a run already counted: the same
                // failure, its entry now showing the latest attempt.
                Some(i) if failures.runs[i].attempt >= run.attempt => return sample_only(sample),
                Some(i) => {
                    failures.runs[i] = run.clone();
                    match take_rerun(failures, run) {
                        Some(asked) => {
                            render::run_line(&format!("❌ The re-run <@{}> asked for failed again", asked.by), run)
                        }
                        None => render::run_line("❌ Re-run failed again", run),
                    }
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
                rerun: None,
            });
            let (group, opening) = open(id, key, &runbook.alerts.github.channel, detail, previous, now);
            let effects = first_message(&group);
            written(group, Some(opening), sample, effects)
        }
        (Conclusion::Passed, Some(mut group)) if group.firing => {
            let Detail::Workflow(failures) = &mut group.detail else { return sample_only(sample) };
            // A pass of an older run arriving late says nothing about the
            // newer failure.
            let latest = failures.latest().map_or(0, |r| r.run_number);
            if run.run_number < latest {
                return sample_only(sample);
            }
            failures.recovered_by = Some(Box::new(run.clone()));
            let asked = take_rerun(failures, run).map(|r| format!(", the re-run <@{}> asked for", r.by));
            let note = format!(
                "✅ Recovered after {} ({}), by run #{}{}: {}",
                crate::text::plural(failures.failures, "failure", "failures"),
                crate::text::duration(now - group.opened),
                run.run_number,
                asked.unwrap_or_default(),
                render::link(&run.url, "the run")
            );
            group.resolve(now);
            let effects = tell(&group, now, Some(note));
            written(group, None, sample, effects)
        }
        _ => sample_only(sample),
    }
}

/// The re-run someone asked for, when `run` is its new attempt: it has
/// its answer, so the group stops waiting for it.
fn take_rerun(failures: &mut WorkflowFailures, run: &WorkflowRun) -> Option<Rerun> {
    let asked = failures.rerun.as_ref()?;
    (asked.run_id == run.run_id && run.attempt > asked.attempt).then(|| failures.rerun.take()).flatten()
}

/// A person pressed **Re-run failed jobs**: GitHub is asked (by the
/// outbox), the message shows who asked and waits for the new attempt.
fn rerun(mut group: AlertGroup, who: &Invocation, now: DateTime<Utc>) -> AlertDecision {
    let title = render::title(&group);
    let Detail::Workflow(failures) = &mut group.detail else {
        return refuse(who, format!("{title} is not a workflow run: there is nothing to re-run."));
    };
    if !group.firing {
        return refuse(who, format!("{title} has recovered: there is nothing to re-run."));
    }
    if let Some(asked) = failures.rerun.as_ref().filter(|r| r.is_pending()) {
        return refuse(
            who,
            format!("<@{}> asked for a re-run {}; it is on its way.", asked.by, crate::text::slack_date(asked.at)),
        );
    }
    let Some(latest) = failures.latest() else {
        return refuse(who, format!("{title} has no run to re-run."));
    };
    let Some(repo) = crate::github::Repo::parse(&failures.repo) else {
        return refuse(who, format!("`{}` is not a repository opsbot can ask GitHub about.", failures.repo));
    };
    let call = crate::github::Call::RerunFailedJobs { repo, run_id: latest.run_id };
    let note = format!(
        "🔁 <@{}> asked GitHub to re-run the failed jobs of run #{} (attempt {}).",
        who.user,
        latest.run_number,
        latest.attempt + 1
    );
    failures.rerun = Some(Rerun {
        by: who.user.clone(),
        at: now,
        run_id: latest.run_id,
        run_number: latest.run_number,
        attempt: latest.attempt,
        refused: None,
    });
    group.updated = now;
    let mut effects = vec![
        Effect::Call { call, caller: crate::decision::Caller::Alert(group.id) },
        Effect::Refresh(group_message(group.id)),
    ];
    effects.push(in_thread(group.id, note));
    written(group, None, None, effects)
}

/// GitHub refused a call the group made: the message and the thread say
/// why, and the button is back for another try.
pub fn github_refused(found: Option<AlertGroup>, call: &Call, why: &str, now: DateTime<Utc>) -> AlertDecision {
    let Some(mut group) = found else { return Decision::nothing() };
    let Call::RerunFailedJobs { run_id, .. } = call else { return Decision::nothing() };
    let Detail::Workflow(failures) = &mut group.detail else { return Decision::nothing() };
    let Some(asked) = failures.rerun.as_mut().filter(|r| r.run_id == *run_id && r.is_pending()) else {
        return Decision::nothing(); // answered meanwhile, or another re-run since
    };
    asked.refused = Some(why.to_owned());
    let note = format!("⚠️ GitHub would not re-run run #{} for <@{}>: {why}.", asked.run_number, asked.by);
    group.updated = now;
    let effects = vec![Effect::Refresh(group_message(group.id)), in_thread(group.id, note)];
    written(group, None, None, effects)
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
    match (failed, current) {
        (true, Some(mut group)) if group.firing => {
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
                group.declared = Some(Declared { severity, incident: None, by: None, at: now });
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
        (false, Some(mut group)) if group.firing && d.state == "success" => {
            let Detail::Deployment(failures) = &mut group.detail else { return Decision::nothing() };
            failures.recovered_by = Some(Box::new(d.clone()));
            let note = format!(
                "✅ Deployed to {} again after {}: {}",
                d.environment,
                crate::text::duration(now - group.opened),
                render::link(&d.url, "the deployment")
            );
            group.resolve(now);
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
    match (notified.firing, current) {
        (_, Some(mut group)) if group.firing => {
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
                group.resolve(now);
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
                group.declared = Some(Declared { severity, incident: None, by: None, at: now });
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
        // A resolution of a group opsbot never saw fire (or saw resolve
        // already): nothing to update.
        (false, _) => Decision::nothing(),
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
    // A group of thousands of alerts must not make every notification load
    // and store all of them: past the limit, resolved ones are forgotten
    // (the count of firing ones is what the message leads with).
    if state.alerts.len() > ALERTS_KEPT {
        let resolved: Vec<String> =
            state.alerts.values().filter(|a| !a.firing).map(|a| a.fingerprint.clone()).collect();
        for fingerprint in resolved.into_iter().take(state.alerts.len() - ALERTS_KEPT) {
            state.alerts.remove(&fingerprint);
        }
    }
}

/// Alerts of one Alertmanager group kept in its state.
pub const ALERTS_KEPT: usize = 500;

/// Whether checking KPI alert `alert` now opens a group (its condition
/// holds and no group of it fires): the loader takes a fresh number only
/// then, so the checks after every run cost no number each.
pub fn kpi_crosses(
    alert: &str,
    current: Option<&AlertGroup>,
    runs: &[RunSample],
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> bool {
    let Some(kpi) = runbook.alerts.kpi_alerts.iter().find(|a| a.id == alert) else { return false };
    let figures = figures(runs, now - kpi.window);
    figures.runs >= kpi.min_runs && kpi.condition.holds(measure(kpi, &figures)) && !current.is_some_and(|g| g.firing)
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
    match (holds, current) {
        (true, Some(group)) if group.firing => Decision::nothing(),
        (true, previous) => {
            let Some(id) = new_id else { return Decision::nothing() };
            let detail = Detail::Kpi(KpiBreach {
                alert: kpi.id.clone(),
                name: Some(kpi.name.clone()),
                crossed: figures,
                latest: figures,
            });
            let (group, opening) = open(id, kpi.key(), &kpi.channel, detail, previous.as_ref(), now);
            let effects = first_message(&group);
            written(group, Some(opening), None, effects)
        }
        (false, Some(mut group)) if group.firing => {
            let Detail::Kpi(breach) = &mut group.detail else { return Decision::nothing() };
            breach.latest = figures;
            group.resolve(now);
            let note = format!(
                "✅ Back within bounds after {}: {}.",
                crate::text::duration(now - group.opened),
                render::kpi_figures(kpi, &figures)
            );
            let effects = tell(&group, now, Some(note));
            written(group, None, None, effects)
        }
        (false, _) => Decision::nothing(),
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

/// An incident was declared for the group (by a person from its form, or
/// by a rule): its message shows which, and its Declare button goes.
pub fn incident_declared(
    found: Option<AlertGroup>,
    incident: crate::subject::IncidentId,
    severity: Severity,
    by: Option<String>,
    now: DateTime<Utc>,
) -> AlertDecision {
    let Some(mut group) = found else { return Decision::nothing() };
    if group.declared.as_ref().is_some_and(|d| d.incident == Some(incident)) {
        return Decision::nothing();
    }
    let at = group.declared.as_ref().map_or(now, |d| d.at);
    group.declared = Some(Declared { severity, incident: Some(incident), by, at });
    let effects = if group.posts() { vec![Effect::Refresh(group_message(group.id))] } else { Vec::new() };
    written(group, None, None, effects)
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
        AlertButton::Rerun => rerun(group, who, now),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::signal::{AlertmanagerAlert, AlertmanagerGroup, DeploymentStatus, WorkflowRun};
    use crate::runbook::alerts::AlertmanagerRoute;
    use chrono::{TimeDelta, TimeZone};
    use std::collections::BTreeMap;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 2, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn runbook() -> Runbook {
        Runbook::seed()
    }

    fn run(number: u64, conclusion: &str, at: i64) -> WorkflowRun {
        WorkflowRun {
            repo: "octo-org/octo-repo".into(),
            workflow: "CI".into(),
            workflow_path: ".github/workflows/ci.yml".into(),
            workflow_id: 7,
            branch: "main".into(),
            default_branch: "main".into(),
            run_id: 1000 + number,
            run_number: number,
            attempt: 1,
            conclusion: conclusion.into(),
            title: "Fix the cache key".into(),
            author: "Mona".into(),
            sha: "3484a3fb816e0859".into(),
            url: format!("https://github.com/octo-org/octo-repo/actions/runs/{}", 1000 + number),
            started: t(at - 4),
            finished: t(at),
            display_title: "Fix the cache key".into(),
        }
    }

    /// Decides a signal as the engine would: the current group in, a new
    /// number when one may open.
    fn decide(
        s: &Signal,
        current: Option<&AlertGroup>,
        next_id: u64,
        rb: &Runbook,
        now: DateTime<Utc>,
    ) -> AlertDecision {
        let new_id = match needs(s, rb) {
            Need::Current { may_open: true, .. } if !current.is_some_and(|g| g.firing) => Some(AlertId(next_id)),
            Need::Current { .. } => None,
            other => panic!("unexpected need {other:?}"),
        };
        signal(s, Loaded::Current { current: current.cloned(), new_id }, rb, now)
    }

    fn group_of(d: &AlertDecision) -> AlertGroup {
        d.change.as_ref().and_then(|c| c.group.as_ref()).map(|w| w.group.clone()).expect("a group is written")
    }

    fn notes(d: &AlertDecision) -> Vec<String> {
        d.effects
            .iter()
            .filter_map(|e| match e {
                Effect::InThread { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn valid(group: &AlertGroup, rb: &Runbook, now: DateTime<Utc>) -> String {
        let msg = render::message(group, rb, now);
        if let Err(errors) = opsbot_fake_slack::blockkit::validate_blocks(&msg.blocks) {
            panic!("invalid blocks: {errors:?}");
        }
        msg.blocks.to_string()
    }

    #[test]
    fn a_failed_run_on_the_default_branch_opens_a_group_in_the_team_channel_with_its_buttons() {
        let rb = runbook();
        let d = decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0));
        let group = group_of(&d);
        assert_eq!((group.id, group.channel.as_str(), group.firing), (AlertId(1), "#devops", true));
        assert_eq!(d.effects, vec![Effect::Post(group_message(AlertId(1)))]);
        assert!(d.change.as_ref().unwrap().sample.as_ref().is_some_and(|s| s.failed));
        let blocks = valid(&group, &rb, t(0));
        for needle in [
            "octo-org/octo-repo",
            "CI run #5",
            "Fix the cache key",
            "Mona",
            "main",
            "alert.declare",
            "alert.mute",
            "4 min",
        ] {
            assert!(blocks.contains(needle), "{needle} missing in {blocks}");
        }
    }

    #[test]
    fn failing_again_updates_the_same_group_and_lists_the_run_in_its_thread() {
        let rb = runbook();
        let first = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let d = decide(&Signal::WorkflowRun(run(6, "timed_out", 10)), Some(&first), 2, &rb, t(10));
        let second = group_of(&d);
        assert_eq!(second.id, first.id, "no new group");
        assert!(d.change.as_ref().unwrap().group.as_ref().unwrap().opens.is_none());
        assert_eq!(d.effects[0], Effect::Refresh(group_message(first.id)));
        assert!(notes(&d)[0].starts_with("❌ Failure 2"), "{:?}", notes(&d));
        let d = decide(&Signal::WorkflowRun(run(7, "startup_failure", 20)), Some(&second), 3, &rb, t(20));
        let third = group_of(&d);
        assert!(valid(&third, &rb, t(20)).contains("Failing for 3 runs since"));
    }

    #[test]
    fn a_rerun_attempt_belongs_to_its_run_and_a_redelivery_changes_nothing() {
        let rb = runbook();
        let first = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let again = decide(&Signal::WorkflowRun(run(5, "failure", 0)), Some(&first), 2, &rb, t(1));
        assert!(again.change.as_ref().is_none_or(|c| c.group.is_none()), "a redelivery writes no group");
        assert!(again.effects.is_empty());
        let mut rerun = run(5, "failure", 9);
        rerun.attempt = 2;
        let d = decide(&Signal::WorkflowRun(rerun), Some(&first), 2, &rb, t(9));
        let Detail::Workflow(w) = &group_of(&d).detail else { panic!() };
        assert_eq!((w.failures, w.runs.len(), w.runs[0].attempt), (1, 1, 2));
        assert!(notes(&d)[0].starts_with("❌ Re-run failed again"));
    }

    #[test]
    fn a_pass_recovers_the_group_with_the_count_and_how_long_it_failed() {
        let rb = runbook();
        let mut group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        for (n, at) in [(6, 10), (7, 20)] {
            group = group_of(&decide(&Signal::WorkflowRun(run(n, "failure", at)), Some(&group), 9, &rb, t(at)));
        }
        let d = decide(&Signal::WorkflowRun(run(8, "success", 42)), Some(&group), 9, &rb, t(42));
        let recovered = group_of(&d);
        assert!(!recovered.firing);
        assert_eq!(
            notes(&d),
            vec![format!("✅ Recovered after 3 failures (42 min), by run #8: <{}|the run>", run(8, "", 0).url)]
        );
        let blocks = valid(&recovered, &rb, t(42));
        assert!(blocks.contains("Recovered after 3 runs, 42 min"), "{blocks}");
        assert!(!blocks.contains("alert.declare"), "no buttons once recovered");
        // The next failure is a new episode: a new group and message.
        let d = decide(&Signal::WorkflowRun(run(9, "failure", 60)), Some(&recovered), 2, &rb, t(60));
        assert_eq!(group_of(&d).id, AlertId(2));
        assert_eq!(d.change.unwrap().group.unwrap().opens, Some(Opening { replaces: Some(AlertId(1)) }));
    }

    #[test]
    fn an_older_pass_arriving_late_does_not_recover_a_newer_failure() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(6, "failure", 10)), None, 1, &rb, t(10)));
        let d = decide(&Signal::WorkflowRun(run(5, "success", 11)), Some(&group), 2, &rb, t(11));
        assert!(d.change.as_ref().unwrap().group.is_none(), "only the sample is written");
    }

    #[test]
    fn runs_that_do_not_count_say_nothing() {
        let rb = runbook();
        let mut feature = run(5, "failure", 0);
        feature.branch = "feature/x".into();
        assert_eq!(needs(&Signal::WorkflowRun(feature), &rb), Need::Nothing);
        let d = decide(&Signal::WorkflowRun(run(5, "cancelled", 0)), None, 1, &rb, t(0));
        assert_eq!(d, Decision::nothing(), "a cancelled run is neither a failure nor a sample");
        let d = decide(&Signal::WorkflowRun(run(5, "skipped", 0)), None, 1, &rb, t(0));
        assert!(d.change.is_none());
    }

    fn deployment(state: &str, id: u64) -> DeploymentStatus {
        DeploymentStatus {
            repo: "octo-org/octo-repo".into(),
            environment: "production".into(),
            state: state.into(),
            deployment_id: id,
            git_ref: "main".into(),
            sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
            description: "".into(),
            url: "https://github.com/octo-org/octo-repo/deployments".into(),
            creator: "mona".into(),
            at: t(0),
        }
    }

    #[test]
    fn a_failed_production_deployment_declares_a_p1_once_and_posts_nothing_of_its_own() {
        let rb = runbook();
        let d = decide(&Signal::Deployment(deployment("failure", 1)), None, 1, &rb, t(0));
        let group = group_of(&d);
        assert!(group.quiet && d.effects.is_empty(), "the incident is the message");
        let [Timer { due, kind: TimerKind::DeclareFromAlert { alert, declaration } }] = d.timers.as_slice() else {
            panic!("one declare timer: {:?}", d.timers)
        };
        assert_eq!((*due, *alert, declaration.severity), (t(0), AlertId(1), Severity::P1));
        assert!(declaration.details.contains("production") && declaration.details.contains("deployments"));
        // GitHub's `error` after `failure` for the same deployment: recorded,
        // nothing declared again.
        let d = decide(&Signal::Deployment(deployment("error", 1)), Some(&group), 2, &rb, t(1));
        assert!(d.timers.is_empty() && d.effects.is_empty());
        let group = group_of(&d);
        let d = decide(&Signal::Deployment(deployment("success", 2)), Some(&group), 2, &rb, t(30));
        assert!(!group_of(&d).firing && d.effects.is_empty());
        let staging =
            Signal::Deployment(DeploymentStatus { environment: "staging".into(), ..deployment("failure", 3) });
        assert_eq!(needs(&staging, &rb), Need::Nothing);
    }

    fn am_alert(name: &str, instance: &str, firing: bool) -> AlertmanagerAlert {
        let labels: BTreeMap<String, String> =
            [("alertname", name), ("instance", instance)].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        AlertmanagerAlert {
            fingerprint: format!("{name}-{instance}"),
            firing,
            annotations: [("summary".to_owned(), format!("{name} on {instance}"))].into_iter().collect(),
            labels,
            starts_at: Some(t(0)),
            ends_at: None,
            generator_url: "http://prometheus:9090/graph".into(),
        }
    }

    fn am_group(severity: &str, firing: bool, alerts: Vec<AlertmanagerAlert>) -> Signal {
        Signal::Alertmanager(AlertmanagerGroup {
            group_key: "{}:{alertname=\"HighLatency\"}".into(),
            firing,
            receiver: "opsbot".into(),
            group_labels: BTreeMap::new(),
            common_labels: [("alertname", "HighLatency"), ("severity", severity)]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            common_annotations: BTreeMap::new(),
            external_url: "http://alertmanager:9093".into(),
            alerts,
        })
    }

    #[test]
    fn an_alertmanager_group_fires_changes_and_resolves_in_one_group_routed_by_severity() {
        let rb = runbook();
        let d = decide(&am_group("critical", true, vec![am_alert("HighLatency", "a", true)]), None, 1, &rb, t(0));
        let group = group_of(&d);
        assert_eq!(group.channel, "#devops-alerts", "critical goes to the alerts channel");
        assert!(d.timers.is_empty(), "the seed declares nothing for a group");
        let repeat =
            decide(&am_group("critical", true, vec![am_alert("HighLatency", "a", true)]), Some(&group), 2, &rb, t(5));
        assert_eq!(repeat, Decision::nothing(), "a repeat notification edits nothing");
        let two = vec![am_alert("HighLatency", "a", true), am_alert("HighLatency", "b", true)];
        let d = decide(&am_group("critical", true, two), Some(&group), 2, &rb, t(6));
        let changed = group_of(&d);
        assert_eq!((changed.id, d.effects.clone()), (group.id, vec![Effect::Refresh(group_message(group.id))]));
        assert!(valid(&changed, &rb, t(6)).contains("*2 firing*"));
        let d = decide(
            &am_group("critical", false, vec![am_alert("HighLatency", "a", false)]),
            Some(&changed),
            2,
            &rb,
            t(20),
        );
        let resolved = group_of(&d);
        assert!(!resolved.firing);
        assert_eq!(notes(&d), vec!["✅ Resolved after 20 min.".to_owned()]);
        assert!(valid(&resolved, &rb, t(20)).contains("Resolved"));
        let warning = decide(&am_group("warning", true, vec![am_alert("DiskFull", "a", true)]), None, 3, &rb, t(30));
        assert_eq!(group_of(&warning).channel, "#devops");
    }

    #[test]
    fn a_rule_makes_a_critical_group_declare_an_incident_once() {
        let mut rb = runbook();
        rb.alerts.alertmanager.insert(
            0,
            AlertmanagerRoute {
                matchers: vec![("severity".into(), "critical".into())],
                channel: "#devops-alerts".into(),
                declare: Some(Severity::P1),
                mute: false,
            },
        );
        let fire = || am_group("critical", true, vec![am_alert("HighLatency", "a", true)]);
        let d = decide(&fire(), None, 1, &rb, t(0));
        assert_eq!(d.timers.len(), 1);
        let group = group_of(&d);
        assert!(valid(&group, &rb, t(0)).contains("incident was declared by the runbook"));
        let mut more = fire();
        if let Signal::Alertmanager(g) = &mut more {
            g.alerts.push(am_alert("HighLatency", "b", true));
        }
        let d = decide(&more, Some(&group), 2, &rb, t(5));
        assert!(d.timers.is_empty(), "a later notification of the same group declares nothing");
    }

    #[test]
    fn a_muted_group_keeps_its_message_current_but_says_nothing_in_its_thread() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let who = Invocation {
            user: "U0ALICE".into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        };
        let d = click(AlertButton::Mute, group.id, Some(group), &who, t(1));
        let muted = group_of(&d);
        assert!(notes(&d)[0].contains("muted this for 1 h"));
        assert!(valid(&muted, &rb, t(1)).contains("alert.unmute"));
        let d = decide(&Signal::WorkflowRun(run(6, "failure", 10)), Some(&muted), 2, &rb, t(10));
        assert_eq!(d.effects, vec![Effect::Refresh(group_message(muted.id))]);
        let later = group_of(&d);
        let d = decide(&Signal::WorkflowRun(run(7, "failure", 70)), Some(&later), 2, &rb, t(70));
        assert_eq!(notes(&d).len(), 1, "the mute is over after an hour");
    }

    fn bob() -> Invocation {
        Invocation {
            user: "U0BOB".into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    #[test]
    fn a_re_run_asks_github_once_and_the_new_attempt_settles_it() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let d = click(AlertButton::Rerun, group.id, Some(group.clone()), &bob(), t(1));
        let asked = group_of(&d);
        let repo = crate::github::Repo::parse("octo-org/octo-repo").unwrap();
        assert!(d.effects.contains(&Effect::Call {
            call: Call::RerunFailedJobs { repo, run_id: 1005 },
            caller: crate::decision::Caller::Alert(group.id)
        }));
        assert!(notes(&d)[0].contains("<@U0BOB> asked GitHub to re-run the failed jobs of run #5 (attempt 2)"));
        let shown = valid(&asked, &rb, t(1));
        assert!(shown.contains("waiting for attempt 2") && !shown.contains("alert.rerun"), "{shown}");

        let again = click(AlertButton::Rerun, asked.id, Some(asked.clone()), &bob(), t(2));
        assert!(again.change.is_none(), "one re-run at a time");
        assert!(matches!(&again.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("on its way")));

        let mut second = run(5, "failure", 9);
        second.attempt = 2;
        let d = decide(&Signal::WorkflowRun(second), Some(&asked), 2, &rb, t(9));
        assert!(notes(&d)[0].contains("The re-run <@U0BOB> asked for failed again"), "{:?}", notes(&d));
        assert!(valid(&group_of(&d), &rb, t(9)).contains("alert.rerun"), "the button is back");
    }

    #[test]
    fn a_refused_re_run_is_shown_with_githubs_reason_and_can_be_tried_again() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let asked = group_of(&click(AlertButton::Rerun, group.id, Some(group), &bob(), t(1)));
        let repo = crate::github::Repo::parse("octo-org/octo-repo").unwrap();
        let call = Call::RerunFailedJobs { repo: repo.clone(), run_id: 1005 };
        let why = "GitHub said \"This workflow is already running\" (403)";
        let d = github_refused(Some(asked.clone()), &call, why, t(2));
        let refused = group_of(&d);
        assert!(notes(&d)[0].contains("would not re-run run #5 for <@U0BOB>"), "{:?}", notes(&d));
        let shown = valid(&refused, &rb, t(2));
        assert!(shown.contains("already running") && shown.contains("alert.rerun"), "{shown}");
        // A refusal of an older call, once answered, changes nothing.
        let stale = Call::RerunFailedJobs { repo, run_id: 999 };
        assert!(github_refused(Some(refused), &stale, why, t(3)).change.is_none());
    }

    #[test]
    fn the_declare_button_opens_a_valid_form_prefilled_from_the_alert() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let who = Invocation {
            user: "U0ALICE".into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        };
        let d = click(AlertButton::Declare, group.id, Some(group), &who, t(1));
        let modal = d.modal.expect("a form");
        opsbot_fake_slack::blockkit::validate_view(&modal.view).expect("a valid modal");
        let view = modal.view.to_string();
        assert!(view.contains("CI failing on main in octo-org/octo-repo") && view.contains("\"P2\""), "{view}");
        assert!(d.change.is_none());
    }

    fn kpi_runs(failed: usize, passed: usize, at: i64) -> Vec<RunSample> {
        (0..failed + passed)
            .map(|i| RunSample { run_id: i as u64, attempt: 1, failed: i < failed, seconds: 240, finished: t(at) })
            .collect()
    }

    fn kpi(id: &str, current: Option<&AlertGroup>, runs: Vec<RunSample>, now: DateTime<Utc>) -> AlertDecision {
        let new_id = (!current.is_some_and(|g| g.firing)).then_some(AlertId(99));
        kpi_check(id, Loaded::Kpi { current: current.cloned(), new_id, runs }, &runbook(), now)
    }

    #[test]
    fn the_failure_rate_alert_fires_once_stays_quiet_recovers_and_fires_again() {
        let rb = runbook();
        let id = "high-build-failure-rate";
        assert_eq!(kpi(id, None, kpi_runs(1, 3, 0), t(0)), Decision::nothing(), "too few runs to say");
        assert_eq!(kpi(id, None, kpi_runs(1, 19, 0), t(0)), Decision::nothing(), "5 % is within bounds");
        assert!(!kpi_crosses(id, None, &kpi_runs(1, 19, 0), &rb, t(0)), "no number taken while within bounds");
        assert!(kpi_crosses(id, None, &kpi_runs(3, 7, 0), &rb, t(0)));
        let d = kpi(id, None, kpi_runs(3, 7, 0), t(0));
        let fired = group_of(&d);
        assert!(!kpi_crosses(id, Some(&fired), &kpi_runs(3, 7, 0), &rb, t(0)), "no number taken while it fires");
        assert_eq!(d.effects, vec![Effect::Post(group_message(AlertId(99)))]);
        let blocks = valid(&fired, &rb, t(0));
        assert!(
            blocks.contains("High Build Failure Rate") && blocks.contains("failure rate 30 % (3 of 10 runs"),
            "{blocks}"
        );
        assert_eq!(kpi(id, Some(&fired), kpi_runs(4, 7, 1), t(1)), Decision::nothing(), "quiet while above");
        let d = kpi(id, Some(&fired), kpi_runs(1, 19, 2), t(2));
        let recovered = group_of(&d);
        assert!(!recovered.firing && notes(&d)[0].starts_with("✅ Back within bounds"));
        let d = kpi(id, Some(&recovered), kpi_runs(5, 5, 3), t(3));
        assert_eq!(d.change.unwrap().group.unwrap().opens, Some(Opening { replaces: Some(recovered.id) }));
    }

    #[test]
    fn slow_builds_ask_someone_to_investigate() {
        let rb = runbook();
        let slow: Vec<RunSample> = kpi_runs(0, 3, 0).into_iter().map(|r| RunSample { seconds: 11 * 60, ..r }).collect();
        let d = kpi("slow-build-times", None, slow, t(0));
        let blocks = valid(&group_of(&d), &rb, t(0));
        assert!(blocks.contains("Can someone investigate") && blocks.contains("average build time 11 min"), "{blocks}");
    }

    #[test]
    fn the_window_counts_only_recent_runs() {
        let mut runs = kpi_runs(5, 0, -(25 * 60));
        runs.extend(kpi_runs(0, 5, 0));
        let f = figures(&runs, t(0) - TimeDelta::hours(24));
        assert_eq!((f.runs, f.failed, f.passed), (5, 0, 5));
    }

    #[test]
    fn the_declared_incident_shows_on_the_group_and_its_declare_button_goes() {
        let rb = runbook();
        let group = group_of(&decide(&Signal::WorkflowRun(run(5, "failure", 0)), None, 1, &rb, t(0)));
        let id = crate::subject::IncidentId(7);
        let d = incident_declared(Some(group), id, Severity::P2, Some("U0ALICE".into()), t(1));
        let declared = group_of(&d);
        assert_eq!(d.effects, vec![Effect::Refresh(group_message(declared.id))]);
        let blocks = valid(&declared, &rb, t(1));
        assert!(blocks.contains("*INC-7* (P2) was declared for this by <@U0ALICE>"), "{blocks}");
        assert!(!blocks.contains("alert.declare") && blocks.contains("alert.mute"));
        assert_eq!(incident_declared(Some(declared), id, Severity::P2, None, t(2)), Decision::nothing());
    }
}
