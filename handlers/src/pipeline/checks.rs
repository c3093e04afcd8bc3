//! Live checks: the figure from GitHub Actions that a checklist step shows
//! beside it (the runbook's `check`), so the person on duty reads the
//! answer instead of opening five tabs.
//!
//! The shell fetches each window a message's checks need once
//! ([`sources`]), waits a bounded time, and hands the answers here as plain
//! values ([`Fetched`]); each step's line is computed with `/pipeline`'s
//! own figures. GitHub's troubles become one short line per check: a
//! checklist never waits on GitHub or goes unposted because of it.

use super::figures::{self, Figures, KpiReading};
use super::render::{icon, run_link};
use crate::github::{Activity, DeploymentRecord, DeploymentState, Deployments, Repo, RunRecord, RunState, Unavailable};
use crate::runbook::alerts::{Metric, Quantity};
use crate::runbook::pipeline::Figure;
use crate::runbook::Runbook;
use crate::text::{duration, escape, plural, truncate};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What a figure is computed from: the workflow runs or the deployments
/// created in the last `hours`. One fetch answers every check of a message
/// that shares it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Runs { hours: u32 },
    Deployments { hours: u32 },
}

/// The figures of this moment (queued runs, the default branch's last
/// run) are read from the last day's runs, which the 24 h figures fetch
/// anyway.
const NOW_HOURS: u32 = 24;

impl Source {
    pub fn of(figure: Figure) -> Source {
        let hours = figure.window().map_or(NOW_HOURS, |w| u32::try_from(w.num_hours()).unwrap_or(NOW_HOURS));
        match figure {
            Figure::Deployments7d => Source::Deployments { hours },
            _ => Source::Runs { hours },
        }
    }
}

/// What the shell fetches for a message whose steps carry `checks`: each
/// window once, however many steps share it.
pub fn sources(checks: impl IntoIterator<Item = Figure>) -> BTreeSet<Source> {
    checks.into_iter().map(Source::of).collect()
}

/// What GitHub answered for one message's checks, or why nothing was asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched {
    /// No token and no App: nothing to ask.
    NotConnected,
    /// Connected, but `GITHUB_REPOSITORY` names no repository to look at.
    NoRepository,
    Asked(Answers),
}

/// The answers, by window. A window the shell gave up waiting for holds
/// its reason like any other failure.
#[derive(Clone, Debug, PartialEq)]
pub struct Answers {
    pub repo: Repo,
    /// When the shell asked: the figures are as of then.
    pub at: DateTime<Utc>,
    /// By window, in hours.
    pub runs: BTreeMap<u32, Result<Activity, Unavailable>>,
    pub deployments: BTreeMap<u32, Result<Deployments, Unavailable>>,
}

/// Workflows or environments named in one line at most; the rest are
/// counted.
const LISTED: usize = 5;

/// The line shown beside a step whose check is `figure`.
pub fn line(figure: Figure, fetched: &Fetched, runbook: &Runbook, now: DateTime<Utc>) -> String {
    let answers = match fetched {
        Fetched::NotConnected => return not_connected(),
        Fetched::NoRepository => {
            return "📊 No repository to check: an admin sets `GITHUB_REPOSITORY`".to_owned();
        }
        Fetched::Asked(answers) => answers,
    };
    let not_asked = || Unavailable::Down { why: "not asked".to_owned() };
    let text = match Source::of(figure) {
        Source::Deployments { hours } => match answers.deployments.get(&hours) {
            Some(Ok(found)) => deployments(found, hours, now),
            Some(Err(why)) => return unavailable(why, answers),
            None => return unavailable(&not_asked(), answers),
        },
        Source::Runs { hours } => match answers.runs.get(&hours) {
            Some(Ok(activity)) => runs(figure, activity, hours, runbook, now),
            Some(Err(why)) => return unavailable(why, answers),
            None => return unavailable(&not_asked(), answers),
        },
    };
    format!("📊 {text}")
}

fn not_connected() -> String {
    "📊 GitHub not connected: `/pipeline` says how".to_owned()
}

/// A time of day in each reader's own zone, UTC where Slack cannot.
fn time_of_day(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{time}}|{}>", at.timestamp(), at.format("%H:%M UTC"))
}

/// Why there is no figure, in one short line.
fn unavailable(why: &Unavailable, answers: &Answers) -> String {
    let asked = time_of_day(answers.at);
    match why {
        Unavailable::NotConnected => not_connected(),
        Unavailable::Down { .. } => format!("📊 GitHub did not answer; figures at {asked} were not available"),
        Unavailable::RateLimited { resets } => format!(
            "📊 GitHub's rate limit is spent until {}; figures at {asked} were not available",
            time_of_day(*resets)
        ),
        Unavailable::NotFound { .. } => {
            format!("📊 GitHub does not know `{}`, or opsbot's token cannot see it", answers.repo)
        }
        Unavailable::Refused { status, .. } => format!(
            "📊 GitHub refused opsbot ({status}); figures at {asked} were not available: `/pipeline status` says more"
        ),
    }
}

/// How a window reads: `24 h`, `7 d`, `4 weeks`.
fn window(hours: u32) -> String {
    match hours {
        h if h % (24 * 7) == 0 && h > 24 * 7 => format!("{} weeks", h / (24 * 7)),
        h if h % 24 == 0 && h > 24 => format!("{} d", h / 24),
        h => format!("{h} h"),
    }
}

fn runs(figure: Figure, activity: &Activity, hours: u32, runbook: &Runbook, now: DateTime<Utc>) -> String {
    let f = figures::of(activity);
    let w = window(hours);
    let mut text = match figure {
        Figure::FailedRuns24h => failed_runs(&f, &w),
        Figure::SuccessRate24h | Figure::SuccessRate7d => success_rate(&f, &w, runbook),
        Figure::BuildTime24h => build_time(&f, &w, runbook),
        Figure::SlowestWorkflows7d => slowest_workflows(activity, &w),
        Figure::QueuedRuns => queued_runs(activity, &f, now),
        Figure::DefaultBranchStatus => default_branch(activity, &f, &w, now),
        Figure::KpiTrend4w => return kpi_trend(activity, runbook, now),
        // Its source is the deployments, never the runs.
        Figure::Deployments7d => return "deployments: not read from workflow runs".to_owned(),
    };
    if activity.truncated && figure != Figure::QueuedRuns {
        text.push_str(&format!(" (the newest {} runs)", activity.runs.len()));
    }
    text
}

fn failed_runs(f: &Figures<'_>, w: &str) -> String {
    if f.failed == 0 {
        let finished = f.succeeded + f.failed;
        return format!("no failed runs in {w} ✅ ({} finished)", finished);
    }
    let mut listed: Vec<String> = f
        .failures
        .iter()
        .take(LISTED)
        .map(|w| format!("<{}|{}> ×{}", w.latest.url, escape(w.workflow), w.count))
        .collect();
    if f.failures.len() > LISTED {
        listed.push(format!("{} more", plural((f.failures.len() - LISTED) as u64, "workflow", "workflows")));
    }
    format!("{} in {w}: {}", plural(f.failed as u64, "failed run", "failed runs"), listed.join(", "))
}

/// The runbook's KPI measured by `metric`, read over `f`.
fn reading<'a>(runbook: &'a Runbook, f: &Figures<'_>, metric: Metric) -> Option<KpiReading<'a>> {
    figures::readings(&runbook.alerts.kpis, f)
        .into_iter()
        .find(|r| r.kpi.measured.as_ref().is_some_and(|c| c.metric == metric))
}

/// ` ✅ (target > 95%)`, or nothing when the runbook sets no target.
fn against(r: Option<&KpiReading<'_>>) -> String {
    match r.and_then(|r| Some((r.met?, &r.kpi.target))) {
        Some((met, target)) => format!(" {} (target {})", if met { "✅" } else { "⚠️" }, escape(target)),
        None => String::new(),
    }
}

fn success_rate(f: &Figures<'_>, w: &str, runbook: &Runbook) -> String {
    let Some(rate) = f.success_rate else {
        return format!("success rate {w}: no finished runs");
    };
    let target = against(reading(runbook, f, Metric::SuccessRate).as_ref());
    format!("success rate {w}: {rate:.1}%{target}, {} of {} runs passed", f.succeeded, f.succeeded + f.failed)
}

fn build_time(f: &Figures<'_>, w: &str, runbook: &Runbook) -> String {
    let (Some(median), Some(p95)) = (f.median, f.p95) else {
        return format!("build time {w}: no finished runs");
    };
    let mut text = format!("build time {w}: median {}, p95 {}", Quantity::Duration(median), Quantity::Duration(p95));
    if let (Some(mean), Some(r)) = (f.mean, reading(runbook, f, Metric::AverageBuildTime)) {
        text.push_str(&format!(", mean {}{}", Quantity::Duration(whole_seconds(mean)), against(Some(&r))));
    }
    text
}

fn whole_seconds(d: TimeDelta) -> TimeDelta {
    TimeDelta::seconds(d.num_seconds())
}

fn slowest_workflows(activity: &Activity, w: &str) -> String {
    let slowest = figures::slowest(activity);
    if slowest.is_empty() {
        return format!("slowest workflows {w}: no finished runs");
    }
    let listed: Vec<String> = slowest
        .iter()
        .take(LISTED)
        .map(|t| format!("<{}|{}> {}", t.latest.url, escape(t.workflow), Quantity::Duration(whole_seconds(t.median))))
        .collect();
    format!("slowest workflows {w} (median): {}", listed.join(", "))
}

fn queued_runs(activity: &Activity, f: &Figures<'_>, now: DateTime<Utc>) -> String {
    let mut text = format!("{} queued, {} running", f.queued, f.in_progress);
    let oldest = activity.runs.iter().filter(|r| r.state == RunState::Queued).map(|r| r.created).min();
    if let Some(oldest) = oldest {
        text.push_str(&format!("; the oldest queued for {}", duration(now - oldest)));
    }
    text
}

fn default_branch(activity: &Activity, f: &Figures<'_>, w: &str, now: DateTime<Utc>) -> String {
    let branch = escape(&activity.default_branch);
    let Some(run) = f.default_branch else {
        return format!("{branch}: no runs in the last {w}");
    };
    format!("{branch}: {} {}, {}", icon(run.state), run_link(run), when(run, now))
}

/// When a run ended, or how long it has been going.
fn when(run: &RunRecord, now: DateTime<Utc>) -> String {
    match run.state {
        RunState::Completed(_) => format!("{} ago", duration(now - run.updated)),
        RunState::InProgress => format!("running for {}", duration(now - run.started)),
        RunState::Queued => format!("queued for {}", duration(now - run.created)),
    }
}

fn deployments(found: &Deployments, hours: u32, now: DateTime<Utc>) -> String {
    let w = window(hours);
    let since = now - TimeDelta::hours(i64::from(hours));
    let all: Vec<&DeploymentRecord> = found.deployments.iter().filter(|d| d.created >= since).collect();
    if all.is_empty() {
        return format!("no deployments in {w}");
    }
    #[derive(Default)]
    struct Environment<'a> {
        count: usize,
        succeeded: usize,
        failed: usize,
        /// Newest first, so the first failure seen is the latest.
        last_failure: Option<&'a DeploymentRecord>,
    }
    let mut by: BTreeMap<&str, Environment<'_>> = BTreeMap::new();
    for d in &all {
        let e = by.entry(d.environment.as_str()).or_default();
        e.count += 1;
        match d.state {
            DeploymentState::Succeeded => e.succeeded += 1,
            DeploymentState::Failed => {
                e.failed += 1;
                e.last_failure = e.last_failure.or(Some(d));
            }
            DeploymentState::Pending => {}
        }
    }
    let mut environments: Vec<(&str, Environment<'_>)> = by.into_iter().collect();
    environments.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    let listed: Vec<String> = environments
        .iter()
        .take(LISTED)
        .map(|(name, e)| {
            let mut parts = vec![format!("{} ✅", e.succeeded)];
            if e.failed > 0 {
                let failed = format!("{} ❌", e.failed);
                parts.push(match e.last_failure.and_then(|d| d.url.as_deref()) {
                    Some(url) => format!("<{url}|{failed}>"),
                    None => failed,
                });
            }
            let pending = e.count - e.succeeded - e.failed;
            if pending > 0 {
                parts.push(format!("{pending} ⏳"));
            }
            format!("{} {} ({})", escape(name), e.count, parts.join(", "))
        })
        .collect();
    let (succeeded, failed): (usize, usize) =
        environments.iter().fold((0, 0), |(s, f), (_, e)| (s + e.succeeded, f + e.failed));
    let mut text = format!("{} in {w}: {}", plural(all.len() as u64, "deployment", "deployments"), listed.join(", "));
    if environments.len() > LISTED {
        text.push_str(&format!(
            ", {} more",
            plural((environments.len() - LISTED) as u64, "environment", "environments")
        ));
    }
    if succeeded + failed > 0 {
        text.push_str(&format!("; {:.1}% succeeded", succeeded as f64 * 100.0 / (succeeded + failed) as f64));
    }
    if found.truncated {
        text.push_str(&format!(" (the newest {})", all.len()));
    }
    text
}

/// How many weeks the trend shows, oldest first.
const TREND_WEEKS: i32 = 4;
/// Longest KPI name in the table's first column.
const TREND_NAME_MAX: usize = 22;

/// The runbook's measured KPIs for each of the last 4 weeks (7-day windows
/// ending now, labelled by their first day in the runbook's zone), side by
/// side in a monospace table, with the runs each week counted.
fn kpi_trend(activity: &Activity, runbook: &Runbook, now: DateTime<Utc>) -> String {
    let weeks: Vec<(DateTime<Utc>, Activity)> = (0..TREND_WEEKS)
        .map(|i| {
            let from = now - TimeDelta::weeks(i64::from(TREND_WEEKS - i));
            let to = from + TimeDelta::weeks(1);
            let runs = activity.runs.iter().filter(|r| r.created >= from && r.created < to).cloned().collect();
            (from, Activity { runs, ..empty_like(activity) })
        })
        .collect();
    let week_figures: Vec<Figures<'_>> = weeks.iter().map(|(_, a)| figures::of(a)).collect();
    let readings: Vec<Vec<KpiReading<'_>>> =
        week_figures.iter().map(|f| figures::readings(&runbook.alerts.kpis, f)).collect();

    let label = |at: DateTime<Utc>| at.with_timezone(&runbook.timezone).format("%b %-d").to_string();
    let mut rows: Vec<Vec<String>> =
        vec![std::iter::once("Week of".to_owned()).chain(weeks.iter().map(|(from, _)| label(*from))).collect()];
    for (k, first) in readings.first().into_iter().flatten().enumerate() {
        let mut row = vec![truncate(&first.kpi.name, TREND_NAME_MAX)];
        row.extend(readings.iter().map(|week| week.get(k).map_or_else(|| "–".to_owned(), cell)));
        rows.push(row);
    }
    let mut runs_row = vec!["Runs".to_owned()];
    runs_row.extend(week_figures.iter().map(|f| f.runs.to_string()));
    rows.push(runs_row);

    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().map(|r| width(&r[c])).max().unwrap_or(0)).collect();
    let table: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell}{}", " ".repeat(w.saturating_sub(width(cell)))))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    let mut text = format!("KPIs, last 4 weeks:\n```{}```", escape(&table.join("\n")));
    if activity.truncated {
        if let Some(oldest) = activity.runs.last() {
            text.push_str(&format!(
                "\nGitHub listed the newest {} runs: weeks before {} are partial.",
                activity.runs.len(),
                label(oldest.created)
            ));
        }
    }
    text
}

/// How wide a cell shows in a monospace block: the marks are emoji, two
/// columns wide, and the selector that makes ⚠ one takes none.
fn width(cell: &str) -> usize {
    cell.chars()
        .map(|c| match c {
            '\u{fe0f}' => 0,
            '✅' | '⚠' => 2,
            _ => 1,
        })
        .sum()
}

/// The same repository and moment, with no runs yet.
fn empty_like(activity: &Activity) -> Activity {
    Activity {
        repo: activity.repo.clone(),
        default_branch: activity.default_branch.clone(),
        runs: Vec::new(),
        truncated: false,
        fetched: activity.fetched,
    }
}

/// One KPI of one week: `96.1% ✅`, `4m 10s ⚠️`, or `–` without runs.
fn cell(r: &KpiReading<'_>) -> String {
    let Some(shown) = r.value_text() else { return "–".to_owned() };
    match r.met {
        Some(true) => format!("{shown} ✅"),
        Some(false) => format!("{shown} ⚠️"),
        None => shown,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::github::{RunConclusion, RunRecord};
    use crate::pipeline::figures::tests::{activity, at, run};

    const PASS: RunState = RunState::Completed(RunConclusion::Success);
    const FAIL: RunState = RunState::Completed(RunConclusion::Failure);

    fn now() -> DateTime<Utc> {
        at("2026-12-01T09:00:00Z")
    }

    fn url(id: u64) -> String {
        format!("https://github.com/octo-org/shop/actions/runs/{id}")
    }

    /// GitHub answered every window: `day` for the last 24 h, `week` for
    /// 7 days, `month` for 28 days, and `deployments` for 7 days.
    fn answered(day: Activity, week: Activity, month: Activity, deployments: Vec<DeploymentRecord>) -> Fetched {
        let repo = Repo::parse("octo-org/shop").unwrap();
        let deployments = Deployments { repo: repo.clone(), deployments, truncated: false, fetched: now() };
        Fetched::Asked(Answers {
            repo,
            at: now(),
            runs: BTreeMap::from([(24, Ok(day)), (168, Ok(week)), (672, Ok(month))]),
            deployments: BTreeMap::from([(168, Ok(deployments))]),
        })
    }

    fn over_a_day(runs: Vec<RunRecord>) -> Fetched {
        answered(activity(runs), activity(vec![]), activity(vec![]), vec![])
    }

    fn over_a_week(runs: Vec<RunRecord>) -> Fetched {
        answered(activity(vec![]), activity(runs), activity(vec![]), vec![])
    }

    fn shown(figure: Figure, fetched: &Fetched) -> String {
        line(figure, fetched, &Runbook::seed(), now())
    }

    /// GitHub could not answer any window, for `why`.
    fn failing(why: Unavailable) -> Fetched {
        let repo = Repo::parse("octo-org/shop").unwrap();
        Fetched::Asked(Answers {
            repo,
            at: now(),
            runs: [24, 168, 672].into_iter().map(|h| (h, Err(why.clone()))).collect(),
            deployments: BTreeMap::from([(168, Err(why))]),
        })
    }

    #[test]
    fn a_failed_runs_check_lists_the_failing_workflows_with_links() {
        let fetched = over_a_day(vec![
            run(1, "CI", "main", FAIL, 3),
            run(2, "Deploy", "main", FAIL, 9),
            run(3, "CI", "x", FAIL, 4),
            run(4, "CI", "main", PASS, 3),
        ]);
        assert_eq!(
            shown(Figure::FailedRuns24h, &fetched),
            format!("📊 3 failed runs in 24 h: <{}|CI> ×2, <{}|Deploy> ×1", url(1), url(2))
        );
    }

    #[test]
    fn a_day_without_failures_says_so() {
        let fetched = over_a_day(vec![run(1, "CI", "main", PASS, 3), run(2, "CI", "main", PASS, 3)]);
        assert_eq!(shown(Figure::FailedRuns24h, &fetched), "📊 no failed runs in 24 h ✅ (2 finished)");
    }

    #[test]
    fn a_success_rate_check_holds_the_rate_against_the_runbook_target() {
        let mut runs: Vec<RunRecord> = (1..=19).map(|i| run(i, "CI", "main", PASS, 3)).collect();
        runs.push(run(20, "CI", "main", FAIL, 3));
        assert_eq!(
            shown(Figure::SuccessRate7d, &over_a_week(runs.clone())),
            "📊 success rate 7 d: 95.0% ⚠️ (target &gt; 95%), 19 of 20 runs passed",
            "the seed's target is above 95 %"
        );
        runs.pop();
        assert_eq!(
            shown(Figure::SuccessRate24h, &over_a_day(runs)),
            "📊 success rate 24 h: 100.0% ✅ (target &gt; 95%), 19 of 19 runs passed"
        );
        assert_eq!(shown(Figure::SuccessRate24h, &over_a_day(vec![])), "📊 success rate 24 h: no finished runs");
    }

    #[test]
    fn a_build_time_check_shows_the_median_and_p95_and_the_mean_against_its_target() {
        let runs = (1..=20).map(|i| run(i, "CI", "main", PASS, i as i64)).collect();
        assert_eq!(
            shown(Figure::BuildTime24h, &over_a_day(runs)),
            "📊 build time 24 h: median 10m, p95 19m, mean 10m 30s ⚠️ (target &lt; 5 minutes)"
        );
    }

    #[test]
    fn the_slowest_workflows_check_links_each_with_its_median() {
        let fetched = over_a_week(vec![
            run(1, "CI", "main", PASS, 4),
            run(2, "Deploy", "main", PASS, 12),
            run(3, "CI", "main", PASS, 6),
        ]);
        assert_eq!(
            shown(Figure::SlowestWorkflows7d, &fetched),
            format!("📊 slowest workflows 7 d (median): <{}|Deploy> 12m, <{}|CI> 4m", url(2), url(1))
        );
    }

    #[test]
    fn the_queue_check_counts_what_waits_and_for_how_long() {
        let fetched = over_a_day(vec![
            run(1, "CI", "main", RunState::Queued, 0),
            run(30, "CI", "main", RunState::Queued, 0),
            run(2, "Deploy", "main", RunState::InProgress, 0),
            run(3, "CI", "main", PASS, 3),
        ]);
        // Run 30 was created at 07:30, an hour and a half before now.
        assert_eq!(shown(Figure::QueuedRuns, &fetched), "📊 2 queued, 1 running; the oldest queued for 1 h 30 min");
    }

    #[test]
    fn the_default_branch_check_shows_its_last_run_and_when() {
        let fetched = over_a_day(vec![run(1, "CI", "feature/x", FAIL, 3), run(2, "CI", "main", PASS, 3)]);
        // Run 2 started at 07:58 and took 3 minutes.
        assert_eq!(shown(Figure::DefaultBranchStatus, &fetched), format!("📊 main: ✅ <{}|CI #2>, 59 min ago", url(2)));
        assert_eq!(shown(Figure::DefaultBranchStatus, &over_a_day(vec![])), "📊 main: no runs in the last 24 h");
    }

    #[test]
    fn the_deployments_check_counts_each_environment_and_links_its_last_failure() {
        let deployment = |id: u64, environment: &str, state: DeploymentState, hours_ago: i64| DeploymentRecord {
            id,
            environment: environment.into(),
            git_ref: "main".into(),
            created: now() - TimeDelta::hours(hours_ago),
            state,
            url: Some(format!("https://github.com/octo-org/shop/actions/runs/{id}")),
        };
        let fetched = answered(
            activity(vec![]),
            activity(vec![]),
            activity(vec![]),
            vec![
                deployment(5, "staging", DeploymentState::Pending, 1),
                deployment(4, "production", DeploymentState::Failed, 2),
                deployment(3, "staging", DeploymentState::Succeeded, 3),
                deployment(2, "production", DeploymentState::Succeeded, 30),
                deployment(1, "staging", DeploymentState::Succeeded, 50),
            ],
        );
        assert_eq!(
            shown(Figure::Deployments7d, &fetched),
            format!(
                "📊 5 deployments in 7 d: staging 3 (2 ✅, 1 ⏳), production 2 (1 ✅, <{}|1 ❌>); 75.0% succeeded",
                url(4)
            )
        );
    }

    /// Runs of CI over four weeks: week by week 10 runs of 3 minutes, of
    /// which `failed[w]` failed.
    fn four_weeks(failed: [u64; 4]) -> Activity {
        let mut runs = Vec::new();
        for (w, failing) in failed.into_iter().enumerate() {
            let week_start = now() - TimeDelta::weeks(4 - w as i64);
            for i in 0..10u64 {
                let id = w as u64 * 100 + i;
                let mut r = run(id, "CI", "main", if i < failing { FAIL } else { PASS }, 3);
                r.created = week_start + TimeDelta::hours(1 + i as i64 * 12);
                r.started = r.created;
                r.updated = r.created + TimeDelta::minutes(3);
                runs.push(r);
            }
        }
        runs.reverse(); // GitHub lists newest first
        activity(runs)
    }

    #[test]
    fn the_kpi_trend_shows_each_measured_kpi_week_by_week_in_a_small_table() {
        let fetched = answered(activity(vec![]), activity(vec![]), four_weeks([0, 1, 0, 2]), vec![]);
        let text = shown(Figure::KpiTrend4w, &fetched);
        let table: Vec<&str> = text.split("```").nth(1).expect("a code block").lines().collect();
        assert_eq!(
            table[0].split_whitespace().collect::<Vec<_>>(),
            ["Week", "of", "Nov", "3", "Nov", "10", "Nov", "17", "Nov", "24"]
        );
        let row =
            |name: &str| table.iter().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{text}")).to_string();
        assert!(row("Build Success Rate").contains("100.0% ✅  90.0% ⚠️  100.0% ✅  80.0% ⚠️"), "{text}");
        assert!(row("Average Build Time").matches("3m ✅").count() == 4, "{text}");
        assert_eq!(row("Runs").split_whitespace().collect::<Vec<_>>(), ["Runs", "10", "10", "10", "10"]);
        assert_eq!(table[0].find("Nov 24"), row("Runs").rfind("10"), "columns line up: {text}");
    }

    #[test]
    fn a_week_without_runs_shows_a_dash_in_the_trend() {
        let mut month = four_weeks([0, 0, 0, 0]);
        month.runs.retain(|r| r.created >= now() - TimeDelta::weeks(2));
        let text = shown(Figure::KpiTrend4w, &answered(activity(vec![]), activity(vec![]), month, vec![]));
        assert!(text.contains("Build Success Rate  –"), "{text}");
    }

    #[test]
    fn without_github_each_check_says_why_in_one_line() {
        assert_eq!(
            shown(Figure::FailedRuns24h, &Fetched::NotConnected),
            "📊 GitHub not connected: `/pipeline` says how"
        );
        assert!(shown(Figure::QueuedRuns, &Fetched::NoRepository).contains("`GITHUB_REPOSITORY`"));
        let down = shown(Figure::SuccessRate24h, &failing(Unavailable::Down { why: "HTTP 502".into() }));
        let nine = now().timestamp();
        assert_eq!(
            down,
            format!("📊 GitHub did not answer; figures at <!date^{nine}^{{time}}|09:00 UTC> were not available")
        );
        let resets = at("2026-12-01T09:40:00Z");
        let limited = shown(Figure::KpiTrend4w, &failing(Unavailable::RateLimited { resets }));
        let until = format!("rate limit is spent until <!date^{}^{{time}}|09:40 UTC>", resets.timestamp());
        assert!(limited.contains(&until), "{limited}");
        for figure in Figure::ALL {
            let text = shown(figure, &failing(Unavailable::Down { why: "HTTP 502".into() }));
            assert!(!text.contains('\n') && text.starts_with("📊 GitHub did not answer"), "{figure}: {text}");
        }
    }

    #[test]
    fn each_window_is_fetched_once_for_a_whole_message() {
        let runbook = Runbook::seed();
        let checks_of = |id: &str| -> Vec<Figure> {
            let c = runbook.checklists.iter().find(|c| c.id == id).unwrap();
            c.sections.iter().flat_map(|p| &p.steps).filter_map(|s| s.check).collect()
        };
        assert_eq!(sources(checks_of("morning-health-check")), BTreeSet::from([Source::Runs { hours: 24 }]));
        assert_eq!(
            sources(checks_of("pipeline-performance-review")),
            BTreeSet::from([Source::Runs { hours: 168 }, Source::Runs { hours: 672 }])
        );
        assert!(sources(checks_of("comprehensive-pipeline-assessment")).contains(&Source::Deployments { hours: 168 }));
    }

    /// Every window answered with a busy month: many failing workflows
    /// with long names, and deployments to many environments; for tests
    /// that every check stays within a message's limits.
    pub(crate) fn busy() -> Fetched {
        let long = "a workflow with a long name ".repeat(8);
        let runs: Vec<RunRecord> = (1..=60)
            .map(|i| run(i, &format!("{long}{i}"), "main", if i % 2 == 0 { FAIL } else { PASS }, i as i64))
            .collect();
        let deployments = (1..=40)
            .map(|i| DeploymentRecord {
                id: i,
                environment: format!("{long}{i}"),
                git_ref: "main".into(),
                created: now() - TimeDelta::hours(i as i64),
                state: DeploymentState::Failed,
                url: Some(url(i)),
            })
            .collect();
        answered(activity(runs.clone()), activity(runs.clone()), activity(runs), deployments)
    }
}
