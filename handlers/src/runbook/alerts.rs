//! What the runbook says about alerts that arrive by themselves: the
//! KPIs and their targets, the KPI alerts (the seed's "Alert
//! Configuration"), and how webhook signals are routed (which branches and
//! environments count, which channel a label goes to, which rules declare
//! an incident).
//!
//! Channels here are already resolved to what the runbook's `channels`
//! names (`alerts` → `#devops-alerts`), so the core posts where it reads.

use crate::severity::Severity;
use chrono::TimeDelta;
use std::fmt;

/// Everything about automatic alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRules {
    pub github: GithubRules,
    /// First match wins; a group no route matches goes to the team channel.
    pub alertmanager: Vec<AlertmanagerRoute>,
    /// The runbook's KPIs with their targets.
    pub kpis: Vec<Kpi>,
    /// Alerts on KPIs computed from the workflow runs opsbot has seen.
    pub kpi_alerts: Vec<KpiAlert>,
}

/// Which GitHub Actions signals count, and where they go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubRules {
    /// Branches whose failed workflow runs alert. Never empty.
    pub branches: Vec<BranchRule>,
    /// Where failed workflow runs are posted.
    pub channel: String,
    /// Workflows (by name or by file path) that never alert.
    pub ignore_workflows: Vec<String>,
    /// What a deployment status does, by environment.
    pub deployments: Vec<DeploymentRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchRule {
    /// The repository's default branch, as the payload names it.
    Default,
    /// A branch by name.
    Named(String),
}

impl GithubRules {
    /// Whether a run on `branch` of a repository whose default branch is
    /// `default_branch` counts.
    pub fn counts_branch(&self, branch: &str, default_branch: &str) -> bool {
        self.branches.iter().any(|rule| match rule {
            BranchRule::Default => branch == default_branch,
            BranchRule::Named(name) => branch == name,
        })
    }

    /// Whether a workflow is ignored, by its name or its file path.
    pub fn ignores_workflow(&self, name: &str, path: &str) -> bool {
        self.ignore_workflows.iter().any(|w| w == name || w == path)
    }

    /// The rule for a deployment to `environment`, if one counts it.
    pub fn deployment(&self, environment: &str) -> Option<&DeploymentRule> {
        self.deployments.iter().find(|d| d.environment.eq_ignore_ascii_case(environment))
    }
}

/// A deployment environment that alerts when a deployment to it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentRule {
    pub environment: String,
    /// Deployment states that count as failed, e.g. `failure`, `error`.
    pub failed_states: Vec<String>,
    /// Declare an incident of this severity; `None`: only post an alert.
    pub declare: Option<Severity>,
    /// Where the alert goes when nothing is declared.
    pub channel: String,
}

/// Routes an Alertmanager group by its common labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerRoute {
    /// Every `label = value` must hold; empty matches every group.
    pub matchers: Vec<(String, String)>,
    pub channel: String,
    /// Declare an incident of this severity when such a group fires.
    pub declare: Option<Severity>,
    /// Matching groups are accepted and kept, but nobody is told.
    pub mute: bool,
}

impl AlertmanagerRoute {
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

impl AlertRules {
    /// The route an Alertmanager group with these common labels takes.
    pub fn alertmanager_route(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<&AlertmanagerRoute> {
        self.alertmanager.iter().find(|r| r.matches(labels))
    }
}

/// What opsbot can compute from the workflow runs it has seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Failed runs over finished runs, in percent.
    FailureRate,
    /// Successful runs over finished runs, in percent.
    SuccessRate,
    /// The mean time from a run's start to its end.
    AverageBuildTime,
}

impl Metric {
    /// Every metric, in the order messages list them.
    pub const ALL: [Metric; 3] = [Metric::FailureRate, Metric::SuccessRate, Metric::AverageBuildTime];

    /// The name conditions use, e.g. `failure_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FailureRate => "failure_rate",
            Metric::SuccessRate => "success_rate",
            Metric::AverageBuildTime => "avg_build_time",
        }
    }

    pub fn parse(word: &str) -> Option<Metric> {
        match word {
            "failure_rate" => Some(Metric::FailureRate),
            "success_rate" => Some(Metric::SuccessRate),
            "avg_build_time" | "average_build_time" => Some(Metric::AverageBuildTime),
            _ => None,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }
}

/// A number with its unit, as the runbook writes it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Quantity {
    Percent(f64),
    Duration(TimeDelta),
    Count(f64),
}

impl Quantity {
    /// The value in the unit metrics are computed in: percent, seconds, count.
    pub fn value(self) -> f64 {
        match self {
            Quantity::Percent(p) => p,
            Quantity::Duration(d) => d.num_milliseconds() as f64 / 1000.0,
            Quantity::Count(n) => n,
        }
    }
}

impl fmt::Display for Quantity {
    /// The short form runbooks write: `95%`, `5m`, `2h 30m`, `10`. A
    /// duration is shown in whole seconds, the finest unit a runbook writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Percent(p) => write!(f, "{p}%"),
            Quantity::Count(n) => write!(f, "{n}"),
            Quantity::Duration(d) => {
                let mut seconds = d.num_seconds();
                if seconds < 0 {
                    f.write_str("-")?;
                    seconds = -seconds;
                }
                if seconds == 0 {
                    return f.write_str("0s");
                }
                let mut separator = "";
                for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
                    if seconds >= size {
                        write!(f, "{separator}{}{unit}", seconds / size)?;
                        seconds %= size;
                        separator = " ";
                    }
                }
                Ok(())
            }
        }
    }
}

/// `failure_rate > 10%`: a condition on a measured value.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// How the runbook wrote it, shown in messages.
    pub text: String,
    pub metric: Metric,
    pub comparison: Comparison,
    pub threshold: Quantity,
}

impl Condition {
    pub fn holds(&self, value: f64) -> bool {
        self.comparison.holds(value, self.threshold.value())
    }
}

/// One of the runbook's KPIs, e.g. "Build Success Rate > 95%".
#[derive(Clone, Debug, PartialEq)]
pub struct Kpi {
    /// Stable key, e.g. `build-success-rate`.
    pub id: String,
    pub name: String,
    /// The runbook's heading, e.g. `Build Performance`.
    pub area: String,
    /// The target as the runbook states it, e.g. `> 95%`.
    pub target: String,
    /// The target as a condition, when opsbot can measure the KPI itself.
    pub measured: Option<Condition>,
}

/// What a KPI alert asks of the team.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KpiAction {
    /// Tell the team channel.
    NotifyTeam,
    /// Tell the team channel and ask someone to look into it.
    Investigate,
}

impl KpiAction {
    /// Every action, in the order messages list them.
    pub const ALL: [KpiAction; 2] = [KpiAction::NotifyTeam, KpiAction::Investigate];

    /// The action a runbook names, e.g. `notify_team`.
    pub fn parse(word: &str) -> Option<KpiAction> {
        KpiAction::ALL.into_iter().find(|a| a.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KpiAction::NotifyTeam => "notify_team",
            KpiAction::Investigate => "investigate",
        }
    }
}

/// One of the runbook's alerts on a KPI, e.g. "High Build Failure Rate".
#[derive(Clone, Debug, PartialEq)]
pub struct KpiAlert {
    /// Stable key, e.g. `high-build-failure-rate`.
    pub id: String,
    pub name: String,
    pub condition: Condition,
    /// The runs within this long before the latest one count.
    pub window: TimeDelta,
    /// Fewer runs than this in the window say nothing yet.
    pub min_runs: u32,
    pub action: KpiAction,
    pub channel: String,
}

impl KpiAlert {
    pub fn key(&self) -> String {
        format!("kpi:{}", self.id)
    }
}

impl AlertRules {
    /// What a runbook without these sections gets: the seed's behaviour.
    /// A failed run on the default branch alerts the team channel; a failed
    /// or errored `production` deployment declares a P1; an Alertmanager
    /// group labelled `severity=critical` goes to the alerts channel, any
    /// other to the team channel, and none declares; the seed's two KPI
    /// alerts watch the last day of runs.
    pub fn seed_defaults(channels: &super::Channels) -> AlertRules {
        let condition = |text: &str, metric, comparison, threshold| Condition {
            text: text.to_owned(),
            metric,
            comparison,
            threshold,
        };
        let kpi = |id: &str, name: &str, area: &str, target: &str, measured| Kpi {
            id: id.to_owned(),
            name: name.to_owned(),
            area: area.to_owned(),
            target: target.to_owned(),
            measured,
        };
        let minutes = |m| Quantity::Duration(TimeDelta::minutes(m));
        AlertRules {
            github: GithubRules {
                branches: vec![BranchRule::Default],
                channel: channels.team.clone(),
                ignore_workflows: Vec::new(),
                deployments: vec![DeploymentRule {
                    environment: "production".to_owned(),
                    failed_states: vec!["failure".to_owned(), "error".to_owned()],
                    declare: Some(Severity::P1),
                    channel: channels.alerts.clone(),
                }],
            },
            alertmanager: vec![
                AlertmanagerRoute {
                    matchers: vec![("severity".to_owned(), "critical".to_owned())],
                    channel: channels.alerts.clone(),
                    declare: None,
                    mute: false,
                },
                AlertmanagerRoute { matchers: Vec::new(), channel: channels.team.clone(), declare: None, mute: false },
            ],
            kpis: vec![
                kpi(
                    "build-success-rate",
                    "Build Success Rate",
                    "Build Performance",
                    "> 95%",
                    Some(condition(
                        "success_rate > 95%",
                        Metric::SuccessRate,
                        Comparison::Above,
                        Quantity::Percent(95.0),
                    )),
                ),
                kpi(
                    "average-build-time",
                    "Average Build Time",
                    "Build Performance",
                    "< 5 minutes",
                    Some(condition("avg_build_time < 5m", Metric::AverageBuildTime, Comparison::Below, minutes(5))),
                ),
                kpi("cache-hit-rate", "Cache Hit Rate", "Build Performance", "> 80%", None),
                kpi("test-success-rate", "Test Success Rate", "Test Performance", "> 98%", None),
                kpi("average-test-time", "Average Test Time", "Test Performance", "< 3 minutes", None),
                kpi("flaky-test-rate", "Flaky Test Rate", "Test Performance", "< 2%", None),
                kpi("deployment-success-rate", "Deployment Success Rate", "Deployment Performance", "> 99%", None),
                kpi("deployment-frequency", "Deployment Frequency", "Deployment Performance", "> 10 per day", None),
                kpi("lead-time-for-changes", "Lead Time for Changes", "Deployment Performance", "< 2 hours", None),
                kpi("mean-time-to-recovery", "Mean Time to Recovery", "Deployment Performance", "< 30 minutes", None),
            ],
            kpi_alerts: vec![
                KpiAlert {
                    id: "high-build-failure-rate".to_owned(),
                    name: "High Build Failure Rate".to_owned(),
                    condition: condition(
                        "failure_rate > 10%",
                        Metric::FailureRate,
                        Comparison::Above,
                        Quantity::Percent(10.0),
                    ),
                    window: TimeDelta::hours(24),
                    min_runs: 5,
                    action: KpiAction::NotifyTeam,
                    channel: channels.team.clone(),
                },
                KpiAlert {
                    id: "slow-build-times".to_owned(),
                    name: "Slow Build Times".to_owned(),
                    condition: condition(
                        "avg_build_time > 10m",
                        Metric::AverageBuildTime,
                        Comparison::Above,
                        minutes(10),
                    ),
                    window: TimeDelta::hours(24),
                    min_runs: 3,
                    action: KpiAction::Investigate,
                    channel: channels.team.clone(),
                },
            ],
        }
    }
}
