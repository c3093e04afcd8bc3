//! Talks to the fake through slack-morphism, the client opsbot uses, so a
//! response shape the real client cannot decode fails here rather than in the
//! bot's end-to-end tests.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use opsbot_fake_slack::{Failure, FakeSlack, SpawnedFake};
use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

type Client = SlackClient<SlackClientHyperConnector<HttpConnector>>;

async fn setup() -> (FakeSlack, SpawnedFake, Client, SlackApiToken) {
    let slack = FakeSlack::new();
    let server = slack.spawn().await.expect("spawn fake");
    let connector = SlackClientHyperConnector::with_connector(HttpConnector::new()).with_slack_api_url(&server.api_url);
    let token = SlackApiToken::new(SlackApiTokenValue::new("xoxb-test-token".into()));
    (slack, server, SlackClient::new(connector), token)
}

fn content(text: &str, blocks: serde_json::Value) -> SlackMessageContent {
    SlackMessageContent::new().with_text(text.into()).with_blocks(serde_json::from_value(blocks).expect("blocks"))
}

#[tokio::test]
async fn the_real_client_round_trips_every_method() {
    let (slack, _server, client, token) = setup().await;
    let session = client.open_session(&token);

    let auth = session.auth_test().await.expect("auth.test");
    assert_eq!(auth.user_id.0, "U0OPSBOT");
    assert_eq!(auth.team_id.0, "T0OPSBOT");

    let blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy failed"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*main* is red"}},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, "action_id": "ack", "style": "primary"}
        ]}
    ]);
    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "#devops".into(),
            content("Deploy failed", blocks.clone()),
        ))
        .await
        .expect("chat.postMessage");
    assert_eq!(posted.channel.0, "C0DEVOPS");

    let reply = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new(
                posted.channel.clone(),
                SlackMessageContent::new().with_text("looking".into()),
            )
            .with_thread_ts(posted.ts.clone()),
        )
        .await
        .expect("reply");
    assert_eq!(reply.message.origin.thread_ts, Some(posted.ts.clone()));

    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            posted.channel.clone(),
            content("Deploy fixed", blocks),
            posted.ts.clone(),
        ))
        .await
        .expect("chat.update");
    assert_eq!(updated.ts, posted.ts);

    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            "C0DEVOPS".into(),
            "U0ALICE".into(),
            SlackMessageContent::new().with_text("psst".into()),
        ))
        .await
        .expect("chat.postEphemeral");

    let view: SlackView = serde_json::from_value(json!({
        "type": "modal",
        "title": {"type": "plain_text", "text": "New incident"},
        "submit": {"type": "plain_text", "text": "Open"},
        "blocks": [{"type": "input", "block_id": "title",
                    "label": {"type": "plain_text", "text": "Title"},
                    "element": {"type": "plain_text_input", "action_id": "title"}}]
    }))
    .expect("view");
    let opened = session.views_open(&SlackApiViewsOpenRequest::new("1.2.3".into(), view)).await.expect("views.open");
    assert_eq!(opened.view.state_params.team_id.0, "T0OPSBOT");

    let alice = session.users_info(&SlackApiUsersInfoRequest::new("U0ALICE".into())).await.expect("users.info");
    assert_eq!(alice.user.tz.as_deref(), Some("Europe/Berlin"));
    let users = session.users_list(&SlackApiUsersListRequest::new()).await.expect("users.list");
    assert!(users.members.len() >= 5);
    let channels =
        session.conversations_list(&SlackApiConversationsListRequest::new()).await.expect("conversations.list");
    assert_eq!(channels.channels.len(), 3);
    let info = session
        .conversations_info(&SlackApiConversationsInfoRequest::new("C0ALERTS".into()))
        .await
        .expect("conversations.info");
    assert_eq!(info.channel.name.as_deref(), Some("devops-alerts"));

    let stored = slack.messages("#devops");
    assert_eq!(stored.len(), 2);
    assert_eq!((stored[0].text.as_str(), stored[0].edits), ("Deploy fixed", 1));
    assert_eq!(slack.thread("#devops", &posted.ts.0).len(), 1);
    assert_eq!(slack.ephemerals().len(), 1);
    assert_eq!(slack.views().len(), 1);
}

#[tokio::test]
async fn the_real_client_sees_slack_errors() {
    let (slack, _server, client, token) = setup().await;
    let session = client.open_session(&token);
    let post = |channel: &str, blocks: serde_json::Value| {
        SlackApiChatPostMessageRequest::new(channel.into(), content("x", blocks))
    };

    match session.chat_post_message(&post("#nope", json!([]))).await {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "channel_not_found"),
        other => panic!("expected channel_not_found, got {other:?}"),
    }

    let long = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}]);
    match session.chat_post_message(&post("#devops", long)).await {
        Err(SlackClientError::ApiError(e)) => {
            assert_eq!(e.code, "invalid_blocks");
            // Slack puts the details in `response_metadata.messages`, which
            // slack-morphism does not lift into `errors`; the raw body has them.
            let body: serde_json::Value =
                serde_json::from_str(e.http_response_body.as_deref().unwrap_or("{}")).unwrap();
            assert_eq!(
                body["response_metadata"]["messages"],
                json!(["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"])
            );
        }
        other => panic!("expected invalid_blocks, got {other:?}"),
    }

    slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 3 });
    match session.chat_post_message(&post("#devops", json!([]))).await {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }

    slack.fail_next("chat.postMessage", Failure::HttpStatus(500));
    match session.chat_post_message(&post("#devops", json!([]))).await {
        Err(SlackClientError::HttpError(e)) => assert_eq!(e.status_code.as_u16(), 500),
        other => panic!("expected HTTP 500, got {other:?}"),
    }

    let bad_token = SlackApiToken::new(SlackApiTokenValue::new("xoxb-nope".into()));
    match client.open_session(&bad_token).auth_test().await {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "invalid_auth"),
        other => panic!("expected invalid_auth, got {other:?}"),
    }
    assert!(slack.all_messages().is_empty());
}
