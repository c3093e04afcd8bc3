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

/// The Web API as opsbot uses it.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    /// The Web API's origin: a `response_url` there (the fake, the
    /// sandbox) is trusted like Slack's own `hooks.slack.com`.
    api_origin: Option<url::Origin>,
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
        let mut request = SlackApiChatPostMessageRequest::new(channel.into(), Self::content(text, blocks)?);
        if let Some(ts) = thread_ts {
            request = request.with_thread_ts(ts.into());
        }
        let session = self.client.open_session(&self.token);
        let response = session.chat_post_message(&request).await.map_err(classify)?;
        Ok(MessageRef { channel: response.channel.to_string(), ts: response.ts.to_string() })
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
        let request = SlackApiChatUpdateRequest::new(
            message.channel.as_str().into(),
            Self::content(text, blocks)?,
            message.ts.as_str().into(),
        );
        let session = self.client.open_session(&self.token);
        session.chat_update(&request).await.map(drop).map_err(classify)
    }

    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<(), DeliveryError> {
        let request = SlackApiChatPostEphemeralRequest::new(channel.into(), user.into(), Self::content(text, blocks)?);
        let session = self.client.open_session(&self.token);
        session.chat_post_ephemeral(&request).await.map(drop).map_err(classify)
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
