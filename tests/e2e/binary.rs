//! The binary's outside contract: `--help`, and start-up refusing bad
//! configuration with one clear line and exit code 2, secrets unprinted.

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
    ];
    for (env, expected) in cases {
        let out = opsbot().arg("serve").envs(env.iter().copied()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        for secret in ["s3cr3t-value", "xoxb-1-secret", "xoxp-user-token-secret", "hunter2"] {
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
