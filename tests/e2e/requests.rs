//! Requests that are not what they claim: forged, stale, garbled, huge.

use crate::support::*;
use opsbot::slack::signature::sign;

async fn nothing_changed(t: &TestApp) {
    assert!(reply_text(&t.incident("list").await).contains("No open incidents"));
    assert_eq!(t.slack.calls("chat.postMessage"), 0);
}

#[tokio::test]
async fn forged_and_stale_requests_get_401_and_change_nothing() {
    let t = spawn_app().await;
    let body = TestApp::slash_form("/incident", "p0 forged", ALICE);
    let http = reqwest::Client::new();
    let now = opsbot::clock::Clock::now(&t.clock).timestamp();
    let cases = [
        ("no headers", None, None),
        ("wrong secret", Some(now), Some(sign(b"not-the-secret", now, body.as_bytes()))),
        ("stale", Some(now - 301), Some(sign(SIGNING_SECRET.as_bytes(), now - 301, body.as_bytes()))),
        ("from the future", Some(now + 301), Some(sign(SIGNING_SECRET.as_bytes(), now + 301, body.as_bytes()))),
        ("garbled", Some(now), Some("v0=nothex".to_owned())),
    ];
    for (case, ts, signature) in cases {
        for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
            let mut request = http.post(t.url(path)).body(body.clone());
            if let Some(ts) = ts {
                request = request.header("x-slack-request-timestamp", ts.to_string());
            }
            if let Some(signature) = &signature {
                request = request.header("x-slack-signature", signature);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{case} at {path}");
            let text = response.text().await.unwrap();
            assert!(!text.contains(SIGNING_SECRET), "the answer never echoes the secret");
        }
    }
    nothing_changed(&t).await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_slack_payload_gets_400() {
    let t = spawn_app().await;
    for (path, body) in [
        ("/slack/commands", "hello=world"),
        ("/slack/commands", "%%%"),
        ("/slack/interactions", "payload=%7Bnot-json"),
        ("/slack/interactions", "payload=%7B%22type%22%3A%22block_actions%22%7D"),
        ("/slack/events", "{\"type\": 5}"),
        ("/slack/events", "\u{0}\u{1}"),
    ] {
        let response = t.post_signed(path, "application/x-www-form-urlencoded", body.to_owned()).await;
        assert_eq!(response.status(), 400, "{path} {body:?}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("Error {") && !text.contains("Some("), "no Debug dump: {text}");
    }
    nothing_changed(&t).await;
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused_with_413() {
    let t = spawn_app().await;
    let huge = format!("text={}", "a".repeat(1024 * 1024 + 1));
    let response = t.post_signed("/slack/commands", "application/x-www-form-urlencoded", huge).await;
    assert_eq!(response.status(), 413);
    nothing_changed(&t).await;
}

#[tokio::test]
async fn health_and_readiness() {
    let t = spawn_app().await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(t.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"redis": "ok", "slack": "ok"}));
}

#[tokio::test]
async fn metrics_count_requests_declares_and_deliveries() {
    let t = spawn_app().await;
    t.incident("p0 Counted").await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    let forged = reqwest::Client::new().post(t.url("/slack/commands")).body("x").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    // The delivery counter moves just after Slack answers; wait for it.
    let deadline = std::time::Instant::now() + PATIENCE;
    let text = loop {
        let text = reqwest::get(t.url("/metrics")).await.unwrap().text().await.unwrap();
        if text.contains(r#"opsbot_outbox_deliveries_total{outcome="delivered"}"#)
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for expected in [
        r#"opsbot_slack_requests_total{endpoint="commands",outcome="ok"} 1"#,
        r#"opsbot_slack_requests_total{endpoint="commands",outcome="unauthorized"} 1"#,
        r#"opsbot_incidents_declared_total{severity="P0"} 1"#,
        "opsbot_open_incidents 1",
        r#"opsbot_outbox_deliveries_total{outcome="delivered"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
