//! The sandbox's alert scenarios ("Play an alert"): GitHub and Alertmanager
//! webhook payloads made from real deliveries (copies of the parsers'
//! fixtures, in `payloads/`), edited with the scenario's run numbers and
//! alerts and the sandbox's clock, then read by the same parsers as the
//! webhooks, so the engine decides exactly what a real delivery would make
//! it decide.
//!
//! Each play goes on from the last: the next run of the workflow, one more
//! alert in the group. [`Plays`] remembers where the story is.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use opsbot_handlers::alert::alertmanager;
use opsbot_handlers::alert::decide::{self, Need};
use opsbot_handlers::alert::github::{self, Parsed};
use opsbot_handlers::alert::signal::Signal;
use opsbot_handlers::Runbook;
use serde_json::{json, Value};

const WORKFLOW_RUN: &str = include_str!("payloads/workflow_run.completed.success.json");
const DEPLOYMENT_STATUS: &str = include_str!("payloads/deployment_status.created.json");
const ALERTMANAGER: &str = include_str!("payloads/firing.two_alerts.json");

const REPO: &str = "octo-org/octo-repo";
const REPO_URL: &str = "https://github.com/octo-org/octo-repo";
const WORKFLOW: &str = "CI";
const WORKFLOW_PATH: &str = ".github/workflows/ci.yml";
const BRANCH: &str = "main";
const ENVIRONMENT: &str = "production";
/// Played runs take this long: well under the seed runbook's slow-build
/// alert, so playing a few runs does not trip that alert as well.
const RUN_TAKES: TimeDelta = TimeDelta::minutes(4);
const ALERT_NAME: &str = "HighErrorRate";
/// Alerts a firing `HighErrorRate` starts with.
const FIRST_ALERTS: usize = 2;
/// More than the storm guard lets through one by one in a minute, so most
/// of them land in the channel's digest.
const STORM_GROUPS: usize = 60;
const STORM_ALERT: &str = "DiskSpaceLow";
const ALERTMANAGER_URL: &str = "https://alertmanager.example.com";
/// What Alertmanager sends as the `endsAt` of an alert still firing (Go's zero time).
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// What the page's "Play an alert" menu offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    GithubFailure,
    GithubRecovery,
    DeploymentFailure,
    AlertmanagerFiring,
    AlertmanagerResolved,
    Storm,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::GithubFailure,
        Scenario::GithubRecovery,
        Scenario::DeploymentFailure,
        Scenario::AlertmanagerFiring,
        Scenario::AlertmanagerResolved,
        Scenario::Storm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::GithubFailure => "github-failure",
            Scenario::GithubRecovery => "github-recovery",
            Scenario::DeploymentFailure => "deployment-failure",
            Scenario::AlertmanagerFiring => "alertmanager-firing",
            Scenario::AlertmanagerResolved => "alertmanager-resolved",
            Scenario::Storm => "storm",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where each scenario's story is. A play is worked out on a copy, which
/// replaces this only once every signal of the play was decided: a play
/// that failed half-way is played again from the same point, and the
/// signals already decided then change nothing.
#[derive(Clone, Debug, Default)]
pub struct Plays {
    /// CI runs played; each play is the workflow's next run.
    ci_runs: u64,
    /// Whether the last CI run played failed.
    ci_failing: bool,
    deployments: u64,
    /// When each firing alert of `HighErrorRate` started; empty while the
    /// group is resolved (or never fired).
    firing_since: Vec<DateTime<Utc>>,
    storms: u64,
}

/// What a play sends and says.
pub struct Script {
    /// Decided in this order.
    pub signals: Vec<Signal>,
    /// What happened, in a few words, for the page.
    pub said: String,
    /// Where the bot will post about it, as the runbook names the channel;
    /// `None` when the runbook keeps quiet about it.
    pub channel: Option<String>,
    /// Where the story is once the signals are decided.
    pub next: Plays,
}

/// Why a scenario was not played.
#[derive(Debug)]
pub enum Refused {
    /// It makes no sense now, e.g. resolving a group that is not firing.
    NotNow(String),
    /// The sandbox's own payload did not read: a bug of the sandbox.
    Broken(String),
}

impl Plays {
    /// The signals of the next play of `scenario` at `now`, and where the
    /// story is after them.
    pub fn play(&self, scenario: Scenario, now: DateTime<Utc>, runbook: &Runbook) -> Result<Script, Refused> {
        let mut next = self.clone();
        let (signals, said) = match scenario {
            Scenario::GithubFailure | Scenario::GithubRecovery => {
                let failed = scenario == Scenario::GithubFailure;
                next.ci_runs += 1;
                next.ci_failing = failed;
                let (signal, number) = workflow_run(next.ci_runs, failed, now)?;
                let said = match (failed, self.ci_failing) {
                    (true, false) => format!("{WORKFLOW} run #{number} failed on {BRANCH} of {REPO}"),
                    (true, true) => format!("{WORKFLOW} run #{number} failed again on {BRANCH} of {REPO}"),
                    (false, true) => format!("{WORKFLOW} run #{number} passed on {BRANCH} of {REPO}: it recovered"),
                    (false, false) => format!(
                        "{WORKFLOW} run #{number} passed on {BRANCH} of {REPO}; nothing was failing, so there is nothing to post"
                    ),
                };
                (vec![signal], said)
            }
            Scenario::DeploymentFailure => {
                next.deployments += 1;
                let (signal, id) = deployment_failure(next.deployments, now)?;
                let declares = runbook.alerts.github.deployment(ENVIRONMENT).and_then(|rule| rule.declare);
                let said = match (self.deployments, declares) {
                    (0, Some(severity)) => format!("Deployment #{id} to {ENVIRONMENT} failed: a {severity} incident is declared"),
                    (0, None) => format!("Deployment #{id} to {ENVIRONMENT} failed"),
                    (_, Some(severity)) => format!(
                        "Deployment #{id} to {ENVIRONMENT} failed too; the {severity} incident declared for the first failure stands"
                    ),
                    (_, None) => format!("Deployment #{id} to {ENVIRONMENT} failed too; it joins the open alert's thread"),
                };
                (vec![signal], said)
            }
            Scenario::AlertmanagerFiring => {
                let more = if next.firing_since.is_empty() { FIRST_ALERTS } else { 1 };
                next.firing_since.extend(std::iter::repeat_n(now, more));
                let signal = error_rate(&next.firing_since, true, now)?;
                let said = format!("{ALERT_NAME} fires with {} alerts", next.firing_since.len());
                (vec![signal], said)
            }
            Scenario::AlertmanagerResolved => {
                if self.firing_since.is_empty() {
                    return Err(Refused::NotNow(format!("{ALERT_NAME} is not firing: play alertmanager-firing first")));
                }
                let signal = error_rate(&self.firing_since, false, now)?;
                next.firing_since.clear();
                (vec![signal], format!("{ALERT_NAME} resolved ({} alerts)", self.firing_since.len()))
            }
            Scenario::Storm => {
                next.storms += 1;
                // Each storm's hosts are new ones: the groups of an earlier
                // storm are still firing, and repeating them would change nothing.
                let first = self.storms as usize * STORM_GROUPS + 1;
                let signals = (first..first + STORM_GROUPS)
                    .map(|host| disk_space_low(host, now))
                    .collect::<Result<Vec<_>, _>>()?;
                (signals, format!("{STORM_GROUPS} {STORM_ALERT} groups fire at once"))
            }
        };
        let channel = signals.first().and_then(|s| channel(s, runbook));
        Ok(Script { signals, said, channel, next })
    }
}

/// Where the runbook sends a signal's message (or its declared incident);
/// `None` when it does not alert on it, or keeps it quiet.
fn channel(signal: &Signal, runbook: &Runbook) -> Option<String> {
    if decide::needs(signal, runbook) == Need::Nothing {
        return None;
    }
    let rules = &runbook.alerts;
    match signal {
        Signal::WorkflowRun(_) | Signal::WorkflowRunStarted(_) => Some(rules.github.channel.clone()),
        Signal::Deployment(d) => {
            let rule = rules.github.deployment(&d.environment)?;
            Some(rule.declare.map_or(rule.channel.as_str(), |severity| runbook.channel_for(severity)).to_owned())
        }
        Signal::Alertmanager(group) => match rules.alertmanager_route(&group.common_labels) {
            Some(route) if route.mute => None,
            Some(route) => Some(route.channel.clone()),
            None => Some(runbook.channels.team.clone()),
        },
    }
}

/// The `n`th played run of the CI workflow on `main`, finishing `now`; its
/// run number.
fn workflow_run(n: u64, failed: bool, now: DateTime<Utc>) -> Result<(Signal, u64), Refused> {
    let mut payload = fixture(WORKFLOW_RUN)?;
    let id = number(&payload, "/workflow_run/id")? + n;
    let run_number = number(&payload, "/workflow_run/run_number")? + n;
    let started = time(now - RUN_TAKES);
    // The failures are of the fixture's commit; the pass is the commit
    // that reverted it.
    let sha = text(&payload, "/workflow_run/head_sha")?;
    let (sha, message) = if failed {
        (sha, text(&payload, "/workflow_run/head_commit/message")?)
    } else {
        let original = text(&payload, "/workflow_run/head_commit/message")?;
        (sha.chars().rev().collect(), format!("Revert \"{original}\""))
    };
    let title = message.lines().next().unwrap_or_default().to_owned();
    for (path, value) in [
        ("/repository/full_name", json!(REPO)),
        ("/repository/html_url", json!(REPO_URL)),
        ("/repository/default_branch", json!(BRANCH)),
        ("/workflow/name", json!(WORKFLOW)),
        ("/workflow/path", json!(WORKFLOW_PATH)),
        ("/workflow_run/name", json!(WORKFLOW)),
        ("/workflow_run/path", json!(WORKFLOW_PATH)),
        ("/workflow_run/event", json!("push")),
        ("/workflow_run/head_branch", json!(BRANCH)),
        ("/workflow_run/id", json!(id)),
        ("/workflow_run/run_number", json!(run_number)),
        ("/workflow_run/run_attempt", json!(1)),
        ("/workflow_run/conclusion", json!(if failed { "failure" } else { "success" })),
        ("/workflow_run/html_url", json!(format!("{REPO_URL}/actions/runs/{id}"))),
        ("/workflow_run/created_at", json!(started)),
        ("/workflow_run/run_started_at", json!(started)),
        ("/workflow_run/updated_at", json!(time(now))),
        ("/workflow_run/head_sha", json!(sha)),
        ("/workflow_run/display_title", json!(title)),
        ("/workflow_run/head_commit/id", json!(sha)),
        ("/workflow_run/head_commit/message", json!(message)),
        ("/workflow_run/head_commit/timestamp", json!(time(now - RUN_TAKES - TimeDelta::minutes(1)))),
    ] {
        set(&mut payload, path, value)?;
    }
    let signal = github_signal("workflow_run", &payload)?;
    Ok((signal, run_number))
}

/// The `n`th played deployment of `main` to production, failed `now`; its id.
fn deployment_failure(n: u64, now: DateTime<Utc>) -> Result<(Signal, u64), Refused> {
    let mut payload = fixture(DEPLOYMENT_STATUS)?;
    let id = number(&payload, "/deployment/id")? + n;
    let status_id = number(&payload, "/deployment_status/id")? + n;
    for (path, value) in [
        ("/repository/full_name", json!(REPO)),
        ("/repository/html_url", json!(REPO_URL)),
        ("/repository/default_branch", json!(BRANCH)),
        ("/deployment/id", json!(id)),
        ("/deployment/ref", json!(BRANCH)),
        ("/deployment/environment", json!(ENVIRONMENT)),
        ("/deployment/created_at", json!(time(now - TimeDelta::minutes(2)))),
        ("/deployment/updated_at", json!(time(now))),
        ("/deployment_status/id", json!(status_id)),
        ("/deployment_status/state", json!("failure")),
        ("/deployment_status/environment", json!(ENVIRONMENT)),
        ("/deployment_status/description", json!("Health checks failed after the rollout; rolled back.")),
        ("/deployment_status/created_at", json!(time(now))),
        ("/deployment_status/updated_at", json!(time(now))),
    ] {
        set(&mut payload, path, value)?;
    }
    let signal = github_signal("deployment_status", &payload)?;
    Ok((signal, id))
}

/// `HighErrorRate` with one alert per start time, firing or resolved `now`.
fn error_rate(started: &[DateTime<Utc>], firing: bool, now: DateTime<Utc>) -> Result<Signal, Refused> {
    let labels = json!({"alertname": ALERT_NAME, "severity": "critical", "service": "checkout"});
    let alerts = started
        .iter()
        .enumerate()
        .map(|(i, since)| {
            let instance = format!("checkout-{}", i + 1);
            let mut alert_labels = labels.clone();
            if let Some(map) = alert_labels.as_object_mut() {
                map.insert("instance".into(), json!(instance));
            }
            let annotations = json!({
                "summary": "Checkout is failing requests",
                "description": format!("More than 5% of the requests to {instance} failed over the last 5 minutes."),
            });
            (alert_labels, annotations, *since)
        })
        .collect();
    let group_labels = json!({"alertname": ALERT_NAME});
    let common_annotations = json!({"summary": "Checkout is failing requests"});
    alertmanager_signal(&group_labels, &labels, &common_annotations, alerts, firing, now)
}

/// One storm group: `DiskSpaceLow` on one host, firing since `now`.
fn disk_space_low(host: usize, now: DateTime<Utc>) -> Result<Signal, Refused> {
    let instance = format!("node-{host:03}");
    let labels = json!({"alertname": STORM_ALERT, "severity": "warning", "instance": instance});
    let annotations = json!({"summary": format!("Less than 10% disk space left on {instance}")});
    let group_labels = json!({"alertname": STORM_ALERT, "instance": instance});
    let alerts = vec![(labels.clone(), annotations.clone(), now)];
    alertmanager_signal(&group_labels, &labels, &annotations, alerts, true, now)
}

/// A notification of the group `group_labels` names, made from the
/// fixture: its alerts as (labels, annotations, start), all firing or all
/// resolved `now`, as Alertmanager sends a group's alerts together.
fn alertmanager_signal(
    group_labels: &Value,
    common_labels: &Value,
    common_annotations: &Value,
    alerts: Vec<(Value, Value, DateTime<Utc>)>,
    firing: bool,
    now: DateTime<Utc>,
) -> Result<Signal, Refused> {
    let mut payload = fixture(ALERTMANAGER)?;
    let template = payload.pointer("/alerts/0").cloned().ok_or_else(|| broken("the payload has no alert"))?;
    let status = if firing { "firing" } else { "resolved" };
    let alerts = alerts
        .into_iter()
        .map(|(labels, annotations, since)| {
            let mut alert = template.clone();
            for (path, value) in [
                ("/status", json!(status)),
                ("/labels", labels),
                ("/annotations", annotations),
                ("/startsAt", json!(time(since))),
                ("/endsAt", json!(if firing { NOT_ENDED.to_owned() } else { time(now) })),
            ] {
                set(&mut alert, path, value)?;
            }
            Ok(alert)
        })
        .collect::<Result<Vec<_>, Refused>>()?;
    for (path, value) in [
        ("/groupKey", json!(group_key(group_labels))),
        ("/status", json!(status)),
        ("/receiver", json!("opsbot")),
        ("/groupLabels", group_labels.clone()),
        ("/commonLabels", common_labels.clone()),
        ("/commonAnnotations", common_annotations.clone()),
        ("/externalURL", json!(ALERTMANAGER_URL)),
        ("/alerts", Value::Array(alerts)),
    ] {
        set(&mut payload, path, value)?;
    }
    let body = serde_json::to_vec(&payload).map_err(|e| broken(e.to_string()))?;
    let group = alertmanager::parse(&body).map_err(|e| broken(e.to_string()))?;
    Ok(Signal::Alertmanager(group))
}

/// Alertmanager's key for a group of the root route: its labels, sorted.
fn group_key(group_labels: &Value) -> String {
    let mut pairs: Vec<String> =
        group_labels.as_object().into_iter().flatten().map(|(name, value)| format!("{name}={value}")).collect();
    pairs.sort();
    format!("{{}}:{{{}}}", pairs.join(", "))
}

fn github_signal(event: &str, payload: &Value) -> Result<Signal, Refused> {
    let body = serde_json::to_vec(payload).map_err(|e| broken(e.to_string()))?;
    match github::parse(event, &body) {
        Ok(Parsed::Signal(signal)) => Ok(signal),
        Ok(other) => Err(broken(format!("the `{event}` payload was not read as a signal: {other:?}"))),
        Err(e) => Err(broken(e.to_string())),
    }
}

fn broken(why: impl Into<String>) -> Refused {
    Refused::Broken(why.into())
}

fn fixture(json: &str) -> Result<Value, Refused> {
    serde_json::from_str(json).map_err(|e| broken(format!("an embedded payload is not JSON: {e}")))
}

fn number(payload: &Value, path: &str) -> Result<u64, Refused> {
    payload
        .pointer(path)
        .and_then(Value::as_u64)
        .ok_or_else(|| broken(format!("the payload has no number at `{path}`")))
}

fn text(payload: &Value, path: &str) -> Result<String, Refused> {
    payload
        .pointer(path)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| broken(format!("the payload has no text at `{path}`")))
}

/// Sets the field at the JSON pointer `path`, whose parent object must
/// exist (the edits keep the fixture's shape).
fn set(payload: &mut Value, path: &str, value: Value) -> Result<(), Refused> {
    let (parent, field) = path.rsplit_once('/').ok_or_else(|| broken(format!("`{path}` is not a JSON pointer")))?;
    let object = payload
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| broken(format!("the payload has no object at `{parent}`")))?;
    object.insert(field.to_owned(), value);
    Ok(())
}

/// A time as GitHub and Alertmanager write it.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 2, 0).unwrap()
    }

    fn played(plays: &Plays, scenario: Scenario) -> Script {
        match plays.play(scenario, now(), &Runbook::seed()) {
            Ok(script) => script,
            Err(refused) => panic!("{} was refused: {refused:?}", scenario.name()),
        }
    }

    #[test]
    fn scenarios_are_named_as_the_page_names_them() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::parse(scenario.name()), Some(scenario));
        }
        assert_eq!(Scenario::parse("github"), None);
    }

    #[test]
    fn ci_runs_go_on_from_the_fixtures_run_and_fail_on_main() {
        let first = played(&Plays::default(), Scenario::GithubFailure);
        let second = played(&first.next, Scenario::GithubFailure);
        let pass = played(&second.next, Scenario::GithubRecovery);
        let runs: Vec<_> = [&first, &second, &pass]
            .iter()
            .map(|s| match &s.signals[..] {
                [Signal::WorkflowRun(run)] => run.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let numbers: Vec<_> = runs.iter().map(|r| (r.run_number, r.conclusion.as_str())).collect();
        assert_eq!(numbers, [(164, "failure"), (165, "failure"), (166, "success")]);
        let run = &runs[0];
        assert_eq!((run.repo.as_str(), run.workflow.as_str(), run.branch.as_str()), (REPO, WORKFLOW, BRANCH));
        assert_eq!(run.default_branch, BRANCH);
        assert_eq!((run.finished, run.duration()), (now(), RUN_TAKES));
        assert_ne!(runs[0].run_id, runs[1].run_id);
        assert_ne!(runs[2].sha, runs[1].sha, "the pass is another commit");
        assert!(second.said.contains("failed again"), "{}", second.said);
        assert_eq!(first.channel.as_deref(), Some("#devops"));
    }

    #[test]
    fn a_failed_production_deployment_goes_where_its_p1_is_declared() {
        let script = played(&Plays::default(), Scenario::DeploymentFailure);
        let [Signal::Deployment(d)] = &script.signals[..] else { panic!("{:?}", script.signals) };
        assert_eq!((d.state.as_str(), d.environment.as_str(), d.repo.as_str()), ("failure", ENVIRONMENT, REPO));
        assert_eq!((d.git_ref.as_str(), d.at), (BRANCH, now()));
        assert_eq!(script.channel.as_deref(), Some("#devops-alerts"));
    }

    #[test]
    fn the_error_rate_group_fires_two_alerts_then_one_more_and_resolves_them_all() {
        let refused = Plays::default().play(Scenario::AlertmanagerResolved, now(), &Runbook::seed());
        assert!(matches!(refused, Err(Refused::NotNow(_))), "{:?}", refused.err());
        let fired = played(&Plays::default(), Scenario::AlertmanagerFiring);
        let again = played(&fired.next, Scenario::AlertmanagerFiring);
        let resolved = played(&again.next, Scenario::AlertmanagerResolved);
        let group = |s: &Script| match &s.signals[..] {
            [Signal::Alertmanager(g)] => g.clone(),
            other => panic!("{other:?}"),
        };
        let (fired, again, resolved) = (group(&fired), group(&again), group(&resolved));
        assert_eq!(fired.group_key, "{}:{alertname=\"HighErrorRate\"}");
        assert_eq!((fired.alerts.len(), again.alerts.len()), (2, 3));
        assert_eq!(fired.alerts[0].fingerprint, again.alerts[0].fingerprint, "the same alert, still firing");
        assert!(again.firing && again.alerts.iter().all(|a| a.firing && a.ends_at.is_none()));
        assert_eq!(again.common_labels.get("severity").map(String::as_str), Some("critical"));
        assert!(!resolved.firing && resolved.alerts.iter().all(|a| !a.firing && a.ends_at == Some(now())));
        assert_eq!(resolved.group_key, fired.group_key);
    }

    #[test]
    fn a_storm_is_sixty_new_warning_groups_each_time() {
        let first = played(&Plays::default(), Scenario::Storm);
        let second = played(&first.next, Scenario::Storm);
        let keys = |s: &Script| {
            s.signals
                .iter()
                .map(|signal| match signal {
                    Signal::Alertmanager(g) => {
                        assert_eq!(g.common_labels.get("severity").map(String::as_str), Some("warning"));
                        g.group_key.clone()
                    }
                    other => panic!("{other:?}"),
                })
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (a, b) = (keys(&first), keys(&second));
        assert_eq!((a.len(), b.len()), (STORM_GROUPS, STORM_GROUPS));
        assert!(a.is_disjoint(&b), "a second storm is of other hosts");
        assert_eq!(first.channel.as_deref(), Some("#devops"));
    }
}
