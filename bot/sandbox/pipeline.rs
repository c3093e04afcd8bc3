//! The sandbox's GitHub and its pipeline scenarios. The fake GitHub the
//! tests use runs in this process, served at `/sandbox/github`, with one
//! repository and a believable last day of workflow runs. The bot reads it
//! through its real GitHub client (`/pipeline`, re-runs), and the fake
//! reports each run it completes to the bot's own `/hooks/github` as a
//! signed `workflow_run` webhook. So a pipeline scenario takes the whole
//! production path, webhook signature included, and nothing leaves the
//! machine.
//!
//! Its clock runs with the sandbox's: both are the wall clock plus what
//! the page has pushed them ahead.

use crate::clock::Clock;
use crate::config::Secret;
use crate::github::{Auth, GitHubSettings};
use chrono::{DateTime, TimeDelta, Utc};
use opsbot_fake_github::{Conclusion, DeploymentSpec, FakeGitHub, RunSpec, Status, WorkflowRun, TOKEN_LOGIN};
use opsbot_handlers::github::Repo;
use opsbot_handlers::Runbook;
use std::time::Duration;

/// The sandbox's repository; `/pipeline` looks at it when none is named.
pub const REPOSITORY: &str = "opsbot-sandbox/shop";
const BRANCH: &str = "main";
/// The token the sandbox's GitHub accepts. It guards nothing: the fake
/// listens only where the sandbox does, and holds nothing real.
const TOKEN: &str = "ghp_opsbot_sandbox";
/// Far more calls than anyone makes in a sandbox: its GitHub is not there
/// to show rate limits.
const RATE_LIMIT: u64 = 1_000_000;
/// How long a webhook delivery may take to be answered before the page is
/// told it is still on its way.
const DELIVERY_PATIENCE: Duration = Duration::from_secs(3);

/// How long the seeded day's runs take: CI well under the seed runbook's
/// 5-minute build target, so the day's KPIs are met until a scenario
/// spoils them.
const CI_TAKES: TimeDelta = TimeDelta::minutes(3);
const LINT_TAKES: TimeDelta = TimeDelta::seconds(50);
const DEPLOY_TAKES: TimeDelta = TimeDelta::minutes(6);
/// The seeded day: a push to main this often, the first this long ago.
const PUSH_EVERY: TimeDelta = TimeDelta::minutes(50);
const FIRST_PUSH_AGO: TimeDelta = TimeDelta::minutes(23 * 60 + 30);
/// Every so many pushes to main are deployed.
const DEPLOY_EVERY: usize = 4;

/// What the day's pushes to main say, and who pushed them (the sandbox's
/// people, so `/pipeline runs` names them).
const PUSHES: [(&str, &str); 28] = [
    ("Add gift card balance check", "alice"),
    ("Fix rounding in cart totals", "bob"),
    ("Cache product images for a day", "carol"),
    ("Show delivery estimate at checkout", "dave"),
    ("Retry payment webhook on 502", "alice"),
    ("Bump serde to 1.0.215", "bob"),
    ("Log slow SQL over 200 ms", "carol"),
    ("Translate checkout into German", "dave"),
    ("Index orders by customer", "alice"),
    ("Remove the old coupon endpoint", "bob"),
    ("Bump payment SDK to 4.2", "carol"),
    ("Pin payment SDK to 4.1 again", "carol"),
    ("Add stock alerts for warehouses", "dave"),
    ("Paginate the order history", "alice"),
    ("Fix the VAT for Austria", "bob"),
    ("Speed up the search suggestions", "carol"),
    ("Add a health check for the cache", "dave"),
    ("Rename SKU fields in the API", "alice"),
    ("Validate postcodes per country", "bob"),
    ("Trim the Docker image", "carol"),
    ("Add the returns form", "dave"),
    ("Fix a race in the basket merge", "alice"),
    ("Show prices with tax in the UK", "bob"),
    ("Lazy-load product reviews", "carol"),
    ("Send the order mail in the background", "dave"),
    ("Fix the empty basket page", "alice"),
    ("Add a dark theme to the shop", "bob"),
    ("Tune the database pool size", "carol"),
];
/// The push whose CI failed on main (its test job), fixed by the next.
const FAILED_PUSH: usize = 10;
/// What "CI fails on main" pushes, in turn.
const FAILING_PUSHES: [(&str, &str); 4] = [
    ("Switch the cart to the new pricing service", "dave"),
    ("Upgrade the HTTP client to 2.0", "carol"),
    ("Drop the legacy session store", "bob"),
    ("Refactor the checkout steps", "alice"),
];

/// The pipeline scenarios of the page's "Play an alert" menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineScenario {
    /// A push to main whose CI run fails.
    CiFails,
    /// The re-run someone asked for with **Re-run failed jobs** passes.
    RerunPasses,
    /// It fails again.
    RerunFails,
    /// The deploy or rollback someone confirmed (`/pipeline deploy`) runs
    /// and succeeds.
    DeploySucceeds,
    /// It runs and fails.
    DeployFails,
}

impl PipelineScenario {
    pub const ALL: [PipelineScenario; 5] = [
        PipelineScenario::CiFails,
        PipelineScenario::RerunPasses,
        PipelineScenario::RerunFails,
        PipelineScenario::DeploySucceeds,
        PipelineScenario::DeployFails,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PipelineScenario::CiFails => "pipeline-ci-fails",
            PipelineScenario::RerunPasses => "pipeline-rerun-passes",
            PipelineScenario::RerunFails => "pipeline-rerun-fails",
            PipelineScenario::DeploySucceeds => "pipeline-deploy-succeeds",
            PipelineScenario::DeployFails => "pipeline-deploy-fails",
        }
    }

    pub fn parse(name: &str) -> Option<PipelineScenario> {
        PipelineScenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What a pipeline scenario did, for the page.
#[derive(Debug)]
pub struct Played {
    pub said: String,
    /// Where the bot posts about it, as the runbook names the channel.
    pub channel: String,
}

/// Why a pipeline scenario was not played, or went wrong.
#[derive(Debug)]
pub enum Refused {
    /// It makes no sense now: no re-run is waiting.
    NotNow(String),
    /// The bot refused the fake's webhook.
    Undelivered(String),
}

/// The sandbox's GitHub: the fake, its repository's CI workflow, and the
/// secret its webhooks are signed with.
pub struct SandboxGitHub {
    fake: FakeGitHub,
    ci: u64,
    webhook_secret: Secret,
    /// Failing pushes played so far. Held for a whole play, so two plays
    /// never take the same push or each other's webhook delivery.
    failing_pushes: tokio::sync::Mutex<usize>,
}

impl SandboxGitHub {
    /// The fake with its repository and the last day of runs, its clock in
    /// step with `clock`; its webhooks are signed with `webhook_secret`.
    pub fn new(clock: &dyn Clock, webhook_secret: Secret) -> SandboxGitHub {
        let fake = FakeGitHub::with_token(TOKEN);
        fake.run_ahead(clock.now() - Utc::now());
        fake.set_rate_limit(RATE_LIMIT);
        fake.add_repo(REPOSITORY, BRANCH);
        let ci = seed_a_day(&fake, clock.now());
        SandboxGitHub { fake, ci, webhook_secret, failing_pushes: tokio::sync::Mutex::new(0) }
    }

    /// How the bot reaches this GitHub, served at `{base}/sandbox/github`.
    pub fn settings(&self, base: &str) -> GitHubSettings {
        GitHubSettings {
            auth: Some(Auth::Token(Secret::new(TOKEN))),
            repository: Repo::parse(REPOSITORY),
            api_url: format!("{base}/sandbox/github"),
        }
    }

    /// What `/hooks/github` checks this GitHub's deliveries against.
    pub fn webhook_secret(&self) -> &Secret {
        &self.webhook_secret
    }

    /// The REST API, to be nested at `/sandbox/github`.
    pub fn router(&self) -> axum::Router {
        self.fake.router()
    }

    /// From now on, completed runs are reported to the bot at `base`.
    pub fn deliver_to(&self, base: &str) {
        self.fake.deliver_to(&format!("{base}/hooks/github"), self.webhook_secret.expose());
    }

    /// Keeps this GitHub's clock with the sandbox's, which just moved `by`.
    /// A run of the seeded day still going has finished by then (green);
    /// a re-run someone asked for waits for its scenario.
    pub fn advance(&self, by: TimeDelta) {
        if let Ok(by) = by.to_std() {
            self.fake.advance(by);
        }
        for run in self.fake.runs(REPOSITORY) {
            // A dispatched deploy waits for its scenario, like a re-run.
            if run.status != Status::Completed && run.run_attempt == 1 && run.event != "workflow_dispatch" {
                self.fake.complete_run(run.id, Conclusion::Success);
            }
        }
    }

    /// Plays `scenario` on this GitHub, and waits (briefly) for the bot to
    /// take the webhook it sends.
    pub async fn play(&self, scenario: PipelineScenario, runbook: &Runbook) -> Result<Played, Refused> {
        let mut failing_pushes = self.failing_pushes.lock().await;
        let channel = runbook.alerts.github.channel.clone();
        let (run, said) = match scenario {
            PipelineScenario::CiFails => {
                let (title, author) = FAILING_PUSHES[*failing_pushes % FAILING_PUSHES.len()];
                let started = self.fake.now() - CI_TAKES;
                let spec = RunSpec::in_progress(BRANCH, started)
                    .title(title)
                    .actor(author)
                    .job("build", Some(Conclusion::Success))
                    .job("test", None);
                let run = self.fake.add_run(REPOSITORY, self.ci, spec);
                let delivered = self.complete(run, Conclusion::Failure).await?;
                *failing_pushes += 1;
                let number = self.fake.run(run).map_or(0, |r| r.run_number);
                (delivered, format!("CI #{number} failed on {BRANCH} of {REPOSITORY} (its test job)"))
            }
            PipelineScenario::RerunPasses | PipelineScenario::RerunFails => {
                let Some(waiting) = self.waiting_rerun() else {
                    return Err(Refused::NotNow(
                        "No re-run is waiting on GitHub: press Re-run failed jobs on a failing CI alert in #devops, or on a \
failed run in `/pipeline runs`, first"
                            .into(),
                    ));
                };
                let passes = scenario == PipelineScenario::RerunPasses;
                let conclusion = if passes { Conclusion::Success } else { Conclusion::Failure };
                let delivered = self.complete(waiting.id, conclusion).await?;
                let how = if passes { "passed" } else { "failed again" };
                let said = format!(
                    "The re-run of {} #{} (attempt {}) {how} on {}",
                    waiting.name, waiting.run_number, waiting.run_attempt, waiting.head_branch
                );
                (delivered, said)
            }
            PipelineScenario::DeploySucceeds | PipelineScenario::DeployFails => {
                let Some(waiting) = self.waiting_dispatch() else {
                    return Err(Refused::NotNow(
                        "No deploy or rollback is waiting on GitHub: type `/pipeline deploy production` (or \
                         `/pipeline rollback production <ref>`) and confirm it first"
                            .into(),
                    ));
                };
                let succeeds = scenario == PipelineScenario::DeploySucceeds;
                // A runner picks it up (GitHub's `in_progress` webhook),
                // then it ends.
                self.fake.start_run(waiting.id);
                let conclusion = if succeeds { Conclusion::Success } else { Conclusion::Failure };
                let delivered = self.complete(waiting.id, conclusion).await?;
                self.record_deployment(&waiting, succeeds);
                let how = if succeeds { "succeeded" } else { "failed" };
                (delivered, format!("{} ({}) {how}", waiting.display_title, waiting.name))
            }
        };
        let said = match run {
            Delivery::Taken => format!("{said}; GitHub sent opsbot the signed webhook"),
            Delivery::OnItsWay => format!("{said}; GitHub's webhook to opsbot is on its way"),
        };
        Ok(Played { said, channel })
    }

    /// The newest dispatched run (a deploy or rollback opsbot started) that
    /// has not finished.
    fn waiting_dispatch(&self) -> Option<WorkflowRun> {
        self.fake.runs(REPOSITORY).into_iter().find(|r| r.event == "workflow_dispatch" && r.status != Status::Completed)
    }

    /// What the deploy workflow itself would do: a GitHub deployment of the
    /// ref to the environment, with its outcome, so the next confirmation
    /// compares against it.
    fn record_deployment(&self, run: &WorkflowRun, succeeded: bool) {
        let environment = run.inputs.get("environment").cloned().unwrap_or_else(|| "production".to_owned());
        let git_ref = run.inputs.get("ref").or_else(|| run.inputs.get("to_ref")).cloned().unwrap_or_default();
        let Some(sha) = self.fake.commit(REPOSITORY, &git_ref).map(|c| c.sha) else { return };
        let state = if succeeded { "success" } else { "failure" };
        self.fake.add_deployment(
            REPOSITORY,
            DeploymentSpec {
                environment,
                git_ref,
                sha,
                creator: TOKEN_LOGIN.to_owned(),
                created_at: self.fake.now(),
                statuses: vec!["in_progress".to_owned(), state.to_owned()],
            },
        );
    }

    /// The newest attempt that someone asked for and that has not finished.
    fn waiting_rerun(&self) -> Option<WorkflowRun> {
        self.fake.runs(REPOSITORY).into_iter().find(|r| r.run_attempt > 1 && r.status != Status::Completed)
    }

    /// Completes `run`, and waits for the bot to answer the webhook.
    async fn complete(&self, run: u64, conclusion: Conclusion) -> Result<Delivery, Refused> {
        let before = self.fake.deliveries().iter().filter(|d| d.run_id == run).count();
        self.fake.complete_run(run, conclusion);
        let answered = self
            .fake
            .wait_for(DELIVERY_PATIENCE, |fake| fake.deliveries().into_iter().filter(|d| d.run_id == run).nth(before))
            .await;
        match answered {
            None => Ok(Delivery::OnItsWay),
            Some(d) if d.status.is_some_and(|s| (200..300).contains(&s)) => Ok(Delivery::Taken),
            Some(d) => Err(Refused::Undelivered(match (d.status, d.error) {
                (Some(status), _) => format!("opsbot answered {status} to GitHub's webhook"),
                (None, error) => format!("GitHub's webhook did not reach opsbot: {}", error.unwrap_or_default()),
            })),
        }
    }
}

/// Whether the bot took a webhook delivery.
enum Delivery {
    Taken,
    OnItsWay,
}

/// The workflows and the last day of runs of the sandbox's repository, up
/// to `now`: a push to main every 50 minutes, each checked by CI and Lint
/// and every fourth deployed; one CI failure on main, fixed by the next
/// push; a feature branch whose Lint failed and whose CI is running now.
/// Returns the CI workflow's id.
fn seed_a_day(fake: &FakeGitHub, now: DateTime<Utc>) -> u64 {
    let ci = fake.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    let lint = fake.add_workflow(REPOSITORY, "Lint", ".github/workflows/lint.yml");
    let deploy = fake.add_workflow(REPOSITORY, "Deploy", ".github/workflows/deploy.yml");
    let rollback = fake.add_workflow(REPOSITORY, "Rollback", ".github/workflows/rollback.yml");
    fake.set_jobs(ci, &["build", "test"]);
    fake.set_jobs(lint, &["lint"]);
    fake.set_jobs(deploy, &["deploy"]);
    fake.set_jobs(rollback, &["rollback"]);
    // The seed runbook's deploy and rollback inputs, and a `run-name` that
    // carries opsbot's deployment id, as the README asks of a workflow.
    fake.declare_inputs(deploy, &["environment", "ref", "requested_by", "opsbot_id"]);
    fake.declare_inputs(rollback, &["environment", "to_ref", "requested_by", "opsbot_id"]);
    fake.set_run_name(deploy, "Deploy {opsbot_id}");
    fake.set_run_name(rollback, "Rollback {opsbot_id}");
    let took = |base: TimeDelta, i: usize| {
        // A few seconds either way, so the runs do not all take the same.
        let wobble = TimeDelta::seconds(((i * 37) % 61) as i64 - 30);
        (base + wobble).to_std().unwrap_or_default()
    };
    for (i, (title, author)) in PUSHES.iter().enumerate() {
        let pushed = now - FIRST_PUSH_AGO + PUSH_EVERY * i as i32;
        let failed = i == FAILED_PUSH;
        let ci_conclusion = if failed { Conclusion::Failure } else { Conclusion::Success };
        let spec = RunSpec::completed(BRANCH, ci_conclusion, pushed, took(CI_TAKES, i))
            .title(title)
            .actor(author)
            .job("build", Some(Conclusion::Success))
            .job("test", Some(ci_conclusion));
        let run = fake.add_run(REPOSITORY, ci, spec);
        let sha = fake.run(run).map(|r| r.head_sha).unwrap_or_default();
        let spec = RunSpec::completed(BRANCH, Conclusion::Success, pushed, took(LINT_TAKES, i))
            .title(title)
            .actor(author)
            .sha(&sha)
            .job("lint", Some(Conclusion::Success));
        fake.add_run(REPOSITORY, lint, spec);
        if !failed && (i + 1).is_multiple_of(DEPLOY_EVERY) {
            let spec = RunSpec::completed(BRANCH, Conclusion::Success, pushed + CI_TAKES, took(DEPLOY_TAKES, i))
                .title(title)
                .actor(author)
                .sha(&sha)
                .event("workflow_run")
                .job("deploy", Some(Conclusion::Success));
            fake.add_run(REPOSITORY, deploy, spec);
            fake.add_deployment(
                REPOSITORY,
                DeploymentSpec {
                    environment: "production".to_owned(),
                    git_ref: sha.clone(),
                    sha: sha.clone(),
                    creator: author.to_string(),
                    created_at: pushed + CI_TAKES,
                    statuses: vec!["in_progress".to_owned(), "success".to_owned()],
                },
            );
        }
    }
    let branch = "feature/gift-cards";
    let title = "Gift cards: redeem at checkout";
    let failed_lint =
        RunSpec::completed(branch, Conclusion::Failure, now - TimeDelta::minutes(40), took(LINT_TAKES, 0))
            .title(title)
            .actor("dave")
            .job("lint", Some(Conclusion::Failure));
    fake.add_run(REPOSITORY, lint, failed_lint);
    let running = RunSpec::in_progress(branch, now - TimeDelta::minutes(2))
        .title(title)
        .actor("dave")
        .job("build", Some(Conclusion::Success))
        .job("test", None);
    fake.add_run(REPOSITORY, ci, running);
    ci
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 14, 2, 0).unwrap()
    }

    #[test]
    fn scenarios_are_named_as_the_page_names_them() {
        for scenario in PipelineScenario::ALL {
            assert_eq!(PipelineScenario::parse(scenario.name()), Some(scenario));
        }
        assert_eq!(PipelineScenario::parse("github-failure"), None);
    }

    #[test]
    fn the_seeded_day_is_mostly_green_with_two_failures_and_one_run_going() {
        let github = SandboxGitHub::new(&TestClock::new(now()), Secret::new("s"));
        let runs = github.fake.runs(REPOSITORY);
        let day: Vec<&WorkflowRun> = runs.iter().filter(|r| r.created_at >= now() - TimeDelta::hours(24)).collect();
        assert_eq!(day.len(), runs.len(), "every run is of the last 24 h");
        assert!(runs.iter().all(|r| r.updated_at <= now()), "nothing ends in the future");
        let failed: Vec<&str> =
            runs.iter().filter(|r| r.conclusion == Some(Conclusion::Failure)).map(|r| r.name.as_str()).collect();
        assert_eq!(failed, ["Lint", "CI"], "newest first");
        let running: Vec<&WorkflowRun> = runs.iter().filter(|r| r.status != Status::Completed).collect();
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].name.as_str(), running[0].head_branch.as_str()), ("CI", "feature/gift-cards"));
        let finished = runs.iter().filter(|r| r.status == Status::Completed).count();
        assert!(finished >= 60, "{finished} finished runs");
        let names: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["CI", "Deploy", "Lint"]);
        // The newest run on main is green: nothing is failing when the sandbox starts.
        let newest_ci_on_main = runs.iter().find(|r| r.name == "CI" && r.head_branch == BRANCH).unwrap();
        assert_eq!(newest_ci_on_main.conclusion, Some(Conclusion::Success));
    }

    #[test]
    fn a_clock_jump_finishes_the_run_still_going_and_moves_githubs_clock_with_it() {
        let clock = TestClock::new(now());
        let github = SandboxGitHub::new(&clock, Secret::new("s"));
        let before = github.fake.now();
        github.advance(TimeDelta::hours(1));
        let moved = github.fake.now() - before;
        assert!((TimeDelta::minutes(59)..=TimeDelta::minutes(61)).contains(&moved), "{moved}");
        let runs = github.fake.runs(REPOSITORY);
        assert!(runs.iter().all(|r| r.status == Status::Completed), "nothing is left running");
    }

    #[test]
    fn the_bot_reads_it_with_a_token_under_the_sandboxs_address() {
        let github = SandboxGitHub::new(&TestClock::new(now()), Secret::new("s"));
        let settings = github.settings("http://127.0.0.1:3000");
        assert_eq!(settings.api_url, "http://127.0.0.1:3000/sandbox/github");
        assert_eq!(settings.repository, Repo::parse(REPOSITORY));
        assert!(matches!(settings.auth, Some(Auth::Token(_))));
    }
}
