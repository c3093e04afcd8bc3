//! Runs a decision end to end on the request path: load the state a
//! handler needs, call the pure core, commit atomically (retrying from a
//! fresh load when someone else changed the incident meanwhile).

use crate::app::AppState;
use crate::store::{CommitOutcome, StoreError, StoreResult};
use opsbot_handlers::command::{self, SlashCommand};
use opsbot_handlers::decide::{self, AlertButton};
use opsbot_handlers::{
    Decision, IncidentCommand, IncidentId, Invocation, Loaded, Reply, StateNeeded,
};

/// Commit attempts before telling the user to try again; conflicts need
/// several people changing one incident in the same few milliseconds.
const COMMIT_ATTEMPTS: usize = 8;

/// The answer when Redis is away: clear, and true (nothing was changed).
pub const STORE_DOWN_REPLY: &str = "⚠️ opsbot cannot reach its database (Redis) right now, so nothing was changed. Try again in a minute; if it persists, check opsbot's `/readyz`.";

const CONTENDED_REPLY: &str = "Several people changed this incident at the same moment; nothing was changed. Please try again.";

/// A slash command, from its text to the reply shown to the user.
pub async fn slash_command(app: &AppState, command: &str, text: &str, who: &Invocation) -> Reply {
    let parsed = match command::parse(command, text) {
        Ok(parsed) => parsed,
        Err(usage) => return Reply::text(format!("{}\n\n{}", usage.message, usage.usage)),
    };
    match parsed {
        SlashCommand::NotBuiltYet { command } => Reply::text(format!(
            "`{command}` is not built yet in this version of opsbot. `/incident` works today: `/incident help`."
        )),
        SlashCommand::Incident(cmd) => match incident_command(app, &cmd, who).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "command not run: store unavailable");
                Reply::text(STORE_DOWN_REPLY)
            }
        },
    }
}

async fn incident_command(
    app: &AppState,
    cmd: &IncidentCommand,
    who: &Invocation,
) -> StoreResult<Reply> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (loaded, version) = load(app, decide::state_needed(cmd)).await?;
        let decision = decide::decide(cmd, loaded, who, &app.policy, app.clock.now());
        if commit(app, &decision, version).await? == CommitOutcome::Committed {
            if let Some(inc) = &decision.incident {
                tracing::info!(incident = %inc.id, severity = %inc.severity, status = inc.status.as_str(), user = %who.user, "incident changed");
            }
            return Ok(decision.reply);
        }
    }
    Ok(Reply::text(CONTENDED_REPLY))
}

/// A click on an alert's button. Refusals reach the clicker as ephemeral
/// notes through the outbox.
pub async fn alert_button(
    app: &AppState,
    button: AlertButton,
    id: IncidentId,
    who: &Invocation,
) -> StoreResult<()> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (incident, version) = match app.store.load_incident(id).await? {
            Some(v) => (Some(v.value), v.version),
            None => (None, 0),
        };
        let decision =
            decide::decide_button(button, id, incident, who, &app.policy, app.clock.now());
        if commit(app, &decision, version).await? == CommitOutcome::Committed {
            return Ok(());
        }
    }
    app.store
        .enqueue(&[opsbot_handlers::Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: CONTENDED_REPLY.to_owned(),
        }])
        .await
}

/// `@opsbot …` in a channel, answered in the thread.
pub async fn mention(
    app: &AppState,
    text: &str,
    channel: &str,
    thread_ts: &str,
) -> StoreResult<()> {
    let open = app.store.open_incidents().await?;
    let decision = decide::decide_mention(text, &open, channel, thread_ts, app.clock.now());
    app.store.enqueue(&decision.effects).await
}

async fn load(app: &AppState, needed: StateNeeded) -> StoreResult<(Loaded, u64)> {
    Ok(match needed {
        StateNeeded::Nothing => (Loaded::Nothing, 0),
        StateNeeded::NewIncidentId => (
            Loaded::NewIncidentId(app.store.next_incident_id().await?),
            0,
        ),
        StateNeeded::Incident(id) => match app.store.load_incident(id).await? {
            Some(v) => (Loaded::Incident(Some(v.value)), v.version),
            None => (Loaded::Incident(None), 0),
        },
        StateNeeded::IncidentWithTimeline(id) => match app.store.load_incident(id).await? {
            Some(v) => {
                let timeline = app.store.load_timeline(id).await?;
                (
                    Loaded::IncidentWithTimeline(Some((v.value, timeline))),
                    v.version,
                )
            }
            None => (Loaded::IncidentWithTimeline(None), 0),
        },
        StateNeeded::OpenIncidents => (Loaded::OpenIncidents(app.store.open_incidents().await?), 0),
    })
}

async fn commit(
    app: &AppState,
    decision: &Decision,
    version: u64,
) -> Result<CommitOutcome, StoreError> {
    match &decision.incident {
        Some(incident) => {
            app.store
                .commit(incident, version, &decision.timeline, &decision.effects)
                .await
        }
        None => {
            app.store.enqueue(&decision.effects).await?;
            Ok(CommitOutcome::Committed)
        }
    }
}
