//! The Slack Web API client (slack-morphism), pointed at `SLACK_API_URL`, with
//! its errors sorted into "try again later" and "Slack refuses this for good".

use crate::config::Secret;
use hyper_rustls::HttpsConnectorBuilder;
use opsbot_handlers::MessageRef;
use slack_morphism::errors::*;
use slack_morphism::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Why a delivery failed, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Slack is busy, down or unreachable: try again, after `retry_after`
    /// when Slack said so (429 `Retry-After`).
    #[error("transient: {reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// Slack answered `ok:false` with an error that will not go away by
    /// itself (`channel_not_found`, `invalid_blocks`, …).
    #[error("{code}")]
    Permanent { code: String },
    /// Something this delivery needs is not there yet (the alert a thread
    /// reply goes under): retried like a transient failure, but given up
    /// after a limit, so a lost alert cannot block its lane for ever.
    #[error("waiting: {reason}")]
    Waiting { reason: String },
}

impl DeliveryError {
    /// How long Slack asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Slack error codes that mean "not now" rather than "never".
const TRANSIENT_CODES: &[&str] =
    &["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

fn classify(err: SlackClientError) -> DeliveryError {
    match err {
        SlackClientError::ApiError(api) if TRANSIENT_CODES.contains(&api.code.as_str()) => {
            DeliveryError::Transient { reason: api.code, retry_after: None }
        }
        SlackClientError::ApiError(api) => {
            let details = api.errors.clone().unwrap_or_else(|| response_messages(api.http_response_body.as_deref()));
            let details = details.join("; ");
            DeliveryError::Permanent {
                code: if details.is_empty() { api.code } else { format!("{} ({details})", api.code) },
            }
        }
        SlackClientError::RateLimitError(rate) => {
            DeliveryError::Transient { reason: "ratelimited (HTTP 429)".to_owned(), retry_after: rate.retry_after }
        }
        SlackClientError::HttpError(http) if http.status_code.is_server_error() || http.status_code.as_u16() == 408 => {
            DeliveryError::Transient { reason: format!("HTTP {}", http.status_code.as_u16()), retry_after: None }
        }
        SlackClientError::HttpError(http) => {
            DeliveryError::Permanent { code: format!("http_{}", http.status_code.as_u16()) }
        }
        // Connection refused, reset, timeouts, garbled answers: the network
        // or Slack is having a moment.
        other => DeliveryError::Transient { reason: short_reason(&other), retry_after: None },
    }
}

/// Slack explains `invalid_blocks` and friends in
/// `response_metadata.messages`, which slack-morphism does not surface.
fn response_messages(body: Option<&str>) -> Vec<String> {
    body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v["response_metadata"]["messages"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_str().map(|s| opsbot_handlers::text::truncate(s, 300)))
        .take(5)
        .collect()
}

/// slack-morphism's Display can include whole response bodies; logs get
/// the first line, bounded.
fn short_reason(err: &SlackClientError) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("error");
    opsbot_handlers::text::truncate(first, 200)
}

/// The `event_type` of the metadata every outbox post carries: its
/// `event_payload` names the outbox entry (`entry`: stream/id), so that a
/// replica taking the entry over finds the message if it was posted.
pub const OUTBOX_EVENT_TYPE: &str = "opsbot_outbox";

/// How many pages of a channel's history or a thread a search for a marked
/// message reads at most: past it the message is taken as not found.
const MARK_SEARCH_PAGES: usize = 20;
/// Messages per page of that search (Slack allows up to 999; fewer keep
/// each answer quick).
const MARK_SEARCH_PAGE: u16 = 200;

/// A message as `chat.postMessage`, `chat.update` and `chat.postEphemeral`
/// take it, with the blocks as the core rendered them: turning them into
/// slack-morphism's types only to serialize them again took about an eighth
/// of the bot's CPU under load.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
    /// The message edited (`chat.update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    /// Who sees it (`chat.postEphemeral`).
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Mark<'a>>,
}

/// The metadata of an outbox post: see [`OUTBOX_EVENT_TYPE`].
#[derive(serde::Serialize)]
struct Mark<'a> {
    event_type: &'a str,
    event_payload: MarkPayload<'a>,
}

#[derive(serde::Serialize)]
struct MarkPayload<'a> {
    entry: &'a str,
}

/// Where `chat.postMessage` put a message.
#[derive(serde::Deserialize)]
struct PostAnswer {
    channel: String,
    ts: String,
}

/// An answer whose content is not needed, only that it is `ok`.
#[derive(serde::Deserialize)]
struct Done {}

/// The Web API as opsbot uses it.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    /// The Web API's origin: a `response_url` there (the fake, the
    /// sandbox) is trusted like Slack's own `hooks.slack.com`.
    api_origin: Option<url::Origin>,
    /// Channel ids by the name or user id messages are posted to, as
    /// looked up for the history methods (which take ids only).
    channel_ids: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

/// A page of `conversations.history` or `.replies`, as far as a search
/// for marked messages reads it.
#[derive(serde::Deserialize)]
struct Listed {
    #[serde(default)]
    messages: Vec<ListedMessage>,
    #[serde(default)]
    has_more: bool,
    response_metadata: Option<ListedCursor>,
}

#[derive(serde::Deserialize)]
struct ListedMessage {
    ts: String,
    metadata: Option<ListedMetadata>,
}

#[derive(serde::Deserialize)]
struct ListedMetadata {
    event_type: String,
    #[serde(default)]
    event_payload: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(serde::Deserialize)]
struct ListedCursor {
    next_cursor: Option<String>,
}

/// A page of `conversations.list`: the public channels' names and ids.
#[derive(serde::Deserialize)]
struct ChannelList {
    #[serde(default)]
    channels: Vec<ListedChannel>,
    response_metadata: Option<ListedCursor>,
}

#[derive(serde::Deserialize)]
struct ListedChannel {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(serde::Deserialize)]
struct Opened {
    channel: OpenedChannel,
}

#[derive(serde::Deserialize)]
struct OpenedChannel {
    id: String,
}

impl SlackApi {
    /// `api_url` may be `http://` (the fake in tests, the sandbox) or
    /// `https://`; slack-morphism's default connector is https-only.
    pub fn new(api_url: &str, token: &Secret) -> anyhow::Result<SlackApi> {
        let https = HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue::new(token.expose().to_owned())),
            api_origin: url::Url::parse(api_url).ok().map(|u| u.origin()),
            channel_ids: Default::default(),
        })
    }

    fn content(text: &str, blocks: Option<&serde_json::Value>) -> Result<SlackMessageContent, DeliveryError> {
        let mut content = SlackMessageContent::new().with_text(text.to_owned());
        if let Some(blocks) = blocks {
            let blocks: Vec<SlackBlock> = serde_json::from_value(blocks.clone())
                .map_err(|e| DeliveryError::Permanent { code: format!("unrenderable_blocks ({e})") })?;
            content = content.with_blocks(blocks);
        }
        Ok(content)
    }

    /// Posts a message (in a thread when `thread_ts` is given) and returns
    /// where it landed; `channel` may be a name, the answer carries the id.
    pub async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<MessageRef, DeliveryError> {
        let message = Outgoing { channel, thread_ts, ts: None, user: None, text, blocks, metadata: None };
        self.post_message(&message).await
    }

    /// [`Self::post`], the message marked with `mark` (an outbox entry's
    /// stream/id) in its metadata, for [`Self::marked_messages`] to find.
    pub async fn post_marked(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<&serde_json::Value>,
        mark: &str,
    ) -> Result<MessageRef, DeliveryError> {
        let metadata = Some(Mark { event_type: OUTBOX_EVENT_TYPE, event_payload: MarkPayload { entry: mark } });
        let message = Outgoing { channel, thread_ts, ts: None, user: None, text, blocks, metadata };
        self.post_message(&message).await
    }

    async fn post_message(&self, message: &Outgoing<'_>) -> Result<MessageRef, DeliveryError> {
        let session = self.client.open_session(&self.token);
        let answer: PostAnswer = session
            .http_session_api
            .http_post("chat.postMessage", message, Some(&CHAT_POST_MESSAGE_SPECIAL_LIMIT_RATE_CTL))
            .await
            .map_err(classify)?;
        Ok(MessageRef { channel: answer.channel, ts: answer.ts })
    }

    /// `apps.connections.open` with the app-level token: where to open a
    /// new Socket Mode connection. The URL carries a one-time ticket, so
    /// it is a credential too: callers never log it.
    pub async fn open_socket_mode_connection(&self, app_token: &Secret) -> Result<String, DeliveryError> {
        let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_owned()))
            .with_token_type(SlackApiTokenType::App);
        let session = self.client.open_session(&token);
        let response =
            session.apps_connections_open(&SlackApiAppsConnectionOpenRequest::new()).await.map_err(classify)?;
        Ok(response.url.0.to_string())
    }

    pub async fn update(
        &self,
        message: &MessageRef,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<(), DeliveryError> {
        let edit = Outgoing {
            channel: &message.channel,
            thread_ts: None,
            ts: Some(&message.ts),
            user: None,
            text,
            blocks,
            metadata: None,
        };
        self.send("chat.update", &edit, &SLACK_TIER3_METHOD_CONFIG).await
    }

    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<(), DeliveryError> {
        let note = Outgoing { channel, thread_ts: None, ts: None, user: Some(user), text, blocks, metadata: None };
        self.send("chat.postEphemeral", &note, &SLACK_TIER4_METHOD_CONFIG).await
    }

    /// Calls `method` with `body`, within its tier's rate, wanting only
    /// Slack's `ok`.
    async fn send(
        &self,
        method: &str,
        body: &(impl serde::Serialize + Send + Sync),
        rate: &SlackApiMethodRateControlConfig,
    ) -> Result<(), DeliveryError> {
        let session = self.client.open_session(&self.token);
        let _: Done = session.http_session_api.http_post(method, body, Some(rate)).await.map_err(classify)?;
        Ok(())
    }

    /// Answers through a command's `response_url`, replacing the
    /// acknowledgement shown to the person. Only Slack's own URLs are
    /// posted to (a `response_url` is Slack's to give): anything else is
    /// refused for good, and the caller falls back to an ephemeral message.
    pub async fn respond(
        &self,
        response_url: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<(), DeliveryError> {
        let url = url::Url::parse(response_url)
            .ok()
            .filter(|u| {
                (u.scheme() == "https" && u.host_str() == Some("hooks.slack.com"))
                    || self.api_origin.as_ref() == Some(&u.origin())
            })
            .ok_or_else(|| DeliveryError::Permanent { code: "untrusted_response_url".into() })?;
        let request = SlackApiPostWebhookMessageRequest::new(Self::content(text, blocks)?).with_replace_original(true);
        self.client.respond_to_event(&url.into(), &request).await.map(drop).map_err(classify)
    }

    /// The member ids of user group `group` (`usergroups.users.list`).
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, DeliveryError> {
        let request = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId::new(group.to_owned()));
        let session = self.client.open_session(&self.token);
        let answer = session.usergroups_users_list(&request).await.map_err(classify)?;
        Ok(answer.users.into_iter().map(|user| user.to_string()).collect())
    }

    /// Publishes `view` as `user`'s App Home (`views.publish`, posted as
    /// rendered JSON: a view is opsbot's own Block Kit, already checked
    /// against Slack's limits in the core's tests).
    pub async fn publish_home(&self, user: &str, view: &serde_json::Value) -> Result<(), DeliveryError> {
        #[derive(serde::Serialize)]
        struct Publish<'a> {
            user_id: &'a str,
            view: &'a serde_json::Value,
        }
        #[derive(serde::Deserialize)]
        struct Published {}
        let session = self.client.open_session(&self.token);
        session
            .http_session_api
            .http_post::<_, Published>(
                "views.publish",
                &Publish { user_id: user, view },
                Some(&SLACK_TIER4_METHOD_CONFIG),
            )
            .await
            .map(drop)
            .map_err(classify)
    }

    /// Makes `users` the members of user group `group`
    /// (`usergroups.users.update`, which slack-morphism does not wrap; its
    /// session posts it as any other method, with its rate control).
    pub async fn set_usergroup_members(&self, group: &str, users: &[String]) -> Result<(), DeliveryError> {
        #[derive(serde::Serialize)]
        struct Update<'a> {
            usergroup: &'a str,
            users: String,
        }
        #[derive(serde::Deserialize)]
        struct Updated {}
        let request = Update { usergroup: group, users: users.join(",") };
        let session = self.client.open_session(&self.token);
        session
            .http_session_api
            .http_post::<_, Updated>("usergroups.users.update", &request, Some(&SLACK_TIER2_METHOD_CONFIG))
            .await
            .map(drop)
            .map_err(classify)
    }

    /// Opens a modal for the user who clicked (`trigger_id` lives 3 s).
    pub async fn open_modal(&self, trigger_id: &str, view: &serde_json::Value) -> Result<(), DeliveryError> {
        let view: SlackView = serde_json::from_value(view.clone())
            .map_err(|e| DeliveryError::Permanent { code: format!("unrenderable_view ({e})") })?;
        let request = SlackApiViewsOpenRequest::new(trigger_id.into(), view);
        let session = self.client.open_session(&self.token);
        session.views_open(&request).await.map(drop).map_err(classify)
    }

    /// The marks (see [`Self::post_marked`]) of the messages in `channel`
    /// (an id) posted after `oldest` (a ts), with where each is: in the
    /// thread of `thread_ts` (`conversations.replies`), else at the top of
    /// the channel (`conversations.history`). Reads at most
    /// [`MARK_SEARCH_PAGES`] pages: a refusal past that, as the search
    /// would be too long to be worth it.
    pub async fn marked_messages(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        oldest: &str,
    ) -> Result<std::collections::HashMap<String, MessageRef>, DeliveryError> {
        let mut marks = std::collections::HashMap::new();
        let mut cursor: Option<String> = None;
        let session = self.client.open_session(&self.token);
        let limit = MARK_SEARCH_PAGE.to_string();
        for _ in 0..MARK_SEARCH_PAGES {
            let mut params = vec![
                ("channel", Some(channel.to_owned())),
                ("oldest", Some(oldest.to_owned())),
                ("limit", Some(limit.clone())),
                ("include_all_metadata", Some("true".to_owned())),
                ("cursor", cursor.clone()),
            ];
            let method = match thread_ts {
                Some(ts) => {
                    params.push(("ts", Some(ts.to_owned())));
                    "conversations.replies"
                }
                None => "conversations.history",
            };
            let page: Listed = session
                .http_session_api
                .http_get(method, &params, Some(&SLACK_TIER3_METHOD_CONFIG))
                .await
                .map_err(classify)?;
            for message in page.messages {
                let Some(metadata) = message.metadata.filter(|m| m.event_type == OUTBOX_EVENT_TYPE) else { continue };
                let mark = metadata.event_payload.as_ref().and_then(|p| p.get("entry")).and_then(|e| e.as_str());
                if let Some(mark) = mark {
                    marks.insert(mark.to_owned(), MessageRef { channel: channel.to_owned(), ts: message.ts });
                }
            }
            cursor = page.response_metadata.and_then(|m| m.next_cursor).filter(|c| !c.is_empty());
            if !page.has_more || cursor.is_none() {
                return Ok(marks);
            }
        }
        Err(DeliveryError::Permanent { code: format!("more than {MARK_SEARCH_PAGES} pages to look through") })
    }

    /// The id of the channel messages to `target` land in: `target` itself
    /// when it is a channel id, the direct message with a person for a
    /// user id (`conversations.open`), a public channel's for `#name` or
    /// `name` (`conversations.list`). Kept once found: they do not change.
    pub async fn channel_id(&self, target: &str) -> Result<String, DeliveryError> {
        let looks_like_id = |prefixes: &[char]| {
            target.starts_with(prefixes) && target.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        if looks_like_id(&['C', 'G', 'D']) {
            return Ok(target.to_owned());
        }
        if let Some(id) = self.channel_ids.lock().unwrap_or_else(|e| e.into_inner()).get(target) {
            return Ok(id.clone());
        }
        let session = self.client.open_session(&self.token);
        let id = if looks_like_id(&['U', 'W']) {
            let params = [("users", Some(target.to_owned()))];
            let opened: Opened = session
                .http_session_api
                .http_get("conversations.open", &params, Some(&SLACK_TIER3_METHOD_CONFIG))
                .await
                .map_err(classify)?;
            opened.channel.id
        } else {
            let name = target.trim_start_matches('#');
            let mut cursor: Option<String> = None;
            loop {
                let params = [
                    ("types", Some("public_channel".to_owned())),
                    ("exclude_archived", Some("true".to_owned())),
                    ("limit", Some("1000".to_owned())),
                    ("cursor", cursor.clone()),
                ];
                let page: ChannelList = session
                    .http_session_api
                    .http_get("conversations.list", &params, Some(&SLACK_TIER2_METHOD_CONFIG))
                    .await
                    .map_err(classify)?;
                if let Some(found) = page.channels.into_iter().find(|c| c.name == name) {
                    break found.id;
                }
                cursor = page.response_metadata.and_then(|m| m.next_cursor).filter(|c| !c.is_empty());
                if cursor.is_none() {
                    return Err(DeliveryError::Permanent { code: format!("channel_not_found ({target})") });
                }
            }
        };
        self.channel_ids.lock().unwrap_or_else(|e| e.into_inner()).insert(target.to_owned(), id.clone());
        Ok(id)
    }

    /// Whether Slack answers and accepts our token.
    pub async fn auth_test(&self) -> Result<(), DeliveryError> {
        let session = self.client.open_session(&self.token);
        session.auth_test().await.map(drop).map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_server_errors_are_retried_refusals_are_not() {
        let rate =
            SlackClientError::RateLimitError(SlackRateLimitError::new().with_retry_after(Duration::from_secs(3)));
        assert_eq!(
            classify(rate),
            DeliveryError::Transient {
                reason: "ratelimited (HTTP 429)".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        let http500 = SlackClientError::HttpError(SlackClientHttpError::new(http::StatusCode::INTERNAL_SERVER_ERROR));
        assert!(matches!(classify(http500), DeliveryError::Transient { .. }));
        let gone = SlackClientError::ApiError(SlackClientApiError::new("channel_not_found".into()));
        assert_eq!(classify(gone), DeliveryError::Permanent { code: "channel_not_found".into() });
        let busy = SlackClientError::ApiError(SlackClientApiError::new("internal_error".into()));
        assert!(matches!(classify(busy), DeliveryError::Transient { .. }));
        let invalid = SlackClientError::ApiError(
            SlackClientApiError::new("invalid_blocks".into())
                .with_errors(vec!["[ERROR] must be less than 3001 characters".into()]),
        );
        assert_eq!(
            classify(invalid),
            DeliveryError::Permanent { code: "invalid_blocks ([ERROR] must be less than 3001 characters)".into() }
        );
    }
}
