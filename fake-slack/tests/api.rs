//! Drives the spawned fake over real HTTP, checking it answers like Slack's
//! Web API: response shapes, error codes, limits, and the test controls
//! (failure injection, outages, `wait_for`).

use std::time::{Duration, Instant};

use opsbot_fake_slack::{Failure, FakeSlack, SpawnedFake};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-test-token";

struct Harness {
    slack: FakeSlack,
    server: SpawnedFake,
    http: reqwest::Client,
}

impl Harness {
    async fn new() -> Self {
        let slack = FakeSlack::new();
        let server = slack.spawn().await.expect("spawn fake");
        Harness { slack, server, http: reqwest::Client::new() }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/{method}", self.server.api_url)
    }

    /// POSTs JSON with a bearer token, as slack-morphism does.
    async fn call(&self, method: &str, body: Value) -> Value {
        let res = self.http.post(self.url(method)).bearer_auth(TOKEN).json(&body).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        assert_eq!(res.headers()["content-type"], "application/json; charset=utf-8");
        res.json().await.expect("json body")
    }

    async fn post(&self, channel: &str, text: &str) -> Value {
        self.call("chat.postMessage", json!({"channel": channel, "text": text})).await
    }

    async fn post_blocks(&self, blocks: Value) -> Value {
        self.call("chat.postMessage", json!({"channel": "C0DEVOPS", "text": "fallback", "blocks": blocks})).await
    }
}

fn error(body: &Value) -> &str {
    assert_eq!(body["ok"], false, "expected an error: {body}");
    body["error"].as_str().expect("error code")
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn button(text: &str, action_id: &str) -> Value {
    json!({"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id})
}

#[tokio::test]
async fn post_by_name_and_by_id() {
    let h = Harness::new().await;
    let by_hash = h.post("#devops", "one").await;
    let by_name = h.post("devops", "two").await;
    let by_id = h.post("C0DEVOPS", "three").await;

    for body in [&by_hash, &by_name, &by_id] {
        assert_eq!(body["ok"], true);
        assert_eq!(body["channel"], "C0DEVOPS");
        assert_eq!(body["message"]["ts"], body["ts"]);
        assert_eq!(body["message"]["user"], "U0OPSBOT");
        assert_eq!(body["message"]["bot_id"], "B0OPSBOT");
        assert_eq!(body["message"]["type"], "message");
    }
    assert_eq!(by_name["message"]["text"], "two");

    let stored = h.slack.messages("#devops");
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert_eq!(stored[0].ts, by_hash["ts"]);
    assert_eq!(stored[0].user, "U0OPSBOT");
    assert_eq!(stored[0].blocks, Value::Null);
    assert_eq!(h.slack.messages("devops").len(), 3);
    assert_eq!(h.slack.messages("C0DEVOPS").len(), 3);
    assert!(h.slack.messages("#general").is_empty());
    assert_eq!(h.slack.channel_id("#devops-alerts").as_deref(), Some("C0ALERTS"));
    assert_eq!(h.slack.calls("chat.postMessage"), 3);
}

#[tokio::test]
async fn ts_is_slack_formatted_and_strictly_increasing() {
    let h = Harness::new().await;
    let mut last = 0.0_f64;
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        let body = h.post("#general", &format!("m{i}")).await;
        let ts = body["ts"].as_str().unwrap().to_owned();
        let (secs, micros) = ts.split_once('.').unwrap();
        assert_eq!(micros.len(), 6, "{ts}");
        assert!(secs.len() >= 10 && secs.bytes().all(|b| b.is_ascii_digit()));
        let value: f64 = ts.parse().unwrap();
        assert!(value > last, "{ts} not after {last}");
        last = value;
        assert!(seen.insert(ts));
    }
}

#[tokio::test]
async fn post_rejections() {
    let h = Harness::new().await;
    assert_eq!(error(&h.post("#nope", "x").await), "channel_not_found");
    assert_eq!(error(&h.call("chat.postMessage", json!({"channel": "C0DEVOPS"})).await), "no_text");
    assert_eq!(error(&h.post("C0DEVOPS", &"x".repeat(40_001)).await), "msg_too_long");
    assert_eq!(h.post("C0DEVOPS", &"x".repeat(40_000)).await["ok"], true);
    assert_eq!(h.slack.messages("C0DEVOPS").len(), 1);
    assert_eq!(h.slack.calls("chat.postMessage"), 4);
}

#[tokio::test]
async fn blocks_only_message_is_stored_with_its_blocks() {
    let h = Harness::new().await;
    let blocks = json!([section("*hello*")]);
    let body = h.call("chat.postMessage", json!({"channel": "#devops", "blocks": blocks})).await;
    assert_eq!(body["ok"], true);
    assert_eq!(body["message"]["blocks"], blocks);
    let stored = &h.slack.messages("#devops")[0];
    assert_eq!(stored.blocks, blocks);
    assert_eq!(stored.text, "");
}

#[tokio::test]
async fn thread_replies() {
    let h = Harness::new().await;
    let parent = h.post("#devops-alerts", "incident").await;
    let parent_ts = parent["ts"].as_str().unwrap();
    let reply =
        h.call("chat.postMessage", json!({"channel": "C0ALERTS", "text": "update 1", "thread_ts": parent_ts})).await;
    assert_eq!(reply["message"]["thread_ts"], parent_ts);
    h.call("chat.postMessage", json!({"channel": "#devops-alerts", "text": "update 2", "thread_ts": parent_ts})).await;

    let thread = h.slack.thread("#devops-alerts", parent_ts);
    let texts: Vec<&str> = thread.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["update 1", "update 2"]);
    assert!(thread.iter().all(|m| m.thread_ts.as_deref() == Some(parent_ts)));
    assert_eq!(h.slack.messages("C0ALERTS").len(), 3);
    assert_eq!(h.slack.messages("C0ALERTS")[0].thread_ts, None);

    // A reply cannot be a thread parent, nor can a message in another channel
    // or a ts that does not exist.
    let reply_ts = reply["ts"].as_str().unwrap();
    for (channel, ts) in [("C0ALERTS", reply_ts), ("C0DEVOPS", parent_ts), ("C0ALERTS", "1.000001")] {
        let body = h.call("chat.postMessage", json!({"channel": channel, "text": "x", "thread_ts": ts})).await;
        assert_eq!(error(&body), "thread_not_found");
    }
    assert_eq!(h.slack.all_messages().len(), 3);
}

#[tokio::test]
async fn update_replaces_content_and_counts_edits() {
    let h = Harness::new().await;
    let blocks = json!([section("v1")]);
    let posted = h.call("chat.postMessage", json!({"channel": "#devops", "text": "v1", "blocks": blocks})).await;
    let ts = posted["ts"].as_str().unwrap();

    let body = h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": ts, "text": "v2"})).await;
    assert_eq!(body["ok"], true);
    assert_eq!(body["channel"], "C0DEVOPS");
    assert_eq!(body["ts"], ts);
    assert_eq!(body["text"], "v2");
    assert_eq!(body["message"]["text"], "v2");
    let m = &h.slack.messages("#devops")[0];
    assert_eq!((m.text.as_str(), m.edits), ("v2", 1));
    assert_eq!(m.blocks, blocks, "omitted blocks are kept");

    let new_blocks = json!([section("v3")]);
    h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": ts, "text": "v3", "blocks": new_blocks})).await;
    let m = &h.slack.messages("#devops")[0];
    assert_eq!((m.text.as_str(), m.edits), ("v3", 2));
    assert_eq!(m.blocks, new_blocks);
    assert_eq!(h.slack.all_messages().len(), 1, "update adds no message");
}

#[tokio::test]
async fn update_rejections() {
    let h = Harness::new().await;
    let ts = h.post("#devops", "v1").await["ts"].as_str().unwrap().to_owned();

    for channel in ["#devops", "devops"] {
        let body = h.call("chat.update", json!({"channel": channel, "ts": ts, "text": "v2"})).await;
        assert_eq!(error(&body), "channel_not_found", "{channel}");
    }
    let body = h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": "1.000001", "text": "v2"})).await;
    assert_eq!(error(&body), "message_not_found");
    let body = h.call("chat.update", json!({"channel": "C0GENERAL", "ts": ts, "text": "v2"})).await;
    assert_eq!(error(&body), "message_not_found");

    let human_ts = h.slack.post_as_user("#devops", "U0ALICE", "mine", None).unwrap();
    let body = h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": human_ts, "text": "hijack"})).await;
    assert_eq!(error(&body), "cant_update_message");

    let body = h
        .call("chat.update", json!({"channel": "C0DEVOPS", "ts": ts, "text": "v2", "blocks": [{"type": "bogus"}]}))
        .await;
    assert_eq!(error(&body), "invalid_blocks");

    let stored = h.slack.messages("#devops");
    assert_eq!((stored[0].text.as_str(), stored[0].edits), ("v1", 0));
    assert_eq!(stored[1].text, "mine");
}

#[tokio::test]
async fn each_block_kit_limit_is_enforced_with_its_pointer() {
    let h = Harness::new().await;
    let dividers = |n: usize| Value::Array((0..n).map(|_| json!({"type": "divider"})).collect());
    let texts = |n: usize| -> Vec<Value> { (0..n).map(|_| json!({"type": "mrkdwn", "text": "t"})).collect() };
    let buttons = |n: usize| -> Vec<Value> { (0..n).map(|i| button("b", &format!("a{i}"))).collect() };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("51 blocks", dividers(51), "/blocks"),
        ("section text", json!([section(&"x".repeat(3001))]), "/blocks/0/text/text"),
        ("section fields count", json!([{"type": "section", "fields": texts(11)}]), "/blocks/0/fields"),
        (
            "section field text",
            json!([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x".repeat(2001)}]}]),
            "/blocks/0/fields/0/text",
        ),
        ("empty section", json!([{"type": "section"}]), "/blocks/0"),
        ("header mrkdwn", json!([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]), "/blocks/0/text/type"),
        (
            "header length",
            json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]),
            "/blocks/0/text/text",
        ),
        ("context elements", json!([{"type": "context", "elements": texts(11)}]), "/blocks/0/elements"),
        ("actions elements", json!([{"type": "actions", "elements": buttons(26)}]), "/blocks/0/elements"),
        (
            "button text",
            json!([{"type": "actions", "elements": [button(&"b".repeat(76), "a")]}]),
            "/blocks/0/elements/0/text/text",
        ),
        (
            "button action_id length",
            json!([{"type": "actions", "elements": [button("b", &"a".repeat(256))]}]),
            "/blocks/0/elements/0/action_id",
        ),
        (
            "duplicate action_id",
            json!([{"type": "actions", "elements": [button("b", "same"), button("c", "same")]}]),
            "/blocks/0/elements/1/action_id",
        ),
        (
            "button style",
            json!([{"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "style": "blue"}
            ]}]),
            "/blocks/0/elements/0/style",
        ),
        (
            "button value",
            json!([{"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "value": "v".repeat(2001)}
            ]}]),
            "/blocks/0/elements/0/value",
        ),
        (
            "button url",
            json!([{"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "url": "u".repeat(3001)}
            ]}]),
            "/blocks/0/elements/0/url",
        ),
        ("block_id length", json!([{"type": "divider", "block_id": "b".repeat(256)}]), "/blocks/0/block_id"),
        (
            "duplicate block_id",
            json!([{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}]),
            "/blocks/1/block_id",
        ),
        ("unknown type", json!([{"type": "table"}]), "/blocks/0/type"),
        ("text type", json!([{"type": "section", "text": {"type": "html", "text": "x"}}]), "/blocks/0/text/type"),
        ("empty text", json!([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]), "/blocks/0/text/text"),
    ];
    for (name, blocks, pointer) in cases {
        let body = h.post_blocks(blocks).await;
        assert_eq!(error(&body), "invalid_blocks", "{name}");
        let messages =
            body["response_metadata"]["messages"].as_array().unwrap_or_else(|| panic!("{name}: no messages in {body}"));
        let suffix = format!(" [json-pointer:{pointer}]");
        assert!(
            messages.iter().any(|m| {
                let m = m.as_str().unwrap();
                m.starts_with("[ERROR] ") && m.ends_with(&suffix)
            }),
            "{name}: expected pointer {pointer} in {messages:?}"
        );
    }
    assert!(h.slack.all_messages().is_empty(), "rejected posts store nothing");

    // The fixture's exact wording.
    let body = h.post_blocks(json!([section(&"x".repeat(3001))])).await;
    assert_eq!(
        body,
        json!({"ok": false, "error": "invalid_blocks", "response_metadata": {"messages": [
            "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
        ]}})
    );
    // Right at every limit is fine.
    let at_limit = json!([
        section(&"x".repeat(3000)),
        {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(150)}},
        {"type": "actions", "block_id": "b".repeat(255), "elements": buttons(25)},
        {"type": "actions", "elements": [button(&"b".repeat(75), &"a".repeat(255))]},
    ]);
    assert_eq!(h.post_blocks(at_limit).await["ok"], true);
    assert_eq!(h.post_blocks(dividers(50)).await["ok"], true);
}

#[tokio::test]
async fn auth_errors_are_ok_false_with_http_200() {
    let h = Harness::new().await;
    let res =
        h.http.post(h.url("chat.postMessage")).json(&json!({"channel": "C0DEVOPS", "text": "x"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": false, "error": "not_authed"}));

    let res = h.http.post(h.url("auth.test")).bearer_auth("xoxb-wrong").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": false, "error": "invalid_auth"}));
    assert!(h.slack.all_messages().is_empty());
    assert_eq!(h.slack.calls("chat.postMessage"), 1);
}

#[tokio::test]
async fn with_token_accepts_only_that_token() {
    let slack = FakeSlack::with_token("xoxb-other");
    let server = slack.spawn().await.unwrap();
    let http = reqwest::Client::new();
    let check = |token: &'static str| {
        let req = http.post(format!("{}/auth.test", server.api_url)).bearer_auth(token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(check("xoxb-other").await["ok"], true);
    assert_eq!(error(&check(TOKEN).await), "invalid_auth");
}

#[tokio::test]
async fn form_bodies_and_query_strings_are_accepted() {
    let h = Harness::new().await;
    let blocks = json!([section("from a form")]).to_string();
    let res = h
        .http
        .post(h.url("chat.postMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("token", TOKEN),
                ("channel", "#general"),
                ("text", "form"),
                ("blocks", blocks.as_str()),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    let stored = &h.slack.messages("#general")[0];
    assert_eq!(stored.text, "form");
    assert_eq!(stored.blocks[0]["text"]["text"], "from a form");

    let res = h.http.get(format!("{}?user=U0ALICE", h.url("users.info"))).bearer_auth(TOKEN).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["tz"], "Europe/Berlin", "{body}");

    let res = h.http.get(format!("{}?token={TOKEN}&user=U0BOB", h.url("users.info"))).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["name"], "bob");

    let res = h
        .http
        .post(h.url("chat.postMessage"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json; charset=utf-8")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error(&res.json::<Value>().await.unwrap()), "invalid_json");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = Harness::new().await;
    h.slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 1 });
    let res = h
        .http
        .post(h.url("chat.postMessage"))
        .bearer_auth(TOKEN)
        .json(&json!({"channel": "C0DEVOPS", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": false, "error": "ratelimited"}));
    assert!(h.slack.all_messages().is_empty());
    assert_eq!(h.post("C0DEVOPS", "x").await["ok"], true);
}

#[tokio::test]
async fn fail_next_is_consumed_in_order_one_per_call() {
    let h = Harness::new().await;
    h.slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 7 });
    h.slack.fail_next("chat.postMessage", Failure::HttpStatus(500));
    h.slack.fail_next("chat.postMessage", Failure::Error("internal_error".into()));
    h.slack.fail_next("chat.update", Failure::Error("edit_window_closed".into()));

    // Another method's queue is untouched by these calls.
    assert_eq!(h.call("auth.test", json!({})).await["ok"], true);

    let send = || {
        h.http
            .post(h.url("chat.postMessage"))
            .bearer_auth(TOKEN)
            .json(&json!({"channel": "C0DEVOPS", "text": "x"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "7");
    let second = send().await.unwrap();
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let third = send().await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(third.json::<Value>().await.unwrap(), json!({"ok": false, "error": "internal_error"}));
    assert!(h.slack.all_messages().is_empty(), "failed calls store nothing");
    let fourth = send().await.unwrap();
    assert_eq!(fourth.json::<Value>().await.unwrap()["ok"], true);

    assert_eq!(h.slack.calls("chat.postMessage"), 4);
    assert_eq!(h.slack.all_messages().len(), 1);
    let ts = h.slack.all_messages()[0].ts.clone();
    let body = h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": ts, "text": "y"})).await;
    assert_eq!(error(&body), "edit_window_closed");
}

#[tokio::test]
async fn failures_come_before_auth() {
    let h = Harness::new().await;
    h.slack.fail_next("auth.test", Failure::HttpStatus(502));
    let res = h.http.post(h.url("auth.test")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn unavailable_answers_503_until_cleared() {
    let h = Harness::new().await;
    h.slack.set_unavailable(true);
    for method in ["chat.postMessage", "auth.test", "no.such.method"] {
        let res = h
            .http
            .post(h.url(method))
            .bearer_auth(TOKEN)
            .json(&json!({"channel": "C0DEVOPS", "text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{method}");
    }
    assert_eq!(h.slack.calls("chat.postMessage"), 1);
    h.slack.set_unavailable(false);
    assert_eq!(h.post("C0DEVOPS", "back").await["ok"], true);
}

#[tokio::test]
async fn unknown_method() {
    let h = Harness::new().await;
    let body = h.call("chat.postMessages", json!({})).await;
    assert_eq!(body, json!({"ok": false, "error": "unknown_method"}));
    assert_eq!(h.slack.calls("chat.postMessages"), 1);
}

#[tokio::test]
async fn ephemerals() {
    let h = Harness::new().await;
    let body = h.call("chat.postEphemeral", json!({"channel": "#devops", "user": "U0BOB", "text": "only you"})).await;
    assert_eq!(body["ok"], true);
    assert!(body["message_ts"].as_str().unwrap().contains('.'));
    let stored = h.slack.ephemerals();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].channel.as_str(), stored[0].user.as_str(), stored[0].text.as_str()),
        ("C0DEVOPS", "U0BOB", "only you")
    );
    assert!(h.slack.messages("#devops").is_empty(), "not a channel message");

    let body = h.call("chat.postEphemeral", json!({"channel": "#devops", "user": "U0NOBODY", "text": "x"})).await;
    assert_eq!(error(&body), "user_not_found");
    let body = h.call("chat.postEphemeral", json!({"channel": "#nope", "user": "U0BOB", "text": "x"})).await;
    assert_eq!(error(&body), "channel_not_found");
    assert_eq!(h.slack.ephemerals().len(), 1);
}

fn modal(title: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": "incident_new",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Open"},
        "blocks": [{"type": "input", "block_id": "title",
                    "label": {"type": "plain_text", "text": "Title"},
                    "element": {"type": "plain_text_input", "action_id": "title"}}]
    })
}

#[tokio::test]
async fn views_open() {
    let h = Harness::new().await;
    let body = h.call("views.open", json!({"trigger_id": "123.456.abc", "view": modal("New incident")})).await;
    assert_eq!(body["ok"], true, "{body}");
    let id = body["view"]["id"].as_str().unwrap();
    assert!(id.starts_with('V'));
    assert_eq!(body["view"]["title"]["text"], "New incident");
    assert_eq!(body["view"]["team_id"], "T0OPSBOT");
    assert_eq!(body["view"]["state"], json!({"values": {}}));
    let views = h.slack.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].id, id);
    assert_eq!(views[0].trigger_id, "123.456.abc");
    assert_eq!(views[0].view["callback_id"], "incident_new");

    let again = h.call("views.open", json!({"trigger_id": "123.456.abc", "view": modal("Again")})).await;
    assert_eq!(error(&again), "expired_trigger_id");

    let too_long = h.call("views.open", json!({"trigger_id": "t2", "view": modal(&"t".repeat(25))})).await;
    assert_eq!(error(&too_long), "invalid_arguments");
    assert_eq!(
        too_long["response_metadata"]["messages"],
        json!(["[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"])
    );

    let missing = h.call("views.open", json!({"view": modal("x")})).await;
    assert_eq!(error(&missing), "invalid_arguments");
    let missing = h.call("views.open", json!({"trigger_id": "t3"})).await;
    assert_eq!(error(&missing), "invalid_arguments");

    // Form posts carry the view as a JSON string.
    let res = h
        .http
        .post(h.url("views.open"))
        .bearer_auth(TOKEN)
        .form(&[("trigger_id", "t4"), ("view", &modal("Form").to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["ok"], true);
    assert_eq!(h.slack.views().len(), 2);
}

#[tokio::test]
async fn workspace_read_methods() {
    let h = Harness::new().await;
    let auth = h.call("auth.test", json!({})).await;
    assert_eq!(auth["team_id"], "T0OPSBOT");
    assert_eq!(auth["user_id"], "U0OPSBOT");
    assert_eq!(auth["bot_id"], "B0OPSBOT");
    assert_eq!(auth["url"], "https://opsbot-sandbox.slack.com/");

    let users = h.call("users.list", json!({})).await;
    let names: Vec<&str> = users["members"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    for name in ["alice", "bob", "carol", "dave"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let carol = h.call("users.info", json!({"user": "U0CAROL"})).await;
    assert_eq!(carol["user"]["tz"], "Asia/Tokyo");
    assert_eq!(carol["user"]["tz_offset"], 32400);
    let nobody = h.call("users.info", json!({"user": "U0NOBODY"})).await;
    assert_eq!(error(&nobody), "user_not_found");

    let list = h.call("conversations.list", json!({})).await;
    let channels: Vec<(&str, &str)> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert_eq!(channels, [("C0ALERTS", "devops-alerts"), ("C0DEVOPS", "devops"), ("C0GENERAL", "general")]);
    let info = h.call("conversations.info", json!({"channel": "C0GENERAL"})).await;
    assert_eq!(info["channel"]["name"], "general");
    assert_eq!(info["channel"]["is_general"], true);
    let missing = h.call("conversations.info", json!({"channel": "C0NOPE"})).await;
    assert_eq!(error(&missing), "channel_not_found");
}

#[tokio::test]
async fn posting_to_a_user_id_lands_in_their_dm() {
    let h = Harness::new().await;
    let body = h.post("U0ALICE", "psst").await;
    assert_eq!(body["channel"], "D0ALICE");
    assert_eq!(h.slack.messages("U0ALICE")[0].text, "psst");
    assert_eq!(h.slack.messages("D0ALICE").len(), 1);
}

#[tokio::test]
async fn wait_for_wakes_on_change() {
    let h = Harness::new().await;
    let poster = {
        let url = h.url("chat.postMessage");
        let http = h.http.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"channel": "#devops", "text": "late"}))
                .send()
                .await
                .unwrap();
        })
    };
    let started = Instant::now();
    let found = h
        .slack
        .wait_for(Duration::from_secs(10), |s| s.messages("#devops").into_iter().find(|m| m.text == "late"))
        .await;
    assert_eq!(found.map(|m| m.text).as_deref(), Some("late"));
    assert!(started.elapsed() < Duration::from_secs(5));
    poster.await.unwrap();

    let started = Instant::now();
    let nothing = h.slack.wait_for(Duration::from_millis(100), |s| s.messages("#general").into_iter().next()).await;
    assert!(nothing.is_none());
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn reset_forgets_everything_but_the_workspace() {
    let h = Harness::new().await;
    h.post("#devops", "x").await;
    h.slack.fail_next("auth.test", Failure::HttpStatus(500));
    h.slack.reset();
    assert!(h.slack.all_messages().is_empty());
    assert_eq!(h.slack.calls("chat.postMessage"), 0);
    assert_eq!(h.call("auth.test", json!({})).await["ok"], true);
    assert_eq!(h.post("#devops", "y").await["ok"], true);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let slack = FakeSlack::new();
    let server = slack.spawn().await.unwrap();
    let url = format!("{}/auth.test", server.api_url);
    assert!(server.api_url.starts_with("http://127.0.0.1:"));
    drop(server);
    // Fresh client: a pooled keep-alive connection would not show the stop.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut stopped = false;
    for _ in 0..50 {
        if client.post(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "server still answering after drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_are_all_stored_in_ts_order() {
    let h = Harness::new().await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let http = h.http.clone();
            let url = h.url("chat.postMessage");
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(TOKEN)
                    .json(&json!({"channel": "#devops", "text": format!("m{i}")}))
                    .send()
                    .await
                    .unwrap();
                res.json::<Value>().await.unwrap()["ok"].as_bool()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(true));
    }
    let stored = h.slack.messages("#devops");
    assert_eq!(stored.len(), 400);
    assert!(stored.windows(2).all(|w| w[0].ts < w[1].ts), "post order is ts order");
    assert_eq!(h.slack.calls("chat.postMessage"), 400);
    eprintln!("400 concurrent posts in {:?}", started.elapsed());
}

#[tokio::test]
async fn subscribers_hear_every_post_edit_ephemeral_and_view() {
    use opsbot_fake_slack::Change;
    let h = Harness::new().await;
    let mut changes = h.slack.subscribe();
    let posted = h.post("#devops", "hello").await;
    let ts = posted["ts"].as_str().unwrap().to_owned();
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::Posted { channel: "C0DEVOPS".into(), ts: ts.clone(), thread_ts: None }
    );
    h.call("chat.update", json!({"channel": "C0DEVOPS", "ts": ts, "text": "edited"})).await;
    assert_eq!(changes.recv().await.unwrap(), Change::Updated { channel: "C0DEVOPS".into(), ts: ts.clone() });
    let reply = h.slack.post_as_user("#devops", "U0BOB", "a reply", Some(&ts)).unwrap();
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::Posted { channel: "C0DEVOPS".into(), ts: reply, thread_ts: Some(ts.clone()) }
    );
    let answered =
        h.call("chat.postEphemeral", json!({"channel": "C0DEVOPS", "user": "U0ALICE", "text": "psst"})).await;
    let message_ts = answered["message_ts"].as_str().unwrap().to_owned();
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::Ephemeral { channel: "C0DEVOPS".into(), user: "U0ALICE".into(), ts: message_ts.clone() }
    );
    assert_eq!(h.slack.ephemerals()[0].ts, message_ts);
    let view = json!({"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []});
    let opened = h.call("views.open", json!({"trigger_id": "1.2.3", "view": view})).await;
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::ViewOpened { id: opened["view"]["id"].as_str().unwrap().into(), trigger_id: "1.2.3".into() }
    );
    h.slack.reset();
    assert_eq!(changes.recv().await.unwrap(), Change::Reset);
}

#[tokio::test]
async fn add_ephemeral_records_an_answer_for_one_user() {
    let h = Harness::new().await;
    let ts = h.slack.add_ephemeral("#devops-alerts", "U0CAROL", "only for carol", json!([])).unwrap();
    let stored = h.slack.ephemerals();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].channel.as_str(), stored[0].user.as_str()), ("C0ALERTS", "U0CAROL"));
    assert_eq!(stored[0].ts, ts);
    assert!(stored[0].blocks.is_null(), "an empty blocks array is stored as none, as Slack does");
    assert_eq!(h.slack.add_ephemeral("#nowhere", "U0CAROL", "x", Value::Null), None);
    assert_eq!(h.slack.add_ephemeral("#devops", "U0NOBODY", "x", Value::Null), None);
}

#[tokio::test]
async fn users_and_channels_list_the_workspace() {
    let h = Harness::new().await;
    let names: Vec<String> = h.slack.users().into_iter().filter(|u| !u.is_bot).map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);
    let channels: Vec<String> = h.slack.channels().into_iter().map(|c| c.name).collect();
    assert_eq!(channels, ["devops-alerts", "devops", "general"]);
}

#[tokio::test]
async fn usergroups_users_list_answers_a_groups_members_and_slacks_errors() {
    let h = Harness::new().await;
    h.slack.set_usergroup("S0RELEASE", &["U0ALICE", "U0BOB"], true);
    h.slack.set_usergroup("S0OLD", &["U0CAROL"], false);
    // slack-morphism asks with GET and a query string.
    let get = |query: &str| {
        let url = format!("{}?{query}", h.url("usergroups.users.list"));
        let http = h.http.clone();
        async move { http.get(url).bearer_auth(TOKEN).send().await.unwrap() }
    };
    let body: Value = get("usergroup=S0RELEASE").await.json().await.unwrap();
    assert_eq!(body, json!({"ok": true, "users": ["U0ALICE", "U0BOB"]}));
    let unknown: Value = get("usergroup=S0NOPE").await.json().await.unwrap();
    assert_eq!(error(&unknown), "no_such_subteam");
    let disabled: Value = get("usergroup=S0OLD").await.json().await.unwrap();
    assert_eq!(error(&disabled), "no_such_subteam", "a disabled group, unless asked for");
    let included: Value = get("usergroup=S0OLD&include_disabled=true").await.json().await.unwrap();
    assert_eq!(included["users"], json!(["U0CAROL"]));
    let missing: Value = get("").await.json().await.unwrap();
    assert_eq!(error(&missing), "invalid_arguments");

    h.slack.fail_next("usergroups.users.list", Failure::RateLimited { retry_after_secs: 2 });
    let limited = get("usergroup=S0RELEASE").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "2");

    h.slack.revoke_scope("usergroups:read");
    let refused: Value = get("usergroup=S0RELEASE").await.json().await.unwrap();
    assert_eq!(error(&refused), "missing_scope");
    assert_eq!(refused["needed"], "usergroups:read");
    assert!(!refused["provided"].as_str().unwrap().contains("usergroups:read"), "{refused}");
    assert_eq!(h.slack.calls("usergroups.users.list"), 7);
}

#[tokio::test]
async fn usergroups_users_update_replaces_a_groups_members_and_refuses_as_slack_does() {
    let h = Harness::new().await;
    h.slack.set_usergroup("S0ONCALL", &["U0ALICE", "U0BOB"], true);
    let update =
        |group: &str, users: &str| h.call("usergroups.users.update", json!({"usergroup": group, "users": users}));
    let body = update("S0ONCALL", "U0CAROL").await;
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["usergroup"]["users"], json!(["U0CAROL"]));
    assert_eq!(h.slack.usergroup("S0ONCALL"), Some(vec!["U0CAROL".to_owned()]));
    assert_eq!(error(&update("S0NOPE", "U0CAROL").await), "no_such_subteam");
    assert_eq!(error(&update("S0ONCALL", "U0NOBODY").await), "invalid_users");
    assert_eq!(error(&update("S0ONCALL", "U0OPSBOT").await), "invalid_users", "not a bot");
    assert_eq!(error(&update("S0ONCALL", "").await), "no_users_provided");
    assert_eq!(h.slack.usergroup("S0ONCALL"), Some(vec!["U0CAROL".to_owned()]), "refusals change nothing");

    h.slack.revoke_scope("usergroups:write");
    let refused = update("S0ONCALL", "U0BOB").await;
    assert_eq!((error(&refused), refused["needed"].as_str()), ("missing_scope", Some("usergroups:write")));
}

#[tokio::test]
async fn metadata_is_kept_and_shown_only_to_include_all_metadata() {
    let h = Harness::new().await;
    let metadata = json!({"event_type": "opsbot_outbox", "event_payload": {"entry": "people/1-0"}});
    let posted =
        h.call("chat.postMessage", json!({"channel": "#devops", "text": "marked", "metadata": metadata})).await;
    assert_eq!(posted["ok"], true, "{posted}");
    let ts = posted["ts"].as_str().unwrap().to_owned();
    h.post("C0DEVOPS", "unmarked").await;
    let reply = h
        .call(
            "chat.postMessage",
            json!({"channel": "C0DEVOPS", "thread_ts": ts, "text": "in the thread",
        "metadata": {"event_type": "opsbot_outbox", "event_payload": {"entry": "people/2-0"}}}),
        )
        .await;

    let plain = h.call("conversations.history", json!({"channel": "C0DEVOPS"})).await;
    let texts: Vec<&str> = plain["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["unmarked", "marked"], "newest first, no replies");
    assert!(plain["messages"][1].get("metadata").is_none(), "{plain}");
    let with = h.call("conversations.history", json!({"channel": "C0DEVOPS", "include_all_metadata": true})).await;
    assert_eq!(with["messages"][1]["metadata"], metadata);
    assert!(with["messages"][0].get("metadata").is_none());

    let thread =
        h.call("conversations.replies", json!({"channel": "C0DEVOPS", "ts": ts, "include_all_metadata": "true"})).await;
    assert_eq!(thread["messages"][0]["ts"], ts.as_str(), "the parent first");
    assert_eq!(thread["messages"][1]["ts"], reply["ts"]);
    assert_eq!(thread["messages"][1]["metadata"]["event_payload"]["entry"], "people/2-0");

    let bad = h
        .call("chat.postMessage", json!({"channel": "C0DEVOPS", "text": "x", "metadata": {"event_payload": {}}}))
        .await;
    assert_eq!(error(&bad), "invalid_metadata_schema");
    assert_eq!(error(&h.call("conversations.history", json!({"channel": "#devops"})).await), "channel_not_found");
    assert_eq!(
        error(&h.call("conversations.replies", json!({"channel": "C0DEVOPS", "ts": "1.000001"})).await),
        "thread_not_found"
    );
}

#[tokio::test]
async fn history_pages_and_windows_as_slack_does() {
    let h = Harness::new().await;
    let mut ts = Vec::new();
    for n in 0..5 {
        ts.push(h.post("C0ALERTS", &n.to_string()).await["ts"].as_str().unwrap().to_owned());
    }
    let first = h.call("conversations.history", json!({"channel": "C0ALERTS", "limit": 2, "oldest": ts[0]})).await;
    let texts = |v: &Value| -> Vec<String> {
        v["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(texts(&first), ["4", "3"]);
    assert_eq!(first["has_more"], true);
    let cursor = first["response_metadata"]["next_cursor"].as_str().unwrap();
    let second = h
        .call("conversations.history", json!({"channel": "C0ALERTS", "limit": 2, "oldest": ts[0], "cursor": cursor}))
        .await;
    assert_eq!(texts(&second), ["2", "1"], "oldest is exclusive");
    assert_eq!(second["has_more"], false);
    assert_eq!(second["response_metadata"]["next_cursor"], "");
}

#[tokio::test]
async fn a_call_without_an_answer_still_takes_effect() {
    let h = Harness::new().await;
    h.slack.fail_next("chat.postMessage", Failure::NoAnswer);
    let request = h
        .http
        .post(h.url("chat.postMessage"))
        .bearer_auth(TOKEN)
        .json(&json!({"channel": "C0DEVOPS", "text": "lost answer"}));
    let answer = tokio::time::timeout(Duration::from_millis(500), request.send()).await;
    assert!(answer.is_err(), "no answer came");
    assert_eq!(h.slack.messages("#devops").len(), 1, "but the message was posted");
}

#[tokio::test]
async fn conversations_open_finds_the_dm_with_a_person() {
    let h = Harness::new().await;
    let opened = h.call("conversations.open", json!({"users": "U0BOB"})).await;
    assert_eq!(opened["channel"]["id"], "D0BOB");
    assert_eq!(error(&h.call("conversations.open", json!({"users": "U0NOBODY"})).await), "user_not_found");
    let posted = h.post("U0BOB", "hello").await;
    let history = h.call("conversations.history", json!({"channel": "D0BOB"})).await;
    assert_eq!(history["messages"][0]["ts"], posted["ts"]);
}
