//! The binary's outside contract: `--help`, start-up refusing bad
//! configuration with one clear line and exit code 2, secrets unprinted,
//! the operator commands on a real Redis, and SIGTERM stopping it within
//! its grace, its work handed over.

use std::process::Command;

fn opsbot() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsbot"));
    for var in [
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "REDIS_URL",
        "OPSBOT_RUNBOOK",
        "OPSBOT_BIND",
        "SLACK_API_URL",
        "GITHUB_WEBHOOK_SECRET",
        "OPSBOT_ALERTMANAGER_TOKEN",
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_API_URL",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "OPSBOT_SHUTDOWN_GRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn help_lists_serve() {
    let out = opsbot().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn missing_or_malformed_settings_stop_start_up_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("SLACK_BOT_TOKEN", "xoxb-1-secret")], "SLACK_SIGNING_SECRET"),
        (&[("SLACK_SIGNING_SECRET", "s3cr3t-value")], "SLACK_BOT_TOKEN"),
        (
            &[("SLACK_SIGNING_SECRET", "s3cr3t-value"), ("SLACK_BOT_TOKEN", "xoxp-user-token-secret")],
            "SLACK_BOT_TOKEN must be a bot token",
        ),
        // Socket Mode needs the bot token too, and an app-level token.
        (&[("SLACK_APP_TOKEN", "xapp-1-secret")], "SLACK_BOT_TOKEN is not set"),
        (
            &[("SLACK_APP_TOKEN", "xoxb-1-secret"), ("SLACK_BOT_TOKEN", "xoxb-1-secret")],
            "SLACK_APP_TOKEN must be an app-level token",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("OPSBOT_BIND", "nowhere"),
            ],
            "OPSBOT_BIND",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "mysql://user:hunter2@db/"),
            ],
            "REDIS_URL",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("SLACK_API_URL", "ftp://x"),
            ],
            "SLACK_API_URL",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("GITHUB_TOKEN", "hunter2"),
                ("GITHUB_REPOSITORY", "just-a-name"),
            ],
            "GITHUB_REPOSITORY",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("GITHUB_TOKEN", "hunter2"),
                ("GITHUB_APP_ID", "12345"),
            ],
            "choose a token or an App",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("GITHUB_APP_ID", "12345"),
            ],
            "GITHUB_APP_PRIVATE_KEY",
        ),
        (
            &[
                ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
                ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
                ("OPSBOT_SHUTDOWN_GRACE", "soon"),
            ],
            "OPSBOT_SHUTDOWN_GRACE",
        ),
    ];
    for (env, expected) in cases {
        let out = opsbot().arg("serve").envs(env.iter().copied()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        for secret in ["s3cr3t-value", "xoxb-1-secret", "xapp-1-secret", "xoxp-user-token-secret", "hunter2"] {
            assert!(!stderr.contains(secret), "secret printed: {stderr}");
        }
    }
}

#[tokio::test]
async fn opsbot_report_prints_the_markdown_report_from_redis() {
    let t = crate::support::spawn_app().await;
    t.incident("p1 Queue backlog").await;
    t.wait_for_alert(crate::support::ALERTS, "INC-1").await;
    t.incident("resolve 1 drained the queue").await;
    let out = opsbot()
        .args(["report", "INC-1"])
        .env("REDIS_URL", t.redis.url())
        .env("OPSBOT_REDIS_PREFIX", &t.config.redis_prefix)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("# Incident report: INC-1 · P1 · Queue backlog"), "{stdout}");
    assert!(stdout.contains("**Summary:** drained the queue"), "{stdout}");
    assert!(stdout.contains("## Timeline"), "{stdout}");

    let missing = opsbot()
        .args(["report", "42"])
        .env("REDIS_URL", t.redis.url())
        .env("OPSBOT_REDIS_PREFIX", &t.config.redis_prefix)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no incident INC-42"));
}

#[tokio::test]
async fn opsbot_outbox_lists_a_dead_letter_and_retry_delivers_it() {
    use crate::support::*;
    let t = spawn_app().await;
    t.slack.fail_next("chat.postMessage", opsbot_fake_slack::Failure::Error("channel_not_found".into()));
    t.incident("p2 Refused once").await;
    let cli = |args: &[&str]| {
        opsbot()
            .args(args)
            .env("REDIS_URL", t.redis.url())
            .env("OPSBOT_REDIS_PREFIX", &t.config.redis_prefix)
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    let listed = loop {
        let out = cli(&["outbox", "list"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.contains("post_alert") {
            break stdout;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter: {stdout}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // The alert first: the incident's other messages hang under it.
    let entry = listed.lines().find(|l| l.contains("post_alert")).unwrap().split('\t').next().unwrap().to_owned();
    assert!(t.slack.messages(DEVOPS).iter().all(|m| !m.text.contains("Refused once")), "not posted yet");

    let retried = cli(&["outbox", "retry", &entry]);
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
    t.wait_for_alert(DEVOPS, "Refused once").await;
    assert!(!String::from_utf8_lossy(&cli(&["outbox", "list"]).stdout).contains(&entry), "retried, not listed");
    let gone = cli(&["outbox", "drop", &entry]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains(&format!("there is no dead letter {entry}")));
}

/// Incidents stored before tallies existed (an upgrade) are missing from
/// `/incident stats` until `opsbot redis rebuild-tallies` counts them from
/// the incidents; a tally that counts what is not there is put right too.
#[tokio::test]
async fn rebuild_tallies_counts_incidents_from_before_the_upgrade() {
    use crate::support::*;
    use opsbot::clock::Clock;
    let t = spawn_app().await;
    // The binary rebuilds the days up to its own today: the bot's clock
    // reads the same.
    t.clock.advance(chrono::Utc::now() - t.clock.now());
    t.incident("p1 Queue backlog").await;
    t.incident("ack 1").await;
    t.incident("resolve 1 drained the queue").await;
    t.incident("p2 Slow cache").await;
    let counted = reply_text(&t.incident("stats").await);
    assert!(counted.contains("P1: 1 (0 open)") && counted.contains("P2: 1 (1 open)"), "{counted}");

    // What an upgrade leaves: the incidents and no tally of their day; and
    // yesterday's tally counting incidents that are not there.
    let prefix = &t.config.redis_prefix;
    let today = t.clock.now().date_naive();
    let yesterday = today - chrono::TimeDelta::days(1);
    let client = redis::Client::open(t.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 =
        redis::cmd("DEL").arg(format!("{prefix}:incidents:tally:{today}")).query_async(&mut conn).await.unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{prefix}:incidents:tally:{yesterday}"))
        .arg("P0:declared")
        .arg(3)
        .query_async(&mut conn)
        .await
        .unwrap();
    let upgraded = reply_text(&t.incident("stats").await);
    assert!(upgraded.contains("P0: 3 (3 open)") && !upgraded.contains("P1:"), "{upgraded}");

    let out = opsbot()
        .args(["redis", "rebuild-tallies", "--days", "3"])
        .env("REDIS_URL", t.redis.url())
        .env("OPSBOT_REDIS_PREFIX", prefix)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{today}: 2 incidents\n")), "{stdout}");
    assert!(stdout.contains(&format!("{yesterday}: 0 incidents\n")), "{stdout}");
    assert!(stdout.ends_with("rebuilt the tallies of 3 of 3 days (2 incidents)\n"), "{stdout}");
    assert_eq!(reply_text(&t.incident("stats").await), counted);
}

/// `opsbot redis rebuild-tallies` refuses bad arguments and settings with
/// exit 2 and a Redis it cannot reach with 1, never printing REDIS_URL's
/// password.
#[test]
fn rebuild_tallies_refuses_bad_settings_with_2_a_failing_redis_with_1_and_hides_the_password() {
    const UNREACHABLE: &str = "redis://:hunter2@127.0.0.1:1/";
    let exits = |code: i32, args: &[&str], env: &[(&str, &str)], expected: &str| {
        let out = opsbot().args(["redis", "rebuild-tallies"]).args(args).envs(env.iter().copied()).output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?} {env:?}: {printed}");
        assert!(printed.contains(expected), "{args:?} {env:?}: {printed}");
        assert!(!printed.contains("hunter2"), "the password was printed: {printed}");
    };
    exits(2, &["--days", "0"], &[("REDIS_URL", UNREACHABLE)], "--days");
    exits(2, &["--days", "many"], &[("REDIS_URL", UNREACHABLE)], "--days");
    exits(2, &[], &[], "REDIS_URL is not set");
    exits(2, &[], &[("REDIS_URL", "mysql://user:hunter2@db/")], "REDIS_URL");
    exits(2, &["--runbook", "/nonexistent/runbook.yml"], &[("REDIS_URL", UNREACHABLE)], "OPSBOT_RUNBOOK");
    exits(1, &[], &[("REDIS_URL", UNREACHABLE)], "Redis is unavailable");
}

#[test]
fn a_bad_runbook_stops_start_up_with_every_mistake_located() {
    let dir = std::env::temp_dir().join(format!("opsbot-bad-runbook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("runbook.yml");
    let seed = opsbot_handlers::Runbook::SEED_YAML.replacen("respond: 5m", "respond: soon", 1);
    std::fs::write(&file, seed).unwrap();
    let out = opsbot()
        .arg("serve")
        .envs([
            ("SLACK_SIGNING_SECRET", "s3cr3t-value"),
            ("SLACK_BOT_TOKEN", "xoxb-1-secret"),
            ("REDIS_URL", "redis://127.0.0.1:1/"),
        ])
        .env("OPSBOT_RUNBOOK", &file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let located = format!("{}:", file.display());
    assert!(stderr.lines().any(|l| l.starts_with(&located) && l.contains("soon")), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real binary, connected to a fake GitHub and a fake Slack, logging
/// at debug: whatever GitHub answers (a refused token, a rate limit, an
/// outage), the token shows neither in the log nor in an answer.
#[tokio::test]
async fn the_github_token_never_appears_in_logs_or_answers() {
    use opsbot_fake_github::{endpoint, Failure, FakeGitHub};
    use opsbot_fake_slack::FakeSlack;

    const TOKEN: &str = "github_pat_11AAAA_never-shown-anywhere";
    const SIGNING: &str = "binary-test-signing-secret";
    let slack = FakeSlack::with_token("xoxb-binary-test");
    let slack_server = slack.spawn().await.unwrap();
    let github = FakeGitHub::with_token(TOKEN);
    github.add_repo("octo-org/shop", "main");
    let github_server = github.spawn().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("opsbot-token-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("opsbot.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .arg("serve")
        .envs([
            ("SLACK_SIGNING_SECRET", SIGNING),
            ("SLACK_BOT_TOKEN", "xoxb-binary-test"),
            ("SLACK_API_URL", slack_server.api_url.as_str()),
            ("OPSBOT_BIND", &format!("127.0.0.1:{port}")),
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_REPOSITORY", "octo-org/shop"),
            ("GITHUB_API_URL", github_server.api_url.as_str()),
            ("RUST_LOG", "debug"),
        ])
        .env_remove("REDIS_URL")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    until_listening(&http, &base).await;
    let ask = |n: usize| {
        let response_url = slack.response_url(&slack_server.responses_url, "C0GENERAL", "U0ALICE").unwrap();
        let body = crate::support::TestApp::slash_form_with("/pipeline", "status", "U0ALICE", &response_url);
        let request = signed_now(&http, &base, SIGNING, body);
        let slack = slack.clone();
        async move {
            let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert!(answer.to_string().contains("Asking GitHub"), "{answer}");
            let seen = slack.wait_for(crate::support::PATIENCE, |s| (s.ephemerals().len() >= n).then_some(())).await;
            assert!(seen.is_some(), "answer {n} never came");
        }
    };
    // A server error, then a secondary rate limit.
    github.fail_next(endpoint::GET_REPO, Failure::ServerError);
    ask(1).await;
    github.fail_next(endpoint::GET_REPO, Failure::SecondaryRateLimit { retry_after_secs: 1 });
    ask(2).await;
    child.kill().await.unwrap();
    let logs = std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(logs.contains("GitHub could not answer"), "the failures were logged: {logs}");
    assert!(!logs.contains(TOKEN), "the token was logged");
    for answer in slack.ephemerals() {
        assert!(!answer.text.contains(TOKEN) && !answer.blocks.to_string().contains(TOKEN), "{answer:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real binary in Socket Mode (an app-level token, no signing secret)
/// against the fake Slack, logging at debug: it takes a command over its
/// connections, and neither token nor a connection's ticket is logged.
#[tokio::test]
async fn the_binary_in_socket_mode_takes_commands_over_its_connections_and_logs_no_token() {
    use opsbot_fake_slack::{EnvelopeKind, FakeSlack, DEFAULT_APP_TOKEN};

    const BOT_TOKEN: &str = "xoxb-binary-socket-test";
    let slack = FakeSlack::with_token(BOT_TOKEN);
    let slack_server = slack.spawn().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("opsbot-socket-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, errors) = (dir.join("opsbot.log"), dir.join("stderr.log"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .arg("serve")
        .envs([
            ("SLACK_APP_TOKEN", DEFAULT_APP_TOKEN),
            ("SLACK_BOT_TOKEN", BOT_TOKEN),
            ("SLACK_API_URL", slack_server.api_url.as_str()),
            ("OPSBOT_BIND", &format!("127.0.0.1:{port}")),
            ("RUST_LOG", "debug"),
        ])
        .env_remove("REDIS_URL")
        .env_remove("SLACK_SIGNING_SECRET")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&errors).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    slack.wait_for_socket_connections(2, crate::support::PATIENCE).await.expect("the binary opens its two connections");
    let command = serde_json::json!({"command": "/incident", "text": "p2 Over the socket", "user_id": "U0ALICE",
        "channel_id": "C0GENERAL", "team_domain": "opsbot-sandbox", "trigger_id": "1.2.3"});
    let envelope = slack.push_envelope(EnvelopeKind::SlashCommands, command);
    let ack = slack.wait_for_ack(&envelope, crate::support::PATIENCE).await.expect("acknowledged");
    assert!(ack.payload.unwrap()["text"].as_str().unwrap().contains("INC-1"));
    slack
        .wait_for(crate::support::PATIENCE, |s| s.messages("#devops").into_iter().find(|m| m.text.contains("INC-1")))
        .await
        .expect("the incident is announced");
    let http = reqwest::Client::new();
    let health = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health stays on HTTP");
    let commands = http.post(format!("http://127.0.0.1:{port}/slack/commands")).send().await.unwrap();
    assert_eq!(commands.status(), 404, "no Slack route without a signing secret");
    child.kill().await.unwrap();
    let logs = std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(&errors).unwrap();
    assert!(logs.contains("Socket Mode connection open"), "{logs}");
    for secret in [DEFAULT_APP_TOKEN, BOT_TOKEN, "ticket="] {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real binary holding an alert it cannot deliver (Slack is down) gets
/// SIGTERM: it exits by itself within its grace, having said it left, and
/// another replica delivers the alert, once.
#[tokio::test]
async fn sigterm_stops_the_binary_in_time_and_another_replica_takes_over_what_it_held_at_once() {
    use crate::support::{heartbeat_only, settled, TestApp, ALERTS, BOT_TOKEN, PATIENCE, SIGNING_SECRET};

    let mut t = crate::support::spawn_app_with_worker(|_| {}, heartbeat_only()).await;
    // Only the binary works while it runs.
    t.stop().await;
    t.slack.set_unavailable(true);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("opsbot-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let slack_api_url = t.config.slack_api_url.clone();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .arg("serve")
        .envs([
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("SLACK_BOT_TOKEN", BOT_TOKEN),
            ("SLACK_API_URL", slack_api_url.as_str()),
            ("REDIS_URL", t.redis.url().as_str()),
            ("OPSBOT_REDIS_PREFIX", t.config.redis_prefix.as_str()),
            ("OPSBOT_REPLICA", "binary"),
            ("OPSBOT_BIND", &format!("127.0.0.1:{port}")),
            ("OPSBOT_SHUTDOWN_GRACE", "5"),
        ])
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    until_listening(&http, &base).await;
    let body = TestApp::slash_form("/incident", "p0 Held by a replica told to stop", "U0ALICE");
    let answer = signed_now(&http, &base, SIGNING_SECRET, body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    t.slack
        .wait_for(PATIENCE, |s| (s.calls("chat.postMessage") > 0).then_some(()))
        .await
        .expect("the binary holds the alert and tries to post it");

    t.start_again_with(heartbeat_only()).await;
    let pid = child.id().expect("still running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(PATIENCE, child.wait()).await.expect("it exits by itself").unwrap();
    let logs = std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {logs}");
    // Its heartbeat would last 10 s more: it is over because it left.
    let store = &t.app().state.store;
    assert_eq!(store.replicas.is_alive("binary").await.unwrap(), Some(false), "{logs}");

    t.slack.set_unavailable(false);
    t.wait_for_alert(ALERTS, "Held by a replica told to stop").await;
    settled(&t.app().state.store).await;
    let alerts = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).count();
    assert_eq!(alerts, 1, "{:#?}", t.slack.messages(ALERTS));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Polls the binary at `base` until it answers `/healthz`.
async fn until_listening(http: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the binary never listened");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A slash command for the binary at `base`, signed now with `secret`:
/// the binary checks signatures against its own clock, not the tests'.
fn signed_now(http: &reqwest::Client, base: &str, secret: &str, body: String) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let signature = opsbot::slack::signature::sign(secret.as_bytes(), ts, body.as_bytes());
    http.post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature)
        .body(body)
}
