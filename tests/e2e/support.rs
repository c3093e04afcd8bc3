//! The test harness: a private `redis-server` per test, the shared fake
//! Slack, and the real app on a free port (`spawn_app`), driven by signed
//! requests exactly as Slack, GitHub and Alertmanager send them.

use chrono::Utc;
use opsbot::app::{App, AppOptions};
use opsbot::clock::{Clock, TestClock};
use opsbot::config::{Config, Secret};
use opsbot::hooks::verify::github_signature;
use opsbot::inbound::socket_mode::SocketModeSettings;
use opsbot::outbox::WorkerSettings;
use opsbot::slack::signature::sign;
use opsbot_fake_github::FakeGitHub;
use opsbot_fake_slack::{Ack, EnvelopeKind, Ephemeral, FakeSlack, Message, SpawnedFake};
use opsbot_test_redis::{Persistence, RedisServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const SIGNING_SECRET: &str = "test-signing-secret-not-for-production";
pub const BOT_TOKEN: &str = "xoxb-test-token";
pub const GITHUB_SECRET: &str = "test-github-webhook-secret";
pub const ALERTMANAGER_TOKEN: &str = "test-alertmanager-token";
/// The id GitHub gives the repository's webhook; every delivery names it.
pub const GITHUB_HOOK_ID: &str = "292430182";
pub const TEAM_DOMAIN: &str = "opsbot-sandbox";
pub const ALICE: &str = "U0ALICE";
pub const BOB: &str = "U0BOB";
pub const GENERAL: &str = "C0GENERAL";
pub const ALERTS: &str = "C0ALERTS";
pub const DEVOPS: &str = "C0DEVOPS";
/// Long enough for any delivery on a loaded CI machine; tests wait on
/// conditions, never for fixed times.
/// The repository the fake GitHub holds and [`with_github`] configures.
pub const REPOSITORY: &str = "octo-org/shop";

/// Connects the app to the test's fake GitHub with its token, looking at
/// [`REPOSITORY`].
pub fn with_github(config: &mut Config) {
    config.github.auth = Some(opsbot::github::Auth::Token(Secret::new(opsbot_fake_github::DEFAULT_TOKEN)));
    config.github.repository = opsbot_handlers::github::Repo::parse(REPOSITORY);
}

/// `n` minutes, as the fake GitHub takes a run's duration.
pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The app connected to the test's fake GitHub, both clocks at
/// [`test_start`].
pub async fn connected() -> TestApp {
    let app = spawn_app_with(with_github).await;
    app.github.set_now(test_start());
    app
}

pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct TestApp {
    app: Option<App>,
    pub addr: SocketAddr,
    pub slack: FakeSlack,
    pub redis: RedisServer,
    pub clock: TestClock,
    pub config: Config,
    /// A fake GitHub, always running; the app uses it once a test calls
    /// [`with_github`] in its configuration.
    pub github: FakeGitHub,
    _github_server: opsbot_fake_github::SpawnedFake,
    _slack_server: SpawnedFake,
    http: reqwest::Client,
}

/// Tests start on Wednesday 2026-11-25 at 03:00 UTC: hours away from any
/// routine of the seed runbook, so no scheduled run appears unless a test
/// moves the clock to one.
pub fn test_start() -> chrono::DateTime<Utc> {
    chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 25, 3, 0, 0).unwrap()
}

/// Socket Mode as production keeps it, with the waits cut to what a
/// test on a busy machine can afford.
pub fn socket_mode_settings() -> SocketModeSettings {
    SocketModeSettings {
        reconnect_first: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        ping_every: Duration::from_secs(1),
        silent_for: Duration::from_secs(10),
        drain_within: Duration::from_secs(3),
        refresh_grace: Duration::from_secs(10),
        ..SocketModeSettings::default()
    }
}

/// Socket Mode only: the fake's app-level token, no signing secret (so
/// no `/slack/*` route).
pub fn in_socket_mode(config: &mut Config) {
    config.app_token = Some(Secret::new(opsbot_fake_slack::DEFAULT_APP_TOKEN));
    config.signing_secret = None;
}

pub fn worker_settings() -> WorkerSettings {
    let mut settings = WorkerSettings::new("test-replica");
    settings.backoff_first = Duration::from_millis(20);
    settings.backoff_max = Duration::from_millis(200);
    settings.reclaim_after = Duration::from_secs(2);
    // Beats often and lapses soon, so a killed replica's work is taken
    // over within seconds; still ten beats to a lapse, for a loaded machine.
    settings.heartbeat_every = Duration::from_millis(200);
    settings.heartbeat_lasts = Duration::from_secs(2);
    settings
}

/// Worker settings under which nothing held is taken over by the idle
/// window (an hour): a take-over within a test's patience is the
/// heartbeat's doing.
pub fn heartbeat_only() -> WorkerSettings {
    let mut settings = worker_settings();
    settings.reclaim_after = Duration::from_secs(3600);
    settings
}

/// Starts the app with a private Redis and a fresh fake Slack, with both
/// webhooks configured.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`], with the configuration changed by `configure` first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_worker(configure, worker_settings()).await
}

/// [`spawn_app_with`], its workers with these settings.
pub async fn spawn_app_with_worker(configure: impl FnOnce(&mut Config), worker: WorkerSettings) -> TestApp {
    opsbot::telemetry::init();
    let slack = FakeSlack::with_token(BOT_TOKEN);
    let slack_server = slack.spawn().await.expect("fake Slack starts");
    // Append-only, as a production Redis for opsbot must be, so a killed
    // and restarted server comes back with its data.
    let redis = RedisServer::start(Persistence::AppendOnly);
    let github = FakeGitHub::new();
    github.add_repo(REPOSITORY, "main");
    let github_server = github.spawn().await.expect("fake GitHub starts");
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        signing_secret: Some(Secret::new(SIGNING_SECRET)),
        bot_token: Secret::new(BOT_TOKEN),
        app_token: None,
        slack_api_url: slack_server.api_url.clone(),
        redis_url: Some(Secret::new(redis.url())),
        sandbox: false,
        redis_prefix: "opsbot-test".into(),
        redis_wait: None,
        redis_ca: None,
        max_in_flight: opsbot::admission::MAX_IN_FLIGHT,
        replica: "test-replica".into(),
        shutdown_grace: Duration::from_secs(10),
        runbook: opsbot_handlers::Runbook::seed(),
        github_webhook_secret: Some(Secret::new(GITHUB_SECRET)),
        alertmanager_token: Some(Secret::new(ALERTMANAGER_TOKEN)),
        github: opsbot::github::GitHubSettings { auth: None, repository: None, api_url: github_server.api_url.clone() },
    };
    configure(&mut config);
    let clock = TestClock::new(test_start());
    let app = start_with(&config, &clock, worker).await;
    TestApp {
        addr: app.addr,
        app: Some(app),
        slack,
        redis,
        clock,
        config,
        github,
        _github_server: github_server,
        _slack_server: slack_server,
        http: reqwest::Client::new(),
    }
}

async fn start(config: &Config, clock: &TestClock) -> App {
    start_with(config, clock, worker_settings()).await
}

/// [`start`], with the request limits given.
pub async fn start_admitting(config: &Config, clock: &TestClock, admission: opsbot::admission::Admission) -> App {
    launch(config, clock, worker_settings(), admission).await
}

/// [`start`] with these worker settings.
async fn start_with(config: &Config, clock: &TestClock, worker: WorkerSettings) -> App {
    launch(config, clock, worker, opsbot::admission::Admission::default()).await
}

/// Starts the app. Each replica is its own consumer in the delivery and
/// intake groups, as `WorkerSettings::new(config.replica)` makes it in
/// production; two replicas under one name would each take the other's
/// entries.
async fn launch(
    config: &Config,
    clock: &TestClock,
    mut worker: WorkerSettings,
    admission: opsbot::admission::Admission,
) -> App {
    worker.consumer = config.replica.clone();
    let options = AppOptions {
        clock: Arc::new(clock.clone()),
        worker,
        timer_tick: Duration::from_millis(20),
        socket_mode: socket_mode_settings(),
        admission,
    };
    App::start(config, options).await.expect("app starts")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().expect("app is running")
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Another replica on the same Redis and fake Slack, sharing the clock.
    pub async fn spawn_replica(&self, name: &str) -> App {
        let mut config = self.config.clone();
        config.replica = name.to_owned();
        start(&config, &self.clock).await
    }

    /// [`Self::spawn_replica`] with these worker settings.
    pub async fn spawn_replica_with(&self, name: &str, worker: WorkerSettings) -> App {
        let mut config = self.config.clone();
        config.replica = name.to_owned();
        start_with(&config, &self.clock, worker).await
    }

    /// Another replica on the same Redis, talking to the Slack at
    /// `slack_api_url`, with these worker settings.
    pub async fn spawn_replica_on(&self, name: &str, slack_api_url: &str, worker: WorkerSettings) -> App {
        let mut config = self.config.clone();
        config.replica = name.to_owned();
        config.slack_api_url = slack_api_url.to_owned();
        start_with(&config, &self.clock, worker).await
    }

    /// Starts a new app on the same Redis and fake Slack, as a deploy or a
    /// crash-restart would.
    pub async fn start_again(&mut self) {
        self.start_again_with(worker_settings()).await;
    }

    /// [`Self::start_again`] with these worker settings.
    pub async fn start_again_with(&mut self, worker: WorkerSettings) {
        let app = start_with(&self.config, &self.clock, worker).await;
        self.addr = app.addr;
        self.app = Some(app);
    }

    /// Kills the app as SIGKILL would: nothing finishes, nothing is
    /// released, its heartbeat lapses.
    pub fn kill(&mut self) {
        if let Some(app) = self.app.take() {
            app.kill();
        }
    }

    /// Posts `body` to `path` signed as Slack would sign it now.
    pub async fn post_signed(&self, path: &str, content_type: &str, body: String) -> reqwest::Response {
        let ts = self.clock.now().timestamp();
        let signature = sign(SIGNING_SECRET.as_bytes(), ts, body.as_bytes());
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .expect("request reaches the app")
    }

    /// Posts `body` to `path` with these headers and nothing signed.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await.expect("request reaches the app")
    }

    /// A GitHub webhook delivery of `event`, signed with `secret` as GitHub
    /// signs it, with the headers GitHub sends.
    pub async fn post_github_signed_with(
        &self,
        secret: &str,
        event: &str,
        body: &str,
        delivery_id: &str,
    ) -> reqwest::Response {
        let signature = github_signature(secret.as_bytes(), body.as_bytes());
        let headers = [
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/044aadd"),
            ("x-github-event", event),
            ("x-github-delivery", delivery_id),
            ("x-github-hook-id", GITHUB_HOOK_ID),
            ("x-github-hook-installation-target-type", "repository"),
            ("x-hub-signature-256", signature.as_str()),
        ];
        self.post_raw("/hooks/github", &headers, body.to_owned()).await
    }

    /// A GitHub webhook delivery, signed with the configured secret.
    pub async fn post_github(&self, event: &str, body: &str, delivery_id: &str) -> reqwest::Response {
        self.post_github_signed_with(GITHUB_SECRET, event, body, delivery_id).await
    }

    /// An Alertmanager notification with the configured bearer token.
    pub async fn post_alertmanager(&self, body: &str) -> reqwest::Response {
        let authorization = format!("Bearer {ALERTMANAGER_TOKEN}");
        let headers = [
            ("content-type", "application/json"),
            ("user-agent", "Alertmanager/0.28.1"),
            ("authorization", authorization.as_str()),
        ];
        self.post_raw("/hooks/alertmanager", &headers, body.to_owned()).await
    }

    /// Waits until every stored webhook delivery is decided and everything
    /// owed to Slack is delivered: after that, nothing more will show.
    pub async fn wait_until_settled(&self) {
        settled(&self.app().state.store).await;
    }

    /// Sets the timers the scheduler keeps (schedule slots, handoffs,
    /// shift reminders) as of now, as it does when the app starts: a test
    /// that moves the clock right after spawning would otherwise race it.
    pub async fn schedule_now(&self) {
        opsbot::scheduler::ensure(&self.app().state.engine).await.expect("the scheduler sets its timers");
    }

    /// A counter's value in `GET /metrics`, e.g.
    /// `opsbot_hook_signals_total{source="github",outcome="decided"}`; 0
    /// when it has not been counted yet.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
    }

    pub fn slash_form(command: &str, text: &str, user: &str) -> String {
        Self::slash_form_with(command, text, user, "https://hooks.slack.com/commands/T0OPSBOT/1/x")
    }

    pub fn slash_form_with(command: &str, text: &str, user: &str, response_url: &str) -> String {
        serde_urlencoded::to_string([
            ("token", "deprecated-verification-token"),
            ("team_id", "T0OPSBOT"),
            ("team_domain", TEAM_DOMAIN),
            ("channel_id", GENERAL),
            ("channel_name", "general"),
            ("user_id", user),
            ("user_name", "someone"),
            ("command", command),
            ("text", text),
            ("response_url", response_url),
            ("trigger_id", "1.2.3"),
        ])
        .unwrap()
    }

    /// `command text` typed by `user` in #general, carrying a `response_url`
    /// of the fake Slack as Slack's would: a later answer there shows in
    /// [`FakeSlack::ephemerals`]. Returns the immediate answer.
    pub async fn slash(&self, command: &str, text: &str, user: &str) -> Value {
        let response_url = self
            .slack
            .response_url(&self._slack_server.responses_url, GENERAL, user)
            .expect("the user and #general exist in the fake");
        let form = Self::slash_form_with(command, text, user, &response_url);
        let response = self.post_signed("/slack/commands", "application/x-www-form-urlencoded", form).await;
        assert_eq!(response.status(), 200, "slash commands are answered 200");
        response.json().await.expect("the answer is JSON")
    }

    /// The payload of `command text` typed by `user` in #general, as
    /// Socket Mode carries it, with a `response_url` of the fake.
    pub fn slash_payload(&self, command: &str, text: &str, user: &str) -> Value {
        let response_url = self
            .slack
            .response_url(&self._slack_server.responses_url, GENERAL, user)
            .expect("the user and #general exist in the fake");
        let form = Self::slash_form_with(command, text, user, &response_url);
        let fields: std::collections::BTreeMap<String, String> = serde_urlencoded::from_str(&form).unwrap();
        serde_json::to_value(fields).unwrap()
    }

    /// Sends `payload` to the bot in a Socket Mode envelope and waits for
    /// its acknowledgement.
    pub async fn over_socket(&self, kind: EnvelopeKind, payload: Value) -> Ack {
        let envelope = self.slack.push_envelope(kind, payload);
        self.slack.wait_for_ack(&envelope, PATIENCE).await.expect("the envelope is acknowledged")
    }

    /// `/incident <text>` typed by `user`; returns Slack's view of the answer.
    pub async fn incident_as(&self, user: &str, text: &str) -> Value {
        let response = self
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                Self::slash_form("/incident", text, user),
            )
            .await;
        assert_eq!(response.status(), 200, "slash commands are answered 200");
        response.json().await.expect("the answer is JSON")
    }

    pub async fn incident(&self, text: &str) -> Value {
        self.incident_as(ALICE, text).await
    }

    /// Clicks a button on a message, as Slack posts a block_actions payload.
    pub async fn click(&self, user: &str, message: &Message, action_id: &str) -> reqwest::StatusCode {
        let body =
            serde_urlencoded::to_string([("payload", click_payload(user, message, action_id).to_string())]).unwrap();
        self.post_signed("/slack/interactions", "application/x-www-form-urlencoded", body).await.status()
    }

    /// Clicks a button on an ephemeral answer `user` was shown in
    /// #general (one filled in through a `response_url`), as Slack posts
    /// it: without the message, with a fresh `response_url` of the fake.
    pub async fn click_ephemeral(&self, user: &str, ephemeral: &Ephemeral, action_id: &str) -> reqwest::StatusCode {
        let value = ephemeral.blocks.as_array().and_then(|blocks| {
            blocks.iter().find_map(|b| {
                let accessory = std::iter::once(&b["accessory"]);
                let elements = b["elements"].as_array().into_iter().flatten();
                accessory.chain(elements).find(|e| e["action_id"] == action_id).and_then(|e| e["value"].as_str())
            })
        });
        let value = value.unwrap_or_else(|| panic!("no {action_id} button on {}", ephemeral.blocks));
        let response_url = self
            .slack
            .response_url(&self._slack_server.responses_url, &ephemeral.channel, user)
            .expect("the user and the channel exist in the fake");
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": {"id": user, "username": user, "team_id": "T0OPSBOT"},
            "team": {"id": "T0OPSBOT", "domain": TEAM_DOMAIN},
            "api_app_id": "A0OPSBOT",
            "container": {"type": "message", "message_ts": ephemeral.ts, "channel_id": ephemeral.channel, "is_ephemeral": true},
            "channel": {"id": ephemeral.channel, "name": "general"},
            "trigger_id": "111.222.xxx",
            "response_url": response_url,
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1.2"}],
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed("/slack/interactions", "application/x-www-form-urlencoded", body).await.status()
    }

    /// Submits a modal the bot opened, as Slack posts a view_submission,
    /// with `text` typed into the input `block_id`/`action_id`.
    pub async fn submit_view(&self, user: &str, view: &Value, field: &str, text: &str) -> reqwest::Response {
        let values = serde_json::json!({field: {field: {"type": "plain_text_input", "value": text}}});
        self.submit_values(user, view, values).await
    }

    /// Submits a modal the bot opened with its inputs' `state.values` as
    /// given (block id → action id → the input's state, as Slack sends it).
    pub async fn submit_values(&self, user: &str, view: &Value, values: Value) -> reqwest::Response {
        let body =
            serde_urlencoded::to_string([("payload", submission_payload(user, view, values).to_string())]).unwrap();
        self.post_signed("/slack/interactions", "application/x-www-form-urlencoded", body).await
    }

    /// Waits until the fake Slack has a top-level message in `channel`
    /// whose text mentions `needle`.
    pub async fn wait_for_alert(&self, channel: &str, needle: &str) -> Message {
        self.slack
            .wait_for(PATIENCE, |s| {
                s.messages(channel).into_iter().find(|m| m.thread_ts.is_none() && m.text.contains(needle))
            })
            .await
            .unwrap_or_else(|| panic!("no alert with {needle:?} in {channel}: {:#?}", self.slack.messages(channel)))
    }

    /// The page in `alert`'s thread ("📟 Paging the …"), once delivered.
    pub async fn wait_for_page(&self, alert: &Message) -> Message {
        self.slack
            .wait_for(PATIENCE, |s| {
                s.thread(&alert.channel, &alert.ts).into_iter().find(|m| m.text.contains("Paging the"))
            })
            .await
            .unwrap_or_else(|| panic!("no page under {}: {:#?}", alert.ts, self.slack.all_messages()))
    }

    /// The same message as Slack shows it now.
    pub fn current(&self, message: &Message) -> Message {
        self.slack.messages(&message.channel).into_iter().find(|m| m.ts == message.ts).expect("message still exists")
    }

    /// Waits until `f` holds for the message as Slack shows it.
    pub async fn wait_until(&self, message: &Message, what: &str, f: impl Fn(&Message) -> bool) -> Message {
        let ts = message.ts.clone();
        let channel = message.channel.clone();
        self.slack
            .wait_for(PATIENCE, |s| s.messages(&channel).into_iter().find(|m| m.ts == ts && f(m)))
            .await
            .unwrap_or_else(|| panic!("message never showed {what}: {:#?}", self.current(message)))
    }
}

/// Waits until `store` has no webhook delivery undecided and nothing owed
/// to Slack undelivered.
pub async fn settled(store: &opsbot::store::Store) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (inbox, outbox) = (store.inbox.len().await, store.outbox.len().await);
        if matches!((&inbox, &outbox), (Ok(0), Ok(0))) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never settled: inbox {inbox:?}, outbox {outbox:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stopping needs async; dropping the runtime stops the tasks anyway.
        self.app.take();
    }
}

/// The block_actions payload of a click on a message's button, as Slack
/// sends it over HTTP (form-encoded) and Socket Mode (as it is).
pub fn click_payload(user: &str, message: &Message, action_id: &str) -> Value {
    let value =
        button_value(message, action_id).unwrap_or_else(|| panic!("no {action_id} button on {:?}", message.blocks));
    serde_json::json!({
        "type": "block_actions",
        "user": {"id": user, "username": user, "team_id": "T0OPSBOT"},
        "team": {"id": "T0OPSBOT", "domain": TEAM_DOMAIN},
        "api_app_id": "A0OPSBOT",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel, "is_ephemeral": false},
        "channel": {"id": message.channel, "name": "devops-alerts"},
        "message": {"ts": message.ts, "blocks": message.blocks},
        "trigger_id": "111.222.xxx",
        "response_url": "https://hooks.slack.com/actions/T0OPSBOT/1/x",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1.2"}],
    })
}

/// The view_submission payload of a modal the bot opened, with its
/// inputs' `state.values` as given.
pub fn submission_payload(user: &str, view: &Value, values: Value) -> Value {
    serde_json::json!({
        "type": "view_submission",
        "team": {"id": "T0OPSBOT", "domain": TEAM_DOMAIN},
        "user": {"id": user, "username": user, "team_id": "T0OPSBOT"},
        "api_app_id": "A0OPSBOT",
        "trigger_id": "222.333.yyy",
        "view": {
            "id": view["id"], "type": "modal", "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"], "blocks": view["blocks"],
            "state": {"values": values}
        }
    })
}

pub fn button_value(message: &Message, action_id: &str) -> Option<String> {
    message.blocks.as_array()?.iter().find_map(|b| {
        b["elements"]
            .as_array()?
            .iter()
            .find_map(|e| (e["action_id"] == action_id).then(|| e["value"].as_str().unwrap_or_default().to_owned()))
    })
}

pub fn has_button(message: &Message, action_id: &str) -> bool {
    button_value(message, action_id).is_some()
}

pub fn blocks_text(message: &Message) -> String {
    message.blocks.to_string()
}

/// The text a user sees in an ephemeral answer.
pub fn reply_text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}
