//! `/runbook`: the runbook's routines as checklists in threads — listing
//! them, starting runs by hand or on schedule, settling and flagging steps,
//! the overdue reminder, and each routine's history.

use crate::checklist::{checklist_parts, start_checklist, ChecklistKind, ChecklistPart, StepRefusal};
use crate::command::UsageError;
use crate::decide::{Button, Decision, Effect, Invocation};
use crate::incident::Stamp;
use crate::render;
use crate::run::{Run, RunId, Subject};
use crate::runbook::{Checklist, Runbook};
use crate::text::{duration, escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, TimeDelta, Utc};

pub const RUNBOOK_USAGE: &str = "\
*Usage*
`/runbook list` the runbook's checklists, their schedules and next runs
`/runbook start <name>` run a checklist now, in its thread
`/runbook history <name>` its last runs: who, when, how long, flags, skipped steps
Names may be the checklist's id or name, any case, or a prefix.";

/// How many runs `/runbook history` shows.
pub const HISTORY_LENGTH: usize = 10;
/// A scheduled run that starts within this of its slot is on time.
pub const ON_TIME_GRACE: TimeDelta = TimeDelta::seconds(60);

/// `/runbook …`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunbookCommand {
    Help,
    List,
    Start(String),
    History(String),
}

pub fn parse(text: &str) -> Result<RunbookCommand, UsageError> {
    let text = crate::text::unescape(text.trim());
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w.to_ascii_lowercase(), r.trim().to_owned()),
        None => (text.to_ascii_lowercase(), String::new()),
    };
    let usage = |message: String| UsageError { message, usage: RUNBOOK_USAGE };
    match word.as_str() {
        "" | "help" => Ok(RunbookCommand::Help),
        "list" | "ls" => Ok(RunbookCommand::List),
        "start" | "run" if rest.is_empty() => {
            Err(usage("Which checklist? `/runbook start morning health check`".into()))
        }
        "start" | "run" => Ok(RunbookCommand::Start(rest)),
        "history" if rest.is_empty() => Err(usage("Which checklist? `/runbook history security review`".into())),
        "history" => Ok(RunbookCommand::History(rest)),
        other => Err(usage(format!("Unknown subcommand `{}`.", crate::text::truncate(other, 40)))),
    }
}

/// What a name typed by a person refers to.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    One(&'a Checklist),
    Several(Vec<&'a Checklist>),
    None { did_you_mean: Option<&'a Checklist> },
}

/// Finds a checklist by id or name: exact (any case, spaces or dashes),
/// then a unique prefix, else a "did you mean" for a near miss.
pub fn find<'a>(runbook: &'a Runbook, query: &str) -> Found<'a> {
    let norm = |s: &str| s.to_lowercase().replace(['-', '_'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let q = norm(query);
    if q.is_empty() {
        return Found::None { did_you_mean: None };
    }
    let all = &runbook.checklists;
    if let Some(c) = all.iter().find(|c| norm(&c.id) == q || norm(&c.name) == q) {
        return Found::One(c);
    }
    let prefixed: Vec<&Checklist> =
        all.iter().filter(|c| norm(&c.id).starts_with(&q) || norm(&c.name).starts_with(&q)).collect();
    match prefixed.len() {
        1 => return Found::One(prefixed[0]),
        n if n > 1 => return Found::Several(prefixed),
        _ => {}
    }
    let names = all.iter().map(|c| c.name.as_str()).chain(all.iter().map(|c| c.id.as_str()));
    let did_you_mean =
        crate::runbook::load::closest(&q, names).and_then(|hit| all.iter().find(|c| c.name == hit || c.id == hit));
    Found::None { did_you_mean }
}

fn not_found(query: &str, found: Found<'_>) -> String {
    let text = match found {
        Found::Several(many) => format!(
            "`{}` could be {}. Which one?",
            escape(query),
            many.iter().map(|c| format!("*{}* (`{}`)", c.name, c.id)).collect::<Vec<_>>().join(", ")
        ),
        Found::None { did_you_mean: Some(c) } => {
            format!("There is no checklist `{}`. Did you mean *{}*? `/runbook start {}`", escape(query), c.name, c.id)
        }
        _ => format!("There is no checklist `{}`. `/runbook list` shows them all.", escape(query)),
    };
    text
}

/// `/runbook list`, with each scheduled routine's next slot.
pub fn list(runbook: &Runbook, now: DateTime<Utc>) -> Decision {
    Decision::reply(render::runbook_list(runbook, now))
}

/// The checklist a name typed by a person means, or the answer saying
/// why there is none (several match, or a near miss).
pub fn by_name<'a>(runbook: &'a Runbook, query: &str) -> Result<&'a Checklist, String> {
    match find(runbook, query) {
        Found::One(c) => Ok(c),
        other => Err(not_found(query, other)),
    }
}

/// Starts a run: the header in the team channel, the steps in its thread,
/// and the overdue reminder at start + duration.
pub fn start(
    checklist: &Checklist,
    id: RunId,
    started_by: &str,
    slot: Option<(DateTime<Utc>, Option<TimeDelta>)>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision {
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
        header: None,
        messages: Default::default(),
    };
    let mut effects = vec![Effect::PostRunHeader { run: id }];
    effects.extend(
        checklist_parts(ChecklistKind::Run, &run.sections)
            .into_iter()
            .map(|part| Effect::PostRunPart { run: id, part }),
    );
    let mut decision = Decision::reply(format!(
        "▶️ *{id}* {} started in {}; its steps are in the thread.",
        checklist.name, runbook.channels.team
    ));
    if let Some(due) = run.due {
        decision.timers.push(Timer { subject: Subject::Run(id), due, generation: 0, kind: TimerKind::RunOverdue });
    }
    decision.effects = effects;
    decision.run = Some(run);
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
pub fn button(button: Button, id: RunId, run: Option<Run>, who: &Invocation, now: DateTime<Utc>) -> Decision {
    let private = |text: String| {
        let mut d = Decision::reply(text.clone());
        d.effects.push(Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text });
        d
    };
    let Some(mut run) = run else { return private(format!("There is no run *{id}*.")) };
    match button {
        Button::Step { kind: ChecklistKind::Run, phase, step, done } => {
            match run.settle(phase, step, done, &who.user, now) {
                Ok(_) => {
                    let part = ChecklistPart::of_step(ChecklistKind::Run, phase, step);
                    let mut d = Decision::reply("");
                    d.effects.push(Effect::RefreshRunPart { run: id, part });
                    d.effects.push(Effect::RefreshRunHeader { run: id });
                    if let Some(done) = &run.completed {
                        d.effects.push(Effect::PostInRunThread { run: id, text: completion_note(&run, done.at) });
                    }
                    d.run = Some(run);
                    d
                }
                Err(refused) => private(refusal(id, refused)),
            }
        }
        Button::Flag { phase, step } => {
            let exists = run.sections.get(phase).is_some_and(|p| p.steps.get(step).is_some());
            if !exists || !run.is_open() {
                return private(refusal(id, StepRefusal::NoSuchStep));
            }
            let mut d = Decision::reply("");
            d.modal = Some(render::flag_modal(&run, phase, step));
            d
        }
        _ => Decision::reply(""),
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

/// The flag modal was submitted.
pub fn flag_submitted(
    id: RunId,
    phase: usize,
    step: usize,
    note: &str,
    run: Option<Run>,
    who: &Invocation,
    now: DateTime<Utc>,
) -> Result<Decision, String> {
    let note = note.trim();
    if note.is_empty() {
        return Err("Say what is wrong, so the team can follow up.".to_owned());
    }
    let Some(mut run) = run else { return Err(format!("There is no run {id}.")) };
    let text = crate::checklist::flag(&mut run.sections, phase, step, note, &who.user, now)
        .map_err(|refused| refusal(id, refused))?;
    let part = ChecklistPart::of_step(ChecklistKind::Run, phase, step);
    let mut d = Decision::reply("");
    d.effects.push(Effect::RefreshRunPart { run: id, part });
    d.effects.push(Effect::RefreshRunHeader { run: id });
    d.effects.push(Effect::PostInRunThread {
        run: id,
        text: format!("🚩 <@{}> flagged *{}*: {}", who.user, escape(&text), escape(note)),
    });
    d.run = Some(run);
    Ok(d)
}

/// The run's overdue timer: one reminder, mentioning the responsible role.
pub fn overdue(run: Option<Run>, runbook: &Runbook, now: DateTime<Utc>) -> Decision {
    let Some(mut run) = run else { return Decision::reply("") };
    if !run.is_open() || run.reminded {
        return Decision::reply("");
    }
    run.reminded = true;
    let (settled, total) = crate::checklist::progress(&run.sections);
    let who = run
        .responsible
        .as_deref()
        .and_then(|r| runbook.role(r))
        .map(|r| r.people.iter().map(|p| p.to_mrkdwn()).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("<@{}>", run.started.user));
    let planned = run.due.map(|d| duration(d - run.started.at)).unwrap_or_default();
    let text = format!(
        "⏰ {who}: *{}* {} is past its {planned} ({settled}/{total} steps settled, open for {}).",
        run.id,
        escape(&run.name),
        duration(now - run.started.at)
    );
    let id = run.id;
    let mut d = Decision::reply("");
    d.effects.push(Effect::PostInRunThread { run: id, text });
    d.effects.push(Effect::RefreshRunHeader { run: id });
    d.run = Some(run);
    d
}

/// A routine's schedule slot came due: start its run (on time, or late if
/// opsbot was down at its time), or skip it when its whole duration has
/// passed. Either way the next slot is scheduled. `Err` says why nothing
/// was started, for the log.
pub fn scheduled(
    checklist_id: &str,
    slot: DateTime<Utc>,
    new_id: Option<RunId>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> (Decision, Option<String>) {
    let Some(checklist) = runbook.checklists.iter().find(|c| c.id == checklist_id) else {
        return (Decision::reply(""), Some(format!("routine `{checklist_id}` is no longer in the runbook")));
    };
    let Some(schedule) =
        checklist.schedule.as_deref().and_then(|cron| crate::schedule::Schedule::new(cron, &runbook.timezone).ok())
    else {
        return (Decision::reply(""), Some(format!("routine `{checklist_id}` has no schedule any more")));
    };
    // Without a duration, a run is worth starting late for an hour.
    let window = checklist.duration.unwrap_or(TimeDelta::hours(1));
    let (mut decision, skipped) = match (crate::schedule::decide_slot(slot, window, ON_TIME_GRACE, now), new_id) {
        (crate::schedule::SlotDecision::OnTime, Some(id)) => {
            (start(checklist, id, "opsbot", Some((slot, None)), runbook, now), None)
        }
        (crate::schedule::SlotDecision::Late { by }, Some(id)) => {
            (start(checklist, id, "opsbot", Some((slot, Some(by))), runbook, now), None)
        }
        (crate::schedule::SlotDecision::OnTime | crate::schedule::SlotDecision::Late { .. }, None) => {
            (Decision::reply(""), Some(format!("{} needs a run number to start", checklist.id)))
        }
        (crate::schedule::SlotDecision::Skipped { by }, _) => (
            Decision::reply(""),
            Some(format!(
                "skipped {} of {}: opsbot was down, and it is {} past its slot, beyond its {} duration",
                schedule.describe_slot(slot),
                checklist.name,
                duration(by),
                duration(window)
            )),
        ),
    };
    if let Some(next) = schedule.next_after(slot.max(now)) {
        decision.timers.push(Timer {
            subject: Subject::Routine(checklist.id.clone()),
            due: next,
            generation: 0,
            kind: TimerKind::ScheduledRun { slot: next },
        });
    }
    (decision, skipped)
}

/// Whether a slot, handled now, starts a run (so the shell knows to take
/// a run number for it; a skipped slot uses none).
pub fn slot_starts_a_run(checklist_id: &str, slot: DateTime<Utc>, runbook: &Runbook, now: DateTime<Utc>) -> bool {
    runbook.checklists.iter().find(|c| c.id == checklist_id).is_some_and(|c| {
        let window = c.duration.unwrap_or(TimeDelta::hours(1));
        c.schedule.is_some()
            && !matches!(
                crate::schedule::decide_slot(slot, window, ON_TIME_GRACE, now),
                crate::schedule::SlotDecision::Skipped { .. }
            )
    })
}

/// The timer for a routine's slot; the same for every replica, so that
/// scheduling it twice keeps one.
pub fn slot_timer(checklist_id: &str, slot: DateTime<Utc>) -> Timer {
    Timer {
        subject: Subject::Routine(checklist_id.to_owned()),
        due: slot,
        generation: 0,
        kind: TimerKind::ScheduledRun { slot },
    }
}

/// `/runbook history <name>`: its last runs, newest first.
pub fn history(checklist: &Checklist, runs: &[Run], now: DateTime<Utc>) -> Decision {
    Decision::reply(render::run_history(checklist, runs, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation { user: "U0ALICE".into(), channel: "C0DEVOPS".into(), team_domain: None }
    }

    fn morning(rb: &Runbook) -> &Checklist {
        match find(rb, "morning health check") {
            Found::One(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_match_by_id_name_case_and_prefix_with_a_did_you_mean() {
        let rb = Runbook::seed();
        let by_name = morning(&rb).id.clone();
        assert!(matches!(find(&rb, &by_name), Found::One(c) if c.id == by_name));
        assert!(matches!(find(&rb, "MORNING"), Found::One(c) if c.id == by_name));
        assert!(matches!(find(&rb, "mornin health check"), Found::None { did_you_mean: Some(c) } if c.id == by_name));
        assert!(matches!(find(&rb, "zzzz"), Found::None { did_you_mean: None }));
    }

    #[test]
    fn grammar() {
        assert_eq!(parse(""), Ok(RunbookCommand::Help));
        assert_eq!(parse("list"), Ok(RunbookCommand::List));
        assert_eq!(parse("start Security Review"), Ok(RunbookCommand::Start("Security Review".into())));
        assert!(parse("start").unwrap_err().message.contains("Which checklist"));
        assert!(parse("frob").unwrap_err().message.contains("Unknown subcommand"));
    }

    #[test]
    fn a_run_completes_on_its_last_step_and_says_how_long_it_took() {
        let rb = Runbook::seed();
        let checklist = morning(&rb);
        let d = start(checklist, RunId(1), "U0ALICE", None, &rb, now());
        let mut run = d.run.unwrap();
        assert_eq!(d.timers.len(), 1, "overdue reminder set");
        let steps: Vec<(usize, usize)> =
            run.sections.iter().enumerate().flat_map(|(p, ph)| (0..ph.steps.len()).map(move |s| (p, s))).collect();
        let last = steps.len() - 1;
        for (i, (p, s)) in steps.into_iter().enumerate() {
            let done = i != 0;
            let at = now() + TimeDelta::minutes(i as i64);
            let d = button(
                Button::Step { kind: ChecklistKind::Run, phase: p, step: s, done },
                RunId(1),
                Some(run),
                &alice(),
                at,
            );
            run = d.run.expect("settles");
            if i == last {
                let note = d.effects.iter().find_map(|e| match e {
                    Effect::PostInRunThread { text, .. } => Some(text.clone()),
                    _ => None,
                });
                assert!(note.unwrap().contains("completed in"), "completion note");
            }
        }
        assert!(!run.is_open());
        assert_eq!(run.skipped().len(), 1);
        let late = button(
            Button::Step { kind: ChecklistKind::Run, phase: 0, step: 0, done: true },
            RunId(1),
            Some(run),
            &alice(),
            now(),
        );
        assert!(late.run.is_none(), "a finished run changes no more");
    }

    #[test]
    fn flags_need_a_note_and_are_posted_in_the_thread() {
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(2), "U0ALICE", None, &rb, now()).run.unwrap();
        assert!(flag_submitted(RunId(2), 0, 0, "  ", Some(run.clone()), &alice(), now()).is_err());
        let d = flag_submitted(RunId(2), 0, 0, "3 failed runs overnight", Some(run), &alice(), now()).unwrap();
        assert_eq!(d.run.unwrap().flags().len(), 1);
        assert!(d
            .effects
            .iter()
            .any(|e| matches!(e, Effect::PostInRunThread { text, .. } if text.contains("3 failed runs overnight"))));
    }

    #[test]
    fn a_scheduled_slot_starts_on_time_late_or_is_skipped_and_schedules_the_next() {
        let rb = Runbook::seed();
        let id = morning(&rb).id.clone();
        let slot = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        assert!(slot_starts_a_run(&id, slot, &rb, slot + TimeDelta::seconds(5)));
        assert!(!slot_starts_a_run(&id, slot, &rb, slot + TimeDelta::minutes(20)));
        let (on_time, why) = scheduled(&id, slot, Some(RunId(1)), &rb, slot + TimeDelta::seconds(5));
        assert!(why.is_none());
        let run = on_time.run.clone().unwrap();
        assert_eq!((run.slot, run.late_by_secs, run.started.user.as_str()), (Some(slot), None, "opsbot"));
        let next = on_time.timers.iter().find(|t| matches!(t.kind, TimerKind::ScheduledRun { .. })).unwrap();
        assert_eq!(next.due, slot + TimeDelta::days(1));

        let (late, _) = scheduled(&id, slot, Some(RunId(2)), &rb, slot + TimeDelta::minutes(5));
        assert_eq!(late.run.unwrap().late_by_secs, Some(300));

        let (skipped, why) = scheduled(&id, slot, None, &rb, slot + TimeDelta::minutes(20));
        assert!(skipped.run.is_none());
        assert!(why.unwrap().contains("skipped"));
        assert!(skipped.timers.iter().any(|t| t.due == slot + TimeDelta::days(1)), "the next slot is still scheduled");
    }

    #[test]
    fn overdue_reminds_once() {
        let rb = Runbook::seed();
        let run = start(morning(&rb), RunId(3), "opsbot", None, &rb, now()).run.unwrap();
        let d = overdue(Some(run), &rb, now() + TimeDelta::minutes(11));
        let reminded = d.run.clone().unwrap();
        assert!(reminded.reminded);
        assert!(d
            .effects
            .iter()
            .any(|e| matches!(e, Effect::PostInRunThread { text, .. } if text.contains("past its 10 min"))));
        assert!(overdue(Some(reminded), &rb, now() + TimeDelta::minutes(20)).effects.is_empty());
    }
}
