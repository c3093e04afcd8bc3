//! Slack's Socket Mode, faked: `apps.connections.open` (in `api.rs`) mints
//! a one-time `ws://127.0.0.1:…/link/?ticket=…` URL; the link server,
//! started on first use, greets each connection with `hello`, delivers the
//! envelopes a test pushes (one connection each, taking turns, as Slack
//! spreads them), records each acknowledgement with its payload, sends
//! `disconnect` messages, and closes or drops sockets. An envelope not
//! acknowledged on a socket that closes is delivered again on another
//! connection with `retry_attempt` one higher, as Slack redelivers what it
//! never saw acknowledged; it waits for a connection when none is open.
//!
//! Not faked: redelivery after the 3-second acknowledgement deadline on a
//! socket that stays open (tests would then race the clock), and Slack's
//! periodic refreshes, which a test asks for with [`FakeSlack::disconnect`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

use crate::state::APP_ID;
use crate::{FakeSlack, Inner};

/// The app-level token [`FakeSlack::new`] accepts for `apps.connections.open`.
pub const DEFAULT_APP_TOKEN: &str = "xapp-1-A0OPSBOT-1-test-app-token";

/// Slack allows this many open connections per app; one more is told
/// `too_many_websockets` and closed.
pub const MAX_CONNECTIONS: usize = 10;

/// The kinds of envelope Slack sends an app, as their `type` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// A slash command (`slash_commands`); its acknowledgement may carry
    /// the reply, which Slack shows the typer.
    SlashCommands,
    /// `block_actions`, `view_submission`, … (`interactive`); a modal
    /// submission's acknowledgement may carry a `response_action`.
    Interactive,
    /// An Events API callback (`events_api`).
    EventsApi,
}

impl EnvelopeKind {
    fn wire(self) -> &'static str {
        match self {
            EnvelopeKind::SlashCommands => "slash_commands",
            EnvelopeKind::Interactive => "interactive",
            EnvelopeKind::EventsApi => "events_api",
        }
    }

    /// Whether Slack reads a payload in the acknowledgement.
    fn accepts_response_payload(self, payload: &Value) -> bool {
        match self {
            EnvelopeKind::SlashCommands => true,
            EnvelopeKind::Interactive => {
                matches!(payload["type"].as_str(), Some("view_submission" | "block_suggestion"))
            }
            EnvelopeKind::EventsApi => false,
        }
    }
}

/// An acknowledgement the fake took (the first for its envelope).
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    pub envelope_id: String,
    /// The connection it came on.
    pub connection: u64,
    /// The delivery it acknowledged: 0 for the first, then Slack's retries.
    pub retry_attempt: u32,
    /// What the app answered with, when it did.
    pub payload: Option<Value>,
}

/// What a connection is told to do by the test.
enum Command {
    Send(String),
    /// Close with a close frame, as Slack ends a refreshed connection.
    Close,
    /// Drop the TCP connection without a close frame, as a network does.
    Drop,
}

struct Envelope {
    kind: EnvelopeKind,
    payload: Value,
    retry_attempt: u32,
    /// The connection it was last delivered on; `None` while it waits.
    on: Option<u64>,
    ack: Option<Ack>,
}

/// The link server's state; one std mutex, never held across an await.
#[derive(Default)]
pub(crate) struct Sockets {
    /// Tickets minted by `apps.connections.open`, each good for one connection.
    tickets: HashSet<String>,
    next_ticket: u64,
    next_connection: u64,
    next_envelope: u64,
    /// Open connections (greeted) by id.
    open: BTreeMap<u64, mpsc::UnboundedSender<Command>>,
    /// Where the next envelope goes among the open connections.
    turn: usize,
    envelopes: HashMap<String, Envelope>,
    /// Envelopes waiting for a connection, oldest first.
    waiting: VecDeque<String>,
    /// Envelopes whose acknowledgement is lost with its socket.
    drop_on_ack: HashSet<String>,
    /// Acknowledgements of unknown or already acknowledged envelopes.
    stray_acks: usize,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("open", &self.open.keys().collect::<Vec<_>>())
            .field("envelopes", &self.envelopes.len())
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl Sockets {
    fn frame(id: &str, e: &Envelope) -> String {
        let mut frame = json!({
            "envelope_id": id,
            "payload": e.payload,
            "type": e.kind.wire(),
            "accepts_response_payload": e.kind.accepts_response_payload(&e.payload),
            "retry_attempt": e.retry_attempt,
            "retry_reason": if e.retry_attempt == 0 { "" } else { "timeout" },
        });
        if e.kind != EnvelopeKind::EventsApi && e.retry_attempt == 0 {
            // Slack sends the retry fields with events only.
            let map = frame.as_object_mut().expect("an object");
            map.remove("retry_attempt");
            map.remove("retry_reason");
        }
        frame.to_string()
    }

    /// Sends `id` on `connection`, or on the next open connection in
    /// turn; it waits when none is open.
    fn deliver(&mut self, id: &str, connection: Option<u64>) {
        let target = connection.filter(|c| self.open.contains_key(c)).or_else(|| {
            let ids: Vec<u64> = self.open.keys().copied().collect();
            (!ids.is_empty()).then(|| {
                self.turn = (self.turn + 1) % ids.len();
                ids[self.turn]
            })
        });
        let Some(envelope) = self.envelopes.get_mut(id) else { return };
        match target {
            Some(c) => {
                envelope.on = Some(c);
                let frame = Self::frame(id, envelope);
                let _ = self.open[&c].send(Command::Send(frame));
            }
            None => {
                envelope.on = None;
                self.waiting.push_back(id.to_owned());
            }
        }
    }

    /// A connection is gone: what it was given and never acknowledged is
    /// delivered again elsewhere.
    fn closed(&mut self, connection: u64) {
        self.open.remove(&connection);
        let mut lost: Vec<String> = self
            .envelopes
            .iter()
            .filter(|(_, e)| e.on == Some(connection) && e.ack.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        lost.sort();
        for id in lost {
            if let Some(e) = self.envelopes.get_mut(&id) {
                e.retry_attempt += 1;
            }
            self.deliver(&id, None);
        }
    }
}

/// What the fake does with an acknowledgement frame.
enum AckOutcome {
    Taken,
    /// The test asked for this acknowledgement to be lost with its socket.
    DropSocket,
}

impl Inner {
    fn sockets(&self) -> MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeSlack {
    /// What `apps.connections.open` answers: a new one-time link URL,
    /// starting the link server on first use.
    pub(crate) async fn socket_link_url(&self) -> std::io::Result<String> {
        let addr = self
            .inner
            .link_server
            .get_or_try_init(|| async {
                let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
                let addr = listener.local_addr()?;
                tokio::spawn(accept(listener, Arc::downgrade(&self.inner)));
                Ok::<SocketAddr, std::io::Error>(addr)
            })
            .await?;
        let ticket = {
            let mut sockets = self.inner.sockets();
            sockets.next_ticket += 1;
            let ticket = format!("{:04x}-fake-ticket", sockets.next_ticket);
            sockets.tickets.insert(ticket.clone());
            ticket
        };
        Ok(format!("ws://{addr}/link/?ticket={ticket}&app_id={APP_ID}"))
    }

    /// The open Socket Mode connections (greeted with `hello`), oldest first.
    pub fn socket_connections(&self) -> Vec<u64> {
        self.inner.sockets().open.keys().copied().collect()
    }

    /// Waits until at least `n` connections are open; returns them.
    pub async fn wait_for_socket_connections(&self, n: usize, timeout: Duration) -> Option<Vec<u64>> {
        self.wait_for(timeout, |s| Some(s.socket_connections()).filter(|c| c.len() >= n)).await
    }

    /// Sends an envelope of `kind` with `payload` (what Slack would post
    /// over HTTP, as JSON) to the next open connection in turn, or when
    /// one opens; returns its envelope id.
    pub fn push_envelope(&self, kind: EnvelopeKind, payload: Value) -> String {
        self.push(kind, payload, None)
    }

    /// [`FakeSlack::push_envelope`] to one connection.
    pub fn push_envelope_to(&self, connection: u64, kind: EnvelopeKind, payload: Value) -> String {
        self.push(kind, payload, Some(connection))
    }

    fn push(&self, kind: EnvelopeKind, payload: Value, connection: Option<u64>) -> String {
        let mut sockets = self.inner.sockets();
        sockets.next_envelope += 1;
        let id = format!("{:08x}-fake-4e1b-envelope", sockets.next_envelope);
        sockets.envelopes.insert(id.clone(), Envelope { kind, payload, retry_attempt: 0, on: None, ack: None });
        sockets.deliver(&id, connection);
        id
    }

    /// The acknowledgement of an envelope, once it came.
    pub fn ack(&self, envelope_id: &str) -> Option<Ack> {
        self.inner.sockets().envelopes.get(envelope_id).and_then(|e| e.ack.clone())
    }

    /// Waits for an envelope's acknowledgement.
    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> Option<Ack> {
        self.wait_for(timeout, |s| s.ack(envelope_id)).await
    }

    /// Envelopes pushed and not acknowledged yet.
    pub fn unacked(&self) -> Vec<String> {
        let sockets = self.inner.sockets();
        let mut ids: Vec<String> =
            sockets.envelopes.iter().filter(|(_, e)| e.ack.is_none()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// Acknowledgements of envelopes that were unknown, already
    /// acknowledged, or not delivered on the connection they came on.
    pub fn stray_acks(&self) -> usize {
        self.inner.sockets().stray_acks
    }

    /// Sends `{"type":"disconnect","reason":…}` on a connection, as Slack
    /// does before it refreshes one (`warning`, `refresh_requested`) or
    /// when Socket Mode is turned off (`link_disabled`); with `close_after`
    /// the connection is then closed, as Slack closes it a few seconds on.
    pub fn disconnect(&self, connection: u64, reason: &str, close_after: Option<Duration>) {
        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}});
        let Some(tx) = self.inner.sockets().open.get(&connection).cloned() else { return };
        let _ = tx.send(Command::Send(frame.to_string()));
        if let Some(after) = close_after {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(Command::Close);
            });
        }
    }

    /// Drops a connection's socket at once, without a close frame: what it
    /// was given and did not acknowledge is delivered again elsewhere.
    pub fn drop_socket(&self, connection: u64) {
        if let Some(tx) = self.inner.sockets().open.get(&connection) {
            let _ = tx.send(Command::Drop);
        }
    }

    /// When the acknowledgement of `envelope_id` arrives, it is lost and
    /// its socket dropped: the app acted, Slack never heard, and delivers
    /// it again on another connection.
    pub fn drop_socket_on_ack(&self, envelope_id: &str) {
        self.inner.sockets().drop_on_ack.insert(envelope_id.to_owned());
    }

    /// Takes an acknowledgement frame sent on `connection`.
    fn take_ack(&self, connection: u64, text: &str) -> AckOutcome {
        let outcome = {
            let mut sockets = self.inner.sockets();
            let frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let id = frame["envelope_id"].as_str().unwrap_or_default().to_owned();
            let lose = sockets.drop_on_ack.remove(&id);
            match sockets.envelopes.get_mut(&id) {
                Some(e) if e.on == Some(connection) && e.ack.is_none() && lose => AckOutcome::DropSocket,
                Some(e) if e.on == Some(connection) && e.ack.is_none() => {
                    let payload = frame.get("payload").filter(|p| !p.is_null()).cloned();
                    e.ack = Some(Ack { envelope_id: id, connection, retry_attempt: e.retry_attempt, payload });
                    // Slack shows a slash command's answer to its typer.
                    let reply = (e.kind == EnvelopeKind::SlashCommands).then(|| (e.payload.clone(), e.ack.clone()));
                    drop(sockets);
                    if let Some((command, Some(Ack { payload: Some(answer), .. }))) = reply {
                        self.show_reply(&command, &answer);
                    }
                    AckOutcome::Taken
                }
                _ => {
                    sockets.stray_acks += 1;
                    AckOutcome::Taken
                }
            }
        };
        self.inner.changed.notify_waiters();
        outcome
    }

    /// A slash command's answer in its acknowledgement, as the ephemeral
    /// message its typer sees.
    fn show_reply(&self, command: &Value, answer: &Value) {
        let text = answer["text"].as_str().unwrap_or_default();
        let (channel, user) = (command["channel_id"].as_str(), command["user_id"].as_str());
        if let (Some(channel), Some(user)) = (channel, user) {
            let blocks = answer.get("blocks").cloned().unwrap_or(Value::Null);
            // An unknown channel or user shows nothing, as in Slack.
            let _ = self.add_ephemeral(channel, user, text, blocks);
        }
    }
}

/// Accepts link connections while the fake lives.
async fn accept(listener: TcpListener, fake: Weak<Inner>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let Some(inner) = fake.upgrade() else { return };
        tokio::spawn(serve(FakeSlack { inner }, stream));
    }
}

/// One connection: the ticket checked in the handshake, `hello`, then
/// envelopes out and acknowledgements in until it closes.
// The handshake callback's error type is tungstenite's, not ours to box.
#[allow(clippy::result_large_err)]
async fn serve(fake: FakeSlack, stream: TcpStream) {
    let tickets = fake.clone();
    let check = move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let ticket = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("ticket="))
            .unwrap_or_default();
        if tickets.inner.sockets().tickets.remove(ticket) {
            Ok(response)
        } else {
            let mut refused = ErrorResponse::new(Some("invalid or used ticket".to_owned()));
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
            Err(refused)
        }
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, check).await else { return };
    let (tx, mut commands) = mpsc::unbounded_channel();
    let admitted = {
        let mut sockets = fake.inner.sockets();
        if sockets.open.len() >= MAX_CONNECTIONS {
            Err(json!({"type": "disconnect", "reason": "too_many_websockets", "num_connections": sockets.open.len(),
                "debug_info": {"host": "applink-fake"}, "connection_info": {"app_id": APP_ID}}))
        } else {
            sockets.next_connection += 1;
            let connection = sockets.next_connection;
            let hello = json!({"type": "hello", "num_connections": sockets.open.len() + 1,
                "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID}});
            // Queued before anything else, so hello goes out first.
            let _ = tx.send(Command::Send(hello.to_string()));
            sockets.open.insert(connection, tx);
            let waiting: Vec<String> = sockets.waiting.drain(..).collect();
            for id in waiting {
                sockets.deliver(&id, Some(connection));
            }
            Ok(connection)
        }
    };
    let connection = match admitted {
        Ok(connection) => connection,
        Err(refusal) => {
            let _ = socket.send(Message::Text(refusal.to_string().into())).await;
            let _ = socket.close(None).await;
            return;
        }
    };
    fake.inner.changed.notify_waiters();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Command::Close) => {
                    let _ = socket.close(None).await;
                    break;
                }
                Some(Command::Drop) | None => break,
            },
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let AckOutcome::DropSocket = fake.take_ack(connection, &text) {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    // Dropping the socket ends the TCP connection, with or without a
    // close frame before it.
    drop(socket);
    fake.inner.sockets().closed(connection);
    fake.inner.changed.notify_waiters();
}
