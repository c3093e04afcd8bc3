//! The sandbox: a local Slack served by opsbot itself when no Slack is
//! configured, so anyone can try the bot in a browser. Its Web API is the
//! same fake the tests use; the bot reaches it through its real Slack
//! client. These routes exist only in sandbox mode.
//!
//! The page plays the Slack client and Slack's servers: what a user types
//! or clicks becomes the signed request Slack would send (a slash-command
//! form, a `block_actions` or `view_submission` payload, an `app_mention`
//! event), posted over HTTP to the bot's own public endpoints, so the
//! sandbox exercises exactly the production path. Everything the bot sends
//! back lands in the fake, whose change feed pushes the page to look again.
//!
//! Routes (merged into the app's router only in sandbox mode):
//! - `GET /sandbox/` the page, `GET /sandbox/state` a JSON snapshot,
//!   `GET /sandbox/events` server-sent events;
//! - `POST /sandbox/command`, `click`, `submit`, `close`, `clock`: the user's actions;
//! - `POST /sandbox/alert`: plays an alert scenario (`sandbox/alerts.rs`)
//!   or a pipeline scenario (`sandbox/pipeline.rs`);
//! - `/sandbox/api/{method}`: the Slack Web API the bot talks to, and
//!   `/sandbox/responses/{id}`: the `response_url`s of its commands and clicks;
//! - `/sandbox/github/…`: the GitHub REST API the bot reads (`sandbox/pipeline.rs`).
//!
//! The event stream is written by hand (`text/event-stream`) rather than
//! with axum's `Sse`, which needs a `Stream` from a crate opsbot does not
//! depend on.

mod alerts;
pub mod pipeline;

/// The sandbox's on-call rotation, when the runbook has none: its people
/// take the on-call engineer's role in turn, eight hours each (Alice in
/// Berlin, Bob in New York, Carol in Tokyo: follow the sun), so `/oncall`,
/// overrides, pages and handoffs have someone to show. A runbook with
/// rotations of its own keeps them.
pub fn with_rotation(mut runbook: opsbot_handlers::Runbook) -> opsbot_handlers::Runbook {
    use opsbot_handlers::runbook::oncall::{Rotation, ShiftLength};
    const ROLE: &str = "on-call-engineer";
    if runbook.oncall.rotations.is_empty() && runbook.role(ROLE).is_some() {
        let first = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        if let Some(first) = first {
            let members = ["U0ALICE", "U0BOB", "U0CAROL"].map(str::to_owned).to_vec();
            runbook.oncall.rotations.push(Rotation::new(ROLE, members, ShiftLength::Hours(8), first));
        }
    }
    runbook
}

use crate::clock::Clock;
use crate::config::Secret;
use crate::slack::signature::sign;
use crate::state::AppState;
use alerts::{Plays, Refused, Scenario};
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use opsbot_fake_slack::{Change, FakeSlack, Message, WorkspaceUser};
use pipeline::{PipelineScenario, SandboxGitHub};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// The page: one file, no build step, no dependencies.
const PAGE: &str = include_str!("sandbox/index.html");
/// The commands the Slack app declares; Slack routes only those to the bot.
const MANIFEST: &str = include_str!("../manifest.yml");
const TEAM_ID: &str = "T0OPSBOT";
const TEAM_DOMAIN: &str = "opsbot-sandbox";
const APP_ID: &str = "A0OPSBOT";
const BOT_USER: &str = "U0OPSBOT";
/// Slack gives up on a command or interaction the app has not answered
/// within three seconds; so does the sandbox, so slowness shows here first.
const SLACK_PATIENCE: Duration = Duration::from_secs(3);
/// A comment line this often keeps proxies from closing a quiet event
/// stream and lets a closed tab be noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The clock control moves at most a week at a time.
const MAX_ADVANCE_MINUTES: i64 = 7 * 24 * 60;

/// What the sandbox stands in for, in this process: Slack, and GitHub
/// with a repository that has a day of runs behind it.
pub struct Fakes {
    pub slack: FakeSlack,
    pub github: SandboxGitHub,
}

impl Fakes {
    /// Both fakes; GitHub's clock runs with `clock`, and its webhooks are
    /// signed with a secret new at every start, which only the sandbox and
    /// the bot's `/hooks/github` know.
    pub fn new(clock: &dyn Clock) -> Fakes {
        Fakes {
            slack: FakeSlack::with_token(crate::config::SANDBOX_TOKEN),
            github: SandboxGitHub::new(clock, Secret::new(crate::config::random_secret())),
        }
    }
}

/// The routes under `/sandbox` (merged into the app's router, since a
/// nested router cannot serve `/sandbox/` itself): the page, its JSON and
/// events, the actions that play Slack, the Slack Web API at
/// `/sandbox/api/…` with its `response_url`s at `/sandbox/responses/…`,
/// and GitHub's REST API at `/sandbox/github/…`, whose webhooks go to
/// `{base}/hooks/github`. Long-lived event streams end when `shutdown`
/// fires, so a graceful shutdown does not wait for open browser tabs.
pub fn router(fakes: Fakes, app: Arc<AppState>, base: String, shutdown: CancellationToken) -> Router {
    let Fakes { slack, github } = fakes;
    let api = slack.router();
    let responses = slack.responses_router();
    let github_api = github.router();
    github.deliver_to(&base);
    let sandbox = Arc::new(Sandbox {
        fake: slack,
        github,
        app,
        base,
        http: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        shutdown,
        open_views: Mutex::new(Vec::new()),
        posted_at: Mutex::new(HashMap::new()),
        local: broadcast::channel(64).0,
        counter: AtomicU64::new(1),
        commands: manifest_commands(MANIFEST),
        plays: tokio::sync::Mutex::new(Plays::default()),
    });
    tokio::spawn(remember_times(sandbox.clone()));
    Router::new()
        .route("/sandbox/", get(page))
        .route("/sandbox", get(|| async { Redirect::permanent("/sandbox/") }))
        .route("/sandbox/state", get(state))
        .route("/sandbox/events", get(events))
        .route("/sandbox/command", post(command))
        .route("/sandbox/click", post(click))
        .route("/sandbox/home", post(open_home))
        .route("/sandbox/submit", post(submit))
        .route("/sandbox/close", post(close))
        .route("/sandbox/clock", post(clock))
        .route("/sandbox/alert", post(play_alert))
        .with_state(sandbox.clone())
        .nest("/sandbox/api", api)
        .nest("/sandbox/responses", responses)
        .nest("/sandbox/github", github_api)
}

struct Sandbox {
    fake: FakeSlack,
    github: SandboxGitHub,
    app: Arc<AppState>,
    /// `http://127.0.0.1:<port>`: the bot's own public endpoints.
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    /// Modals open in the browser, and for whom.
    open_views: Mutex<Vec<OpenView>>,
    /// ts → the bot's clock when the message appeared, so the page shows
    /// times on the clock the user moves, not the wall clock.
    posted_at: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The sandbox's own changes (clock moved, modal closed), for the page.
    local: broadcast::Sender<Value>,
    /// Makes trigger ids and event ids unique.
    counter: AtomicU64,
    commands: Vec<String>,
    /// Where the alert scenarios' stories are. Held for a whole play, so
    /// plays reach the engine in the order their run numbers say.
    plays: tokio::sync::Mutex<Plays>,
}

#[derive(Clone)]
struct OpenView {
    id: String,
    user: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `- command: /incident` lines of the app manifest.
fn manifest_commands(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('-').trim().strip_prefix("command:"))
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with('/'))
        .collect()
}

/// Notes when each message and ephemeral appeared on the bot's clock.
async fn remember_times(sandbox: Arc<Sandbox>) {
    let mut changes = sandbox.fake.subscribe();
    loop {
        let change = tokio::select! {
            _ = sandbox.shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(Change::Posted { ts, .. } | Change::Ephemeral { ts, .. }) => {
                lock(&sandbox.posted_at).insert(ts, sandbox.app.clock.now());
            }
            Ok(Change::Reset) => lock(&sandbox.posted_at).clear(),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// What went wrong with a sandbox action, as the page shows it.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"ok": false, "error": self.1}))).into_response()
    }
}

fn bad_request(why: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, why.into())
}

impl Sandbox {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh trigger id shaped like Slack's (`<ts>.<n>.<hex>`); each may
    /// open one modal, as on Slack.
    fn trigger_id(&self) -> String {
        format!("{}.{}.{:08x}", self.app.clock.now().timestamp(), self.next(), std::process::id())
    }

    /// A person of the workspace, by id or handle (never the bot).
    fn person(&self, user: &str) -> Result<WorkspaceUser, Failure> {
        let found = self.fake.users().into_iter().find(|u| !u.is_bot && (u.id == user || u.name == user));
        found.ok_or_else(|| bad_request(format!("no user `{user}` in the sandbox")))
    }

    fn channel_name(&self, channel: &str) -> Result<(String, String), Failure> {
        let found =
            self.fake.channels().into_iter().find(|c| c.id == channel || c.name == channel.trim_start_matches('#'));
        found.map(|c| (c.id, c.name)).ok_or_else(|| bad_request(format!("no channel `{channel}` in the sandbox")))
    }

    fn at(&self, ts: &str) -> DateTime<Utc> {
        if let Some(at) = lock(&self.posted_at).get(ts) {
            return *at;
        }
        // Not seen yet: the wall-clock ts, moved by how far the clock is ahead.
        let secs = ts.split('.').next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let wall = DateTime::from_timestamp(secs, 0).unwrap_or_default();
        wall + (self.app.clock.now() - Utc::now())
    }

    fn announce(&self, change: Value) {
        let _ = self.local.send(change);
    }

    /// Posts `body` to the bot signed as Slack would sign it now; the
    /// status and the body of the answer, or why there was none.
    async fn send_to_bot(&self, path: &str, content_type: &str, body: String) -> Result<(StatusCode, Bytes), String> {
        let ts = self.app.clock.now().timestamp();
        let secret = self.app.signing_secret.as_ref().ok_or("not_authed (no signing secret)")?;
        let signature = sign(secret.expose().as_bytes(), ts, body.as_bytes());
        let request = http::Request::post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .header(header::USER_AGENT, "Slackbot 1.0 (+https://api.slack.com/robots)")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| format!("dispatch_failed ({e})"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(SLACK_PATIENCE, exchange).await.map_err(|_| "operation_timeout".to_owned())?
    }

    /// A `response_url` the sandbox's Slack serves, for what `user` did in
    /// `channel`: the bot's later answers through it are shown to that
    /// user only, as Slack shows them.
    fn response_url(&self, channel: &str, user: &str) -> Result<String, Failure> {
        self.fake
            .response_url(&format!("{}/sandbox/responses", self.base), channel, user)
            .ok_or_else(|| bad_request(format!("no channel `{channel}` or user `{user}` in the sandbox")))
    }

    fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.fake.messages(channel).into_iter().find(|m| m.ts == ts)
    }
}

async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct StateQuery {
    /// Only this user's ephemerals and modals; all of them without it.
    user: Option<String>,
}

/// The whole sandbox as the page draws it.
async fn state(State(sb): State<Arc<Sandbox>>, Query(q): Query<StateQuery>) -> Json<Value> {
    let now = sb.app.clock.now();
    let for_user = |user: &str| q.user.as_deref().is_none_or(|u| u == user);
    // The viewer's DM with opsbot (handoffs, reminders, swap offers), as
    // Slack shows it: theirs alone, listed after the channels.
    let dm = q.user.as_deref().and_then(|u| sb.fake.channel_id(u)).filter(|id| id.starts_with('D'));
    let messages: Vec<Value> = sb
        .fake
        .all_messages()
        .into_iter()
        .filter(|m| !m.channel.starts_with('D') || Some(&m.channel) == dm.as_ref())
        .map(|m| {
            let at = sb.at(&m.ts).timestamp();
            let mut v = serde_json::to_value(&m).unwrap_or(Value::Null);
            v["at"] = json!(at);
            v
        })
        .collect();
    let ephemerals: Vec<Value> = sb
        .fake
        .ephemerals()
        .into_iter()
        .filter(|e| for_user(&e.user))
        .map(|e| {
            let at = sb.at(&e.ts).timestamp();
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            v["at"] = json!(at);
            v
        })
        .collect();
    let open = lock(&sb.open_views).clone();
    let all_views = sb.fake.views();
    let views: Vec<Value> = open
        .iter()
        .filter(|o| for_user(&o.user))
        .filter_map(|o| {
            all_views.iter().find(|v| v.id == o.id).map(|v| json!({"id": o.id, "user": o.user, "view": v.view}))
        })
        .collect();
    // Who is on call now, overrides and swaps included, for the user switcher.
    let runbook = sb.app.engine.roster.runbook();
    let on_call: Vec<Value> = runbook
        .oncall
        .rotations
        .iter()
        .filter_map(|r| {
            let now_on = runbook.oncall.on_call(&r.role, runbook.timezone, now)?;
            let name = runbook.role(&r.role).map_or(r.role.as_str(), |role| role.name.as_str());
            Some(json!({"role": name, "user": now_on.member, "until": now_on.until.timestamp_millis()}))
        })
        .collect();
    let mut channels = serde_json::to_value(sb.fake.channels()).unwrap_or_else(|_| json!([]));
    if let (Some(dm), Some(list)) = (&dm, channels.as_array_mut()) {
        list.push(
            json!({"id": dm, "name": "opsbot (direct messages)", "topic": "What opsbot tells you alone", "dm": true}),
        );
    }
    Json(json!({
        "now": now.timestamp_millis(),
        "on_call": on_call,
        "ahead_ms": (now - Utc::now()).num_milliseconds(),
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN, "name": "Opsbot Sandbox"},
        "bot": BOT_USER,
        "channels": channels,
        "users": sb.fake.users(),
        "commands": sb.commands,
        "messages": messages,
        "ephemerals": ephemerals,
        "views": views,
        // The viewer's App Home, as opsbot last published it.
        "home": q.user.as_deref().and_then(|u| sb.fake.home(u)),
    }))
}

/// A body that yields whatever the forwarding task sends, and ends when it
/// stops: the text/event-stream of server-sent events.
struct EventBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

/// Server-sent events: one `data:` line of JSON per change. The page only
/// needs to know that something changed; it then fetches the state again.
async fn events(State(sb): State<Arc<Sandbox>>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut changes = sb.fake.subscribe();
    let mut local = sb.local.subscribe();
    let shutdown = sb.shutdown.clone();
    tokio::spawn(async move {
        let event = |v: &Value| Bytes::from(format!("data: {v}\n\n"));
        if tx.send(Bytes::from_static(b"retry: 1000\n\n")).await.is_err() {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                change = changes.recv() => match change {
                    Ok(change) => event(&serde_json::to_value(&change).unwrap_or(Value::Null)),
                    // Fell behind: the page re-reads everything anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => event(&json!({"kind": "lagged"})),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                change = local.recv() => match change {
                    Ok(change) => event(&change),
                    Err(broadcast::error::RecvError::Lagged(_)) => event(&json!({"kind": "lagged"})),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            // The tab is gone.
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(Body::new(EventBody(rx)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Deserialize)]
struct CommandRequest {
    user: String,
    channel: String,
    text: String,
    /// Set when typed in a thread's composer.
    #[serde(default)]
    thread_ts: Option<String>,
}

/// What the user typed in the composer: a slash command goes to the bot as
/// Slack's signed form, anything else is posted as the user's message (and
/// a mention of @opsbot is delivered as an `app_mention` event).
async fn command(State(sb): State<Arc<Sandbox>>, Json(req): Json<CommandRequest>) -> Result<Json<Value>, Failure> {
    let WorkspaceUser { id: user, name: user_name, .. } = sb.person(&req.user)?;
    let (channel, channel_name) = sb.channel_name(&req.channel)?;
    let text = req.text.trim();
    if text.is_empty() {
        return Err(bad_request("nothing to send"));
    }
    if text.starts_with('/') {
        let (command, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let args = args.trim();
        return slash_command(&sb, &user, &user_name, &channel, &channel_name, command, args).await.map(Json);
    }
    let thread_ts = req.thread_ts.as_deref().filter(|t| !t.is_empty());
    let encoded = encode_message(text, &sb.fake);
    let ts = sb
        .fake
        .post_as_user(&channel, &user, &encoded, thread_ts)
        .ok_or_else(|| bad_request("that thread does not exist"))?;
    if encoded.contains(&format!("<@{BOT_USER}>")) {
        mention(&sb, &user, &channel, &encoded, &ts, thread_ts).await;
    }
    Ok(Json(json!({"ok": true, "ts": ts})))
}

async fn slash_command(
    sb: &Arc<Sandbox>,
    user: &str,
    user_name: &str,
    channel: &str,
    channel_name: &str,
    command: &str,
    args: &str,
) -> Result<Value, Failure> {
    let answer = |text: &str, blocks: Value| {
        let ts = sb.fake.add_ephemeral(channel, user, text, blocks);
        json!({"ok": true, "ephemeral_ts": ts})
    };
    if !sb.commands.iter().any(|c| c == command) {
        // Slack's own answer to a command no installed app declares.
        let text = format!("`{command}` is not a valid command. In Slack, all messages that start with the \"/\" character are interpreted as commands.");
        return Ok(answer(&text, Value::Null));
    }
    let trigger_id = sb.trigger_id();
    let form = serde_urlencoded::to_string([
        ("token", "sandbox-verification-token"),
        ("team_id", TEAM_ID),
        ("team_domain", TEAM_DOMAIN),
        ("channel_id", channel),
        ("channel_name", channel_name),
        ("user_id", user),
        ("user_name", user_name),
        ("command", command),
        ("text", args),
        ("api_app_id", APP_ID),
        ("is_enterprise_install", "false"),
        ("response_url", &sb.response_url(channel, user)?),
        ("trigger_id", &trigger_id),
    ])
    .map_err(|e| bad_request(e.to_string()))?;
    let (status, body) = match sb.send_to_bot("/slack/commands", "application/x-www-form-urlencoded", form).await {
        Ok(answer) => answer,
        Err(why) => {
            return Ok(answer(&format!("`{command}` failed with the error \"{why}\""), Value::Null));
        }
    };
    if !status.is_success() {
        tracing::warn!(%status, body = %String::from_utf8_lossy(&body), "the bot refused a sandbox command");
        return Ok(answer(
            &format!("`{command}` failed with the error \"http_service_error\" ({status})"),
            Value::Null,
        ));
    }
    // A command may open a modal with its trigger (`/pipeline deploy`),
    // beside its answer rather than before it: the page shows it when it
    // opens, within Slack's 3 s.
    let watcher = (sb.clone(), user.to_owned());
    tokio::spawn(async move {
        let (sb, user) = watcher;
        let opened = sb
            .fake
            .wait_for(SLACK_PATIENCE, |f| f.views().into_iter().find(|v| v.trigger_id == trigger_id).map(|v| v.id))
            .await;
        if let Some(id) = opened {
            lock(&sb.open_views).push(OpenView { id: id.clone(), user: user.clone() });
            sb.announce(json!({"kind": "view_shown", "id": id, "user": user}));
        }
    });
    if body.is_empty() {
        // An empty 200: Slack shows nothing.
        return Ok(json!({"ok": true}));
    }
    let reply: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        // Plain text is a valid answer too.
        Err(_) => json!({"text": String::from_utf8_lossy(&body)}),
    };
    let text = reply["text"].as_str().unwrap_or_default();
    if reply["response_type"] == "in_channel" {
        let ts = sb.fake.post_as_user(channel, BOT_USER, text, None);
        return Ok(json!({"ok": true, "ts": ts}));
    }
    Ok(answer(text, reply["blocks"].clone()))
}

/// Slack's encoding of typed text: `&`, `<`, `>` escaped, and `@name` /
/// `#channel` of known users and channels turned into mentions.
fn encode_message(text: &str, fake: &FakeSlack) -> String {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let users = fake.users();
    let channels = fake.channels();
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    while let Some(i) = rest.find(['@', '#']) {
        out.push_str(&rest[..i]);
        let sigil = &rest[i..i + 1];
        let after = &rest[i + 1..];
        let word_len = after.find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).unwrap_or(after.len());
        let word = &after[..word_len];
        let preceded_by_word = out.chars().last().is_some_and(|c| c.is_alphanumeric());
        let replacement = match sigil {
            _ if preceded_by_word || word.is_empty() => None,
            "@" if matches!(word, "here" | "channel" | "everyone") => Some(format!("<!{word}>")),
            "@" => users.iter().find(|u| u.name == word).map(|u| format!("<@{}>", u.id)),
            _ => channels.iter().find(|c| c.name == word).map(|c| format!("<#{}|{}>", c.id, c.name)),
        };
        match replacement {
            Some(r) => {
                out.push_str(&r);
                rest = &after[word_len..];
            }
            None => {
                out.push_str(sigil);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An `app_mention` event, as the Events API would deliver it.
async fn mention(sb: &Sandbox, user: &str, channel: &str, text: &str, ts: &str, thread_ts: Option<&str>) {
    let mut event = json!({
        "type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
        "team": TEAM_ID,
    });
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
    }
    deliver_event(sb, event).await;
}

/// Delivers `event` to the bot in the Events API's envelope, signed.
async fn deliver_event(sb: &Sandbox, event: Value) {
    let now = sb.app.clock.now().timestamp();
    let envelope = json!({
        "token": "sandbox-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": format!("Ev0SANDBOX{:06}", sb.next()),
        "event_time": now,
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": true}],
        "is_ext_shared_channel": false,
    });
    // Slack does not show the app's answer to an event; a failure only
    // shows in the log, as it would in Slack's app dashboard.
    match sb.send_to_bot("/slack/events", "application/json", envelope.to_string()).await {
        Ok((status, _)) if status.is_success() => {}
        Ok((status, body)) => {
            tracing::warn!(%status, body = %String::from_utf8_lossy(&body), "the bot refused a sandbox event")
        }
        Err(why) => tracing::warn!(%why, "a sandbox event was not delivered"),
    }
}

#[derive(Deserialize)]
struct HomeRequest {
    user: String,
}

/// The person opened opsbot's Home tab: Slack's `app_home_opened` event.
/// The bot publishes the view, which the page then reads from the state.
async fn open_home(State(sb): State<Arc<Sandbox>>, Json(req): Json<HomeRequest>) -> Result<Json<Value>, Failure> {
    let WorkspaceUser { id: user, .. } = sb.person(&req.user)?;
    let channel = sb.fake.channel_id(&user).unwrap_or_else(|| format!("D0{user}"));
    let ts = format!("{}.{:06}", sb.app.clock.now().timestamp(), sb.next() % 1_000_000);
    deliver_event(
        &sb,
        json!({"type": "app_home_opened", "user": user, "channel": channel, "tab": "home", "event_ts": ts}),
    )
    .await;
    Ok(Json(json!({"ok": true})))
}

#[derive(Deserialize)]
struct ClickRequest {
    user: String,
    /// Empty for a button on the Home tab, which has no channel.
    #[serde(default)]
    channel: String,
    #[serde(default)]
    message_ts: String,
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    /// The button is on one of `user`'s ephemeral messages (an answer to
    /// `/pipeline runs`), which Slack sends without the message.
    #[serde(default)]
    ephemeral: bool,
    /// The button is on `user`'s Home tab.
    #[serde(default)]
    home: bool,
}

/// A button click: Slack's `block_actions` payload for that message.
async fn click(State(sb): State<Arc<Sandbox>>, Json(req): Json<ClickRequest>) -> Result<Json<Value>, Failure> {
    let WorkspaceUser { id: user, name: user_name, .. } = sb.person(&req.user)?;
    if req.home {
        return home_click(&sb, req, user, user_name).await;
    }
    let (channel, channel_name) = sb.channel_name(&req.channel)?;
    let gone = || Failure(StatusCode::NOT_FOUND, "that message is gone".into());
    let (blocks, mut container, shown) = if req.ephemeral {
        let ephemeral = sb
            .fake
            .ephemerals()
            .into_iter()
            .find(|e| e.channel == channel && e.user == user && e.ts == req.message_ts)
            .ok_or_else(gone)?;
        let container = json!({
            "type": "message", "message_ts": ephemeral.ts, "channel_id": channel, "is_ephemeral": true,
        });
        (ephemeral.blocks, container, None)
    } else {
        let message = sb.message(&channel, &req.message_ts).ok_or_else(gone)?;
        let mut container = json!({
            "type": "message", "message_ts": message.ts, "channel_id": channel, "is_ephemeral": false,
        });
        let mut shown = json!({
            "type": "message", "user": message.user, "ts": message.ts, "text": message.text, "blocks": message.blocks,
        });
        if let Some(thread_ts) = &message.thread_ts {
            container["thread_ts"] = json!(thread_ts);
            shown["thread_ts"] = json!(thread_ts);
        }
        (message.blocks, container, Some(shown))
    };
    let (block_id, element) = find_button(&blocks, &req.action_id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "that button is no longer on the message".into()))?;
    let value = req.value.or_else(|| element["value"].as_str().map(str::to_owned));
    let trigger_id = sb.trigger_id();
    let mut action = json!({
        "type": "button", "action_id": req.action_id, "block_id": block_id, "text": element["text"],
        "action_ts": format!("{}.{:06}", sb.app.clock.now().timestamp(), sb.next() % 1_000_000),
    });
    if let Some(value) = value {
        action["value"] = json!(value);
    }
    if let Some(style) = element.get("style") {
        action["style"] = style.clone();
    }
    let mut payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",
        "container": container.take(),
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": channel_name},
        "state": {"values": {}},
        "response_url": sb.response_url(&channel, &user)?,
        "actions": [action],
    });
    // Slack sends the message clicked, except an ephemeral one.
    if let Some(shown) = shown {
        payload["message"] = shown;
    }
    send_click(&sb, payload, &trigger_id, &user).await
}

/// A click on the Home tab: Slack sends the view instead of a message, and
/// no channel (so no `response_url` either).
async fn home_click(sb: &Sandbox, req: ClickRequest, user: String, user_name: String) -> Result<Json<Value>, Failure> {
    let view = sb.fake.home(&user).ok_or_else(|| Failure(StatusCode::NOT_FOUND, "open the Home tab first".into()))?;
    let (block_id, element) = find_button(&view["blocks"], &req.action_id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "that button is no longer on your Home".into()))?;
    let trigger_id = sb.trigger_id();
    let mut action = json!({
        "type": "button", "action_id": req.action_id, "block_id": block_id, "text": element["text"],
        "action_ts": format!("{}.{:06}", sb.app.clock.now().timestamp(), sb.next() % 1_000_000),
    });
    if let Some(value) = req.value.or_else(|| element["value"].as_str().map(str::to_owned)) {
        action["value"] = json!(value);
    }
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": null,
        "is_enterprise_install": false,
        "view": view,
        "actions": [action],
    });
    send_click(sb, payload, &trigger_id, &user).await
}

/// Sends a `block_actions` payload to the bot, and shows the modal it
/// opened, if any.
async fn send_click(sb: &Sandbox, payload: Value, trigger_id: &str, user: &str) -> Result<Json<Value>, Failure> {
    let body =
        serde_urlencoded::to_string([("payload", payload.to_string())]).map_err(|e| bad_request(e.to_string()))?;
    let (status, answer) = sb
        .send_to_bot("/slack/interactions", "application/x-www-form-urlencoded", body)
        .await
        .map_err(|why| Failure(StatusCode::BAD_GATEWAY, format!("opsbot did not answer the click: {why}")))?;
    if !status.is_success() {
        // Slack shows a warning sign by the button; the page shows why.
        return Err(Failure(
            StatusCode::BAD_GATEWAY,
            format!("opsbot answered {status}: {}", String::from_utf8_lossy(&answer)),
        ));
    }
    // The bot opens a modal within the request, with this click's trigger.
    let opened = sb.fake.views().into_iter().find(|v| v.trigger_id == trigger_id).map(|v| v.id);
    if let Some(id) = &opened {
        lock(&sb.open_views).push(OpenView { id: id.clone(), user: user.to_owned() });
        sb.announce(json!({"kind": "view_shown", "id": id, "user": user}));
    }
    Ok(Json(json!({"ok": true, "view_id": opened})))
}

/// The actions block holding `action_id`, and the button itself.
fn find_button(blocks: &Value, action_id: &str) -> Option<(String, Value)> {
    blocks.as_array()?.iter().find_map(|block| {
        let element = match block["type"].as_str()? {
            "actions" => block["elements"].as_array()?.iter().find(|e| e["action_id"] == action_id)?.clone(),
            "section" if block["accessory"]["action_id"] == action_id => block["accessory"].clone(),
            _ => return None,
        };
        let block_id = block["block_id"].as_str().map_or_else(|| "sandbox-block".to_owned(), str::to_owned);
        Some((block_id, element))
    })
}

#[derive(Deserialize)]
struct SubmitRequest {
    user: String,
    view_id: String,
    /// block id → action id → the text typed, or the value of the option
    /// chosen in a select.
    #[serde(default)]
    values: HashMap<String, HashMap<String, String>>,
}

/// A modal's submit button: Slack's `view_submission` payload. The bot's
/// `response_action: errors` keeps the modal open with the errors shown.
async fn submit(State(sb): State<Arc<Sandbox>>, Json(req): Json<SubmitRequest>) -> Result<Json<Value>, Failure> {
    let WorkspaceUser { id: user, name: user_name, .. } = sb.person(&req.user)?;
    if !lock(&sb.open_views).iter().any(|o| o.id == req.view_id && o.user == user) {
        return Err(Failure(StatusCode::NOT_FOUND, "that dialog is not open".into()));
    }
    let view = sb
        .fake
        .views()
        .into_iter()
        .find(|v| v.id == req.view_id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "that dialog is not open".into()))?
        .view;
    // Slack's client checks required fields and lengths before sending.
    let mut values = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    for block in view["blocks"].as_array().into_iter().flatten().filter(|b| b["type"] == "input") {
        let (Some(block_id), Some(action_id)) = (block["block_id"].as_str(), block["element"]["action_id"].as_str())
        else {
            continue;
        };
        let element = &block["element"];
        let typed = req.values.get(block_id).and_then(|a| a.get(action_id)).map(|t| t.trim()).unwrap_or("");
        if typed.is_empty() && block["optional"] != true {
            errors.insert(block_id.to_owned(), json!("Please complete this required field."));
        }
        let state = if element["type"] == "static_select" {
            // Slack sends back the whole option chosen, and a select offers
            // only the form's options, so anything else is not Slack's.
            let chosen = match typed {
                "" => Value::Null,
                value => select_option(element, value)
                    .ok_or_else(|| bad_request(format!("`{value}` is not an option of `{block_id}`")))?,
            };
            json!({"type": "static_select", "selected_option": chosen})
        } else {
            if let Some(max) = element["max_length"].as_u64() {
                if typed.chars().count() as u64 > max {
                    errors.insert(block_id.to_owned(), json!(format!("Must be at most {max} characters.")));
                }
            }
            let value = if typed.is_empty() { Value::Null } else { json!(typed) };
            json!({"type": element["type"], "value": value})
        };
        values.insert(block_id.to_owned(), json!({ action_id: state }));
    }
    if !errors.is_empty() {
        return Ok(Json(json!({"response_action": "errors", "errors": errors})));
    }
    let mut submitted = view.clone();
    submitted["state"] = json!({ "values": values });
    let payload = json!({
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",
        "trigger_id": sb.trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": false,
    });
    let body =
        serde_urlencoded::to_string([("payload", payload.to_string())]).map_err(|e| bad_request(e.to_string()))?;
    let (status, answer) = sb
        .send_to_bot("/slack/interactions", "application/x-www-form-urlencoded", body)
        .await
        .map_err(|why| Failure(StatusCode::BAD_GATEWAY, format!("opsbot did not answer: {why}")))?;
    if !status.is_success() {
        return Err(Failure(
            StatusCode::BAD_GATEWAY,
            format!("opsbot answered {status}: {}", String::from_utf8_lossy(&answer)),
        ));
    }
    let reply: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if reply["response_action"] == "errors" {
        return Ok(Json(json!({"response_action": "errors", "errors": reply["errors"]})));
    }
    close_view(&sb, &req.view_id);
    Ok(Json(json!({"ok": true})))
}

/// The option of a select (grouped or not) whose value is `value`.
fn select_option(element: &Value, value: &str) -> Option<Value> {
    let plain = element["options"].as_array().into_iter().flatten();
    let grouped = element["option_groups"].as_array().into_iter().flatten().filter_map(|g| g["options"].as_array());
    plain.chain(grouped.flatten()).find(|o| o["value"] == value).cloned()
}

fn close_view(sb: &Sandbox, view_id: &str) {
    lock(&sb.open_views).retain(|o| o.id != view_id);
    sb.announce(json!({"kind": "view_closed", "id": view_id}));
}

#[derive(Deserialize)]
struct CloseRequest {
    view_id: String,
}

/// A modal's cancel button (or Escape). The bot asks for no
/// `view_closed` notice, so Slack would send nothing either.
async fn close(State(sb): State<Arc<Sandbox>>, Json(req): Json<CloseRequest>) -> Json<Value> {
    close_view(&sb, &req.view_id);
    Json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct ClockRequest {
    minutes: i64,
}

/// Jumps the bot's clock ahead, so escalations and reminders come due.
async fn clock(State(sb): State<Arc<Sandbox>>, Json(req): Json<ClockRequest>) -> Result<Json<Value>, Failure> {
    if !(1..=MAX_ADVANCE_MINUTES).contains(&req.minutes) {
        return Err(bad_request(format!("the clock moves forward by 1 to {MAX_ADVANCE_MINUTES} minutes")));
    }
    let by = TimeDelta::minutes(req.minutes);
    if !sb.app.clock.advance(by) {
        return Err(Failure(StatusCode::CONFLICT, "this clock cannot be moved".into()));
    }
    sb.github.advance(by);
    let now = sb.app.clock.now();
    sb.announce(json!({"kind": "clock", "now": now.timestamp_millis()}));
    Ok(Json(json!({"ok": true, "now": now.timestamp_millis(), "iso": now.to_rfc3339()})))
}

#[derive(Deserialize)]
struct AlertRequest {
    scenario: String,
}

/// "Play an alert": the scenario's webhook payloads, read by the webhook
/// parsers and decided by the engine as real deliveries are.
///
/// They skip the webhook endpoints on purpose: those check GitHub's
/// signature and Alertmanager's token, secrets a newcomer trying the
/// sandbox has not set up, and what they pass on is the parsed signal this
/// hands to the engine directly. Those checks are tested with the
/// endpoints, not here. A pipeline scenario is another matter: the
/// sandbox's GitHub holds the secret, so its webhook takes the endpoint
/// ([`play_pipeline`]).
async fn play_alert(
    State(sb): State<Arc<Sandbox>>,
    request: Result<Json<AlertRequest>, JsonRejection>,
) -> Result<Json<Value>, Failure> {
    let Json(request) = request.map_err(|e| bad_request(e.body_text()))?;
    if let Some(scenario) = PipelineScenario::parse(request.scenario.trim()) {
        return play_pipeline(&sb, scenario).await;
    }
    let scenario = Scenario::parse(request.scenario.trim()).ok_or_else(|| {
        let alerts = Scenario::ALL.iter().map(|s| s.name());
        let known: Vec<&str> = alerts.chain(PipelineScenario::ALL.iter().map(|s| s.name())).collect();
        let asked = opsbot_handlers::text::loggable(&request.scenario);
        bad_request(format!("no alert scenario `{asked}`; play one of: {}", known.join(", ")))
    })?;
    let mut plays = sb.plays.lock().await;
    let script = plays.play(scenario, sb.app.clock.now(), &sb.app.engine.runbook).map_err(|refused| match refused {
        Refused::NotNow(why) => Failure(StatusCode::CONFLICT, why),
        Refused::Broken(why) => {
            tracing::error!(scenario = scenario.name(), %why, "the sandbox could not make an alert payload");
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the sandbox could not make the {} payload: {why}", scenario.name()),
            )
        }
    })?;
    for signal in script.signals {
        let why = match sb.app.engine.signal(signal).await {
            Ok(crate::engine::Signalled::Decided) => continue,
            Ok(crate::engine::Signalled::Contended) => "others kept changing the same alert".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(scenario = scenario.name(), %why, "a sandbox alert was not decided");
        return Err(Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("opsbot could not decide the alert ({why}); play it again"),
        ));
    }
    *plays = script.next;
    let channel = script.channel.and_then(|c| sb.channel_name(&c).ok()).map(|(id, _)| id);
    Ok(Json(json!({"ok": true, "scenario": scenario.name(), "said": script.said, "channel": channel})))
}

/// A pipeline scenario: the sandbox's GitHub completes a run, and its
/// signed webhook reaches the bot's `/hooks/github` as GitHub's would.
async fn play_pipeline(sb: &Sandbox, scenario: PipelineScenario) -> Result<Json<Value>, Failure> {
    let played = sb.github.play(scenario, &sb.app.engine.runbook).await.map_err(|refused| match refused {
        pipeline::Refused::NotNow(why) => Failure(StatusCode::CONFLICT, why),
        pipeline::Refused::Undelivered(why) => {
            tracing::warn!(scenario = scenario.name(), %why, "the sandbox's GitHub could not deliver its webhook");
            Failure(StatusCode::BAD_GATEWAY, why)
        }
    })?;
    let channel = sb.channel_name(&played.channel).ok().map(|(id, _)| id);
    Ok(Json(json!({"ok": true, "scenario": scenario.name(), "said": played.said, "channel": channel})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_commands_are_routed() {
        let commands = manifest_commands(MANIFEST);
        assert!(commands.contains(&"/incident".to_owned()), "{commands:?}");
        assert!(commands.contains(&"/runbook".to_owned()), "{commands:?}");
    }

    #[test]
    fn typed_text_is_encoded_as_slack_does() {
        let fake = FakeSlack::new();
        assert_eq!(
            encode_message("@opsbot status <b> & @bob in #devops, mail x@bob.io @nobody @here", &fake),
            "<@U0OPSBOT> status &lt;b&gt; &amp; <@U0BOB> in <#C0DEVOPS|devops>, mail x@bob.io @nobody <!here>"
        );
    }

    #[test]
    fn a_select_sends_back_the_whole_option_chosen() {
        let option =
            |value: &str| json!({"text": {"type": "plain_text", "text": format!("🟠 {value}")}, "value": value});
        let element = json!({
            "type": "static_select", "options": [option("P1")],
            "option_groups": [{"label": {"type": "plain_text", "text": "Low"}, "options": [option("P3")]}]
        });
        assert_eq!(select_option(&element, "P1"), Some(option("P1")));
        assert_eq!(select_option(&element, "P3"), Some(option("P3")));
        assert_eq!(select_option(&element, "P9"), None);
        assert_eq!(select_option(&json!({"type": "static_select"}), "P1"), None);
    }

    #[test]
    fn buttons_are_found_with_their_block() {
        let blocks = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "x"}},
            {"type": "actions", "block_id": "b1", "elements": [{"type": "button", "action_id": "a", "value": "1"}]}
        ]);
        let (block, element) = find_button(&blocks, "a").unwrap();
        assert_eq!((block.as_str(), element["value"].as_str()), ("b1", Some("1")));
        assert!(find_button(&blocks, "nope").is_none());
    }
}
