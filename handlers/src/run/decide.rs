//! Run decisions: `/runbook` commands, clicks on a run's steps, the flag
//! modal's submission, the overdue reminder, and a scheduled slot coming
//! due. Each takes what it needs and `now`, and returns a [`Decision`]
//! about one run.

use super::command::{by_name, Command, USAGE};
use super::{render, Run, RunId, Stamp};
use crate::checklist::{start_checklist, StepRefusal};
use crate::codec::RunButton;
use crate::decision::{Decision, Effect, Invocation};
use crate::runbook::permissions::Action;
use crate::runbook::{Checklist, Runbook};
use crate::subject::{ChecklistPart, Message, RunMessage, Subject};
use crate::text::{duration, escape, slack_date};
use crate::timer::Timer;
use chrono::{DateTime, TimeDelta, Utc};

/// A decision about one run.
pub type RunDecision = Decision<Run>;

/// What a run decision needs loaded first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// A fresh run number.
    NewId,
    One(RunId),
    /// A checklist's last runs, newest first.
    History {
        checklist: String,
        limit: usize,
    },
}

/// What was loaded for a [`Need`].
// Built once per event and moved straight into a decision: boxing the run
// would save nothing and change the shell's side of the protocol.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    NewId(RunId),
    One(Option<Run>),
    Many(Vec<Run>),
}

fn header(id: RunId) -> Message {
    Message::Run(id, RunMessage::Header)
}

fn in_thread(id: RunId, text: String) -> Effect {
    Effect::InThread { subject: Subject::Run(id), text }
}

/// What a `/runbook` command needs loaded before it is decided.
pub fn needs(cmd: &Command, who: &Invocation, runbook: &Runbook) -> Need {
    match cmd {
        Command::Help | Command::List => Need::Nothing,
        // A name that matches nothing, or a start the person may not make,
        // is answered without taking a number.
        Command::Start(_) if runbook.may(Action::StartChecklist, who, None).is_err() => Need::Nothing,
        Command::Start(name) => match by_name(runbook, name) {
            Ok(_) => Need::NewId,
            Err(_) => Need::Nothing,
        },
        Command::History(name) => match by_name(runbook, name) {
            Ok(c) => Need::History { checklist: c.id.clone(), limit: HISTORY_LENGTH },
            Err(_) => Need::Nothing,
        },
    }
}

/// Decides what a `/runbook` command does, with what [`needs`] asked for.
pub fn command(cmd: &Command, loaded: Loaded, who: &Invocation, runbook: &Runbook, now: DateTime<Utc>) -> RunDecision {
    if let (Command::Start(_), Err(refused)) = (cmd, runbook.may(Action::StartChecklist, who, None)) {
        return refused.decision(who);
    }
    match (cmd, loaded) {
        (Command::Help, _) => Decision::reply(USAGE),
        (Command::List, _) => Decision::reply(render::list(runbook, now)),
        (Command::Start(name) | Command::History(name), loaded) => match (by_name(runbook, name), loaded) {
            (Err(answer), _) => Decision::reply(answer),
            (Ok(checklist), Loaded::NewId(id)) if matches!(cmd, Command::Start(_)) => {
                start(checklist, id, &who.user, None, runbook, now)
            }
            (Ok(checklist), Loaded::Many(runs)) => history(checklist, &runs, now),
            (Ok(_), _) => Decision::reply(crate::replies::INTERNAL_ERROR),
        },
    }
}

/// What a scheduled slot needs: a run number, unless it is too late to run.
pub fn slot_needs(checklist_id: &str, slot: DateTime<Utc>, runbook: &Runbook, now: DateTime<Utc>) -> Need {
    match slot_starts_a_run(checklist_id, slot, runbook, now) {
        true => Need::NewId,
        false => Need::Nothing,
    }
}

/// How many runs `/runbook history` shows.
pub const HISTORY_LENGTH: usize = 10;
pub use crate::schedule::ON_TIME_GRACE;

/// Starts a run: the header in the team channel, the steps in its thread,
/// and the overdue reminder at start + duration.
pub fn start(
    checklist: &Checklist,
    id: RunId,
    started_by: &str,
    slot: Option<(DateTime<Utc>, Option<TimeDelta>)>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> RunDecision {
    let run = Run {
        id,
        checklist: checklist.id.clone(),
        name: checklist.name.clone(),
        started: Stamp { user: started_by.to_owned(), at: now },
        due: checklist.duration.map(|d| now + d),
        responsible: checklist.responsible.clone(),
        channel: runbook.channels.team.clone(),
        slot: slot.map(|(s, _)| s),
        late_by_secs: slot.and_then(|(_, late)| late).map(|l| l.num_seconds()),
        sections: start_checklist(&checklist.sections),
        completed: None,
        reminded: false,
        posted: Default::default(),
    };
    let mut effects = vec![Effect::Post(Message::Run(id, RunMessage::Header))];
    effects.extend(
        crate::checklist::parts(&run.sections)
            .into_iter()
            .map(|part| Effect::Post(Message::Run(id, RunMessage::Steps(part)))),
    );
    let mut decision = Decision::reply(format!(
        "▶️ *{id}* {} started in {}; its steps are in the thread.",
        checklist.name, runbook.channels.team
    ));
    if let Some(due) = run.due {
        decision.timers.push(Timer::run_overdue(id, due));
    }
    decision.effects = effects;
    decision.change = Some(run);
    decision
}

fn refusal(id: RunId, refused: StepRefusal) -> String {
    match refused {
        StepRefusal::AlreadySettled(o) => format!(
            "That step of *{id}* was already {} by <@{}> {}.",
            if o.done { "done" } else { "skipped" },
            o.by,
            slack_date(o.at)
        ),
        StepRefusal::NoSuchStep => format!("*{id}* is finished or has no such step; nothing was changed."),
    }
}

/// A click on a run's step. Refusals go to the clicker privately.
pub fn click(
    button: RunButton,
    id: RunId,
    run: Option<Run>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> RunDecision {
    let private = |text: String| {
        let mut d = Decision::reply(text.clone());
        d.effects.push(Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text });
        d
    };
    let Some(mut run) = run else { return private(format!("There is no run *{id}*.")) };
    match button {
        RunButton::Step { phase, step, done } => match run.settle(phase, step, done, &who.user, now) {
            Ok(_) => {
                let part = ChecklistPart::of_step(phase, step);
                let mut d = Decision::nothing();
                d.effects.push(Effect::Refresh(Message::Run(id, RunMessage::Steps(part))));
                d.effects.push(Effect::Refresh(header(id)));
                if let Some(done) = &run.completed {
                    d.effects.push(in_thread(id, completion_note(&run, done.at)));
                }
                d.change = Some(run);
                d
            }
            Err(refused) => private(refusal(id, refused)),
        },
        RunButton::Flag { phase, step } => {
            let exists = run.sections.get(phase).is_some_and(|p| p.steps.get(step).is_some());
            if !exists || !run.is_open() {
                return private(refusal(id, StepRefusal::NoSuchStep));
            }
            // Refused before the form opens, rather than after it is filled.
            if let Err(refused) = runbook.may(Action::FlagStep, who, None) {
                return refused.logged(private(refused.text()), who);
            }
            let mut d = Decision::nothing();
            d.modal = Some(render::flag_modal(&run, phase, step));
            d
        }
    }
}

fn completion_note(run: &Run, at: DateTime<Utc>) -> String {
    let took = at - run.started.at;
    let planned = run.due.map(|due| due - run.started.at);
    let against = match planned {
        Some(p) if took <= p => format!(" (planned {}, on time)", duration(p)),
        Some(p) => format!(" (planned {}, {} over)", duration(p), duration(took - p)),
        None => String::new(),
    };
    let flags = run.flags().len();
    let skipped = run.skipped().len();
    let mut text = format!("🏁 *{}* {} completed in {}{against}.", run.id, escape(&run.name), duration(took));
    if flags > 0 || skipped > 0 {
        text.push_str(&format!(" {flags} flagged, {skipped} skipped."));
    }
    text
}

/// The flag modal was submitted. A refusal keeps the modal open, saying
/// why under the note.
#[allow(clippy::too_many_arguments)]
pub fn flag_submitted(
    id: RunId,
    phase: usize,
    step: usize,
    note: &str,
    run: Option<Run>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> RunDecision {
    let invalid = |text: String| Decision::invalid(crate::codec::NOTE_FIELD, text);
    if let Err(refused) = runbook.may(Action::FlagStep, who, None) {
        return refused.under(crate::codec::NOTE_FIELD, who);
    }
    let note = note.trim();
    if note.is_empty() {
        return invalid("Say what is wrong, so the team can follow up.".to_owned());
    }
    let Some(mut run) = run else { return invalid(format!("There is no run {id}.")) };
    let text = match crate::checklist::flag(&mut run.sections, phase, step, note, &who.user, now) {
        Ok(text) => text,
        Err(refused) => return invalid(refusal(id, refused)),
    };
    let part = ChecklistPart::of_step(phase, step);
    let mut d = Decision::nothing();
    d.effects.push(Effect::Refresh(Message::Run(id, RunMessage::Steps(part))));
    d.effects.push(Effect::Refresh(header(id)));
    d.effects.push(in_thread(id, format!("🚩 <@{}> flagged *{}*: {}", who.user, escape(&text), escape(note))));
    d.change = Some(run);
    d
}

/// The run's overdue timer: one reminder, mentioning the responsible role.
pub fn overdue(run: Option<Run>, runbook: &Runbook, now: DateTime<Utc>) -> RunDecision {
    let Some(mut run) = run else { return Decision::nothing() };
    if !run.is_open() || run.reminded {
        return Decision::nothing();
    }
    run.reminded = true;
    let (settled, total) = crate::checklist::progress(&run.sections);
    let who = run
        .responsible
        .as_deref()
        .and_then(|r| runbook.role(r))
        .map(|r| runbook.paged(r, now).iter().map(|p| p.to_mrkdwn()).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("<@{}>", run.started.user));
    let planned = run.due.map(|d| duration(d - run.started.at)).unwrap_or_default();
    let text = format!(
        "⏰ {who}: *{}* {} is past its {planned} ({settled}/{total} steps settled, open for {}).",
        run.id,
        escape(&run.name),
        duration(now - run.started.at)
    );
    let id = run.id;
    let mut d = Decision::nothing();
    d.effects.push(in_thread(id, text));
    d.effects.push(Effect::Refresh(header(id)));
    d.change = Some(run);
    d
}

/// A checklist's schedule slot came due: start its run (on time, or late
/// if opsbot was down at its time), or skip it when its whole duration has
/// passed. Either way the next slot is scheduled. When nothing was started,
/// the decision's `log` says why.
pub fn scheduled(
    checklist_id: &str,
    slot: DateTime<Utc>,
    new_id: Option<RunId>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> RunDecision {
    let logged = |why: String| {
        let mut d = Decision::nothing();
        d.log = Some(why);
        d
    };
    let Some(checklist) = runbook.checklists.iter().find(|c| c.id == checklist_id) else {
        return logged(format!("checklist `{checklist_id}` is no longer in the runbook"));
    };
    let Some(schedule) = &checklist.schedule else {
        return logged(format!("checklist `{checklist_id}` has no schedule any more"));
    };
    let window = crate::schedule::late_window(checklist);
    // A timer that outlived a long outage still fires: it starts nothing,
    // and is logged as skipped.
    let slot_decision = crate::schedule::slot_decision(checklist, slot, now)
        .unwrap_or(crate::schedule::SlotDecision::Skipped { by: now - slot });
    let mut decision = match (slot_decision, new_id) {
        (crate::schedule::SlotDecision::OnTime, Some(id)) => {
            start(checklist, id, "opsbot", Some((slot, None)), runbook, now)
        }
        (crate::schedule::SlotDecision::Late { by }, Some(id)) => {
            start(checklist, id, "opsbot", Some((slot, Some(by))), runbook, now)
        }
        (crate::schedule::SlotDecision::OnTime | crate::schedule::SlotDecision::Late { .. }, None) => {
            logged(format!("{} needs a run number to start", checklist.id))
        }
        (crate::schedule::SlotDecision::Skipped { by }, _) => logged(format!(
            "skipped {} of {}: opsbot was down, and it is {} past its slot, beyond its {} duration",
            schedule.describe_slot(slot),
            checklist.name,
            duration(by),
            duration(window)
        )),
    };
    if let Some(next) = schedule.next_after(slot.max(now)) {
        decision.timers.push(Timer::slot(&checklist.id, next));
    }
    decision
}

/// Whether a slot, handled now, starts a run (so the shell knows to take
/// a run number for it; a skipped slot uses none).
pub fn slot_starts_a_run(checklist_id: &str, slot: DateTime<Utc>, runbook: &Runbook, now: DateTime<Utc>) -> bool {
    runbook.checklists.iter().find(|c| c.id == checklist_id).is_some_and(|c| {
        c.schedule.is_some()
            && matches!(
                crate::schedule::slot_decision(c, slot, now),
                Some(crate::schedule::SlotDecision::OnTime | crate::schedule::SlotDecision::Late { .. })
            )
    })
}

/// `/runbook history <name>`: its last runs, newest first.
pub fn history(checklist: &Checklist, runs: &[Run], now: DateTime<Utc>) -> RunDecision {
    Decision::reply(render::history(checklist, runs, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::command::{find, Found};
    use crate::timer::TimerKind;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    fn morning(rb: &Runbook) -> &Checklist {
        match find(rb, "morning health check") {
            Found::One(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_started_run_keeps_each_steps_check_and_runs_stored_before_checks_still_load() {
        use crate::runbook::pipeline::Figure;
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(1), "U0ALICE", None, &rb, now()).change.unwrap();
        let first = ChecklistPart { phase: 0, part: 0 };
        assert_eq!(run.checks(first), [Figure::SuccessRate24h, Figure::FailedRuns24h]);
        assert_eq!(run.checks(ChecklistPart { phase: 2, part: 0 }), [], "the security steps carry none");

        let stored = serde_json::to_value(&run).unwrap();
        assert_eq!(stored["sections"][0]["steps"][1]["check"], "failed_runs_24h");
        assert_eq!(serde_json::from_value::<Run>(stored.clone()).unwrap(), run, "it reads back as it was");

        // As the previous version stored it: no step has a `check`.
        let mut before = stored.clone();
        for phase in before["sections"].as_array_mut().unwrap() {
            for step in phase["steps"].as_array_mut().unwrap() {
                step.as_object_mut().unwrap().remove("check");
            }
        }
        let old: Run = serde_json::from_value(before).expect("a run stored before checks loads");
        assert_eq!(old.checks(first), []);
        assert_eq!(old.sections.iter().map(|p| p.steps.len()).sum::<usize>(), 12);

        // A check a later version added reads as none rather than failing the run.
        let mut later = stored;
        later["sections"][0]["steps"][0]["check"] = "lead_time_30d".into();
        let read: Run = serde_json::from_value(later).expect("an unknown check does not fail the run");
        assert_eq!(read.checks(first), [Figure::FailedRuns24h]);
    }

    #[test]
    fn a_steps_figure_is_shown_beside_that_step_and_only_when_fetched() {
        use crate::pipeline::checks::Fetched;
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(1), "U0ALICE", None, &rb, now()).change.unwrap();
        let section = |message: &crate::blocks::SlackMessage, id: &str| -> String {
            let blocks = message.blocks.as_array().unwrap();
            let block = blocks.iter().find(|b| b["block_id"] == id).unwrap_or_else(|| panic!("no {id}"));
            block["text"]["text"].as_str().unwrap().to_owned()
        };
        let part = ChecklistPart { phase: 3, part: 0 };
        let checked = render::steps(&run, part, Some((&Fetched::NotConnected, &rb, now())));
        assert!(!section(&checked, "step:3:0").contains("📊"), "GitHub usage carries no check");
        let queue = section(&checked, "step:3:1");
        assert!(queue.starts_with("⬜ Monitor runner queue times"), "{queue}");
        assert!(queue.ends_with("\n📊 GitHub not connected: `/pipeline` says how"), "{queue}");
        let unchecked = render::steps(&run, part, None);
        assert!(!unchecked.blocks.to_string().contains("📊"), "nothing fetched, nothing shown");
    }

    #[test]
    fn a_run_completes_on_its_last_step_and_says_how_long_it_took() {
        let rb = Runbook::seed();
        let checklist = morning(&rb);
        let d = start(checklist, RunId(1), "U0ALICE", None, &rb, now());
        let mut run = d.change.unwrap();
        assert_eq!(d.timers.len(), 1, "overdue reminder set");
        let steps: Vec<(usize, usize)> =
            run.sections.iter().enumerate().flat_map(|(p, ph)| (0..ph.steps.len()).map(move |s| (p, s))).collect();
        let last = steps.len() - 1;
        for (i, (p, s)) in steps.into_iter().enumerate() {
            let done = i != 0;
            let at = now() + TimeDelta::minutes(i as i64);
            let d =
                click(RunButton::Step { phase: p, step: s, done }, RunId(1), Some(run), &alice(), &Runbook::seed(), at);
            run = d.change.expect("settles");
            if i == last {
                let note = d.effects.iter().find_map(|e| match e {
                    Effect::InThread { subject: Subject::Run(RunId(1)), text } => Some(text.clone()),
                    _ => None,
                });
                assert!(note.unwrap().contains("completed in"), "completion note");
            }
        }
        assert!(!run.is_open());
        assert_eq!(run.skipped().len(), 1);
        let late = click(
            RunButton::Step { phase: 0, step: 0, done: true },
            RunId(1),
            Some(run),
            &alice(),
            &Runbook::seed(),
            now(),
        );
        assert!(late.change.is_none(), "a finished run changes no more");
    }

    #[test]
    fn flags_need_a_note_and_are_posted_in_the_thread() {
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(2), "U0ALICE", None, &rb, now()).change.unwrap();
        let refused = flag_submitted(RunId(2), 0, 0, "  ", Some(run.clone()), &alice(), &Runbook::seed(), now());
        assert_eq!(refused.invalid.as_ref().map(|e| e.field), Some(crate::codec::NOTE_FIELD));
        assert!(refused.change.is_none() && refused.effects.is_empty(), "a refused flag changes nothing");
        let d = flag_submitted(RunId(2), 0, 0, "3 failed runs overnight", Some(run), &alice(), &Runbook::seed(), now());
        assert_eq!(d.invalid, None);
        assert_eq!(d.change.unwrap().flags().len(), 1);
        assert!(d.effects.iter().any(|e| matches!(e, Effect::InThread { subject: Subject::Run(RunId(2)), text }
            if text.contains("3 failed runs overnight"))));
    }

    #[test]
    fn a_scheduled_slot_starts_on_time_late_or_is_skipped_and_schedules_the_next() {
        let rb = Runbook::seed();
        let id = morning(&rb).id.clone();
        let slot = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        assert!(slot_starts_a_run(&id, slot, &rb, slot + TimeDelta::seconds(5)));
        assert!(!slot_starts_a_run(&id, slot, &rb, slot + TimeDelta::minutes(20)));
        let on_time = scheduled(&id, slot, Some(RunId(1)), &rb, slot + TimeDelta::seconds(5));
        assert!(on_time.log.is_none());
        let run = on_time.change.clone().unwrap();
        assert_eq!((run.slot, run.late_by_secs, run.started.user.as_str()), (Some(slot), None, "opsbot"));
        let next = on_time.timers.iter().find(|t| matches!(t.kind, TimerKind::ScheduledRun { .. })).unwrap();
        assert_eq!(next.due, slot + TimeDelta::days(1));

        let late = scheduled(&id, slot, Some(RunId(2)), &rb, slot + TimeDelta::minutes(5));
        assert_eq!(late.change.unwrap().late_by_secs, Some(300));

        let skipped = scheduled(&id, slot, None, &rb, slot + TimeDelta::minutes(20));
        assert!(skipped.change.is_none());
        assert!(skipped.log.unwrap().contains("skipped"));
        assert!(skipped.timers.iter().any(|t| t.due == slot + TimeDelta::days(1)), "the next slot is still scheduled");
    }

    #[test]
    fn a_slot_timer_that_outlived_a_long_outage_starts_nothing_and_is_logged_skipped() {
        let rb = Runbook::seed();
        let id = morning(&rb).id.clone();
        let slot = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let much_later = slot + TimeDelta::hours(5);
        assert_eq!(slot_needs(&id, slot, &rb, much_later), Need::Nothing, "no run number is taken");
        let d = scheduled(&id, slot, None, &rb, much_later);
        assert!(d.change.is_none() && d.effects.is_empty());
        assert!(d.log.unwrap().contains("skipped"));
        assert!(d.timers.iter().any(|t| t.due == slot + TimeDelta::days(1)), "the schedule carries on");
    }

    #[test]
    fn overdue_reminds_once() {
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(3), "opsbot", None, &rb, now()).change.unwrap();
        let d = overdue(Some(run), &rb, now() + TimeDelta::minutes(11));
        let reminded = d.change.clone().unwrap();
        assert!(reminded.reminded);
        assert!(d
            .effects
            .iter()
            .any(|e| matches!(e, Effect::InThread { subject: Subject::Run(RunId(3)), text } if text.contains("past its 10 min"))));
        assert!(overdue(Some(reminded), &rb, now() + TimeDelta::minutes(20)).effects.is_empty());
    }
}
