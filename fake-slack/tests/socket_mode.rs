//! Drives the fake's Socket Mode as an app would, over a real WebSocket:
//! `apps.connections.open` and its tokens, `hello`, envelopes and their
//! acknowledgements, `disconnect`, and envelopes delivered again when a
//! socket drops before they were acknowledged.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opsbot_fake_slack::{EnvelopeKind, FakeSlack, SpawnedFake, DEFAULT_APP_TOKEN, DEFAULT_TOKEN, MAX_CONNECTIONS};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(10);

async fn spawn() -> (FakeSlack, SpawnedFake) {
    let slack = FakeSlack::new();
    let server = slack.spawn().await.expect("spawn fake");
    (slack, server)
}

async fn connections_open(server: &SpawnedFake, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().post(format!("{}/apps.connections.open", server.api_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").json().await.expect("json")
}

/// The next text frame, as JSON.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON frame"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// A connection the way an app opens one: the URL, the handshake, hello.
async fn connect(server: &SpawnedFake) -> (Socket, Value) {
    let opened = connections_open(server, Some(DEFAULT_APP_TOKEN)).await;
    let url = opened["url"].as_str().expect("a url");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
    let hello = next_json(&mut socket).await;
    (socket, hello)
}

async fn ack(socket: &mut Socket, envelope_id: &str, payload: Option<Value>) {
    let mut frame = json!({ "envelope_id": envelope_id });
    if let Some(payload) = payload {
        frame["payload"] = payload;
    }
    socket.send(Message::Text(frame.to_string().into())).await.expect("ack sent");
}

fn slash_command(text: &str) -> Value {
    json!({"command": "/incident", "text": text, "user_id": "U0ALICE", "channel_id": "C0GENERAL",
           "team_id": "T0OPSBOT", "trigger_id": "1.2.3"})
}

#[tokio::test]
async fn connections_open_takes_only_the_app_level_token() {
    let (_slack, server) = spawn().await;
    let opened = connections_open(&server, Some(DEFAULT_APP_TOKEN)).await;
    assert_eq!(opened["ok"], true, "{opened}");
    let url = opened["url"].as_str().unwrap();
    assert!(url.starts_with("ws://127.0.0.1:") && url.contains("/link/?ticket="), "{url}");

    assert_eq!(connections_open(&server, Some(DEFAULT_TOKEN)).await["error"], "not_allowed_token_type");
    assert_eq!(connections_open(&server, Some("xapp-1-wrong")).await["error"], "invalid_auth");
    assert_eq!(connections_open(&server, None).await["error"], "not_authed");
    // …and the app-level token opens nothing else.
    let posted = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", server.api_url))
        .bearer_auth(DEFAULT_APP_TOKEN)
        .json(&json!({"channel": "#devops", "text": "hi"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(posted["error"], "not_allowed_token_type");
}

#[tokio::test]
async fn a_connection_is_greeted_and_its_ticket_is_good_once() {
    let (slack, server) = spawn().await;
    let opened = connections_open(&server, Some(DEFAULT_APP_TOKEN)).await;
    let url = opened["url"].as_str().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    assert_eq!(hello["connection_info"]["app_id"], "A0OPSBOT");
    assert_eq!(slack.socket_connections().len(), 1);

    let again = tokio_tungstenite::connect_async(url).await;
    assert!(again.is_err(), "a used ticket is refused");
}

#[tokio::test]
async fn an_envelope_is_delivered_and_its_acknowledgement_recorded_with_its_payload() {
    let (slack, server) = spawn().await;
    let (mut socket, _) = connect(&server).await;
    let id = slack.push_envelope(EnvelopeKind::SlashCommands, slash_command("p3 disk"));
    let frame = next_json(&mut socket).await;
    assert_eq!(frame["envelope_id"], id.as_str());
    assert_eq!(frame["type"], "slash_commands");
    assert_eq!(frame["accepts_response_payload"], true);
    assert_eq!(frame["payload"]["text"], "p3 disk");
    assert_eq!(slack.ack(&id), None);

    ack(&mut socket, &id, Some(json!({"response_type": "ephemeral", "text": "Declared INC-1"}))).await;
    let acked = slack.wait_for_ack(&id, PATIENCE).await.expect("acknowledged");
    assert_eq!(acked.retry_attempt, 0);
    assert_eq!(acked.payload.unwrap()["text"], "Declared INC-1");
    // Slack shows the typer the answer.
    let shown = slack.wait_for(PATIENCE, |s| s.ephemerals().into_iter().next()).await.expect("shown");
    assert_eq!((shown.user.as_str(), shown.text.as_str()), ("U0ALICE", "Declared INC-1"));
    assert!(slack.unacked().is_empty());

    // A second acknowledgement of it is stray, and changes nothing.
    ack(&mut socket, &id, None).await;
    slack.wait_for(PATIENCE, |s| (s.stray_acks() == 1).then_some(())).await.expect("counted");
    assert!(slack.ack(&id).unwrap().payload.is_some());
}

#[tokio::test]
async fn envelopes_say_whether_slack_reads_a_payload_in_the_acknowledgement() {
    let (slack, server) = spawn().await;
    let (mut socket, _) = connect(&server).await;
    slack.push_envelope(EnvelopeKind::Interactive, json!({"type": "block_actions"}));
    slack.push_envelope(EnvelopeKind::Interactive, json!({"type": "view_submission"}));
    slack.push_envelope(EnvelopeKind::EventsApi, json!({"type": "event_callback", "event_id": "Ev1"}));
    let (click, submit, event) =
        (next_json(&mut socket).await, next_json(&mut socket).await, next_json(&mut socket).await);
    assert_eq!(click["accepts_response_payload"], false);
    assert_eq!(submit["accepts_response_payload"], true);
    assert_eq!(event["accepts_response_payload"], false);
    assert_eq!(event["retry_attempt"], 0, "events carry their retry count");
}

#[tokio::test]
async fn envelopes_take_turns_over_the_open_connections() {
    let (slack, server) = spawn().await;
    let (mut first, _) = connect(&server).await;
    let (mut second, hello) = connect(&server).await;
    assert_eq!(hello["num_connections"], 2);
    let a = slack.push_envelope(EnvelopeKind::SlashCommands, slash_command("a"));
    let b = slack.push_envelope(EnvelopeKind::SlashCommands, slash_command("b"));
    let (one, two) = (next_json(&mut first).await, next_json(&mut second).await);
    let mut got = [one["envelope_id"].as_str().unwrap().to_owned(), two["envelope_id"].as_str().unwrap().to_owned()];
    got.sort();
    assert_eq!(got, [a, b]);
}

#[tokio::test]
async fn a_dropped_socket_s_unacknowledged_envelopes_come_again_on_another_connection() {
    let (slack, server) = spawn().await;
    let (mut first, _) = connect(&server).await;
    let [one] = slack.socket_connections()[..] else { panic!() };
    let (mut second, _) = connect(&server).await;
    let acked = slack.push_envelope_to(one, EnvelopeKind::SlashCommands, slash_command("acked"));
    let lost = slack.push_envelope_to(one, EnvelopeKind::EventsApi, json!({"event_id": "Ev1"}));
    assert_eq!(next_json(&mut first).await["envelope_id"], acked.as_str());
    assert_eq!(next_json(&mut first).await["envelope_id"], lost.as_str());
    ack(&mut first, &acked, None).await;
    slack.wait_for_ack(&acked, PATIENCE).await.expect("acknowledged");

    slack.drop_socket(one);
    let again = next_json(&mut second).await;

    assert_eq!(again["envelope_id"], lost.as_str());
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    assert!(
        matches!(tokio::time::timeout(PATIENCE, first.next()).await, Ok(None | Some(Err(_)))),
        "the dropped socket ends without a close frame"
    );
    ack(&mut second, &lost, None).await;
    let ack = slack.wait_for_ack(&lost, PATIENCE).await.unwrap();
    assert_eq!(ack.retry_attempt, 1);
    assert_eq!(slack.socket_connections().len(), 1);
}

#[tokio::test]
async fn an_acknowledgement_lost_with_its_socket_is_asked_for_again() {
    let (slack, server) = spawn().await;
    let (mut first, _) = connect(&server).await;
    let [one] = slack.socket_connections()[..] else { panic!() };
    let id = slack.push_envelope_to(one, EnvelopeKind::SlashCommands, slash_command("x"));
    slack.drop_socket_on_ack(&id);
    next_json(&mut first).await;
    ack(&mut first, &id, Some(json!({"text": "first"}))).await;
    slack.wait_for(PATIENCE, |s| s.socket_connections().is_empty().then_some(())).await.expect("dropped");
    assert_eq!(slack.ack(&id), None, "the acknowledgement never arrived");

    // No connection is open: it waits for the next one.
    let (mut second, _) = connect(&server).await;
    let again = next_json(&mut second).await;
    assert_eq!((again["envelope_id"].as_str(), again["retry_attempt"].as_u64()), (Some(id.as_str()), Some(1)));
    ack(&mut second, &id, Some(json!({"text": "again"}))).await;
    assert_eq!(slack.wait_for_ack(&id, PATIENCE).await.unwrap().payload.unwrap()["text"], "again");
}

#[tokio::test]
async fn disconnect_tells_the_app_then_closes_the_connection() {
    let (slack, server) = spawn().await;
    let (mut socket, _) = connect(&server).await;
    let [one] = slack.socket_connections()[..] else { panic!() };
    slack.disconnect(one, "refresh_requested", Some(Duration::from_millis(50)));
    let frame = next_json(&mut socket).await;
    assert_eq!((frame["type"].as_str(), frame["reason"].as_str()), (Some("disconnect"), Some("refresh_requested")));
    let closed = tokio::time::timeout(PATIENCE, socket.next()).await.expect("closed in time");
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None), "{closed:?}");
    slack.wait_for(PATIENCE, |s| s.socket_connections().is_empty().then_some(())).await.expect("gone");
}

#[tokio::test]
async fn more_connections_than_slack_allows_are_refused() {
    let (slack, server) = spawn().await;
    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        open.push(connect(&server).await.0);
    }
    let (mut extra, refusal) = connect(&server).await;
    assert_eq!(
        (refusal["type"].as_str(), refusal["reason"].as_str()),
        (Some("disconnect"), Some("too_many_websockets"))
    );
    assert!(matches!(extra.next().await, Some(Ok(Message::Close(_))) | None | Some(Err(_))));
    assert_eq!(slack.socket_connections().len(), MAX_CONNECTIONS);
}
