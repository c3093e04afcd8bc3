//! Live checks against the fake GitHub: a checklist's steps that the
//! runbook marks with a `check` show the current figures beside them when
//! the checklist is posted; the weekly review shows the KPIs of the last
//! four weeks side by side; GitHub down, rate limited or not connected
//! still posts the checklist at once, each check saying why; and a posting
//! costs one runs call per window, however many steps share it.

use crate::support::*;
use chrono::{DateTime, TimeDelta, Utc};
use opsbot_fake_github::{endpoint, Conclusion, DeploymentSpec, RunSpec};
use opsbot_fake_slack::Message;

async fn runbook(app: &TestApp, text: &str) -> String {
    let form = TestApp::slash_form("/runbook", text, ALICE);
    let response = app.post_signed("/slack/commands", "application/x-www-form-urlencoded", form).await;
    assert_eq!(response.status(), 200);
    reply_text(&response.json().await.unwrap())
}

/// Starts the checklist `name` and returns its step messages, once all
/// `parts` of them are in the header's thread.
async fn start(app: &TestApp, name: &str, parts: usize) -> Vec<Message> {
    let started = runbook(app, &format!("start {name}")).await;
    assert!(started.contains("started"), "{started}");
    let header = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.thread_ts.is_none()))
        .await
        .expect("the run's header is posted");
    app.slack
        .wait_for(PATIENCE, |s| {
            let steps: Vec<Message> =
                s.thread(DEVOPS, &header.ts).into_iter().filter(|m| blocks_text(m).contains("step.done:rn:")).collect();
            (steps.len() == parts).then_some(steps)
        })
        .await
        .unwrap_or_else(|| panic!("{parts} step messages: {:#?}", app.slack.messages(DEVOPS)))
}

/// The text of the step `phase:step` as Slack shows it now.
fn step(app: &TestApp, messages: &[Message], phase: usize, step: usize) -> String {
    let id = format!("step:{phase}:{step}");
    messages
        .iter()
        .map(|m| app.current(m))
        .find_map(|m| {
            let blocks = m.blocks.as_array()?.clone();
            blocks
                .into_iter()
                .find(|b| b["block_id"] == id.as_str())
                .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn run_url(id: u64) -> String {
    format!("https://github.com/{REPOSITORY}/actions/runs/{id}")
}

/// The shop's last day: 18 green CI runs of 3 minutes on main, then 2 red
/// Deploy runs of 12 minutes (the last run on main is the second), one CI
/// run still going on a branch, and an older failure outside the window.
/// Returns the newest failed Deploy run.
fn a_day_with_two_failed_deploys(app: &TestApp) -> u64 {
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    let deploy = app.github.add_workflow(REPOSITORY, "Deploy", ".github/workflows/deploy.yml");
    let day_start = test_start() - TimeDelta::hours(20);
    for i in 0..18 {
        let started = day_start + TimeDelta::minutes(30 * i);
        app.github.add_run(REPOSITORY, ci, RunSpec::completed("main", Conclusion::Success, started, minutes(3)));
    }
    let mut last_failure = 0;
    for i in 0..2 {
        let started = day_start + TimeDelta::hours(12 + i);
        let spec = RunSpec::completed("main", Conclusion::Failure, started, minutes(12));
        last_failure = app.github.add_run(REPOSITORY, deploy, spec);
    }
    app.github.add_run(REPOSITORY, ci, RunSpec::in_progress("feature/cart", test_start() - TimeDelta::minutes(2)));
    let older = test_start() - TimeDelta::hours(30);
    app.github.add_run(REPOSITORY, deploy, RunSpec::completed("main", Conclusion::Failure, older, minutes(1)));
    last_failure
}

/// The Done button of the first open step on a message.
fn first_done(message: &Message) -> String {
    message
        .blocks
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["action_id"].as_str().filter(|id| id.starts_with("step.done")).map(str::to_owned))
        .expect("an open step")
}

#[tokio::test]
async fn the_morning_health_check_shows_the_last_days_figures_beside_its_steps() {
    let app = connected().await;
    let last_failure = a_day_with_two_failed_deploys(&app);

    let steps = start(&app, "morning health check", 5).await;

    let rate = step(&app, &steps, 0, 0);
    assert!(rate.starts_with("⬜ Check last 24 hours of workflow runs"), "{rate}");
    assert!(rate.ends_with("📊 success rate 24 h: 90.0% ⚠️ (target &gt; 95%), 18 of 20 runs passed"), "{rate}");
    let failures = step(&app, &steps, 0, 1);
    assert!(
        failures.ends_with(&format!("📊 2 failed runs in 24 h: <{}|Deploy> ×2", run_url(last_failure))),
        "{failures}"
    );
    let times = step(&app, &steps, 1, 0);
    assert!(
        times.ends_with("📊 build time 24 h: median 3m, p95 12m, mean 3m 54s ✅ (target &lt; 5 minutes)"),
        "{times}"
    );
    assert!(!step(&app, &steps, 1, 1).contains("📊"), "cache hit rates carry no check");
    assert!(!step(&app, &steps, 2, 0).contains("📊"), "nor do the security steps");
    assert!(step(&app, &steps, 3, 1).ends_with("📊 0 queued, 1 running"), "{}", step(&app, &steps, 3, 1));
    let main = step(&app, &steps, 4, 2);
    let last = format!("📊 main: ❌ <{}|Deploy #", run_url(last_failure));
    assert!(main.contains(&last) && main.ends_with("ago"), "{main}");

    app.wait_until_settled().await;
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 1, "five messages, six checks, one window: one call");
}

/// Four weeks of CI, 10 runs of 4 minutes a week, `failed[w]` of them red
/// in week `w` (oldest first).
fn four_weeks(app: &TestApp, failed: [usize; 4]) {
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    for (w, failing) in failed.into_iter().enumerate() {
        let week_start = test_start() - TimeDelta::weeks(4 - w as i64);
        for i in 0..10 {
            let started = week_start + TimeDelta::hours(2 + 12 * i as i64);
            let conclusion = if i < failing { Conclusion::Failure } else { Conclusion::Success };
            app.github.add_run(REPOSITORY, ci, RunSpec::completed("main", conclusion, started, minutes(4)));
        }
    }
}

#[tokio::test]
async fn the_weekly_review_shows_the_kpis_of_the_last_four_weeks_side_by_side() {
    let app = connected().await;
    four_weeks(&app, [0, 1, 0, 2]);

    let steps = start(&app, "pipeline performance review", 4).await;

    let trend = step(&app, &steps, 0, 1);
    assert!(trend.starts_with("⬜ Analyze trends"), "{trend}");
    let table: Vec<&str> = trend
        .split("KPIs, last 4 weeks:\n```")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("a table in a code block")
        .lines()
        .collect();
    // Tests start on Wednesday 25 November: the weeks are the 7 days from
    // each of these Wednesdays.
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["Week", "of", "Oct", "28", "Nov", "4", "Nov", "11", "Nov", "18"]
    );
    let row = |name: &str| table.iter().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{trend}")).to_string();
    assert!(row("Build Success Rate").contains("100.0% ✅  90.0% ⚠️  100.0% ✅  80.0% ⚠️"), "{trend}");
    assert_eq!(row("Average Build Time").matches("4m ✅").count(), 4, "{trend}");
    assert_eq!(row("Runs").split_whitespace().collect::<Vec<_>>(), ["Runs", "10", "10", "10", "10"]);
    let week = step(&app, &steps, 0, 0);
    assert!(week.ends_with("📊 success rate 7 d: 80.0% ⚠️ (target &gt; 95%), 8 of 10 runs passed"), "{week}");

    app.wait_until_settled().await;
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 2, "one call for 7 days, one for 28");
}

#[tokio::test]
async fn the_monthly_assessment_counts_the_weeks_deployments_by_environment() {
    let app = connected().await;
    let deploy = |environment: &str, hours_ago: i64, statuses: &[&str]| {
        let created_at: DateTime<Utc> = test_start() - TimeDelta::hours(hours_ago);
        app.github.add_deployment(
            REPOSITORY,
            DeploymentSpec {
                environment: environment.into(),
                git_ref: "main".into(),
                sha: "a".repeat(40),
                creator: "octocat".into(),
                created_at,
                statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    };
    deploy("production", 2, &["in_progress", "failure"]);
    deploy("staging", 3, &["in_progress", "success"]);
    deploy("production", 30, &["in_progress", "success"]);
    deploy("staging", 50, &["success"]);
    deploy("production", 24 * 9, &["success"]); // older than the week

    let steps = start(&app, "comprehensive pipeline assessment", 5).await;

    let deployments = step(&app, &steps, 0, 2);
    assert!(deployments.starts_with("⬜ Review deployment frequency and success rates"), "{deployments}");
    assert!(
        deployments.ends_with("📊 4 deployments in 7 d: production 2 (1 ✅, 1 ❌), staging 2 (2 ✅); 75.0% succeeded"),
        "{deployments}"
    );
    app.wait_until_settled().await;
    assert_eq!(app.github.calls(endpoint::LIST_DEPLOYMENTS), 1);
}

#[tokio::test]
async fn with_github_down_the_checklist_is_posted_at_once_and_each_check_says_why() {
    let app = connected().await;
    let last_failure = a_day_with_two_failed_deploys(&app);
    app.github.set_unavailable(true);

    let steps = start(&app, "morning health check", 5).await;
    let down = "📊 GitHub did not answer; figures at <!date^";
    for (phase, index) in [(0, 0), (0, 1), (1, 0), (3, 1), (4, 2)] {
        let text = step(&app, &steps, phase, index);
        assert!(text.contains(down) && text.ends_with("|03:00 UTC> were not available"), "{text}");
    }

    // GitHub is back: the next edit of the message shows the figures.
    app.github.set_unavailable(false);
    assert_eq!(app.click(BOB, &steps[0], &first_done(&steps[0])).await, 200);
    app.wait_until(&steps[0], "the figures", |m| blocks_text(m).contains(&run_url(last_failure))).await;
    let rate = step(&app, &steps, 0, 0);
    assert!(rate.contains("✅ ~Check last 24 hours") && rate.contains("📊 success rate 24 h: 90.0%"), "{rate}");
}

#[tokio::test]
async fn a_spent_rate_limit_says_when_it_resets_and_the_checklist_goes_out() {
    let app = connected().await;
    a_day_with_two_failed_deploys(&app);
    app.github.set_rate_limit(1); // the repository lookup spends it

    let steps = start(&app, "morning health check", 5).await;
    let rate = step(&app, &steps, 0, 0);
    let resets = (test_start() + TimeDelta::hours(1)).format("%H:%M UTC").to_string();
    assert!(rate.contains("📊 GitHub's rate limit is spent until <!date^"), "{rate}");
    assert!(rate.contains(&format!("|{resets}>; figures at")), "{rate}");
    app.wait_until_settled().await;
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 0, "nothing is sent while the limit is spent");
}

#[tokio::test]
async fn without_github_each_check_says_how_to_connect_it() {
    let app = spawn_app().await;
    let steps = start(&app, "morning health check", 5).await;
    for (phase, index) in [(0, 0), (0, 1), (1, 0), (3, 1), (4, 2)] {
        let text = step(&app, &steps, phase, index);
        assert!(text.ends_with("\n📊 GitHub not connected: `/pipeline` says how"), "{text}");
    }
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 0);
}
