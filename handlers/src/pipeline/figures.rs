//! The pipeline's health in numbers, computed from the runs GitHub listed:
//! what `/pipeline status` shows and holds against the runbook's KPIs.

use crate::github::{Activity, RunConclusion, RunRecord, RunState};
use crate::runbook::alerts::{Kpi, Metric};
use chrono::TimeDelta;
use std::collections::BTreeMap;

/// The figures of one window of runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures<'a> {
    pub runs: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub in_progress: usize,
    pub queued: usize,
    /// Succeeded over succeeded and failed, in percent; `None` before any
    /// run passed or failed (cancelled and skipped runs are neither).
    pub success_rate: Option<f64>,
    /// Over the runs that passed or failed, start to end.
    pub median: Option<TimeDelta>,
    pub p95: Option<TimeDelta>,
    pub mean: Option<TimeDelta>,
    /// Failed runs per workflow, most failures first.
    pub failures: Vec<WorkflowFailures<'a>>,
    /// The newest run on the default branch, in any state.
    pub default_branch: Option<&'a RunRecord>,
}

/// One workflow's failures in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowFailures<'a> {
    pub workflow: &'a str,
    pub count: usize,
    /// The newest failed run, for its link.
    pub latest: &'a RunRecord,
}

/// The figures over every run in `activity` (GitHub listed them newest
/// first, and only those of the window asked for).
pub fn of(activity: &Activity) -> Figures<'_> {
    let mut f = Figures { runs: activity.runs.len(), ..Figures::default() };
    let mut durations = Vec::new();
    let mut failures: BTreeMap<&str, WorkflowFailures<'_>> = BTreeMap::new();
    for run in &activity.runs {
        match run.state {
            RunState::Queued => f.queued += 1,
            RunState::InProgress => f.in_progress += 1,
            RunState::Completed(RunConclusion::Cancelled) => f.cancelled += 1,
            RunState::Completed(RunConclusion::Other) => {}
            RunState::Completed(conclusion) => {
                if conclusion == RunConclusion::Success {
                    f.succeeded += 1;
                } else {
                    f.failed += 1;
                    // Runs come newest first: the first failure seen is the latest.
                    failures
                        .entry(run.workflow.as_str())
                        .or_insert(WorkflowFailures { workflow: &run.workflow, count: 0, latest: run })
                        .count += 1;
                }
                durations.extend(run.duration());
            }
        }
    }
    let decided = f.succeeded + f.failed;
    f.success_rate = (decided > 0).then(|| f.succeeded as f64 * 100.0 / decided as f64);
    durations.sort();
    f.median = percentile(&durations, 50);
    f.p95 = percentile(&durations, 95);
    f.mean = (!durations.is_empty()).then(|| {
        TimeDelta::milliseconds(durations.iter().map(|d| d.num_milliseconds()).sum::<i64>() / durations.len() as i64)
    });
    f.failures = failures.into_values().collect();
    f.failures.sort_by(|a, b| b.count.cmp(&a.count).then(b.latest.created.cmp(&a.latest.created)));
    f.default_branch = activity.runs.iter().find(|r| r.branch == activity.default_branch);
    f
}

/// One workflow's run times in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowTime<'a> {
    pub workflow: &'a str,
    /// Its runs that passed or failed.
    pub runs: usize,
    pub median: TimeDelta,
    /// The newest of those runs, for its link.
    pub latest: &'a RunRecord,
}

/// The workflows by the median time of their runs that passed or failed
/// (as the build times count them), slowest first.
pub fn slowest(activity: &Activity) -> Vec<WorkflowTime<'_>> {
    let mut by: BTreeMap<&str, (Vec<TimeDelta>, &RunRecord)> = BTreeMap::new();
    for run in &activity.runs {
        if !matches!(run.state, RunState::Completed(RunConclusion::Success | RunConclusion::Failure)) {
            continue;
        }
        if let Some(took) = run.duration() {
            // Runs come newest first: the first one seen is the latest.
            by.entry(run.workflow.as_str()).or_insert_with(|| (Vec::new(), run)).0.push(took);
        }
    }
    let mut slowest: Vec<WorkflowTime<'_>> = by
        .into_iter()
        .filter_map(|(workflow, (mut times, latest))| {
            times.sort();
            Some(WorkflowTime { workflow, runs: times.len(), median: percentile(&times, 50)?, latest })
        })
        .collect();
    slowest.sort_by(|a, b| b.median.cmp(&a.median).then(a.workflow.cmp(b.workflow)));
    slowest
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[TimeDelta], p: usize) -> Option<TimeDelta> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A KPI measured over the window, beside its target.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiReading<'a> {
    pub kpi: &'a Kpi,
    /// In the condition's unit (percent or seconds); `None` when the
    /// window has no run to measure it on.
    pub value: Option<f64>,
    /// Whether the value meets the target.
    pub met: Option<bool>,
}

impl KpiReading<'_> {
    /// The value as the runbook writes such a target: `96.1%`, `4m 10s`;
    /// `None` without runs to measure.
    pub fn value_text(&self) -> Option<String> {
        let value = self.value?;
        Some(match self.kpi.measured.as_ref().map(|c| c.metric) {
            Some(Metric::AverageBuildTime) => {
                crate::runbook::alerts::Quantity::Duration(TimeDelta::milliseconds((value * 1000.0) as i64)).to_string()
            }
            _ => format!("{value:.1}%"),
        })
    }
}

/// The runbook's KPIs that runs can measure, read over `figures`.
pub fn readings<'a>(kpis: &'a [Kpi], figures: &Figures<'_>) -> Vec<KpiReading<'a>> {
    kpis.iter()
        .filter_map(|kpi| {
            let target = kpi.measured.as_ref()?;
            let value = match target.metric {
                Metric::SuccessRate => figures.success_rate,
                Metric::FailureRate => figures.success_rate.map(|s| 100.0 - s),
                Metric::AverageBuildTime => figures.mean.map(|d| d.num_milliseconds() as f64 / 1000.0),
            };
            Some(KpiReading { kpi, value, met: value.map(|v| target.holds(v)) })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::github::Repo;
    use chrono::{DateTime, Utc};

    pub fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    pub fn run(id: u64, workflow: &str, branch: &str, state: RunState, minutes: i64) -> RunRecord {
        let started = at("2026-12-01T08:00:00Z") - TimeDelta::minutes(id as i64);
        RunRecord {
            id,
            number: id,
            workflow: workflow.into(),
            workflow_path: format!(".github/workflows/{}.yml", workflow.to_lowercase()),
            workflow_id: 7,
            title: format!("Commit {id}"),
            branch: branch.into(),
            event: "push".into(),
            state,
            actor: "octocat".into(),
            attempt: 1,
            created: started,
            started,
            updated: started + TimeDelta::minutes(minutes),
            url: format!("https://github.com/octo-org/shop/actions/runs/{id}"),
        }
    }

    pub fn activity(runs: Vec<RunRecord>) -> Activity {
        Activity {
            repo: Repo::parse("octo-org/shop").unwrap(),
            default_branch: "main".into(),
            runs,
            truncated: false,
            fetched: at("2026-12-01T09:00:00Z"),
        }
    }

    const PASS: RunState = RunState::Completed(RunConclusion::Success);
    const FAIL: RunState = RunState::Completed(RunConclusion::Failure);

    #[test]
    fn success_rate_counts_passed_and_failed_runs_only() {
        let a = activity(vec![
            run(1, "CI", "main", PASS, 4),
            run(2, "CI", "main", FAIL, 6),
            run(3, "Lint", "feature", PASS, 1),
            run(4, "CI", "main", RunState::Completed(RunConclusion::Cancelled), 1),
            run(5, "CI", "main", RunState::InProgress, 0),
            run(6, "Deploy", "main", RunState::Queued, 0),
            run(7, "Lint", "main", FAIL, 2),
        ]);
        let f = of(&a);
        assert_eq!((f.runs, f.succeeded, f.failed, f.cancelled, f.in_progress, f.queued), (7, 2, 2, 1, 1, 1));
        assert_eq!(f.success_rate, Some(50.0));
        assert_eq!(f.default_branch.map(|r| r.id), Some(1));
        let by: Vec<(&str, usize, u64)> = f.failures.iter().map(|w| (w.workflow, w.count, w.latest.id)).collect();
        assert_eq!(by, vec![("CI", 1, 2), ("Lint", 1, 7)]);
    }

    #[test]
    fn build_times_are_median_p95_and_mean_of_finished_runs() {
        let runs = (1..=20).map(|i| run(i, "CI", "main", PASS, i as i64)).collect();
        let a = activity(runs);
        let f = of(&a);
        assert_eq!(f.median, Some(TimeDelta::minutes(10)));
        assert_eq!(f.p95, Some(TimeDelta::minutes(19)));
        assert_eq!(f.mean, Some(TimeDelta::seconds(630)));
        assert_eq!(of(&activity(vec![])).median, None);
    }

    #[test]
    fn the_slowest_workflows_are_ranked_by_their_median_finished_run() {
        let a = activity(vec![
            run(1, "CI", "main", PASS, 4),
            run(2, "CI", "main", FAIL, 8),
            run(3, "CI", "main", PASS, 6),
            run(4, "Deploy", "main", PASS, 12),
            run(5, "Deploy", "main", RunState::Completed(RunConclusion::Cancelled), 90),
            run(6, "Lint", "main", RunState::InProgress, 0),
        ]);
        let slowest = slowest(&a);
        let ranked: Vec<(&str, usize, i64, u64)> =
            slowest.iter().map(|w| (w.workflow, w.runs, w.median.num_minutes(), w.latest.id)).collect();
        assert_eq!(ranked, vec![("Deploy", 1, 12, 4), ("CI", 3, 6, 1)], "cancelled and running runs do not count");
    }

    #[test]
    fn kpis_are_read_against_the_runbook_targets() {
        let runbook = crate::Runbook::seed();
        let mut runs: Vec<RunRecord> = (1..=19).map(|i| run(i, "CI", "main", PASS, 3)).collect();
        runs.push(run(20, "CI", "main", FAIL, 9));
        let a = activity(runs);
        let f = of(&a);
        let readings = readings(&runbook.alerts.kpis, &f);
        let find = |id: &str| readings.iter().find(|r| r.kpi.id == id).unwrap();
        assert_eq!(find("build-success-rate").value, Some(95.0));
        assert_eq!(find("build-success-rate").met, Some(false), "the target is > 95 %");
        assert_eq!(find("average-build-time").met, Some(true), "3.3 min is under 5");
        assert!(readings.iter().all(|r| r.kpi.measured.is_some()));
    }
}
