//! The sandbox over HTTP: opsbot started in sandbox mode in-process, driven
//! through `/sandbox/command`, `/click`, `/submit`, `/clock` and `/alert` as
//! the page drives it, and checked through `/sandbox/state` and
//! `/sandbox/events`. Every action reaches the bot as a signed Slack request
//! over HTTP (a played alert as a parsed webhook signal; a pipeline
//! scenario through the sandbox's own GitHub and its signed webhook), so
//! these tests cover the same path a browser does. The browser itself is driven by
//! `tests/browser/sandbox.mjs` (ignored here: it needs Chromium and node;
//! CI runs it with `--ignored`).

use opsbot::app::{App, AppOptions};
use opsbot::config::{Config, Secret, SANDBOX_TOKEN};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine; tests wait on conditions.
const PATIENCE: Duration = Duration::from_secs(15);
/// A storm is delivered at the channel's pace, one post a second.
const STORM_PATIENCE: Duration = Duration::from_secs(90);
const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const ALERTS: &str = "C0ALERTS";
const DEVOPS: &str = "C0DEVOPS";
const GENERAL: &str = "C0GENERAL";

fn config(sandbox: bool) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        signing_secret: Some(Secret::new("sandbox-test-signing-secret")),
        bot_token: Secret::new(if sandbox { SANDBOX_TOKEN } else { "xoxb-configured" }),
        app_token: None,
        // Never called: the sandbox points the client at itself, and the
        // configured app of the 404 test sends nothing.
        slack_api_url: "http://127.0.0.1:9/api/".into(),
        redis_url: None,
        sandbox,
        redis_prefix: "opsbot-sandbox-test".into(),
        redis_wait: None,
        redis_ca: None,
        max_in_flight: opsbot::admission::MAX_IN_FLIGHT,
        replica: "sandbox-test".into(),
        shutdown_grace: std::time::Duration::from_secs(10),
        runbook: opsbot_handlers::Runbook::seed(),
        github_webhook_secret: None,
        alertmanager_token: None,
        github: opsbot::github::GitHubSettings { auth: None, repository: None, api_url: "http://127.0.0.1:9".into() },
    }
}

/// The app as `opsbot serve` starts it: with nothing configured but the
/// sandbox switch, so with the embedded in-memory store.
async fn start_app(config: Config) -> App {
    opsbot::telemetry::init();
    App::start(&config, AppOptions::for_config(&config)).await.expect("the app starts without Redis")
}

struct Sandbox {
    app: Option<App>,
    base: String,
    http: reqwest::Client,
}

impl Sandbox {
    async fn start() -> Sandbox {
        let app = start_app(config(true)).await;
        Sandbox { base: format!("http://{}", app.addr), app: Some(app), http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.expect("sandbox answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body.clone()).await;
        assert_eq!(status, 200, "{path} {body}: {answer}");
        answer
    }

    async fn command(&self, user: &str, channel: &str, text: &str) -> Value {
        self.ok("/sandbox/command", json!({"user": user, "channel": channel, "text": text})).await
    }

    async fn state(&self, user: Option<&str>) -> Value {
        let url = match user {
            Some(u) => format!("{}/sandbox/state?user={u}", self.base),
            None => format!("{}/sandbox/state", self.base),
        };
        self.http.get(url).send().await.expect("state").json().await.expect("state is JSON")
    }

    /// Polls the state as `user` sees it until `find` finds something.
    async fn wait_for<T>(&self, user: &str, what: &str, find: impl Fn(&Value) -> Option<T>) -> T {
        self.wait_within(PATIENCE, user, what, find).await
    }

    async fn wait_within<T>(
        &self,
        patience: Duration,
        user: &str,
        what: &str,
        find: impl Fn(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + patience;
        loop {
            let state = self.state(Some(user)).await;
            if let Some(found) = find(&state) {
                return found;
            }
            assert!(Instant::now() < deadline, "never saw {what}: {state:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, user: &str, message: &Value, action_id: &str) -> Value {
        let value = button_value(message, action_id).unwrap_or_else(|| panic!("no {action_id} on {message:#}"));
        let body = json!({
            "user": user, "channel": message["channel"], "message_ts": message["ts"],
            "action_id": action_id, "value": value,
        });
        self.ok("/sandbox/click", body).await
    }

    /// The alert in `#devops-alerts` whose header names `needle`.
    async fn alert(&self, needle: &str) -> Value {
        self.wait_for(ALICE, &format!("an alert for {needle}"), |s| {
            messages(s)
                .find(|m| m["channel"] == ALERTS && m["thread_ts"].is_null() && header(m).contains(needle))
                .cloned()
        })
        .await
    }

    /// A top-level message in `channel` whose header names `needle`.
    async fn message_in(&self, channel: &str, needle: &str) -> Value {
        self.wait_for(ALICE, &format!("a message in {channel} for {needle}"), |s| {
            top_level(s, channel).into_iter().find(|m| header(m).contains(needle)).cloned()
        })
        .await
    }

    /// Plays an alert scenario as the page's "Play an alert" menu does.
    async fn play(&self, scenario: &str) -> Value {
        self.ok("/sandbox/alert", json!({ "scenario": scenario })).await
    }

    /// The alert as it is now, once `holds`.
    async fn alert_until(&self, alert: &Value, what: &str, holds: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(ALICE, what, |s| messages(s).find(|m| m["ts"] == alert["ts"] && holds(m)).cloned()).await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stopping needs async; dropping the runtime stops the tasks anyway.
        self.app.take();
    }
}

fn messages(state: &Value) -> impl Iterator<Item = &Value> {
    state["messages"].as_array().expect("messages").iter()
}

fn header(message: &Value) -> String {
    message["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "header"))
        .map_or(String::new(), |h| h["text"]["text"].as_str().unwrap_or_default().to_owned())
}

fn button_value(message: &Value, action_id: &str) -> Option<String> {
    message["blocks"].as_array()?.iter().find_map(|b| {
        b["elements"]
            .as_array()?
            .iter()
            .find_map(|e| (e["action_id"] == action_id).then(|| e["value"].as_str().unwrap_or_default().to_owned()))
    })
}

/// The first `Done` button on a message, as (action id, step section text).
fn first_done(message: &Value) -> Option<String> {
    message["blocks"].as_array()?.iter().find_map(|b| {
        b["elements"].as_array()?.iter().find_map(|e| {
            let id = e["action_id"].as_str()?;
            id.starts_with("step.done:").then(|| id.to_owned())
        })
    })
}

fn replies<'a>(state: &'a Value, parent: &Value) -> Vec<&'a Value> {
    messages(state).filter(|m| m["thread_ts"] == parent["ts"]).collect()
}

fn top_level<'a>(state: &'a Value, channel: &str) -> Vec<&'a Value> {
    messages(state).filter(|m| m["channel"] == channel && m["thread_ts"].is_null()).collect()
}

/// What a message says, in its text and its blocks.
fn said(message: &Value) -> String {
    format!("{} {}", message["text"].as_str().unwrap_or_default(), message["blocks"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p0_runs_from_the_composer_to_the_resolve_modal() {
    let sb = Sandbox::start().await;

    let answer = sb.command(ALICE, GENERAL, "/incident p0 Database down").await;
    assert_eq!(answer["ok"], true, "{answer}");
    let alert = sb.alert("P0 · INC-1 · Database down").await;
    assert_eq!(alert["user"], "U0OPSBOT");

    // The command's answer is ephemeral: alice sees it, bob does not.
    let mine = sb.state(Some(ALICE)).await;
    let ephemerals = mine["ephemerals"].as_array().unwrap();
    assert!(
        ephemerals.iter().any(|e| e["channel"] == GENERAL && e["text"].as_str().unwrap().contains("INC-1")),
        "{ephemerals:#?}"
    );
    assert!(ephemerals.iter().all(|e| e["user"] == ALICE));
    let bobs = sb.state(Some(BOB)).await;
    assert_eq!(bobs["ephemerals"], json!([]), "bob sees none of alice's answers");

    // Bob ticks the first playbook step; it shows who did it.
    let playbook = sb
        .wait_for(ALICE, "the playbook in the thread", |s| {
            replies(s, &alert).into_iter().find(|m| first_done(m).is_some()).cloned()
        })
        .await;
    let done = first_done(&playbook).unwrap();
    let clicked = sb.click(BOB, &playbook, &done).await;
    assert_eq!(clicked["view_id"], Value::Null, "a step opens no modal");
    let ticked = sb
        .wait_for(ALICE, "the step ticked by bob", |s| {
            messages(s)
                .find(|m| m["ts"] == playbook["ts"] && m["blocks"].to_string().contains("Done by <@U0BOB>"))
                .cloned()
        })
        .await;
    assert!(ticked["blocks"].to_string().contains("✅"), "{ticked:#}");
    assert!(first_done(&ticked) != Some(done), "the ticked step has no Done button any more");

    // Resolve opens a modal for the clicker only.
    let opened = sb.click(ALICE, &alert, "incident.resolve").await;
    let view_id = opened["view_id"].as_str().expect("Resolve opens a modal").to_owned();
    let views = sb.state(Some(ALICE)).await["views"].clone();
    assert_eq!(views[0]["id"], view_id);
    assert_eq!(views[0]["view"]["callback_id"], "incident.resolve");
    assert_eq!(sb.state(Some(BOB)).await["views"], json!([]));
    // Bob opens one too, and will be too late.
    let bobs_view = sb.click(BOB, &alert, "incident.resolve").await["view_id"].as_str().unwrap().to_owned();

    let submitted = sb
        .ok(
            "/sandbox/submit",
            json!({"user": ALICE, "view_id": view_id, "values": {"summary": {"summary": "Rolled back the migration"}}}),
        )
        .await;
    assert_eq!(submitted, json!({"ok": true}));
    assert_eq!(sb.state(Some(ALICE)).await["views"], json!([]), "the modal closed");
    let resolved = sb
        .alert_until(&alert, "the alert resolved", |m| m["blocks"].to_string().contains("Resolved by <@U0ALICE>"))
        .await;
    assert!(resolved["blocks"].to_string().contains("Rolled back the migration"), "{resolved:#}");
    assert_eq!(button_value(&resolved, "incident.resolve"), None);

    // The bot refuses bob's late resolve: Slack's errors, the modal stays open.
    let refused = sb
        .ok("/sandbox/submit", json!({"user": BOB, "view_id": bobs_view, "values": {"summary": {"summary": "me too"}}}))
        .await;
    assert_eq!(refused["response_action"], "errors", "{refused}");
    assert!(refused["errors"]["summary"].as_str().unwrap().contains("already resolved"), "{refused}");
    assert_eq!(sb.state(Some(BOB)).await["views"][0]["id"], bobs_view);
    sb.ok("/sandbox/close", json!({"view_id": bobs_view})).await;
    assert_eq!(sb.state(Some(BOB)).await["views"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_tab_shows_what_is_open_and_declares_from_its_form() {
    let sb = Sandbox::start().await;
    sb.command(ALICE, GENERAL, "/incident p1 Search is slow").await;
    sb.alert("P1 · INC-1 · Search is slow").await;
    assert_eq!(sb.state(Some(ALICE)).await["home"], Value::Null, "nothing published before the tab is opened");

    sb.ok("/sandbox/home", json!({"user": ALICE})).await;
    let home = sb
        .wait_for(ALICE, "alice's Home showing INC-1", |s| {
            Some(s["home"].clone()).filter(|h| h.to_string().contains("Search is slow"))
        })
        .await;
    assert_eq!(home["type"], "home");
    assert!(home.to_string().contains("Open incidents (1)"), "{home:#}");
    assert_eq!(sb.state(Some(BOB)).await["home"], Value::Null, "alice's Home is hers");

    let opened = sb.ok("/sandbox/click", json!({"user": ALICE, "home": true, "action_id": "home.declare"})).await;
    let view_id = opened["view_id"].as_str().expect("Declare opens a form").to_owned();
    let values = json!({"severity": {"severity": "P2"}, "title": {"title": "Builds are slow"}});
    let submitted = sb.ok("/sandbox/submit", json!({"user": ALICE, "view_id": view_id, "values": values})).await;
    assert_eq!(submitted, json!({"ok": true}));
    sb.message_in(DEVOPS, "P2 · INC-2 · Builds are slow").await;
    sb.wait_for(ALICE, "the Home following the new incident", |s| {
        Some(()).filter(|()| s["home"].to_string().contains("Open incidents (2)"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_control_brings_the_escalation() {
    let sb = Sandbox::start().await;
    sb.command(BOB, "#devops", "/incident p0 Queue stuck").await;
    let alert = sb.alert("Queue stuck").await;
    sb.wait_for(ALICE, "the page of the first responder", |s| {
        replies(s, &alert).into_iter().find(|m| m["text"].as_str().unwrap().contains("Paging")).cloned()
    })
    .await;
    let before = sb.state(None).await["now"].as_i64().unwrap();

    let moved = sb.ok("/sandbox/clock", json!({"minutes": 5})).await;
    let after = moved["now"].as_i64().unwrap();
    assert!(after - before >= 5 * 60 * 1000, "the clock moved 5 min: {before} → {after}");
    assert!(sb.state(None).await["ahead_ms"].as_i64().unwrap() >= 5 * 60 * 1000 - 1000);

    let escalation = sb
        .wait_for(ALICE, "an escalation in the thread", |s| {
            replies(s, &alert).into_iter().find(|m| m["text"].as_str().unwrap().contains("Escalating")).cloned()
        })
        .await;
    // Shown at the time of the moved clock, not the wall clock.
    assert!(escalation["at"].as_i64().unwrap() * 1000 >= after - 1000, "{escalation:#}");

    for minutes in [0, -5, 100_000] {
        let (status, answer) = sb.post("/sandbox/clock", json!({ "minutes": minutes })).await;
        assert_eq!(status, 400, "{minutes} min: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tell_the_page_that_something_changed() {
    let sb = Sandbox::start().await;
    let mut events = sb.http.get(format!("{}/sandbox/events", sb.base)).send().await.expect("events");
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    // The first chunk tells the browser how soon to reconnect.
    let first = tokio::time::timeout(PATIENCE, events.chunk()).await.expect("a first chunk").unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("retry:"));

    sb.command(ALICE, GENERAL, "/incident p2 Slow builds").await;
    let mut seen = String::new();
    let deadline = Instant::now() + PATIENCE;
    // The command's answer and the alert the outbox posts race each other
    // (the answer is the HTTP reply, the alert is delivered beside it), so
    // the page must hear of both, in whichever order.
    while !(seen.contains("\"kind\":\"posted\"") && seen.contains("\"kind\":\"ephemeral\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, events.chunk()).await.expect("an event after the command");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the stream stays open")));
    }
    assert!(seen.contains("data: {"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composer_speaks_slack() {
    let sb = Sandbox::start().await;
    // A command no app declares gets Slack's own answer, not the bot's.
    sb.command(ALICE, GENERAL, "/nope x").await;
    // A plain message is the user's, with Slack's encoding and mentions.
    let posted = sb.command(BOB, "#devops", "hello @alice <3").await;
    let ts = posted["ts"].as_str().unwrap().to_owned();
    let state = sb.state(Some(ALICE)).await;
    assert!(state["ephemerals"].to_string().contains("is not a valid command"), "{state:#}");
    let message = messages(&state).find(|m| m["ts"] == ts.as_str()).expect("the message is stored");
    assert_eq!((message["user"].as_str(), message["text"].as_str()), (Some(BOB), Some("hello <@U0ALICE> &lt;3")));
    // A mention of the bot is an app_mention event; it answers in the thread.
    let asked = sb.command(ALICE, GENERAL, "@opsbot status").await;
    let asked = json!({"ts": asked["ts"]});
    sb.wait_for(ALICE, "the bot's answer to the mention", |s| {
        replies(s, &asked).into_iter().find(|m| m["user"] == "U0OPSBOT").cloned()
    })
    .await;
    // Unknown users and channels are refused.
    assert_eq!(sb.post("/sandbox/command", json!({"user": "mallory", "channel": GENERAL, "text": "hi"})).await.0, 400);
    assert_eq!(sb.post("/sandbox/command", json!({"user": ALICE, "channel": "#secret", "text": "hi"})).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_at_the_printed_address() {
    let sb = Sandbox::start().await;
    let page = sb.http.get(format!("{}/sandbox/", sb.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>opsbot sandbox</title>"));
    assert!(!html.contains("<script src"), "the page is self-contained");
    let state = sb.state(None).await;
    let channels: Vec<&str> =
        state["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(channels, ["devops-alerts", "devops", "general"]);
    let people: Vec<&str> = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["is_bot"] == false)
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(people, ["alice", "bob", "carol", "dave"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_bot_has_no_sandbox() {
    let app = start_app(config(false)).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.addr);
    for path in
        ["/sandbox/", "/sandbox", "/sandbox/state", "/sandbox/events", "/sandbox/github/repos/opsbot-sandbox/shop"]
    {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 404, "GET {path}");
    }
    // No GitHub webhook either: it is the sandbox's GitHub that has a secret.
    for path in [
        "/sandbox/api/chat.postMessage",
        "/sandbox/responses/T0OPSBOT-1",
        "/sandbox/command",
        "/sandbox/clock",
        "/sandbox/alert",
        "/hooks/github",
    ] {
        let res = http.post(format!("{base}{path}")).json(&json!({"channel": "#general", "text": "hi"})).send().await;
        assert_eq!(res.unwrap().status(), 404, "POST {path}");
    }
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_workflow_failing_twice_then_passing_is_one_message_in_devops_that_ends_recovered() {
    let sb = Sandbox::start().await;
    let played = sb.play("github-failure").await;
    assert_eq!(played["channel"], DEVOPS, "the page is sent where the alert lands: {played}");
    let alert = sb.message_in(DEVOPS, "CI failing on main in octo-org/octo-repo").await;
    assert!(button_value(&alert, "alert.declare").is_some(), "{alert:#}");

    let again = sb.play("github-failure").await;
    assert!(again["said"].as_str().unwrap().contains("failed again"), "{again}");
    sb.play("github-recovery").await;
    let recovered = sb.alert_until(&alert, "the alert recovered", |m| said(m).contains("Recovered after 2 runs")).await;
    assert!(header(&recovered).starts_with("✅"), "{recovered:#}");
    assert_eq!(button_value(&recovered, "alert.declare"), None, "nothing to declare once it recovered");

    // Each run after the first is a line of its thread.
    sb.wait_for(ALICE, "the second failure and the recovery in the thread", |s| {
        let thread: String = replies(s, &alert).into_iter().map(said).collect();
        (thread.contains("Failure 2") && thread.contains("Recovered after 2 failures")).then_some(())
    })
    .await;
    let state = sb.state(None).await;
    let devops = top_level(&state, DEVOPS);
    assert_eq!(devops.len(), 1, "one message for the whole episode: {devops:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_production_deployment_declares_a_p1_in_devops_alerts() {
    let sb = Sandbox::start().await;
    let played = sb.play("deployment-failure").await;
    assert_eq!(played["channel"], ALERTS, "{played}");
    let incident = sb.alert("Deployment to production failed in octo-org/octo-repo (main)").await;
    assert!(header(&incident).contains("P1 · INC-1 · "), "{incident:#}");
    // The full incident flow: its playbook is in the thread.
    sb.wait_for(ALICE, "the P1's playbook", |s| {
        replies(s, &incident).into_iter().find(|m| first_done(m).is_some()).cloned()
    })
    .await;

    // Deploying and failing again declares nothing more.
    let again = sb.play("deployment-failure").await;
    assert!(again["said"].as_str().unwrap().contains("stands"), "{again}");
    let state = sb.state(None).await;
    let declared: Vec<_> = top_level(&state, ALERTS).into_iter().filter(|m| header(m).contains("INC-")).collect();
    assert_eq!(declared.len(), 1, "{declared:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_group_that_fires_grows_and_resolves_is_one_message() {
    let sb = Sandbox::start().await;
    let (status, refused) = sb.post("/sandbox/alert", json!({"scenario": "alertmanager-resolved"})).await;
    assert_eq!((status, refused["ok"].clone()), (409, json!(false)), "nothing fires yet: {refused}");

    let played = sb.play("alertmanager-firing").await;
    assert_eq!(played["channel"], ALERTS, "critical goes to #devops-alerts: {played}");
    let alert = sb.alert("HighErrorRate").await;
    assert!(said(&alert).contains("*2 firing*"), "{alert:#}");
    sb.play("alertmanager-firing").await;
    sb.alert_until(&alert, "a third alert in the group", |m| said(m).contains("*3 firing*")).await;
    sb.play("alertmanager-resolved").await;
    let resolved = sb.alert_until(&alert, "the group resolved", |m| said(m).contains("Resolved")).await;
    assert!(header(&resolved).starts_with("✅"), "{resolved:#}");
    assert!(said(&resolved).contains("*0 firing*, 3 resolved"), "{resolved:#}");
    let state = sb.state(None).await;
    assert_eq!(top_level(&state, ALERTS).len(), 1, "{:#?}", top_level(&state, ALERTS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_incident_on_a_ci_alert_opens_the_form_prefilled_and_declares_it() {
    let sb = Sandbox::start().await;
    sb.play("github-failure").await;
    let alert = sb.message_in(DEVOPS, "CI failing on main").await;

    let opened = sb.click(ALICE, &alert, "alert.declare").await;
    let view_id = opened["view_id"].as_str().expect("Declare incident opens the form").to_owned();
    let view = sb.state(Some(ALICE)).await["views"][0]["view"].clone();
    let element = |block: &str| {
        let blocks = view["blocks"].as_array().expect("the form's blocks");
        blocks.iter().find(|b| b["block_id"] == block).map(|b| b["element"].clone()).unwrap_or(Value::Null)
    };
    let severity = element("severity");
    assert_eq!(severity["type"], "static_select", "{view:#}");
    assert_eq!(severity["initial_option"]["value"], "P2", "a failing workflow suggests P2: {view:#}");
    let title = element("title")["initial_value"].as_str().unwrap_or_default().to_owned();
    assert_eq!(title, "CI failing on main in octo-org/octo-repo");
    let details = element("details")["initial_value"].as_str().unwrap_or_default().to_owned();
    assert!(details.contains("run #164"), "{details}");

    // A value that is not one of the select's options cannot come from Slack.
    let bogus = json!({"user": ALICE, "view_id": view_id, "values": {
        "severity": {"severity": "P9"}, "title": {"title": title}}});
    let (status, answer) = sb.post("/sandbox/submit", bogus).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(sb.state(Some(ALICE)).await["views"][0]["id"], view_id, "the form stays open");

    // Submitted as prefilled, as the page sends it.
    let values = json!({
        "severity": {"severity": "P2"}, "title": {"title": title}, "details": {"details": details}
    });
    let submitted = sb.ok("/sandbox/submit", json!({"user": ALICE, "view_id": view_id, "values": values})).await;
    assert_eq!(submitted, json!({"ok": true}));
    assert_eq!(sb.state(Some(ALICE)).await["views"], json!([]), "the form closed");
    let incident = sb.message_in(DEVOPS, "P2 · INC-1 · CI failing on main in octo-org/octo-repo").await;
    assert_eq!(incident["user"], "U0OPSBOT");
    sb.wait_for(ALICE, "the alert's thread pointing at the incident", |s| {
        replies(s, &alert).into_iter().find(|m| said(m).contains("<@U0ALICE> declared *INC-1* (P2)")).cloned()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_sixty_groups_leaves_a_digest_in_devops_that_lists_them_in_its_thread() {
    let sb = Sandbox::start().await;
    let played = sb.play("storm").await;
    assert_eq!(played["channel"], DEVOPS, "{played}");
    let hosts: Vec<String> = (1..=60).map(|n| format!("left on node-{n:03}")).collect();
    // Every group is shown: as its own message while the channel had posting
    // slots, else as a line in the digest's thread.
    let (digest, own) = sb
        .wait_within(STORM_PATIENCE, ALICE, "every group of the storm in #devops", |s| {
            let top = top_level(s, DEVOPS);
            let digest = top.iter().find(|m| m["text"].as_str().unwrap_or_default().starts_with("⚠"))?;
            let own: Vec<&Value> = top.iter().copied().filter(|m| m["ts"] != digest["ts"]).collect();
            let shown: String = own.iter().map(|m| header(m)).chain(replies(s, digest).into_iter().map(said)).collect();
            hosts.iter().all(|h| shown.contains(h.as_str())).then(|| ((*digest).clone(), own.len()))
        })
        .await;
    assert!(own < 30, "most groups were rolled into the digest, not posted one by one: {own}");
    let listed = 60 - own;
    sb.wait_within(STORM_PATIENCE, ALICE, "the digest counting the groups in its thread", |s| {
        let now = messages(s).find(|m| m["ts"] == digest["ts"])?;
        header(now).contains(&format!("in {listed} groups")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_scenario_that_is_not_one_is_refused_with_a_json_error() {
    let sb = Sandbox::start().await;
    for body in [json!({"scenario": "github"}), json!({"scenario": 7}), json!({})] {
        let (status, answer) = sb.post("/sandbox/alert", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["ok"], false, "{body}: {answer}");
        assert!(!answer["error"].as_str().unwrap_or_default().is_empty(), "{body}: {answer}");
    }
    let (_, unknown) = sb.post("/sandbox/alert", json!({"scenario": "github"})).await;
    assert!(unknown["error"].as_str().unwrap().contains("github-failure"), "the scenarios are listed: {unknown}");
    let garbled = sb
        .http
        .post(format!("{}/sandbox/alert", sb.base))
        .header("content-type", "application/json")
        .body("{\"scenario\":")
        .send()
        .await
        .expect("sandbox answers");
    assert_eq!(garbled.status(), 400);
    assert_eq!(garbled.json::<Value>().await.unwrap()["ok"], false);
}

/// The answer only `user` sees whose text or blocks hold `needle`.
async fn answer_to(sb: &Sandbox, user: &str, needle: &str) -> Value {
    sb.wait_for(user, &format!("an answer to {user} with {needle:?}"), |s| {
        s["ephemerals"].as_array()?.iter().find(|e| e["user"] == user && said(e).contains(needle)).cloned()
    })
    .await
}

/// Plays a pipeline scenario once the sandbox's GitHub lets it: a re-run
/// is asked for by the outbox, a moment after the click.
async fn play_when_ready(sb: &Sandbox, scenario: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, answer) = sb.post("/sandbox/alert", json!({ "scenario": scenario })).await;
        if status == 200 {
            return answer;
        }
        assert_eq!(status, 409, "{scenario}: {answer}");
        assert!(Instant::now() < deadline, "{scenario} never became playable: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_status_answers_with_the_kpis_of_the_sandboxs_github_through_the_response_url() {
    let sb = Sandbox::start().await;
    let ack = sb.command(ALICE, GENERAL, "/pipeline status").await;
    assert_eq!(ack["ok"], true, "{ack}");
    let answer = answer_to(&sb, ALICE, "Build Success Rate").await;
    let shown = said(&answer);
    assert_eq!(answer["channel"], GENERAL);
    assert!(shown.contains("Pipeline of opsbot-sandbox/shop, last 24 h"), "{shown}");
    assert!(shown.contains("✅ *Build Success Rate*"), "a mostly green day: {shown}");
    assert!(shown.contains("2 failed"), "{shown}");
    assert!(shown.contains("1 running"), "{shown}");
    assert_eq!(sb.state(Some(BOB)).await["ephemerals"], json!([]), "bob sees none of alice's answers");

    sb.command(BOB, GENERAL, "/pipeline runs").await;
    let runs = answer_to(&sb, BOB, "Latest runs of opsbot-sandbox/shop").await;
    assert!(said(&runs).contains("feature/gift-cards"), "{runs:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_failing_on_the_sandboxs_github_alerts_in_devops_and_the_re_run_that_passes_recovers_it() {
    let sb = Sandbox::start().await;
    // The webhook route exists, and takes only what the sandbox's GitHub signs.
    let forged = sb
        .http
        .post(format!("{}/hooks/github", sb.base))
        .header("x-github-event", "workflow_run")
        .header("x-hub-signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .expect("the bot answers");
    assert_eq!(forged.status(), 401);
    let (status, refused) = sb.post("/sandbox/alert", json!({"scenario": "pipeline-rerun-passes"})).await;
    assert_eq!(status, 409, "no re-run is waiting yet: {refused}");
    assert!(refused["error"].as_str().unwrap().contains("Re-run failed jobs"), "{refused}");

    let played = sb.play("pipeline-ci-fails").await;
    assert_eq!(played["channel"], DEVOPS, "{played}");
    assert!(played["said"].as_str().unwrap().contains("signed webhook"), "the bot took the webhook: {played}");
    let alert = sb.message_in(DEVOPS, "CI failing on main in opsbot-sandbox/shop").await;
    assert!(button_value(&alert, "alert.rerun").is_some(), "{alert:#}");

    sb.click(BOB, &alert, "alert.rerun").await;
    sb.alert_until(&alert, "who asked for the re-run", |m| said(m).contains("<@U0BOB> asked for a re-run")).await;
    let passed = play_when_ready(&sb, "pipeline-rerun-passes").await;
    assert!(passed["said"].as_str().unwrap().contains("attempt 2) passed"), "{passed}");
    let recovered = sb.alert_until(&alert, "the alert recovered", |m| said(m).contains("Recovered")).await;
    assert!(header(&recovered).starts_with("✅"), "{recovered:#}");
    assert_eq!(button_value(&recovered, "alert.rerun"), None, "{recovered:#}");
    let state = sb.state(None).await;
    assert_eq!(top_level(&state, DEVOPS).len(), 1, "{:#?}", top_level(&state, DEVOPS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_run_that_fails_again_brings_the_re_run_button_back() {
    let sb = Sandbox::start().await;
    sb.play("pipeline-ci-fails").await;
    let alert = sb.message_in(DEVOPS, "CI failing on main in opsbot-sandbox/shop").await;
    sb.click(ALICE, &alert, "alert.rerun").await;
    let failed = play_when_ready(&sb, "pipeline-rerun-fails").await;
    assert!(failed["said"].as_str().unwrap().contains("failed again"), "{failed}");
    sb.wait_for(ALICE, "the failed re-run in the thread", |s| {
        let thread: String = replies(s, &alert).into_iter().map(said).collect();
        thread.contains("The re-run <@U0ALICE> asked for failed again").then_some(())
    })
    .await;
    let again = sb.alert_until(&alert, "the button back", |m| button_value(m, "alert.rerun").is_some()).await;
    assert!(!said(&again).contains("Recovered"), "{again:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_run_failed_jobs_on_a_failed_run_in_pipeline_runs_re_runs_it_on_the_sandboxs_github() {
    let sb = Sandbox::start().await;
    sb.command(BOB, GENERAL, "/pipeline runs").await;
    let runs = answer_to(&sb, BOB, "Latest runs of opsbot-sandbox/shop").await;
    let action = runs["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find_map(|b| b["accessory"]["action_id"].as_str()))
        .expect("a failed run carries Re-run failed jobs")
        .to_owned();
    let body = json!({
        "user": BOB, "channel": runs["channel"], "message_ts": runs["ts"], "action_id": action, "ephemeral": true,
    });
    assert_eq!(sb.ok("/sandbox/click", body).await["ok"], true);
    answer_to(&sb, BOB, "I'll DM you the result").await;
    // The click's re-run is the one waiting on the sandbox's GitHub. (Its
    // result goes to Bob's DMs, which the sandbox page does not show.)
    let passed = play_when_ready(&sb, "pipeline-rerun-passes").await;
    assert!(passed["said"].as_str().unwrap().contains("attempt 2) passed"), "{passed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandboxs_github_keeps_time_with_the_clock_control() {
    let sb = Sandbox::start().await;
    sb.ok("/sandbox/clock", json!({"minutes": 60})).await;
    sb.play("pipeline-ci-fails").await;
    sb.command(ALICE, GENERAL, "/pipeline runs ci.yml main").await;
    let runs = answer_to(&sb, ALICE, "Latest runs of opsbot-sandbox/shop, ci.yml on main").await;
    let newest = runs["blocks"][1]["text"]["text"].as_str().unwrap_or_default().to_owned();
    // Pushed 3 min before the failure, on the moved clock; a GitHub left
    // behind would say "1 h 3 min ago".
    assert!(newest.starts_with("❌") && newest.contains(", 3 min ago"), "{newest}");
}

/// The browser test: `node tests/browser/sandbox.mjs` against the built
/// binary. Needs Chromium at /usr/bin/chromium and `npm ci --prefix
/// tests/browser`; `.ci/run` installs both.
#[test]
#[ignore = "needs Chromium and node; CI runs it with --ignored"]
fn browser_runs_a_p0_in_the_sandbox() {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(root).join("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser`"
    );
    let status = Command::new("node")
        .arg("tests/browser/sandbox.mjs")
        .current_dir(root)
        .env("OPSBOT_BIN", env!("CARGO_BIN_EXE_opsbot"))
        .status()
        .expect("node must be installed to run the browser test");
    assert!(status.success(), "the browser test failed (its output is above; the page at the failure is in target/)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_confirmed_in_the_sandbox_runs_on_its_github_and_its_thread_ends_deployed() {
    let sb = Sandbox::start().await;
    let (status, refused) = sb.post("/sandbox/alert", json!({"scenario": "pipeline-deploy-succeeds"})).await;
    assert_eq!(status, 409, "nothing is waiting yet: {refused}");

    sb.command(ALICE, DEVOPS, "/pipeline deploy production").await;
    let view = sb
        .wait_for(ALICE, "the confirmation", |s| {
            s["views"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["view"]["callback_id"] == "pipeline.deploy"))
                .cloned()
        })
        .await;
    let shown = view["view"].to_string();
    assert!(shown.contains("production") && shown.contains("deploy.yml"), "{shown}");
    assert!(shown.contains("*Last deployment*: `") && !shown.contains("none that succeeded"), "{shown}");
    let view_id = view["id"].as_str().expect("the view's id").to_owned();
    let submitted = sb.ok("/sandbox/submit", json!({"user": ALICE, "view_id": view_id, "values": {}})).await;
    assert_eq!(submitted, json!({"ok": true}));
    let announced = sb
        .wait_for(ALICE, "the deployment's message in #devops", |s| {
            top_level(s, DEVOPS).into_iter().find(|m| m["text"].as_str().unwrap_or("").contains("DEP-1")).cloned()
        })
        .await;

    let played = play_when_ready(&sb, "pipeline-deploy-succeeds").await;
    assert!(played["said"].as_str().unwrap().contains("Deploy DEP-1"), "{played}");
    let ended = sb.alert_until(&announced, "the deployment ended", |m| m.to_string().contains("Deployed")).await;
    assert!(ended.to_string().contains("✅"), "{ended:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandboxs_people_take_turns_on_call_and_the_clock_brings_the_handoff() {
    let sb = Sandbox::start().await;
    sb.command(ALICE, GENERAL, "/oncall").await;
    let answer = sb
        .wait_for(ALICE, "the answer to /oncall", |s| {
            s["ephemerals"]
                .as_array()?
                .iter()
                .find(|e| e["text"].as_str().is_some_and(|t| t.contains("On call now")))
                .cloned()
        })
        .await;
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("*On-call engineer*: <@U0") && text.contains("then <@U0"), "{text}");
    let on_call = |state: &Value| state["on_call"][0]["user"].as_str().map(str::to_owned);
    let before = on_call(&sb.state(None).await).expect("the switcher knows who is on call");
    sb.ok("/sandbox/clock", json!({"minutes": 480})).await;
    let after = on_call(&sb.state(None).await).expect("someone is on call");
    assert_ne!(before, after, "eight hours later it is someone else");
    let handoff = sb
        .wait_for(ALICE, "the handoff in #devops", |s| {
            top_level(s, DEVOPS)
                .into_iter()
                .find(|m| m["text"].as_str().is_some_and(|t| t.contains("On-call handoff")))
                .cloned()
        })
        .await;
    assert!(handoff["text"].as_str().unwrap().contains("hands over to"), "{handoff:#}");
    assert!(button_value(&handoff, "handoff.ack").is_some(), "with its I have it button: {handoff:#}");

    // Whoever takes over finds the handoff's DM among their channels, and
    // nobody else sees it.
    let taker = after;
    let state = sb
        .wait_for(&taker, "the DM to whoever takes over", |s| {
            let dm = s["channels"].as_array()?.iter().find(|c| c["dm"] == true)?["id"].as_str()?.to_owned();
            s["messages"].as_array()?.iter().any(|m| m["channel"] == dm.as_str()).then(|| s.clone())
        })
        .await;
    let dm = state["channels"].as_array().unwrap().iter().find(|c| c["dm"] == true).unwrap()["id"].clone();
    let theirs = state["messages"].as_array().unwrap().iter().filter(|m| m["channel"] == dm).count();
    assert!(theirs >= 1, "{state:#}");
    let someone_else = [ALICE, "U0BOB", "U0CAROL"].into_iter().find(|u| *u != taker).unwrap();
    let other = sb.state(Some(someone_else)).await;
    assert!(other["messages"].as_array().unwrap().iter().all(|m| m["channel"] != dm), "not in another's view");
}
