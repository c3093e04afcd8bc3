//! Socket Mode: Slack's commands, interactions and events arrive over
//! WebSocket connections that opsbot opens with the app-level token
//! (`SLACK_APP_TOKEN`), so the bot needs no public address. Each envelope
//! is handled by the same functions as the HTTP routes ([`inbound`]) and
//! acknowledged with the answer an HTTP request would have been given: a
//! slash command's ephemeral reply, a modal's `response_action`.
//!
//! Each replica keeps [`SocketModeSettings::connections`] connections open
//! (Slack spreads envelopes over all of an app's connections, up to ten).
//! When Slack asks for a connection to be refreshed (`disconnect`), its
//! replacement is opened first, and the old one is read until Slack closes
//! it; a dropped socket is replaced at once, while the other connection
//! carries on. An envelope whose acknowledgement was lost with its socket
//! comes back (Slack redelivers it, maybe to another replica): its id was
//! claimed in the store when it was first handled, and the answer kept, so
//! it is acknowledged again with the same answer and acted on once.
//!
//! Written over tokio-tungstenite rather than with slack-morphism's
//! `SlackClientSocketModeListener`, which would serve the protocol but not
//! this bot: it parses envelopes into its own types (and acknowledges, so
//! drops, one it cannot parse), where opsbot reads them with the HTTP
//! routes' own payload types so both transports read a payload alike; it
//! handles one envelope at a time per connection, so a click waiting for a
//! modal to open would hold up everyone's commands; on `disconnect` it
//! closes the connection before opening the next; and it logs connection
//! URLs, whose ticket is a credential, and whole envelopes at trace level.

use crate::config::Secret;
use crate::error::AppError;
use crate::inbound::{self, SlackAnswer};
use crate::slack::client::DeliveryError;
use crate::state::AppState;
use crate::store::EnvelopeClaim;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long an envelope's claim holds while it is handled: longer than
/// any handling takes (a modal gets 2.5 s to open). Should the replica die
/// meanwhile, Slack's next delivery after this is handled afresh.
const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How long a handled envelope's answer is kept for Slack's redeliveries,
/// which come within minutes.
const ANSWER_TTL: Duration = Duration::from_secs(3600);
/// How often a redelivery looks again whether the handler that has the
/// envelope (here or on another replica) has answered or given it up.
const BUSY_POLL: Duration = Duration::from_millis(50);

/// How the connections are kept; tests shorten the waits.
#[derive(Clone, Debug)]
pub struct SocketModeSettings {
    /// Connections this replica keeps open. Two, so that one being
    /// replaced never leaves the replica deaf; Slack allows ten per app,
    /// shared by all replicas.
    pub connections: usize,
    /// The first wait before opening a connection again after a failure;
    /// it doubles with each failure in a row, up to `reconnect_max`.
    pub reconnect_first: Duration,
    pub reconnect_max: Duration,
    /// Slack greets a new connection (`hello`) before it delivers on it.
    pub hello_within: Duration,
    /// How often opsbot pings Slack; a connection on which nothing at all
    /// arrived for `silent_for` (not even a pong) is taken for dead.
    pub ping_every: Duration,
    pub silent_for: Duration,
    /// How long a closing connection waits for the envelopes it is still
    /// handling, so their acknowledgements go out on it.
    pub drain_within: Duration,
    /// How long a connection Slack asked to replace is kept reading
    /// before opsbot closes it itself, should Slack not.
    pub refresh_grace: Duration,
}

impl Default for SocketModeSettings {
    fn default() -> Self {
        SocketModeSettings {
            connections: 2,
            reconnect_first: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            hello_within: Duration::from_secs(10),
            ping_every: Duration::from_secs(10),
            silent_for: Duration::from_secs(35),
            drain_within: Duration::from_secs(5),
            refresh_grace: Duration::from_secs(30),
        }
    }
}

/// Why a connection could not be opened. Never carries the connection
/// URL (its ticket lets anyone connect as the app) or a token.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("apps.connections.open failed: {0}")]
    Open(DeliveryError),
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(String),
    #[error("Slack sent no hello within {0:?}")]
    NoHello(Duration),
    #[error("Slack closed the new connection before its hello ({0})")]
    Refused(String),
}

/// A frame from Slack: `hello`, `disconnect`, or an envelope
/// (`slash_commands`, `interactive`, `events_api`, …).
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    /// Whether Slack reads a payload in the acknowledgement.
    #[serde(default)]
    accepts_response_payload: bool,
    /// 0 on the first delivery; Slack counts its redeliveries.
    #[serde(default)]
    retry_attempt: u32,
    /// A `disconnect`'s reason: `warning`, `refresh_requested`,
    /// `link_disabled`, `too_many_websockets`.
    #[serde(default)]
    reason: Option<String>,
}

/// Keeps the replica's Socket Mode connections open until `shutdown`.
pub async fn run(app: Arc<AppState>, app_token: Secret, settings: SocketModeSettings, shutdown: CancellationToken) {
    tracing::info!(connections = settings.connections, "Socket Mode: opening connections to Slack");
    let links: Vec<JoinHandle<()>> = (0..settings.connections.max(1))
        .map(|slot| {
            let link = Link { app: app.clone(), app_token: app_token.clone(), settings: settings.clone(), slot };
            tokio::spawn(link.keep(shutdown.clone()))
        })
        .collect();
    for link in links {
        if let Err(e) = link.await {
            tracing::error!(error = %e, "a Socket Mode connection keeper failed");
        }
    }
}

/// One of the replica's connections, kept open: opened again when it
/// drops, replaced before it closes when Slack asks.
struct Link {
    app: Arc<AppState>,
    app_token: Secret,
    settings: SocketModeSettings,
    slot: usize,
}

impl Link {
    async fn keep(self, shutdown: CancellationToken) {
        let mut next: Option<Connection> = None;
        loop {
            let mut connection = match next.take() {
                Some(connection) => connection,
                None => match self.open_until_done(&shutdown).await {
                    Some(connection) => connection,
                    None => return,
                },
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    connection.close().await;
                    return;
                }
                ending = connection.ending() => match ending {
                    Ending::Replace(reason) => {
                        if reason == "link_disabled" {
                            tracing::error!(slot = self.slot, "Slack says Socket Mode was turned off in the app's settings; opsbot keeps trying to connect until it is on again");
                        } else {
                            tracing::info!(slot = self.slot, %reason, "Slack asked for a new connection; opening it before the old one closes");
                        }
                        // The old connection may still deliver until Slack
                        // closes it: it keeps reading while its
                        // replacement opens, and after, until Slack closes
                        // it (or the grace runs out).
                        next = self.open_until_done(&shutdown).await;
                        tokio::spawn(connection.retire(self.settings.refresh_grace, shutdown.clone()));
                        if next.is_none() {
                            return;
                        }
                    }
                    Ending::Closed(why) => {
                        tracing::warn!(slot = self.slot, reason = %why, "a Socket Mode connection dropped; opening another");
                        connection.close().await;
                    }
                },
            }
        }
    }

    /// Opens a connection, waiting longer after each failure in a row;
    /// `None` once shutting down.
    async fn open_until_done(&self, shutdown: &CancellationToken) -> Option<Connection> {
        let mut failures = 0u32;
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return None,
                attempt = self.open() => attempt,
            };
            match attempt {
                Ok(connection) => {
                    tracing::info!(slot = self.slot, "Socket Mode connection open");
                    return Some(connection);
                }
                Err(e) => {
                    failures += 1;
                    // A refused token will not fix itself soon: wait long.
                    let refused = matches!(&e, LinkError::Open(DeliveryError::Permanent { .. }));
                    let wait = if refused { self.settings.reconnect_max } else { self.backoff(failures) };
                    tracing::warn!(slot = self.slot, error = %e, retry_in = ?wait, "could not open a Socket Mode connection");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// The wait after `failures` failures in a row, with up to a quarter
    /// of jitter so replicas do not come back in step.
    fn backoff(&self, failures: u32) -> Duration {
        let base = self.settings.reconnect_first.saturating_mul(1 << failures.saturating_sub(1).min(16));
        let base = base.min(self.settings.reconnect_max);
        let mut random = [0u8; 2];
        let _ = getrandom::fill(&mut random);
        let jitter = base.mul_f64(f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX) / 4.0);
        base + jitter
    }

    /// `apps.connections.open`, the WebSocket handshake, and Slack's hello.
    async fn open(&self) -> Result<Connection, LinkError> {
        let url = self.app.slack.open_socket_mode_connection(&self.app_token).await.map_err(LinkError::Open)?;
        let within = self.settings.hello_within;
        let greeted = async {
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(|e| LinkError::Handshake(handshake_error(&e)))?;
            // Nothing is delivered on a connection before its hello.
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Frame>(&text) {
                        Ok(frame) if frame.kind == "hello" => return Ok(socket),
                        Ok(frame) if frame.kind == "disconnect" => {
                            return Err(LinkError::Refused(frame.reason.unwrap_or_default()))
                        }
                        _ => tracing::debug!("ignored a frame before hello"),
                    },
                    Some(Ok(Message::Close(_))) | None => return Err(LinkError::Refused("closed".into())),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(LinkError::Handshake(handshake_error(&e))),
                }
            }
        };
        let socket = tokio::time::timeout(within, greeted).await.map_err(|_| LinkError::NoHello(within))??;
        Ok(Connection::serve(self.app.clone(), socket, self.settings.clone()))
    }
}

/// tungstenite's errors, without anything of the URL.
fn handshake_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(response) => format!("HTTP {}", response.status().as_u16()),
        E::Url(_) => "Slack gave a URL that cannot be connected to".to_owned(),
        E::Io(io) => format!("{}", io.kind()),
        other => opsbot_handlers::text::truncate(&other.to_string(), 200),
    }
}

/// How a connection ended, or that Slack wants it replaced.
#[derive(Debug)]
enum Ending {
    /// A `disconnect` came: Slack closes it soon, and may deliver on it
    /// until then.
    Replace(String),
    /// The socket is gone.
    Closed(String),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open connection, read and written by its own task.
struct Connection {
    endings: mpsc::UnboundedReceiver<Ending>,
    close: CancellationToken,
    task: JoinHandle<()>,
}

impl Connection {
    fn serve(app: Arc<AppState>, socket: Socket, settings: SocketModeSettings) -> Connection {
        let (tx, endings) = mpsc::unbounded_channel();
        let close = CancellationToken::new();
        let task = tokio::spawn(serve(app, socket, settings, tx, close.clone()));
        Connection { endings, close, task }
    }

    async fn ending(&mut self) -> Ending {
        self.endings.recv().await.unwrap_or_else(|| Ending::Closed("its task ended".into()))
    }

    /// A connection Slack wants replaced, once its replacement is open:
    /// still read until Slack closes it, at most `grace`.
    async fn retire(mut self, grace: Duration, shutdown: CancellationToken) {
        tokio::select! {
            _ = async { while let Ending::Replace(_) = self.ending().await {} } => {}
            _ = tokio::time::sleep(grace) => {}
            _ = shutdown.cancelled() => {}
        }
        self.close().await;
    }

    /// Stops reading, lets the envelopes being handled send their
    /// acknowledgements (within the drain time), and closes.
    async fn close(self) {
        self.close.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "a Socket Mode connection's task failed");
        }
    }
}

/// Reads frames until the socket ends or opsbot closes it; each envelope
/// is handled in a task of its own, its acknowledgement written back here.
async fn serve(
    app: Arc<AppState>,
    socket: Socket,
    settings: SocketModeSettings,
    endings: mpsc::UnboundedSender<Ending>,
    close: CancellationToken,
) {
    app.metrics.socket_mode_connections.inc();
    let (mut sink, mut stream) = socket.split();
    let (acks, mut pending_acks) = mpsc::unbounded_channel::<String>();
    let mut handling = JoinSet::new();
    let mut ping = tokio::time::interval(settings.ping_every);
    ping.tick().await;
    let mut heard = Instant::now();
    let ended: Result<&str, String> = loop {
        tokio::select! {
            _ = close.cancelled() => break Ok("closed by opsbot"),
            frame = stream.next() => {
                heard = Instant::now();
                match frame {
                    None => break Err("the socket closed".into()),
                    Some(Err(e)) => break Err(handshake_error(&e)),
                    Some(Ok(Message::Close(_))) => break Err("Slack closed the connection".into()),
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Frame>(&text) {
                        Ok(frame) if frame.kind == "disconnect" => {
                            let _ = endings.send(Ending::Replace(frame.reason.unwrap_or_default()));
                        }
                        Ok(frame) if frame.kind == "hello" => {}
                        Ok(frame) => match frame.envelope_id.clone() {
                            Some(envelope_id) => {
                                let (app, acks) = (app.clone(), acks.clone());
                                handling.spawn(async move {
                                    if let Some(ack) = acknowledgement(&app, envelope_id, frame).await {
                                        // Gone when the socket died first: Slack redelivers.
                                        let _ = acks.send(ack);
                                    }
                                });
                            }
                            None => tracing::debug!(kind = %frame.kind, "ignored a Socket Mode frame"),
                        },
                        Err(e) => tracing::warn!(error = %e, "ignored a Socket Mode frame that is not JSON"),
                    },
                    // tungstenite answers pings by itself.
                    Some(Ok(_)) => {}
                }
            }
            Some(ack) = pending_acks.recv() => {
                if let Err(e) = sink.send(Message::Text(ack.into())).await {
                    break Err(handshake_error(&e));
                }
            }
            Some(_) = handling.join_next(), if !handling.is_empty() => {}
            _ = ping.tick() => {
                if heard.elapsed() > settings.silent_for {
                    break Err(format!("nothing from Slack for {:?}", settings.silent_for));
                }
                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                    break Err(handshake_error(&e));
                }
            }
        }
    };
    if ended.is_ok() {
        // Closing on purpose: the envelopes being handled answer on this
        // connection while it is still up.
        let deadline = Instant::now() + settings.drain_within;
        while !handling.is_empty() || !pending_acks.is_empty() {
            tokio::select! {
                Some(_) = handling.join_next(), if !handling.is_empty() => {}
                Some(ack) = pending_acks.recv() => {
                    if sink.send(Message::Text(ack.into())).await.is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    }
    // Handlers still running finish their commits (never cut short half
    // way); their acknowledgements are lost, and Slack's redelivery is
    // answered from the store.
    handling.detach_all();
    app.metrics.socket_mode_connections.dec();
    let why = match ended {
        Ok(why) => why.to_owned(),
        Err(why) => why,
    };
    let _ = endings.send(Ending::Closed(why));
}

/// Handles an envelope once across redeliveries and replicas, and gives
/// the acknowledgement to send: `None` to send none (the store is down,
/// or another handler kept it past its claim), so Slack delivers it again.
async fn acknowledgement(app: &Arc<AppState>, envelope_id: String, frame: Frame) -> Option<String> {
    let dedupe = &app.store.dedupe;
    // A redelivery waits while another handler has the envelope, for as
    // long as a claim holds: it then answers with that handler's answer,
    // or takes the envelope itself should the handler give it up or die.
    let waiting_until = Instant::now() + CLAIM_TTL;
    let answer = loop {
        match dedupe.claim_envelope(&envelope_id, CLAIM_TTL).await {
            Err(e) => {
                tracing::warn!(error = %e, "not acknowledging an envelope: the store is unavailable");
                return None;
            }
            Ok(EnvelopeClaim::Answered(answer)) => {
                tracing::debug!(%envelope_id, retry_attempt = frame.retry_attempt, "acknowledged a redelivered envelope again");
                break answer;
            }
            Ok(EnvelopeClaim::Busy) if Instant::now() < waiting_until => tokio::time::sleep(BUSY_POLL).await,
            Ok(EnvelopeClaim::Busy) => return None,
            Ok(EnvelopeClaim::First) => break handle_once(app, &envelope_id, &frame).await?,
        }
    };
    let payload = serde_json::from_str::<Value>(&answer).ok().map(|mut a| a["payload"].take()).filter(|p| !p.is_null());
    let mut ack = json!({ "envelope_id": envelope_id });
    match payload {
        Some(payload) if frame.accepts_response_payload => ack["payload"] = payload,
        Some(_) => tracing::debug!(kind = %frame.kind, "Slack takes no payload with this acknowledgement"),
        None => {}
    }
    Some(ack.to_string())
}

/// Handles an envelope this replica claimed, and keeps the answer for its
/// redeliveries; `None` when the store is down (the claim is given up, and
/// Slack's next delivery is handled afresh).
async fn handle_once(app: &Arc<AppState>, envelope_id: &str, frame: &Frame) -> Option<String> {
    let dedupe = &app.store.dedupe;
    let (endpoint, handled) = handle(app, frame).await;
    let answer = match handled {
        Ok(answer) => answer,
        Err(AppError::Unavailable(e)) => {
            app.metrics.request(endpoint, "unavailable");
            tracing::warn!(error = %e, "not acknowledging an envelope: the store is unavailable");
            if let Err(e) = dedupe.release_envelope(envelope_id).await {
                tracing::debug!(error = %e, "the envelope's claim lapses by itself");
            }
            return None;
        }
        Err(other) => {
            // It will not read better next time: acknowledged, so Slack
            // stops sending it.
            app.metrics.request(endpoint, "bad_request");
            tracing::warn!(kind = %frame.kind, reason = %other, "acknowledged an envelope opsbot cannot read");
            None
        }
    };
    let answer = json!({ "payload": answer }).to_string();
    if let Err(e) = dedupe.answer_envelope(envelope_id, &answer, ANSWER_TTL).await {
        // Rare (the store failed just after the decision was committed):
        // a redelivery then waits out the claim and acts a second time.
        tracing::warn!(error = %e, "a handled envelope's answer was not kept");
    }
    Some(answer)
}

/// The envelope's payload read as the HTTP routes read theirs, and handed
/// to the same function; also the endpoint it counts under.
async fn handle(app: &Arc<AppState>, frame: &Frame) -> (&'static str, Result<SlackAnswer, AppError>) {
    fn read<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, AppError> {
        T::deserialize(payload).map_err(|e| AppError::BadRequest(format!("unreadable envelope payload: {e}")))
    }
    let (endpoint, handled) = match frame.kind.as_str() {
        "slash_commands" => ("commands", async { inbound::slash_command(app, read(&frame.payload)?).await }.await),
        "interactive" => ("interactions", async { inbound::interaction(app, read(&frame.payload)?).await }.await),
        "events_api" => ("events", async { inbound::event(app, read(&frame.payload)?).await }.await),
        other => {
            tracing::debug!(kind = %other, "acknowledged an envelope opsbot does not act on");
            ("other", Ok(None))
        }
    };
    if handled.is_ok() {
        app.metrics.request(endpoint, "ok");
    }
    (endpoint, handled)
}
