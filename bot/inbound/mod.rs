//! What Slack sends opsbot, whichever way it arrives (a signed HTTP request
//! or a Socket Mode envelope): a slash command, an interaction or an event,
//! turned into a call to the engine and the answer Slack expects back. Both
//! transports call these functions, so a command behaves the same over
//! either; they differ only in how the answer travels (an HTTP body, or the
//! payload of the envelope's acknowledgement).

pub mod socket_mode;

use crate::error::AppError;
use crate::slack::payloads::{Event, EventEnvelope, Interaction, SlashCommandForm};
use crate::state::AppState;
use opsbot_handlers::codec::{Button, Submission};
use opsbot_handlers::decision::Modal;
use opsbot_handlers::{Invocation, Reply};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long Slack event ids are remembered to drop its retries.
const EVENT_DEDUPE_TTL: Duration = Duration::from_secs(2 * 3600);

/// What Slack is answered: `None` for a plain acknowledgement (HTTP 200
/// with no body), else the JSON Slack reads (an ephemeral reply, a modal's
/// `response_action`, a challenge).
pub type SlackAnswer = Option<Value>;

/// The answer only the typer sees, as Slack takes it from a slash command.
fn ephemeral(reply: Reply) -> Value {
    let mut body = json!({"response_type": "ephemeral", "text": reply.text});
    if let Some(blocks) = reply.blocks {
        body["blocks"] = blocks;
    }
    body
}

/// A slash command: decided at once, answered with the ephemeral reply; a
/// modal it asks for opens beside the answer.
pub async fn slash_command(app: &Arc<AppState>, form: SlashCommandForm) -> Result<SlackAnswer, AppError> {
    let who = Invocation {
        user: form.user_id,
        channel: form.channel_id,
        team_domain: form.team_domain,
        response_url: form.response_url,
        groups: Vec::new(),
    };
    let answer = app.engine.command(&form.command, &form.text, &who).await;
    if let Some(modal) = answer.modal {
        // Slack wants the command itself answered within 3 s too, and the
        // decision may have waited for GitHub: the dialog opens beside the
        // answer rather than before it.
        let app = app.clone();
        let trigger_id = form.trigger_id;
        tokio::spawn(async move { open_modal(&app, trigger_id.as_deref(), &modal, &who).await });
    }
    Ok(Some(ephemeral(answer.reply)))
}

/// A button click (`block_actions`) or a modal submission
/// (`view_submission`); other interactions are acknowledged and ignored.
pub async fn interaction(app: &Arc<AppState>, interaction: Interaction) -> Result<SlackAnswer, AppError> {
    match interaction {
        Interaction::BlockActions { user, team, channel, container, actions, trigger_id, response_url } => {
            // A button on the Home tab has no channel: answers go to the
            // clicker's DM with the bot.
            let on_a_view = container.as_ref().and_then(|c| c.kind.as_deref()) == Some("view");
            let Some(channel) = Interaction::channel_of(&channel, &container).or(on_a_view.then(|| user.id.clone()))
            else {
                return Err(AppError::BadRequest("block_actions without a channel".into()));
            };
            let who = Invocation {
                user: user.id,
                channel,
                team_domain: team.and_then(|t| t.domain),
                response_url,
                groups: Vec::new(),
            };
            for action in actions {
                let Some(button) = Button::parse(&action.action_id, action.value.as_deref().unwrap_or("")) else {
                    tracing::debug!(action = %action.action_id, "ignored an action opsbot does not own");
                    continue;
                };
                // A store failure makes Slack show the clicker that the
                // click did not work (a 503, or no acknowledgement).
                if let Some(modal) = app.engine.click(button, &who).await? {
                    open_modal(app, trigger_id.as_deref(), &modal, &who).await;
                }
            }
            Ok(None)
        }
        Interaction::ViewSubmission { user, view } => {
            let field = |id: &str| view.text(id, id);
            let Some(submission) = Submission::parse(&view.callback_id, &view.private_metadata, field)
                .map_err(|why| AppError::BadRequest(why.to_owned()))?
            else {
                return Ok(None);
            };
            // A modal has no channel; notes go to the subject's thread.
            let who = Invocation {
                user: user.id,
                channel: String::new(),
                team_domain: None,
                response_url: None,
                groups: Vec::new(),
            };
            match app.engine.submission(submission, &who).await? {
                None => Ok(None),
                Some(refused) => Ok(Some(modal_error(refused.field, &refused.text))),
            }
        }
        Interaction::Other => Ok(None),
    }
}

/// Keeps a modal open with `why` under the field, as Slack shows errors.
fn modal_error(field: &str, why: &str) -> Value {
    json!({"response_action": "errors", "errors": { field: opsbot_handlers::text::truncate(why, 150) }})
}

/// Opens the modal within the click's (or command's) 3-second
/// `trigger_id`; if Slack will not, the person is told what to do instead.
async fn open_modal(app: &AppState, trigger_id: Option<&str>, modal: &Modal, who: &Invocation) {
    let opened = match trigger_id {
        Some(trigger) => tokio::time::timeout(Duration::from_millis(2500), app.slack.open_modal(trigger, &modal.view))
            .await
            .map_err(|_| "Slack did not answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        None => Err("the request carried no trigger_id".to_owned()),
    };
    if let Err(why) = opened {
        tracing::warn!(reason = %why, "could not open a dialog");
        if let Err(e) = app.engine.tell(who, &modal.fallback).await {
            tracing::warn!(error = %e, "could not tell the clicker either");
        }
    }
}

/// An Events API callback: `@opsbot` mentions are answered in the thread,
/// once per event id however often Slack redelivers it; opening the Home
/// tab publishes the viewer's Home.
pub async fn event(app: &Arc<AppState>, envelope: EventEnvelope) -> Result<SlackAnswer, AppError> {
    match envelope {
        EventEnvelope::UrlVerification { challenge } => Ok(Some(json!({ "challenge": challenge }))),
        EventEnvelope::EventCallback { event_id, event } => {
            let (text, channel, ts, thread_ts) = match event {
                Event::AppMention { text, channel, ts, thread_ts } => (text, channel, ts, thread_ts),
                // Opening the tab twice publishes twice at most: no dedupe needed.
                Event::AppHomeOpened { user, tab } if tab == "home" => {
                    app.home.opened(&user);
                    return Ok(None);
                }
                _ => return Ok(None),
            };
            // A retry of an event we already took is acknowledged and
            // dropped; a store failure makes Slack retry later.
            if app.store.dedupe.first_sighting(&event_id, EVENT_DEDUPE_TTL).await? {
                app.engine.mention(&text, &channel, thread_ts.as_deref().unwrap_or(&ts)).await?;
            } else {
                tracing::debug!(%event_id, "dropped a redelivered event");
            }
            Ok(None)
        }
        EventEnvelope::Other => Ok(None),
    }
}
