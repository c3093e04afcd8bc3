//! The HTTP face of the fake: one axum handler for `/{method}` that decodes
//! Slack's three request shapes (JSON body, form body, query string), applies
//! outages, scripted failures and auth like Slack's edge does, then dispatches
//! to the per-method logic.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::blockkit;
use crate::state::{
    Change, Channel, Failure, Message, OpenedView, Recorded, User, Workspace, APP_ID, BOT_ID, BOT_USER_ID,
    BOT_USER_NAME, CHANNELS_HISTORY, CREATED, IM_HISTORY, IM_WRITE, SCOPES, TEAM_DOMAIN, TEAM_ID, TEAM_NAME,
    USERGROUPS_READ, USERGROUPS_WRITE,
};
use crate::FakeSlack;

const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const MAX_TEXT: usize = 40_000;

pub(crate) fn router(fake: FakeSlack) -> Router {
    Router::new().route("/{method}", any(handle)).with_state(fake)
}

type Params = Map<String, Value>;

/// What a method handler decided: a JSON body for HTTP 200.
type Outcome = Result<Value, SlackError>;

struct SlackError {
    code: &'static str,
    messages: Vec<String>,
    /// Fields Slack adds beside `error` (`needed` and `provided` for
    /// `missing_scope`).
    extra: Option<Value>,
}

fn fail(code: &'static str) -> SlackError {
    SlackError { code, messages: Vec::new(), extra: None }
}

async fn handle(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &fake.inner;
    let unavailable = inner.is_unavailable();
    let failure = {
        let mut rec = inner.lock();
        rec.count_call(&method);
        // While Slack is "down" the queue is left alone, so scripted failures
        // still apply once it comes back.
        if unavailable {
            None
        } else {
            rec.take_failure(&method)
        }
    };
    inner.changed.notify_waiters();

    if unavailable {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    }
    match failure {
        Some(Failure::RateLimited { retry_after_secs }) => {
            let mut res = json_response(StatusCode::TOO_MANY_REQUESTS, &json!({"ok": false, "error": "ratelimited"}));
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return res;
        }
        Some(Failure::HttpStatus(code)) => {
            return plain(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
        Some(Failure::Error(code)) => {
            return json_response(StatusCode::OK, &json!({"ok": false, "error": code}));
        }
        Some(Failure::NoAnswer) => {
            // Does the work, then never answers: the caller is gone first.
            if let Ok(params) = parse_params(query.as_deref(), &headers, &body) {
                if check_auth(&fake.inner.workspace, &headers, &params).is_ok() {
                    let _ = dispatch(&fake, &method, &params);
                }
            }
            std::future::pending::<()>().await;
        }
        None => {}
    }

    let outcome = match parse_params(query.as_deref(), &headers, &body) {
        // Socket Mode's method takes the app-level token, and nothing else.
        Ok(params) if method == "apps.connections.open" => {
            match check_app_auth(&fake.inner.workspace, &headers, &params) {
                Ok(()) => match fake.socket_link_url().await {
                    Ok(url) => Ok(json!({ "url": url })),
                    Err(_) => Err(fail("internal_error")),
                },
                Err(e) => Err(e),
            }
        }
        Ok(params) => {
            check_auth(&fake.inner.workspace, &headers, &params).and_then(|()| dispatch(&fake, &method, &params))
        }
        Err(e) => Err(e),
    };
    let body = match outcome {
        Ok(mut value) => {
            value["ok"] = Value::Bool(true);
            value
        }
        Err(e) => {
            let mut body = json!({"ok": false, "error": e.code});
            if !e.messages.is_empty() {
                body["response_metadata"] = json!({"messages": e.messages});
            }
            if let Some(Value::Object(extra)) = e.extra {
                for (k, v) in extra {
                    body[k] = v;
                }
            }
            body
        }
    };
    json_response(StatusCode::OK, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, JSON_CONTENT_TYPE);
    res
}

/// Outages and proxy errors come back as text, not Slack JSON, as they do in
/// production when Slack's load balancers answer instead of the API.
fn plain(status: StatusCode) -> Response {
    let mut res = Response::new(Body::from(status.canonical_reason().unwrap_or("error")));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// Query parameters first, then the body on top, so a body value wins.
fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, SlackError> {
    let mut params = Params::new();
    if let Some(q) = query {
        add_form_pairs(&mut params, q.as_bytes())?;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => params.extend(obj),
            Ok(_) => return Err(fail("json_not_object")),
            Err(_) => return Err(fail("invalid_json")),
        }
    } else {
        add_form_pairs(&mut params, body)?;
    }
    Ok(params)
}

fn add_form_pairs(params: &mut Params, raw: &[u8]) -> Result<(), SlackError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).map_err(|_| fail("invalid_form_data"))?;
    for (k, v) in pairs {
        params.insert(k, Value::String(v));
    }
    Ok(())
}

fn token<'a>(headers: &'a HeaderMap, params: &'a Params) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| params.get("token").and_then(Value::as_str))
}

fn check_auth(ws: &Workspace, headers: &HeaderMap, params: &Params) -> Result<(), SlackError> {
    match token(headers, params) {
        None | Some("") => Err(fail("not_authed")),
        Some(t) if t == ws.token => Ok(()),
        // Slack refuses an app-level token for the Web API's other methods.
        Some(t) if t == ws.app_token => Err(fail("not_allowed_token_type")),
        Some(_) => Err(fail("invalid_auth")),
    }
}

/// `apps.connections.open` takes only the app-level token (`xapp-…`).
fn check_app_auth(ws: &Workspace, headers: &HeaderMap, params: &Params) -> Result<(), SlackError> {
    match token(headers, params) {
        None | Some("") => Err(fail("not_authed")),
        Some(t) if t == ws.app_token => Ok(()),
        Some(t) if t == ws.token => Err(fail("not_allowed_token_type")),
        Some(_) => Err(fail("invalid_auth")),
    }
}

fn dispatch(fake: &FakeSlack, method: &str, p: &Params) -> Outcome {
    match method {
        "chat.postMessage" => post_message(fake, p),
        "chat.update" => update(fake, p),
        "chat.postEphemeral" => post_ephemeral(fake, p),
        "views.open" => views_open(fake, p),
        "views.publish" => views_publish(fake, p),
        "auth.test" => Ok(auth_test()),
        "users.info" => users_info(&fake.inner.workspace, p),
        "users.list" => Ok(users_list(&fake.inner.workspace)),
        "conversations.list" => Ok(conversations_list(&fake.inner.workspace, p)),
        "conversations.info" => conversations_info(&fake.inner.workspace, p),
        "conversations.open" => conversations_open(fake, p),
        "conversations.history" => conversations_history(fake, p),
        "conversations.replies" => conversations_replies(fake, p),
        "usergroups.users.list" => usergroups_users_list(fake, p),
        "usergroups.users.update" => usergroups_users_update(fake, p),
        _ => Err(fail("unknown_method")),
    }
}

/// Slack's clients send every scalar as a string in forms and sometimes as a
/// number in JSON; `ts`-like values must survive both.
fn str_param<'a>(p: &'a Params, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    match p.get(key)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// `blocks`/`view` arrive as JSON in JSON posts and as JSON-encoded strings in
/// form posts. `Ok(None)` means absent.
fn json_param(p: &Params, key: &str) -> Result<Option<Value>, ()> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| ()),
        Some(v) => Ok(Some(v.clone())),
    }
}

/// Reads and validates `blocks`; an empty array is stored as `Null`, the way
/// Slack drops an empty `blocks` from the stored message.
fn blocks_param(p: &Params) -> Result<Option<Value>, SlackError> {
    let Some(blocks) = json_param(p, "blocks").map_err(|()| fail("invalid_blocks_format"))? else {
        return Ok(None);
    };
    if !blocks.is_array() {
        return Err(fail("invalid_blocks_format"));
    }
    blockkit::validate_blocks(&blocks).map_err(|messages| SlackError {
        code: "invalid_blocks",
        messages,
        extra: None,
    })?;
    Ok(Some(blocks))
}

fn non_empty(blocks: &Option<Value>) -> bool {
    blocks.as_ref().and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn normalise(blocks: Option<Value>) -> Value {
    match blocks {
        Some(Value::Array(a)) if !a.is_empty() => Value::Array(a),
        _ => Value::Null,
    }
}

fn check_text_len(text: &str) -> Result<(), SlackError> {
    if text.len() > MAX_TEXT && text.chars().count() > MAX_TEXT {
        return Err(fail("msg_too_long"));
    }
    Ok(())
}

/// Reads and checks `metadata`: an object with a string `event_type` and,
/// if any, an object `event_payload`, as JSON or a JSON-encoded string.
fn metadata_param(p: &Params) -> Result<Value, SlackError> {
    let Some(metadata) = json_param(p, "metadata").map_err(|()| fail("invalid_metadata_format"))? else {
        return Ok(Value::Null);
    };
    let event_type = metadata.get("event_type").and_then(Value::as_str).unwrap_or_default();
    let payload = metadata.get("event_payload").unwrap_or(&Value::Null);
    if !metadata.is_object() || event_type.is_empty() || !(payload.is_null() || payload.is_object()) {
        return Err(fail("invalid_metadata_schema"));
    }
    Ok(metadata)
}

/// A message as the history methods show it: its `metadata` only when the
/// caller asked for it with `include_all_metadata`.
fn listed_json(m: &Message, with_metadata: bool) -> Value {
    let mut v = message_json(m);
    if with_metadata && !m.metadata.is_null() {
        v["metadata"] = m.metadata.clone();
    }
    v
}

fn message_json(m: &Message) -> Value {
    let mut v = json!({
        "type": "message",
        "user": m.user,
        "text": m.text,
        "ts": m.ts,
        "team": TEAM_ID,
    });
    if m.user == BOT_USER_ID {
        v["bot_id"] = json!(BOT_ID);
        v["app_id"] = json!(APP_ID);
    }
    if !m.blocks.is_null() {
        v["blocks"] = m.blocks.clone();
    }
    if let Some(thread_ts) = &m.thread_ts {
        v["thread_ts"] = json!(thread_ts);
    }
    v
}

fn post_message(fake: &FakeSlack, p: &Params) -> Outcome {
    let ws = &fake.inner.workspace;
    let channel =
        str_param(p, "channel").and_then(|c| ws.resolve_channel(&c)).ok_or_else(|| fail("channel_not_found"))?;
    let text = str_param(p, "text");
    let blocks = blocks_param(p)?;
    if text.is_none() && !non_empty(&blocks) {
        return Err(fail("no_text"));
    }
    let text = text.map(|t| t.into_owned()).unwrap_or_default();
    check_text_len(&text)?;
    let thread_ts = str_param(p, "thread_ts").map(|t| t.into_owned());
    let metadata = metadata_param(p)?;

    let (response, change) = {
        let mut rec = fake.inner.lock();
        if let Some(parent) = &thread_ts {
            if !rec.is_thread_parent(&channel.id, parent) {
                return Err(fail("thread_not_found"));
            }
        }
        let message = Message {
            channel: channel.id.clone(),
            ts: rec.next_ts(),
            thread_ts,
            text,
            blocks: normalise(blocks),
            edits: 0,
            user: BOT_USER_ID.to_owned(),
            metadata,
        };
        let response = json!({
            "channel": message.channel,
            "ts": message.ts,
            "message": message_json(&message),
        });
        let change = Change::Posted {
            channel: message.channel.clone(),
            ts: message.ts.clone(),
            thread_ts: message.thread_ts.clone(),
        };
        rec.push_message(message);
        (response, change)
    };
    fake.inner.emit(change);
    Ok(response)
}

fn update(fake: &FakeSlack, p: &Params) -> Outcome {
    let ws = &fake.inner.workspace;
    // Unlike chat.postMessage, Slack only takes an id here.
    let channel =
        str_param(p, "channel").and_then(|c| ws.channel_by_id(&c)).ok_or_else(|| fail("channel_not_found"))?;
    let ts = str_param(p, "ts").ok_or_else(|| fail("message_not_found"))?;
    let text = str_param(p, "text");
    let blocks = blocks_param(p)?;
    if text.is_none() && blocks.is_none() {
        return Err(fail("no_text"));
    }
    if let Some(t) = &text {
        check_text_len(t)?;
    }

    let (response, change) = {
        let mut rec = fake.inner.lock();
        let message = rec.message_mut(&channel.id, &ts).ok_or_else(|| fail("message_not_found"))?;
        if message.user != BOT_USER_ID {
            return Err(fail("cant_update_message"));
        }
        // Slack keeps whatever the update leaves out: omitted `blocks` keep the
        // old blocks, `blocks: []` removes them.
        if let Some(t) = text {
            message.text = t.into_owned();
        }
        if let Some(b) = blocks {
            message.blocks = normalise(Some(b));
        }
        message.edits += 1;
        let mut msg = message_json(message);
        msg["edited"] = json!({"user": BOT_USER_ID, "ts": message.ts});
        let mut response = json!({
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": msg,
        });
        if let Some(thread_ts) = &message.thread_ts {
            response["thread_ts"] = json!(thread_ts);
        }
        (response, Change::Updated { channel: message.channel.clone(), ts: message.ts.clone() })
    };
    fake.inner.emit(change);
    Ok(response)
}

fn post_ephemeral(fake: &FakeSlack, p: &Params) -> Outcome {
    let ws = &fake.inner.workspace;
    let channel =
        str_param(p, "channel").and_then(|c| ws.resolve_channel(&c)).ok_or_else(|| fail("channel_not_found"))?;
    let user = str_param(p, "user").and_then(|u| ws.user(&u)).ok_or_else(|| fail("user_not_found"))?;
    let text = str_param(p, "text");
    let blocks = blocks_param(p)?;
    if text.is_none() && !non_empty(&blocks) {
        return Err(fail("no_text"));
    }
    let text = text.map(|t| t.into_owned()).unwrap_or_default();
    check_text_len(&text)?;

    let message_ts = fake.inner.record_ephemeral(&channel.id, &user.id, text, normalise(blocks));
    Ok(json!({"message_ts": message_ts}))
}

fn invalid_arguments(message: &str) -> SlackError {
    SlackError { code: "invalid_arguments", messages: vec![message.to_owned()], extra: None }
}

fn views_open(fake: &FakeSlack, p: &Params) -> Outcome {
    let trigger_id =
        str_param(p, "trigger_id").ok_or_else(|| invalid_arguments("[ERROR] missing required field: trigger_id"))?;
    let view = json_param(p, "view")
        .map_err(|()| invalid_arguments("[ERROR] invalid JSON [json-pointer:/view]"))?
        .ok_or_else(|| invalid_arguments("[ERROR] missing required field: view"))?;
    blockkit::validate_view(&view).map_err(|messages| SlackError {
        code: "invalid_arguments",
        messages,
        extra: None,
    })?;

    let opened = {
        let mut rec = fake.inner.lock();
        if !rec.used_triggers.insert(trigger_id.clone().into_owned()) {
            return Err(fail("expired_trigger_id"));
        }
        let id = rec.next_view_id();
        let mut full = view;
        let obj = full.as_object_mut().expect("validated as an object");
        for (key, default) in [
            ("callback_id", json!("")),
            ("private_metadata", json!("")),
            ("external_id", json!("")),
            ("clear_on_close", json!(false)),
            ("notify_on_close", json!(false)),
        ] {
            obj.entry(key).or_insert(default);
        }
        obj.insert("id".into(), json!(id));
        obj.insert("team_id".into(), json!(TEAM_ID));
        obj.insert("app_id".into(), json!(APP_ID));
        obj.insert("bot_id".into(), json!(BOT_ID));
        obj.insert("root_view_id".into(), json!(id));
        obj.insert("previous_view_id".into(), Value::Null);
        obj.insert("hash".into(), json!(format!("{}.{id}", CREATED)));
        obj.insert("state".into(), json!({"values": {}}));
        let opened = OpenedView { trigger_id: trigger_id.into_owned(), view: full, id };
        rec.views.push(opened.clone());
        opened
    };
    fake.inner.emit(Change::ViewOpened { id: opened.id.clone(), trigger_id: opened.trigger_id.clone() });
    Ok(json!({"view": opened.view}))
}

/// `views.publish`: sets a user's App Home. Slack checks the view as it
/// does a modal's (100 blocks), wants `type: home`, and answers with the
/// view it stored.
fn views_publish(fake: &FakeSlack, p: &Params) -> Outcome {
    let user = str_param(p, "user_id").ok_or_else(|| invalid_arguments("[ERROR] missing required field: user_id"))?;
    if fake.inner.workspace.user(&user).is_none() {
        return Err(fail("user_not_found"));
    }
    let view = json_param(p, "view")
        .map_err(|()| invalid_arguments("[ERROR] invalid JSON [json-pointer:/view]"))?
        .ok_or_else(|| invalid_arguments("[ERROR] missing required field: view"))?;
    blockkit::validate_home(&view).map_err(|messages| SlackError {
        code: "invalid_arguments",
        messages,
        extra: None,
    })?;
    let mut full = view;
    let mut rec = fake.inner.lock();
    let id = rec.next_view_id();
    if let Some(obj) = full.as_object_mut() {
        obj.insert("id".into(), json!(id));
        obj.insert("team_id".into(), json!(TEAM_ID));
        obj.insert("app_id".into(), json!(APP_ID));
        obj.insert("bot_id".into(), json!(BOT_ID));
        obj.insert("hash".into(), json!(format!("{}.{id}", CREATED)));
    }
    rec.homes.insert(user.clone().into_owned(), full.clone());
    drop(rec);
    fake.inner.emit(Change::HomePublished { user: user.into_owned() });
    Ok(json!({"view": full}))
}

fn auth_test() -> Value {
    json!({
        "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
        "team": TEAM_NAME,
        "user": BOT_USER_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": false,
    })
}

fn user_json(u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "team_id": TEAM_ID,
        "name": u.name,
        "deleted": false,
        "color": "9f69e7",
        "real_name": u.real_name,
        "is_admin": false,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": u.is_bot,
        "is_app_user": false,
        "updated": CREATED,
        "profile": {
            "real_name": u.real_name,
            "real_name_normalized": u.real_name,
            "display_name": u.name,
            "display_name_normalized": u.name,
            "email": format!("{}@{TEAM_DOMAIN}.example.com", u.name),
            "team": TEAM_ID,
        },
    });
    if let Some((tz, label, offset)) = u.tz {
        v["tz"] = json!(tz);
        v["tz_label"] = json!(label);
        v["tz_offset"] = json!(offset);
    }
    if u.is_bot {
        v["profile"]["bot_id"] = json!(BOT_ID);
        v["profile"]["api_app_id"] = json!(APP_ID);
    }
    v
}

fn users_info(ws: &Workspace, p: &Params) -> Outcome {
    let user = str_param(p, "user").and_then(|u| ws.user(&u)).ok_or_else(|| fail("user_not_found"))?;
    Ok(json!({"user": user_json(user)}))
}

/// `usergroups.users.list`: the group's member ids. Slack answers
/// `missing_scope` (with the scope `needed`) to a token without
/// `usergroups:read`, and `no_such_subteam` for a group it does not have,
/// a disabled one included unless `include_disabled` is true.
fn usergroups_users_list(fake: &FakeSlack, p: &Params) -> Outcome {
    let rec = fake.inner.lock();
    if rec.revoked_scopes.contains(USERGROUPS_READ) {
        let provided = SCOPES.iter().filter(|s| !rec.revoked_scopes.contains(**s)).copied().collect::<Vec<_>>();
        return Err(SlackError {
            code: "missing_scope",
            messages: Vec::new(),
            extra: Some(json!({"needed": USERGROUPS_READ, "provided": provided.join(",")})),
        });
    }
    let group = str_param(p, "usergroup").ok_or_else(|| fail("invalid_arguments"))?;
    let include_disabled = str_param(p, "include_disabled").is_some_and(|v| v == "true" || v == "1");
    match rec.usergroups.get(group.as_ref()) {
        Some(g) if g.enabled || include_disabled => Ok(json!({"users": g.members})),
        _ => Err(fail("no_such_subteam")),
    }
}

/// `usergroups.users.update`: replaces the group's members with `users`
/// (comma-separated ids). Slack answers `missing_scope` without
/// `usergroups:write`, `no_such_subteam` for a group it does not have,
/// `invalid_users` for an id that is not a person of the workspace, and
/// `no_users_provided` for none (a group cannot be emptied this way).
fn usergroups_users_update(fake: &FakeSlack, p: &Params) -> Outcome {
    let mut rec = fake.inner.lock();
    if rec.revoked_scopes.contains(USERGROUPS_WRITE) {
        let provided = SCOPES.iter().filter(|s| !rec.revoked_scopes.contains(**s)).copied().collect::<Vec<_>>();
        return Err(SlackError {
            code: "missing_scope",
            messages: Vec::new(),
            extra: Some(json!({"needed": USERGROUPS_WRITE, "provided": provided.join(",")})),
        });
    }
    let group = str_param(p, "usergroup").ok_or_else(|| fail("invalid_arguments"))?.into_owned();
    let users: Vec<String> = str_param(p, "users")
        .map(|u| u.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if users.is_empty() {
        return Err(fail("no_users_provided"));
    }
    if users.iter().any(|u| fake.inner.workspace.user(u).is_none_or(|u| u.is_bot)) {
        return Err(fail("invalid_users"));
    }
    let Some(found) = rec.usergroups.get_mut(&group) else { return Err(fail("no_such_subteam")) };
    found.members = users.clone();
    Ok(json!({"usergroup": {"id": group, "users": users, "user_count": users.len()}}))
}

fn users_list(ws: &Workspace) -> Value {
    let members: Vec<Value> = ws.users.iter().map(user_json).collect();
    json!({
        "members": members,
        "cache_ts": CREATED,
        "response_metadata": {"next_cursor": ""},
    })
}

fn channel_json(c: &Channel) -> Value {
    let is_im = c.im_user.is_some();
    let mut v = json!({
        "id": c.id,
        "created": CREATED,
        "is_archived": false,
        "is_channel": !is_im,
        "is_group": false,
        "is_im": is_im,
        "is_mpim": false,
        "is_private": is_im,
        "is_general": c.is_general,
        "is_shared": false,
        "is_ext_shared": false,
        "is_org_shared": false,
        "is_member": true,
    });
    if let Some(user) = &c.im_user {
        v["user"] = json!(user);
        v["is_open"] = json!(true);
    } else {
        let details = |value: &str| json!({"value": value, "creator": "U0ALICE", "last_set": CREATED});
        v["name"] = json!(c.name);
        v["name_normalized"] = json!(c.name);
        v["creator"] = json!("U0ALICE");
        v["topic"] = details(&c.topic);
        v["purpose"] = details(&c.purpose);
        v["previous_names"] = json!([]);
        v["num_members"] = json!(5);
        v["locale"] = json!("en-US");
    }
    v
}

fn conversations_list(ws: &Workspace, p: &Params) -> Value {
    // Slack lists only public channels unless `types` asks for more.
    let types = str_param(p, "types");
    let types = types.as_deref().unwrap_or("public_channel");
    let want_public = types.split(',').any(|t| t.trim() == "public_channel");
    let want_im = types.split(',').any(|t| t.trim() == "im");
    let channels: Vec<Value> = ws
        .channels
        .iter()
        .filter(|c| if c.im_user.is_some() { want_im } else { want_public })
        .map(channel_json)
        .collect();
    json!({"channels": channels, "response_metadata": {"next_cursor": ""}})
}

fn conversations_info(ws: &Workspace, p: &Params) -> Outcome {
    let channel =
        str_param(p, "channel").and_then(|c| ws.channel_by_id(&c)).ok_or_else(|| fail("channel_not_found"))?;
    Ok(json!({"channel": channel_json(channel)}))
}

/// Slack answers `missing_scope` (with what was `needed`) to a token
/// without `scope`.
fn require_scope(rec: &Recorded, scope: &'static str) -> Result<(), SlackError> {
    if !rec.revoked_scopes.contains(scope) {
        return Ok(());
    }
    let provided = SCOPES.iter().filter(|s| !rec.revoked_scopes.contains(**s)).copied().collect::<Vec<_>>();
    Err(SlackError {
        code: "missing_scope",
        messages: Vec::new(),
        extra: Some(json!({"needed": scope, "provided": provided.join(",")})),
    })
}

/// `conversations.open` with `users`: the bot's direct message with that
/// one person (needs `im:write`). Group DMs are not part of the fake.
fn conversations_open(fake: &FakeSlack, p: &Params) -> Outcome {
    require_scope(&fake.inner.lock(), IM_WRITE)?;
    let users = str_param(p, "users").ok_or_else(|| fail("users_list_not_supplied"))?;
    let user = users.split(',').map(str::trim).next().unwrap_or_default();
    let im = fake.inner.workspace.channels.iter().find(|c| c.im_user.as_deref() == Some(user));
    let im = im.ok_or_else(|| fail("user_not_found"))?;
    Ok(json!({"channel": {"id": im.id}, "no_op": true, "already_open": true}))
}

/// A ts as a number, for comparing; Slack's are `seconds.micros`.
fn ts_value(ts: &str) -> f64 {
    ts.parse().unwrap_or(0.0)
}

/// Whether `ts` is within `oldest`…`latest` (each exclusive unless
/// `inclusive`), as the history methods filter.
fn in_window(p: &Params, ts: &str) -> bool {
    let inclusive = str_param(p, "inclusive").is_some_and(|v| v == "true" || v == "1");
    let ts = ts_value(ts);
    let after = |bound: f64| if inclusive { ts >= bound } else { ts > bound };
    let before = |bound: f64| if inclusive { ts <= bound } else { ts < bound };
    str_param(p, "oldest").is_none_or(|o| after(ts_value(&o)))
        && str_param(p, "latest").is_none_or(|l| before(ts_value(&l)))
}

/// One page of `items` from the opaque `cursor` on, `limit` long (Slack
/// clamps it), with `has_more` and the next cursor as Slack gives them.
fn page(items: Vec<Value>, p: &Params, default_limit: usize, key: &str) -> Outcome {
    let limit = str_param(p, "limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let limit = limit.unwrap_or(default_limit).min(999);
    let start = match str_param(p, "cursor") {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix("bmV4dF9pdGVt:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| fail("invalid_cursor"))?,
    };
    let more = items.len() > start + limit;
    let shown: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let next = if more { format!("bmV4dF9pdGVt:{}", start + limit) } else { String::new() };
    Ok(json!({key: shown, "has_more": more, "response_metadata": {"next_cursor": next}}))
}

/// The channel a history method names: an id (Slack takes no names here)
/// the token may read, with the scope its kind needs.
fn readable_channel<'a>(fake: &'a FakeSlack, rec: &Recorded, p: &Params) -> Result<&'a Channel, SlackError> {
    let channel = str_param(p, "channel")
        .and_then(|c| fake.inner.workspace.channel_by_id(&c))
        .ok_or_else(|| fail("channel_not_found"))?;
    require_scope(rec, if channel.im_user.is_some() { IM_HISTORY } else { CHANNELS_HISTORY })?;
    Ok(channel)
}

/// `conversations.history`: a channel's top-level messages (thread parents
/// with them, replies not), newest first, within `oldest`/`latest`.
fn conversations_history(fake: &FakeSlack, p: &Params) -> Outcome {
    let rec = fake.inner.lock();
    let channel = readable_channel(fake, &rec, p)?;
    let with_metadata = str_param(p, "include_all_metadata").is_some_and(|v| v == "true" || v == "1");
    let messages: Vec<Value> = rec
        .messages
        .iter()
        .rev()
        .filter(|m| m.channel == channel.id && m.thread_ts.is_none() && in_window(p, &m.ts))
        .map(|m| listed_json(m, with_metadata))
        .collect();
    page(messages, p, 100, "messages")
}

/// `conversations.replies`: a thread, its parent first, then its replies
/// oldest first within `oldest`/`latest`. A `ts` of a reply names its
/// thread; one that is no message is `thread_not_found`.
fn conversations_replies(fake: &FakeSlack, p: &Params) -> Outcome {
    let rec = fake.inner.lock();
    let channel = readable_channel(fake, &rec, p)?;
    let ts = str_param(p, "ts").ok_or_else(|| fail("thread_not_found"))?;
    let named = rec.by_ts.get(ts.as_ref()).map(|&i| &rec.messages[i]).filter(|m| m.channel == channel.id);
    let named = named.ok_or_else(|| fail("thread_not_found"))?;
    let parent = named.thread_ts.clone().unwrap_or_else(|| named.ts.clone());
    let with_metadata = str_param(p, "include_all_metadata").is_some_and(|v| v == "true" || v == "1");
    let thread = rec.messages.iter().filter(|m| m.channel == channel.id);
    let parent_first = thread.clone().filter(|m| m.ts == parent);
    let replies = thread.filter(|m| m.thread_ts.as_deref() == Some(parent.as_str()) && in_window(p, &m.ts));
    let messages: Vec<Value> = parent_first.chain(replies).map(|m| listed_json(m, with_metadata)).collect();
    page(messages, p, 1000, "messages")
}
