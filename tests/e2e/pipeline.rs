//! `/pipeline` against the fake GitHub: the status against the runbook's
//! KPIs, the latest runs, and GitHub's bad days (down, rate limited, not
//! connected) told in words; ten people asking cost one call; the token is
//! never shown.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_fake_github::{endpoint, Conclusion, Failure, RunSpec};
use opsbot_fake_slack::Ephemeral;
use std::time::Duration;

/// The answer `user` got after the acknowledgement: the one ephemeral
/// message whose text or blocks contain `needle`.
async fn answer_to(app: &TestApp, user: &str, needle: &str) -> Ephemeral {
    app.slack
        .wait_for(PATIENCE, |s| {
            s.ephemerals()
                .into_iter()
                .find(|e| e.user == user && (e.text.contains(needle) || e.blocks.to_string().contains(needle)))
        })
        .await
        .unwrap_or_else(|| panic!("no answer containing {needle:?}: {:?}", app.slack.ephemerals()))
}

/// A day of the shop's CI: 18 green runs of CI on main, 2 red runs of
/// Deploy, one run still going.
fn a_day_with_failures(app: &TestApp) {
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    let deploy = app.github.add_workflow(REPOSITORY, "Deploy", ".github/workflows/deploy.yml");
    let day_start = test_start() - TimeDelta::hours(20);
    for i in 0..18 {
        let started = day_start + TimeDelta::minutes(30 * i);
        app.github.add_run(REPOSITORY, ci, RunSpec::completed("main", Conclusion::Success, started, minutes(3)));
    }
    for i in 0..2 {
        let started = day_start + TimeDelta::hours(12 + i);
        let spec = RunSpec::completed("main", Conclusion::Failure, started, minutes(12)).title("Bump the cache");
        app.github.add_run(REPOSITORY, deploy, spec);
    }
    app.github.add_run(REPOSITORY, ci, RunSpec::in_progress("feature/cart", test_start() - TimeDelta::minutes(2)));
    // Older than the window: must not count.
    app.github.add_run(
        REPOSITORY,
        deploy,
        RunSpec::completed("main", Conclusion::Failure, test_start() - TimeDelta::hours(30), minutes(1)),
    );
}

#[tokio::test]
async fn status_shows_the_last_day_against_the_runbook_kpis_after_a_quick_acknowledgement() {
    let app = connected().await;
    a_day_with_failures(&app);

    let ack = app.slash("/pipeline", "status", ALICE).await;
    assert_eq!(ack["response_type"], "ephemeral");
    assert!(ack["text"].as_str().unwrap().contains("Asking GitHub"), "{ack}");

    let answer = answer_to(&app, ALICE, "Build Success Rate").await;
    let blocks = answer.blocks.to_string();
    assert!(blocks.contains("Pipeline of octo-org/shop, last 24 h"), "{blocks}");
    // 18 of 20 finished runs passed: 90 %, under the seed's > 95 %.
    assert!(blocks.contains("⚠️ *Build Success Rate*: 90.0% (target &gt; 95%)"), "{blocks}");
    assert!(blocks.contains("*Runs*: 21 (18 passed, 2 failed), success rate 90.0%"), "{blocks}");
    assert!(blocks.contains("Deploy #"), "{blocks}");
    assert!(blocks.contains("2 failures"), "{blocks}");
    assert!(blocks.contains("1 running, 0 queued"), "{blocks}");
    assert_eq!(answer.channel, GENERAL);
}

#[tokio::test]
async fn a_healthy_pipeline_shows_every_kpi_met() {
    let app = connected().await;
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    for i in 0..10 {
        let started = test_start() - TimeDelta::hours(10) + TimeDelta::minutes(40 * i);
        app.github.add_run(REPOSITORY, ci, RunSpec::completed("main", Conclusion::Success, started, minutes(4)));
    }
    app.slash("/pipeline", "status", ALICE).await;
    let blocks = answer_to(&app, ALICE, "Build Success Rate").await.blocks.to_string();
    assert!(blocks.contains("✅ *Build Success Rate*: 100.0%"), "{blocks}");
    assert!(blocks.contains("✅ *Average Build Time*: 4m"), "{blocks}");
    assert!(!blocks.contains("⚠️"), "{blocks}");
    assert!(!blocks.contains("Failures by workflow"), "{blocks}");
}

#[tokio::test]
async fn ten_people_asking_at_once_cost_github_one_call() {
    let app = connected().await;
    a_day_with_failures(&app);
    let people = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"];
    let asks = (0..10).map(|i| app.slash("/pipeline", "status", people[i % people.len()]));
    futures::future::join_all(asks).await;
    app.wait_until_settled().await;
    for person in people {
        answer_to(&app, person, "Build Success Rate").await;
    }
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 1, "one call for ten answers");
}

#[tokio::test]
async fn github_down_is_told_in_words_and_the_next_ask_tries_again() {
    let app = connected().await;
    a_day_with_failures(&app);
    app.github.set_unavailable(true);
    app.slash("/pipeline", "status", ALICE).await;
    let answer = answer_to(&app, ALICE, "GitHub did not answer").await;
    assert!(answer.text.contains("githubstatus.com"), "{}", answer.text);

    app.github.set_unavailable(false);
    app.slash("/pipeline", "status", ALICE).await;
    answer_to(&app, ALICE, "Build Success Rate").await;
}

#[tokio::test]
async fn a_spent_rate_limit_says_when_it_resets_and_github_is_not_asked_until_then() {
    let app = connected().await;
    a_day_with_failures(&app);
    app.github.set_rate_limit(1); // the repository lookup spends it
    app.slash("/pipeline", "status", ALICE).await;
    let answer = answer_to(&app, ALICE, "rate limit").await;
    let resets = test_start() + TimeDelta::hours(1);
    assert!(answer.text.contains(&resets.format("%H:%M UTC").to_string()), "{}", answer.text);

    let calls = app.github.calls(endpoint::LIST_REPO_RUNS);
    app.slash("/pipeline", "status", BOB).await;
    answer_to(&app, BOB, "rate limit").await;
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), calls, "nothing is sent while the limit is spent");
    // The repository's answer spent the budget (and said so in its
    // headers); both listings were held back rather than sent.
    assert_eq!(app.metric("opsbot_github_requests_total{outcome=\"ok\"}").await, 1);
    assert_eq!(app.metric("opsbot_github_requests_total{outcome=\"held\"}").await, 2);
}

#[tokio::test]
async fn a_secondary_rate_limit_waits_as_long_as_github_asks() {
    let app = connected().await;
    a_day_with_failures(&app);
    app.github.fail_next(endpoint::LIST_REPO_RUNS, Failure::SecondaryRateLimit { retry_after_secs: 120 });
    app.slash("/pipeline", "status", ALICE).await;
    let answer = answer_to(&app, ALICE, "rate limit").await;
    let resets = test_start() + TimeDelta::minutes(2);
    assert!(answer.text.contains(&resets.format("%H:%M UTC").to_string()), "{}", answer.text);

    // Two minutes later GitHub is asked again and answers.
    app.clock.advance(TimeDelta::minutes(2));
    app.github.set_now(test_start() + TimeDelta::minutes(2));
    app.slash("/pipeline", "status", ALICE).await;
    answer_to(&app, ALICE, "Build Success Rate").await;
}

#[tokio::test]
async fn without_github_pipeline_says_how_to_connect_it() {
    let app = spawn_app().await;
    let answer = app.slash("/pipeline", "status", ALICE).await;
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("not connected to GitHub") && text.contains("GITHUB_TOKEN"), "{text}");
    assert!(!text.contains("not built yet"), "{text}");
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 0);
}

#[tokio::test]
async fn runs_lists_one_workflow_on_one_branch_newest_first() {
    let app = connected().await;
    a_day_with_failures(&app);
    let lint = app.github.add_workflow(REPOSITORY, "Lint", ".github/workflows/lint.yml");
    app.github.add_run(
        REPOSITORY,
        lint,
        RunSpec::completed("main", Conclusion::Success, test_start() - TimeDelta::minutes(5), minutes(1)),
    );

    app.slash("/pipeline", "runs deploy.yml main", ALICE).await;
    let answer = answer_to(&app, ALICE, "Latest runs of octo-org/shop, deploy.yml on main").await;
    let blocks = answer.blocks.to_string();
    assert_eq!(blocks.matches("❌").count(), 3, "the three Deploy failures: {blocks}");
    assert!(!blocks.contains("Lint") && !blocks.contains("CI #"), "{blocks}");
    assert!(blocks.contains("Bump the cache"), "{blocks}");
}

#[tokio::test]
async fn an_unknown_workflow_is_answered_with_the_ones_that_exist() {
    let app = connected().await;
    a_day_with_failures(&app);
    app.slash("/pipeline", "runs nightly", ALICE).await;
    let answer = answer_to(&app, ALICE, "a workflow `nightly`").await;
    assert!(answer.text.contains("`CI`") && answer.text.contains("`Deploy`"), "{}", answer.text);
}

#[tokio::test]
async fn an_answer_goes_only_to_slacks_own_response_url_else_as_an_ephemeral_message() {
    let app = connected().await;
    a_day_with_failures(&app);
    let form = TestApp::slash_form_with("/pipeline", "status", ALICE, "https://evil.example/collect");
    let response = app.post_signed("/slack/commands", "application/x-www-form-urlencoded", form).await;
    assert_eq!(response.status(), 200);
    let answer = answer_to(&app, ALICE, "Build Success Rate").await;
    assert_eq!(answer.channel, GENERAL);
    assert_eq!(app.slack.calls("response_url"), 0);
    assert_eq!(app.slack.calls("chat.postEphemeral"), 1);
}

#[tokio::test]
async fn typos_get_the_usage_and_a_deploy_without_a_ref_confirms_the_default_branch() {
    let app = connected().await;
    let answer = app.slash("/pipeline", "stats", ALICE).await;
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("Unknown subcommand `stats`") && text.contains("/pipeline status"), "{text}");
    let answer = app.slash("/pipeline", "deploy production", ALICE).await;
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("Confirm in the dialog: deploying `main` to *production*"), "{text}");
    let view = app.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("the confirmation").view;
    assert!(view.to_string().contains("production has no successful deployment to compare with"), "{view}");
    assert_eq!(app.github.calls(endpoint::LIST_REPO_RUNS), 0);
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0, "nothing goes out before confirming");
}

#[tokio::test]
async fn a_github_app_installation_answers_like_a_token() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    const APP_ID: u64 = 1_200_001;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
    let private = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    let public = key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let app = spawn_app_with(|config| {
        with_github(config);
        config.github.auth =
            Some(opsbot::github::Auth::App { id: APP_ID, private_key: opsbot::config::Secret::new(private) });
    })
    .await;
    app.github.set_now(test_start());
    app.github.add_app(APP_ID, "opsbot", &public);
    app.github.install_app(APP_ID, "octo-org");
    a_day_with_failures(&app);

    app.slash("/pipeline", "status", ALICE).await;
    answer_to(&app, ALICE, "Build Success Rate").await;
    app.slash("/pipeline", "runs", BOB).await;
    answer_to(&app, BOB, "Latest runs of octo-org/shop").await;
    assert_eq!(app.github.calls(endpoint::GET_REPO_INSTALLATION), 1, "the installation is looked up once");
    assert_eq!(app.github.calls(endpoint::CREATE_INSTALLATION_TOKEN), 1, "its token is reused until it expires");
}

/// The shop's CI failing on main, delivered by the fake GitHub's signed
/// webhook: the alert group's message in #devops, and the run's id.
async fn ci_failing_on_main(app: &TestApp) -> (opsbot_fake_slack::Message, u64) {
    app.github.deliver_to(&app.url("/hooks/github"), GITHUB_SECRET);
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    let run = app.github.add_run(REPOSITORY, ci, RunSpec::in_progress("main", test_start() - TimeDelta::minutes(6)));
    assert!(app.github.complete_run(run, Conclusion::Failure));
    let alert = app.wait_for_alert(DEVOPS, "CI").await;
    assert!(has_button(&alert, "alert.rerun"), "{}", blocks_text(&alert));
    (alert, run)
}

/// Waits until GitHub has `attempt` of `run` (the outbox asked for it).
async fn attempt_queued(app: &TestApp, run: u64, attempt: u32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while app.github.run(run).is_none_or(|r| r.run_attempt < attempt) {
        assert!(tokio::time::Instant::now() < deadline, "GitHub never queued attempt {attempt}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn re_run_failed_jobs_asks_github_and_the_message_follows_the_new_attempt_to_recovery() {
    let app = connected().await;
    let (alert, run) = ci_failing_on_main(&app).await;

    assert_eq!(app.click(BOB, &alert, "alert.rerun").await, 200);
    let asked = app
        .wait_until(&alert, "who asked for the re-run", |m| blocks_text(m).contains("<@U0BOB> asked for a re-run"))
        .await;
    assert!(!has_button(&asked, "alert.rerun"), "one re-run at a time: {}", blocks_text(&asked));
    attempt_queued(&app, run, 2).await;
    assert_eq!(app.github.calls(endpoint::RERUN_FAILED_JOBS), 1);

    assert!(app.github.complete_run(run, Conclusion::Success));
    let recovered = app.wait_until(&alert, "the recovery", |m| blocks_text(m).contains("Recovered")).await;
    assert!(!has_button(&recovered, "alert.rerun"), "{}", blocks_text(&recovered));
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &alert.ts);
    assert!(thread.iter().any(|m| m.text.contains("<@U0BOB> asked GitHub to re-run the failed jobs")), "{thread:#?}");
    assert!(thread.iter().any(|m| m.text.contains("the re-run <@U0BOB> asked for")), "{thread:#?}");
}

#[tokio::test]
async fn a_re_run_that_fails_again_says_so_and_offers_another_try() {
    let app = connected().await;
    let (alert, run) = ci_failing_on_main(&app).await;
    app.click(ALICE, &alert, "alert.rerun").await;
    attempt_queued(&app, run, 2).await;
    assert!(app.github.complete_run(run, Conclusion::Failure));
    let again = app.wait_until(&alert, "the button back", |m| has_button(m, "alert.rerun")).await;
    assert!(!blocks_text(&again).contains("asked for a re-run"), "{}", blocks_text(&again));
    let thread = app
        .slack
        .wait_for(PATIENCE, |s| {
            let thread = s.thread(DEVOPS, &alert.ts);
            thread.iter().any(|m| m.text.contains("The re-run <@U0ALICE> asked for failed again")).then_some(thread)
        })
        .await;
    assert!(thread.is_some(), "{:#?}", app.slack.thread(DEVOPS, &alert.ts));
}

#[tokio::test]
async fn a_run_already_running_is_not_re_run_and_the_message_says_why() {
    let app = connected().await;
    let (alert, run) = ci_failing_on_main(&app).await;
    // Someone re-ran it from GitHub's own page a moment ago.
    let url = format!("{}/repos/{REPOSITORY}/actions/runs/{run}/rerun-failed-jobs", app.config.github.api_url);
    let answer = reqwest::Client::new()
        .post(url)
        .bearer_auth(opsbot_fake_github::DEFAULT_TOKEN)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(answer.status(), 201);

    app.click(BOB, &alert, "alert.rerun").await;
    let refused =
        app.wait_until(&alert, "GitHub's refusal", |m| blocks_text(m).contains("GitHub would not re-run")).await;
    assert!(blocks_text(&refused).contains("already running"), "{}", blocks_text(&refused));
    assert!(has_button(&refused, "alert.rerun"), "another try is possible: {}", blocks_text(&refused));
}

#[tokio::test]
async fn without_github_a_re_run_is_refused_in_words_and_nothing_else_changes() {
    // Webhooks arrive, but no token is configured.
    let app = spawn_app().await;
    app.github.set_now(test_start());
    let (alert, _) = ci_failing_on_main(&app).await;
    app.click(BOB, &alert, "alert.rerun").await;
    let refused = app.wait_until(&alert, "the refusal", |m| blocks_text(m).contains("not connected to GitHub")).await;
    assert!(has_button(&refused, "alert.rerun"));
    assert_eq!(app.github.calls(endpoint::RERUN_FAILED_JOBS), 0);
}

/// CI failing on a feature branch, which raises no alert: the run's id.
async fn ci_failing_on_a_branch(app: &TestApp) -> u64 {
    app.github.deliver_to(&app.url("/hooks/github"), GITHUB_SECRET);
    let ci = app.github.add_workflow(REPOSITORY, "CI", ".github/workflows/ci.yml");
    let run =
        app.github.add_run(REPOSITORY, ci, RunSpec::in_progress("feature/cart", test_start() - TimeDelta::minutes(6)));
    assert!(app.github.complete_run(run, Conclusion::Failure));
    app.wait_until_settled().await;
    run
}

/// `/pipeline runs` typed by `user`: the answer, once GitHub answered.
async fn latest_runs(app: &TestApp, user: &str) -> Ephemeral {
    app.slash("/pipeline", "runs", user).await;
    answer_to(app, user, "Latest runs of octo-org/shop").await
}

/// The DMs `user` got that contain `needle`.
fn dms(app: &TestApp, user: &str, needle: &str) -> Vec<opsbot_fake_slack::Message> {
    app.slack.messages(user).into_iter().filter(|m| m.text.contains(needle)).collect()
}

#[tokio::test]
async fn re_run_failed_jobs_from_pipeline_runs_re_runs_on_github_and_dms_the_result_once() {
    let app = connected().await;
    let run = ci_failing_on_a_branch(&app).await;
    let list = latest_runs(&app, BOB).await;
    let action = format!("pipeline.rerun:{run}");

    assert_eq!(app.click_ephemeral(BOB, &list, &action).await, 200);
    let asked = answer_to(&app, BOB, "I'll DM you the result").await;
    assert!(asked.text.contains("Re-run of the failed jobs of run #"), "{}", asked.text);
    attempt_queued(&app, run, 2).await;
    assert_eq!(app.github.calls(endpoint::RERUN_FAILED_JOBS), 1);

    app.github.advance(minutes(3));
    assert!(app.github.complete_run(run, Conclusion::Success));
    let dm = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(BOB).into_iter().find(|m| m.text.contains("The re-run you asked for")))
        .await
        .expect("Bob gets a DM with the result");
    assert!(dm.text.starts_with("✅ The re-run you asked for passed"), "{}", dm.text);
    assert!(dm.text.contains("attempt 2") && dm.text.contains(&format!("actions/runs/{run}")), "{}", dm.text);
    app.wait_until_settled().await;
    assert_eq!(dms(&app, BOB, "The re-run you asked for").len(), 1, "told once");

    // A restart keeps nothing it should not: the answered request stays
    // answered, and the next attempt's report tells nobody again.
    let mut app = app;
    app.stop().await;
    app.start_again().await;
    app.github.deliver_to(&app.url("/hooks/github"), GITHUB_SECRET);
    let list = latest_runs(&app, ALICE).await;
    assert!(!list.blocks.to_string().contains(&action), "a run that passed has nothing to re-run");
    app.wait_until_settled().await;
    assert_eq!(dms(&app, BOB, "The re-run you asked for").len(), 1);
}

#[tokio::test]
async fn a_re_run_from_pipeline_runs_of_a_run_already_running_is_refused_in_a_dm_and_nothing_else_changes() {
    let app = connected().await;
    let run = ci_failing_on_a_branch(&app).await;
    let list = latest_runs(&app, BOB).await;
    // Someone re-ran it from GitHub's own page meanwhile.
    let url = format!("{}/repos/{REPOSITORY}/actions/runs/{run}/rerun-failed-jobs", app.config.github.api_url);
    let answer = reqwest::Client::new()
        .post(url)
        .bearer_auth(opsbot_fake_github::DEFAULT_TOKEN)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(answer.status(), 201);

    app.click_ephemeral(BOB, &list, &format!("pipeline.rerun:{run}")).await;
    let refused = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(BOB).into_iter().find(|m| m.text.contains("would not re-run")))
        .await
        .expect("Bob is told why");
    assert!(refused.text.contains("already running"), "{}", refused.text);
    app.wait_until_settled().await;
    assert_eq!(app.github.run(run).unwrap().run_attempt, 2, "no attempt beyond the one already running");
    assert!(app.slack.messages(DEVOPS).is_empty() && app.slack.messages(ALERTS).is_empty(), "no channel is told");
}

#[tokio::test]
async fn re_run_from_pipeline_runs_of_the_run_a_firing_alert_follows_acts_as_the_alerts_own_button() {
    let app = connected().await;
    let (alert, run) = ci_failing_on_main(&app).await;
    let list = latest_runs(&app, BOB).await;

    app.click_ephemeral(BOB, &list, &format!("pipeline.rerun:{run}")).await;
    let asked = app
        .wait_until(&alert, "who asked for the re-run", |m| blocks_text(m).contains("<@U0BOB> asked for a re-run"))
        .await;
    assert!(!has_button(&asked, "alert.rerun"), "one re-run at a time: {}", blocks_text(&asked));
    attempt_queued(&app, run, 2).await;
    assert!(app.github.complete_run(run, Conclusion::Success));
    app.wait_until(&alert, "the recovery", |m| blocks_text(m).contains("Recovered")).await;
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &alert.ts);
    assert!(thread.iter().any(|m| m.text.contains("the re-run <@U0BOB> asked for")), "{thread:#?}");
    assert!(dms(&app, BOB, "The re-run you asked for").is_empty(), "the alert's message says it, not a DM");
    assert_eq!(app.github.calls(endpoint::RERUN_FAILED_JOBS), 1);
}
