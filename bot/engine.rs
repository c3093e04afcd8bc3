//! Runs a decision end to end: load the state a handler needs, call the
//! pure core, commit atomically (retrying from a fresh load when someone
//! else changed the same incident or run meanwhile). Used by the request
//! path and by the timer worker alike.

use crate::app::AppState;
use crate::store::{Commit, CommitOutcome, StoreResult, Stored};
use opsbot_handlers::command::{self, SlashCommand};
use opsbot_handlers::decide::{self, Button};
use opsbot_handlers::routine::{self, RunbookCommand};
use opsbot_handlers::run::{RunId, Subject};
use opsbot_handlers::{
    Decision, Effect, IncidentCommand, IncidentId, Invocation, Loaded, Reply, StateNeeded, Timer, TimerKind,
};
use std::convert::Infallible;

/// Commit attempts before telling the user to try again; conflicts need
/// several people changing one incident in the same few milliseconds.
const COMMIT_ATTEMPTS: usize = 8;

/// The answer when Redis is away: clear, and true (nothing was changed).
pub const STORE_DOWN_REPLY: &str = "⚠️ opsbot cannot reach its database (Redis) right now, so nothing was changed. Try again in a minute; if it persists, check opsbot's `/readyz`.";

const CONTENDED_REPLY: &str = "Several people changed this at the same moment; nothing was changed. Please try again.";

/// A slash command, from its text to the reply shown to the user.
pub async fn slash_command(app: &AppState, command: &str, text: &str, who: &Invocation) -> Reply {
    let parsed = match command::parse(command, text) {
        Ok(parsed) => parsed,
        Err(usage) => return Reply::text(format!("{}\n\n{}", usage.message, usage.usage)),
    };
    let result = match parsed {
        SlashCommand::NotBuiltYet { command } => return Reply::text(format!(
            "`{command}` is not built yet in this version of opsbot. `/incident` and `/runbook` work today: `/incident help`."
        )),
        SlashCommand::Incident(cmd) => incident_command(app, &cmd, who).await,
        SlashCommand::Runbook(cmd) => runbook_command(app, &cmd, who).await,
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "command not run: store unavailable");
        Reply::text(STORE_DOWN_REPLY)
    })
}

async fn incident_command(app: &AppState, cmd: &IncidentCommand, who: &Invocation) -> StoreResult<Reply> {
    let settled = until_committed(app, None, None, move || async move {
        let (loaded, version) = load(app, decide::state_needed(cmd)).await?;
        Ok(Ok::<_, Infallible>((decide::decide(cmd, loaded, who, &app.runbook, app.clock.now()), version)))
    })
    .await?;
    let Settled::Done(decision) = settled else { return Ok(Reply::text(CONTENDED_REPLY)) };
    if let Some(inc) = &decision.incident {
        tracing::info!(incident = %inc.id, severity = %inc.severity, status = inc.status.as_str(), user = %who.user, "incident changed");
        if let IncidentCommand::Declare { severity, .. } = cmd {
            app.metrics.declared.get_or_create(&crate::metrics::SeverityLabels { severity: severity.as_str() }).inc();
        }
    }
    Ok(decision.reply)
}

async fn runbook_command(app: &AppState, cmd: &RunbookCommand, who: &Invocation) -> StoreResult<Reply> {
    let runbook = &app.runbook;
    let now = app.clock.now();
    match cmd {
        RunbookCommand::Help => Ok(Reply::text(routine::RUNBOOK_USAGE)),
        RunbookCommand::List => Ok(routine::list(runbook, now).reply),
        RunbookCommand::History(name) => match routine::by_name(runbook, name) {
            Ok(checklist) => {
                let runs = app.store.runs_of(&checklist.id, routine::HISTORY_LENGTH).await?;
                Ok(routine::history(checklist, &runs, now).reply)
            }
            Err(answer) => Ok(Reply::text(answer)),
        },
        RunbookCommand::Start(name) => match routine::by_name(runbook, name) {
            Ok(checklist) => {
                let id = app.store.next_run_id().await?;
                let decision = routine::start(checklist, id, &who.user, None, runbook, now);
                commit(app, &decision, 0, None, None).await?;
                tracing::info!(run = %id, checklist = %checklist.id, user = %who.user, "run started");
                Ok(decision.reply)
            }
            Err(answer) => Ok(Reply::text(answer)),
        },
    }
}

/// A click on one of opsbot's buttons. Refusals reach the clicker as
/// ephemeral notes through the outbox. Returns a modal to open right away
/// when the click asks for one (Resolve asks for a summary, Flag for a note).
pub async fn button(
    app: &AppState,
    button: Button,
    subject: &Subject,
    who: &Invocation,
) -> StoreResult<Option<serde_json::Value>> {
    let settled = until_committed(app, None, None, move || async move {
        let now = app.clock.now();
        Ok(Ok::<_, Infallible>(match subject {
            Subject::Incident(id) => {
                let (incident, version) = split(app.store.load_incident(*id).await?);
                (decide::decide_button(button, *id, incident, who, &app.runbook, now), version)
            }
            Subject::Run(id) => {
                let (run, version) = split(app.store.load_run(*id).await?);
                (routine::button(button, *id, run, who, now), version)
            }
            // Routines have no buttons of their own; nothing to do.
            Subject::Routine(_) => (Decision::reply(""), 0),
        }))
    })
    .await?;
    match settled {
        Settled::Done(decision) => Ok(decision.modal),
        _ => {
            let text = CONTENDED_REPLY.to_owned();
            let note = Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text };
            app.store.enqueue(&[note]).await.map(|()| None)
        }
    }
}

fn split<T>(loaded: Option<crate::store::Versioned<T>>) -> (Option<T>, u64) {
    match loaded {
        Some(v) => (Some(v.value), v.version),
        None => (None, 0),
    }
}

/// The resolve modal was submitted: `Ok(None)` closes it, `Ok(Some(why))`
/// keeps it open showing why it could not resolve.
pub async fn resolve_submission(
    app: &AppState,
    id: IncidentId,
    summary: Option<String>,
    who: &Invocation,
) -> StoreResult<Option<String>> {
    let summary = &summary;
    let settled = until_committed(app, None, None, move || async move {
        let (incident, version) = split(app.store.load_incident(id).await?);
        let decided =
            decide::decide_resolve_submission(id, summary.clone(), incident, who, &app.runbook, app.clock.now());
        Ok(decided.map(|decision| (decision, version)))
    })
    .await?;
    Ok(match settled {
        Settled::Done(_) => {
            tracing::info!(incident = %id, user = %who.user, "incident resolved from the modal");
            None
        }
        Settled::Refused(why) => Some(why),
        Settled::TimerGone | Settled::Contended => Some(CONTENDED_REPLY.to_owned()),
    })
}

/// The flag modal was submitted: `Ok(None)` closes it, `Ok(Some(why))`
/// keeps it open saying why.
pub async fn flag_submission(
    app: &AppState,
    id: RunId,
    phase: usize,
    step: usize,
    note: &str,
    who: &Invocation,
) -> StoreResult<Option<String>> {
    let settled = until_committed(app, None, None, move || async move {
        let (run, version) = split(app.store.load_run(id).await?);
        Ok(routine::flag_submitted(id, phase, step, note, run, who, app.clock.now())
            .map(|decision| (decision, version)))
    })
    .await?;
    Ok(match settled {
        Settled::Done(_) => None,
        Settled::Refused(why) => Some(why),
        Settled::TimerGone | Settled::Contended => Some(CONTENDED_REPLY.to_owned()),
    })
}

/// A due timer: decided against its incident or run as it is now, and
/// consumed in the same commit, so it takes effect once however many
/// replicas see it.
pub async fn timer(app: &AppState, stored: &str, timer: &Timer) -> StoreResult<()> {
    let slot = match (&timer.subject, &timer.kind) {
        (Subject::Routine(checklist), TimerKind::ScheduledRun { slot }) => Some((checklist.as_str(), *slot)),
        _ => None,
    };
    let settled = until_committed(app, Some(stored), slot, move || async move {
        let now = app.clock.now();
        Ok(Ok::<_, Infallible>(match (&timer.subject, &timer.kind) {
            (Subject::Incident(id), _) => {
                let (incident, version) = split(app.store.load_incident(*id).await?);
                (decide::decide_timer(timer, incident, &app.runbook, now), version)
            }
            (Subject::Run(id), TimerKind::RunOverdue) => {
                let (run, version) = split(app.store.load_run(*id).await?);
                (routine::overdue(run, &app.runbook, now), version)
            }
            (Subject::Routine(checklist), TimerKind::ScheduledRun { slot }) => {
                // A skipped slot takes no run number.
                let id = match routine::slot_starts_a_run(checklist, *slot, &app.runbook, now) {
                    true => Some(app.store.next_run_id().await?),
                    false => None,
                };
                let (decision, skipped) = routine::scheduled(checklist, *slot, id, &app.runbook, now);
                if let Some(why) = &skipped {
                    tracing::warn!(routine = %checklist, "{why}");
                }
                (decision, 0)
            }
            (subject, kind) => {
                tracing::error!(?subject, ?kind, "a timer that fits nothing; dropped");
                (Decision::reply(""), 0)
            }
        }))
    })
    .await?;
    match settled {
        Settled::Done(decision) if decision.changes_state() || !decision.effects.is_empty() => {
            app.metrics.timers_acted.inc();
            tracing::info!(subject = ?timer.subject, timer = ?timer.kind, "timer acted");
        }
        Settled::Contended => {
            tracing::warn!(subject = ?timer.subject, "timer contended; will try again on the next tick")
        }
        _ => {}
    }
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
        StateNeeded::Incident(id) => {
            let (incident, version) = split(app.store.load_incident(id).await?);
            (Loaded::Incident(incident), version)
        }
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

/// How a load–decide–commit cycle ended.
enum Settled<T> {
    /// Committed: the decision that was.
    Done(Box<Decision>),
    /// The handler refused before anything was written; shown to the user.
    Refused(T),
    /// The timer it acted on was taken by another replica: nothing written.
    TimerGone,
    /// Others kept changing the same incident or run: nothing written.
    Contended,
}

/// Loads, decides and commits; when a concurrent change refuses the commit,
/// starts again from a fresh load. `attempt` loads and decides: the
/// decision with the version it loaded at, or a refusal.
async fn until_committed<T, F>(
    app: &AppState,
    consume: Option<&str>,
    slot: Option<(&str, chrono::DateTime<chrono::Utc>)>,
    mut attempt: impl FnMut() -> F,
) -> StoreResult<Settled<T>>
where
    F: std::future::Future<Output = StoreResult<Result<(Decision, u64), T>>>,
{
    for _ in 0..COMMIT_ATTEMPTS {
        let (decision, version) = match attempt().await? {
            Ok(decided) => decided,
            Err(refusal) => return Ok(Settled::Refused(refusal)),
        };
        match commit(app, &decision, version, consume, slot).await? {
            CommitOutcome::Committed => return Ok(Settled::Done(Box::new(decision))),
            CommitOutcome::TimerGone => return Ok(Settled::TimerGone),
            CommitOutcome::Conflict => continue,
        }
    }
    Ok(Settled::Contended)
}

async fn commit(
    app: &AppState,
    decision: &Decision,
    version: u64,
    consume: Option<&str>,
    slot: Option<(&str, chrono::DateTime<chrono::Utc>)>,
) -> StoreResult<CommitOutcome> {
    let subject = match (&decision.incident, &decision.run) {
        (Some(inc), _) => Some(Stored::Incident(inc, version)),
        (None, Some(run)) => Some(Stored::Run(run, version)),
        (None, None) => None,
    };
    let nothing_to_write = subject.is_none()
        && decision.effects.is_empty()
        && decision.timers.is_empty()
        && consume.is_none()
        && slot.is_none();
    if nothing_to_write {
        return Ok(CommitOutcome::Committed);
    }
    app.store
        .commit(&Commit {
            subject,
            timeline: &decision.timeline,
            effects: &decision.effects,
            timers: &decision.timers,
            consume,
            slot,
        })
        .await
}
