//! Runs a decision end to end: load the state a handler needs, call the
//! pure core, commit atomically (retrying from a fresh load when someone
//! else changed the incident meanwhile). Used by the request path and by
//! the timer worker alike.

use crate::app::AppState;
use crate::store::{Commit, CommitOutcome, StoreResult};
use opsbot_handlers::command::{self, SlashCommand};
use opsbot_handlers::decide::{self, Button};
use opsbot_handlers::{Decision, Effect, IncidentCommand, IncidentId, Invocation, Loaded, Reply, StateNeeded, Timer};

/// Commit attempts before telling the user to try again; conflicts need
/// several people changing one incident in the same few milliseconds.
const COMMIT_ATTEMPTS: usize = 8;

/// The answer when Redis is away: clear, and true (nothing was changed).
pub const STORE_DOWN_REPLY: &str = "⚠️ opsbot cannot reach its database (Redis) right now, so nothing was changed. Try again in a minute; if it persists, check opsbot's `/readyz`.";

const CONTENDED_REPLY: &str =
    "Several people changed this incident at the same moment; nothing was changed. Please try again.";

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

async fn incident_command(app: &AppState, cmd: &IncidentCommand, who: &Invocation) -> StoreResult<Reply> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (loaded, version) = load(app, decide::state_needed(cmd)).await?;
        let decision = decide::decide(cmd, loaded, who, &app.runbook, app.clock.now());
        if commit(app, &decision, version, None).await? == CommitOutcome::Committed {
            if let Some(inc) = &decision.incident {
                tracing::info!(incident = %inc.id, severity = %inc.severity, status = inc.status.as_str(), user = %who.user, "incident changed");
            }
            return Ok(decision.reply);
        }
    }
    Ok(Reply::text(CONTENDED_REPLY))
}

/// A click on one of opsbot's buttons. Refusals reach the clicker as
/// ephemeral notes through the outbox. Returns a modal to open right away
/// when the click asks for one (Resolve asks for a summary).
pub async fn button(
    app: &AppState,
    button: Button,
    id: IncidentId,
    who: &Invocation,
) -> StoreResult<Option<serde_json::Value>> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (incident, version) = match app.store.load_incident(id).await? {
            Some(v) => (Some(v.value), v.version),
            None => (None, 0),
        };
        let decision = decide::decide_button(button, id, incident, who, &app.runbook, app.clock.now());
        if commit(app, &decision, version, None).await? == CommitOutcome::Committed {
            return Ok(decision.modal);
        }
    }
    app.store
        .enqueue(&[Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: CONTENDED_REPLY.to_owned(),
        }])
        .await
        .map(|()| None)
}

/// The resolve modal was submitted: `Ok(None)` closes it, `Ok(Some(why))`
/// keeps it open showing why it could not resolve.
pub async fn resolve_submission(
    app: &AppState,
    id: IncidentId,
    summary: Option<String>,
    who: &Invocation,
) -> StoreResult<Option<String>> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (incident, version) = match app.store.load_incident(id).await? {
            Some(v) => (Some(v.value), v.version),
            None => (None, 0),
        };
        match decide::decide_resolve_submission(id, summary.clone(), incident, who, &app.runbook, app.clock.now()) {
            Err(why) => return Ok(Some(why)),
            Ok(decision) => {
                if commit(app, &decision, version, None).await? == CommitOutcome::Committed {
                    tracing::info!(incident = %id, user = %who.user, "incident resolved from the modal");
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(CONTENDED_REPLY.to_owned()))
}

/// A due timer: decided against the incident as it is now, and consumed in
/// the same commit, so it takes effect once however many replicas see it.
pub async fn timer(app: &AppState, stored: &str, timer: &Timer) -> StoreResult<()> {
    for _ in 0..COMMIT_ATTEMPTS {
        let (incident, version) = match app.store.load_incident(timer.incident).await? {
            Some(v) => (Some(v.value), v.version),
            None => (None, 0),
        };
        let decision = decide::decide_timer(timer, incident, &app.runbook, app.clock.now());
        match commit(app, &decision, version, Some(stored)).await? {
            CommitOutcome::Committed => {
                if decision.changes_state() || !decision.effects.is_empty() {
                    tracing::info!(incident = %timer.incident, timer = ?timer.kind, "timer acted");
                }
                return Ok(());
            }
            CommitOutcome::TimerGone => return Ok(()),
            CommitOutcome::Conflict => continue,
        }
    }
    tracing::warn!(incident = %timer.incident, "timer contended; will try again on the next tick");
    Ok(())
}

/// `@opsbot …` in a channel, answered in the thread.
pub async fn mention(app: &AppState, text: &str, channel: &str, thread_ts: &str) -> StoreResult<()> {
    let open = app.store.open_incidents().await?;
    let decision = decide::decide_mention(text, &open, channel, thread_ts, app.clock.now());
    app.store.enqueue(&decision.effects).await
}

async fn load(app: &AppState, needed: StateNeeded) -> StoreResult<(Loaded, u64)> {
    Ok(match needed {
        StateNeeded::Nothing => (Loaded::Nothing, 0),
        StateNeeded::NewIncidentId => (Loaded::NewIncidentId(app.store.next_incident_id().await?), 0),
        StateNeeded::Incident(id) => match app.store.load_incident(id).await? {
            Some(v) => (Loaded::Incident(Some(v.value)), v.version),
            None => (Loaded::Incident(None), 0),
        },
        StateNeeded::IncidentWithTimeline(id) => match app.store.load_incident(id).await? {
            Some(v) => {
                let timeline = app.store.load_timeline(id).await?;
                (Loaded::IncidentWithTimeline(Some((v.value, timeline))), v.version)
            }
            None => (Loaded::IncidentWithTimeline(None), 0),
        },
        StateNeeded::OpenIncidents => (Loaded::OpenIncidents(app.store.open_incidents().await?), 0),
        StateNeeded::RecentIncidents(window) => {
            let since = app.clock.now() - window;
            (Loaded::RecentIncidents(app.store.incidents_declared_since(since).await?), 0)
        }
    })
}

async fn commit(
    app: &AppState,
    decision: &Decision,
    version: u64,
    consume: Option<&str>,
) -> StoreResult<CommitOutcome> {
    let nothing_to_write =
        decision.incident.is_none() && decision.effects.is_empty() && decision.timers.is_empty() && consume.is_none();
    if nothing_to_write {
        return Ok(CommitOutcome::Committed);
    }
    app.store
        .commit(&Commit {
            incident: decision.incident.as_ref().map(|inc| (inc, version)),
            timeline: &decision.timeline,
            effects: &decision.effects,
            timers: &decision.timers,
            consume,
        })
        .await
}
