//! Incident decisions: every `/incident` command, a click on an incident's
//! buttons, the resolve modal's submission, and the incident's timers
//! (escalation, reminders). Each takes what it needs and `now`, and returns
//! a [`Decision`] about one incident.

use super::command::{Command, USAGE};
use super::render;
use super::{Incident, IncidentChange, Origin, Stamp, Status, TimelineEntry, TimelineEvent, TransitionError};
use crate::checklist::start_checklist;
use crate::codec::IncidentButton;
use crate::decision::{Decision, Effect, Invocation, Reply};
use crate::runbook::hours::{self, Escalate};
use crate::runbook::permissions::{Action, Refusal};
use crate::runbook::Runbook;
use crate::severity::Severity;
use crate::subject::{AlertId, ChecklistPart, IncidentChecklist, IncidentId, IncidentMessage, Message, Subject};
use crate::text::duration;
use crate::timer::{Declaration, IncidentReminder, Timer, TimerKind};
use chrono::{DateTime, TimeDelta, Utc};
use IncidentChecklist::Playbook;

/// A decision about one incident.
pub type IncidentDecision = Decision<IncidentChange>;

/// How far back `/incident stats` looks.
pub const STATS_WINDOW: TimeDelta = TimeDelta::days(30);
/// The seed runbook's KPI "Mean Time to Recovery < 30 minutes", for a
/// runbook file whose `kpis` leave it out.
pub const MTTR_TARGET: TimeDelta = TimeDelta::minutes(30);
/// The KPI `/incident stats` holds recoveries against.
pub const MTTR_KPI: &str = "mean-time-to-recovery";

/// The runbook's mean-time-to-recovery target (its `kpis`), else the seed's.
pub fn mttr_target(runbook: &Runbook) -> TimeDelta {
    runbook
        .alerts
        .kpis
        .iter()
        .find(|k| k.id == MTTR_KPI)
        .and_then(|k| crate::runbook::load::duration_target(&k.target))
        .unwrap_or(MTTR_TARGET)
}

/// What an incident decision needs loaded first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// A fresh incident number.
    NewId,
    One(IncidentId),
    /// The incident and its timeline.
    WithTimeline(IncidentId),
    /// The newest open incidents, at most this many, and how many are open:
    /// what a list shows, however many there are.
    OpenFirst(usize),
    /// The tallies of incidents declared in the last so many days (UTC),
    /// today included (see [`super::stats`]).
    Tallies(i64),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    NewId(IncidentId),
    One(Option<Incident>),
    WithTimeline(Option<(Incident, Vec<TimelineEntry>)>),
    /// The first open incidents, and how many are open in all.
    Page(Vec<Incident>, usize),
    Tallies(super::stats::Tallies),
}

fn alert(id: IncidentId) -> Message {
    Message::Incident(id, IncidentMessage::Alert)
}

fn checklist(id: IncidentId, which: IncidentChecklist, part: ChecklistPart) -> Message {
    Message::Incident(id, IncidentMessage::Checklist(which, part))
}

fn in_thread(id: IncidentId, text: String) -> Effect {
    Effect::InThread { subject: Subject::Incident(id), text }
}

fn changed(reply: Reply, incident: Incident, entry: TimelineEntry, effects: Vec<Effect>) -> IncidentDecision {
    let mut decision = Decision::answer(reply);
    decision.change = Some(IncidentChange { incident, timeline: vec![entry], tally: None });
    decision.effects = effects;
    decision
}

/// Mentions of the role at `level` of the severity's escalation matrix,
/// with its name: `("DevOps team lead", "<@U1> <!subteam^S2>")`. A role
/// with an on-call rotation is paged as whoever is on call at `now`.
fn escalation_audience(runbook: &Runbook, inc: &Incident, level: usize, now: DateTime<Utc>) -> (String, String) {
    match runbook.escalation_role(inc.severity, level) {
        Some(role) => {
            let mentions: Vec<String> = runbook.paged(role, now).iter().map(|p| p.to_mrkdwn()).collect();
            (role.name.clone(), mentions.join(" "))
        }
        None => ("responders".to_owned(), "<!here>".to_owned()),
    }
}

/// The role `id` and who it pages at `now`: `("DevOps team lead", "<@U1>")`.
fn role_audience(runbook: &Runbook, id: &str, now: DateTime<Utc>) -> Option<(String, String)> {
    let role = runbook.role(id)?;
    let mentions: Vec<String> = runbook.paged(role, now).iter().map(|p| p.to_mrkdwn()).collect();
    Some((role.name.clone(), mentions.join(" ")))
}

/// The role id at escalation `level` of the incident's severity (past the
/// last level, the last).
fn level_role(runbook: &Runbook, inc: &Incident, level: usize) -> String {
    let matrix = &runbook.policy(inc.severity).escalation;
    matrix.get(level).or(matrix.last()).cloned().unwrap_or_default()
}

/// The page of the first responder (and the roles the severity pages
/// beside it), with when it escalates and who else is paged later if
/// nobody acknowledges.
fn first_page_text(runbook: &Runbook, inc: &Incident, escalates_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let policy = runbook.policy(inc.severity);
    let (first, mentions) = escalation_audience(runbook, inc, inc.escalation_level, now);
    let next = runbook
        .escalation_role(inc.severity, inc.escalation_level + 1)
        .filter(|_| inc.escalation_level + 1 < policy.escalation.len())
        .map(|r| r.name.clone());
    // Roles the runbook pages at once beside the first responder (the
    // seed's P0 tells management straight away).
    let also: String = policy
        .also_page
        .iter()
        .filter(|r| policy.escalation.first() != Some(*r))
        .filter_map(|r| role_audience(runbook, r, now))
        .map(|(name, mentions)| format!(", and the {name}: {mentions}"))
        .collect();
    let mut text = format!(
        "📟 Paging the {first}: {mentions}{also}. Acknowledge within {}{}.",
        duration(policy.targets.respond),
        next.as_ref().map(|n| format!(" or this escalates to the {n}")).unwrap_or_default()
    );
    for late in &policy.also_page_after {
        if let Some(role) = runbook.role(&late.role) {
            text.push_str(&format!(
                " The {} is paged too if nobody has acknowledged within {} of declaring.",
                role.name,
                duration(late.after)
            ));
        }
    }
    if escalates_at != now + policy.targets.respond {
        let to = next.map_or_else(|| format!("the {first} is reminded"), |n| format!("this escalates to the {n}"));
        text.push_str(&format!(
            " ⏸ The clock runs during business hours only: if nobody acknowledges, {to} {}.",
            crate::runbook::hours::slack_when(escalates_at, runbook.timezone)
        ));
    }
    text
}

/// What a severity that waits for the next business day says when it is
/// declared outside business hours: who is paged, and when.
fn deferred_page_text(runbook: &Runbook, inc: &Incident, opening: DateTime<Utc>) -> String {
    let policy = runbook.policy(inc.severity);
    let (first, _) = escalation_audience(runbook, inc, inc.escalation_level, opening);
    let also: String = policy
        .also_page
        .iter()
        .filter(|r| policy.escalation.first() != Some(*r))
        .filter_map(|r| runbook.role(r))
        .map(|role| format!(" and the {}", role.name))
        .collect();
    format!(
        "🌙 Outside business hours: the {first}{also} {} paged {}, when business hours start ({} escalates the next \
         business day). Nobody is paged before then; acknowledge to take it now.",
        if also.is_empty() { "is" } else { "are" },
        crate::runbook::hours::slack_when(opening, runbook.timezone),
        inc.severity
    )
}

/// The pages an unacknowledged incident has coming, its response clock
/// starting at `from`: the next escalation, the severity's late pages and,
/// for a severity that waits for the next business day declared outside
/// business hours, the first page at the opening. Sets its `next_pages`.
/// Returns the timers, when it escalates, and when the deferred first
/// page is, if it is deferred.
fn schedule_pages(
    runbook: &Runbook,
    inc: &mut Incident,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<Timer>, DateTime<Utc>, Option<DateTime<Utc>>) {
    let policy = runbook.policy(inc.severity);
    let clock = runbook.clock(inc.severity);
    let (id, gen, level) = (inc.id, inc.generation, inc.escalation_level + 1);
    let escalates_at = clock.add(from, policy.targets.respond);
    let mut timers = vec![Timer::incident(id, gen, escalates_at, IncidentReminder::Escalate { level })];
    inc.next_pages = vec![super::NextPage { at: escalates_at, role: level_role(runbook, inc, level) }];
    for late in &policy.also_page_after {
        let at = clock.add(inc.declared.at, late.after).max(now);
        timers.push(Timer::incident(id, gen, at, IncidentReminder::LatePage { role: late.role.clone() }));
        inc.next_pages.push(super::NextPage { at, role: late.role.clone() });
    }
    let deferred = (policy.escalate == Escalate::NextBusinessDay && clock.paused(now)).then(|| clock.hold(now));
    if let Some(opening) = deferred {
        timers.push(Timer::incident(id, gen, opening, IncidentReminder::FirstPage));
        inc.next_pages.push(super::NextPage { at: opening, role: level_role(runbook, inc, inc.escalation_level) });
    }
    inc.next_pages.sort_by_key(|p| p.at);
    (timers, escalates_at, deferred)
}

fn declare(
    id: IncidentId,
    severity: Severity,
    title: &str,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let policy = runbook.policy(severity);
    let clock = runbook.clock(severity);
    let mut incident = Incident::new(
        id,
        severity,
        title.to_owned(),
        Stamp { user: who.user.clone(), at: now },
        who.channel.clone(),
        who.team_domain.clone(),
    );
    incident.playbook = start_checklist(&policy.playbook);
    incident.update_due = policy.update_every.map(|every| clock.add(now, every));
    let entry = TimelineEntry {
        at: now,
        user: who.user.clone(),
        event: TimelineEvent::Declared { severity, title: title.to_owned() },
    };
    let channel = runbook.channel_for(severity);
    let (mut timers, escalates_at, deferred) = schedule_pages(runbook, &mut incident, now, now);
    let page = match deferred {
        Some(opening) => deferred_page_text(runbook, &incident, opening),
        None => first_page_text(runbook, &incident, escalates_at, now),
    };
    let later = deferred
        .map(|opening| {
            format!(" Outside business hours: nobody is paged until {}.", hours::slack_when(opening, runbook.timezone))
        })
        .unwrap_or_default();
    let reply = Reply::text(format!(
        "🚨 *{id}* declared ({severity}). Posting the alert to {channel}; I'll send you the link as soon as it is up.{later}"
    ));
    let mut effects = vec![Effect::Post(alert(id)), in_thread(id, page)];
    effects.extend(
        crate::checklist::parts(&incident.playbook)
            .into_iter()
            .map(|part| Effect::Post(checklist(id, IncidentChecklist::Playbook, part))),
    );
    effects.push(Effect::SendAlertLink { incident: id, channel: who.channel.clone(), user: who.user.clone() });
    // The resolution target is wall-clock time, as the report measures
    // it; a severity that pauses only holds the reminder to the opening.
    timers.push(Timer::incident(
        id,
        0,
        clock.hold(now + policy.targets.resolve),
        IncidentReminder::ResolutionOverdue { round: 1 },
    ));
    if let Some(due) = incident.update_due {
        timers.push(Timer::incident(id, 0, due, IncidentReminder::UpdateDue));
    }
    let mut decision = changed(reply, incident, entry, effects);
    decision.timers = timers;
    decision
}

/// A runbook rule's incident for an alert group (a failed production
/// deployment, a critical Alertmanager group): the whole declare flow, with
/// opsbot as the declarer and what fired in the incident.
pub fn declare_from_alert(
    id: IncidentId,
    alert: AlertId,
    declaration: &Declaration,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let channel = runbook.channel_for(declaration.severity).to_owned();
    let by_rule = Invocation {
        user: super::BY_RULE.to_owned(),
        channel: channel.clone(),
        team_domain: None,
        response_url: None,
        groups: Vec::new(),
    };
    let mut decision = declare(id, declaration.severity, &declaration.title, &by_rule, runbook, now);
    // Nobody typed a command, so nobody waits for the link.
    decision.effects.retain(|e| !matches!(e, Effect::SendAlertLink { .. }));
    if declaration.announce {
        let note = format!("🚨 The runbook declared *{id}* ({}) for this; it is in {channel}.", declaration.severity);
        decision.effects.push(Effect::InThread { subject: Subject::Alert(alert), text: note });
    }
    if let Some(change) = decision.change.as_mut() {
        change.incident.origin = Some(Origin { alert, details: declaration.details.clone() });
    }
    decision.timers.push(Timer {
        due: now,
        kind: TimerKind::AlertDeclared { alert, incident: id, severity: declaration.severity, by: None },
    });
    decision.reply = Reply::text("");
    decision
}

/// The declare form an alert's button opened was submitted.
#[allow(clippy::too_many_arguments)]
pub fn declare_submitted(
    loaded: Loaded,
    alert: AlertId,
    severity: Option<Severity>,
    title: &str,
    details: Option<&str>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(severity) = severity else {
        return Decision::invalid(crate::codec::SEVERITY_FIELD, "Choose a severity, P0 to P3.");
    };
    if title.trim().is_empty() {
        return Decision::invalid(crate::codec::TITLE_FIELD, "Give the incident a title.");
    }
    if let Err(refused) = runbook.may(Action::Declare(severity), who, None) {
        return refused.under(crate::codec::SEVERITY_FIELD, who);
    }
    let Loaded::NewId(id) = loaded else { return Decision::reply(crate::replies::INTERNAL_ERROR) };
    // A form has no channel; follow-up notes go where the incident is.
    let channel = runbook.channel_for(severity).to_owned();
    let declarer = Invocation {
        user: who.user.clone(),
        channel: channel.clone(),
        team_domain: who.team_domain.clone(),
        response_url: None,
        groups: who.groups.clone(),
    };
    let mut decision = declare(id, severity, title.trim(), &declarer, runbook, now);
    decision.effects.retain(|e| !matches!(e, Effect::SendAlertLink { .. }));
    let note = format!("🚨 <@{}> declared *{id}* ({severity}) for this; it is in {channel}.", who.user);
    decision.effects.push(Effect::InThread { subject: Subject::Alert(alert), text: note });
    if let Some(change) = decision.change.as_mut() {
        // Typed in a plain-text box: shown as typed, never as markup.
        let details = details.map_or_else(|| format!("Declared from {alert}."), crate::text::escape);
        change.incident.origin = Some(Origin { alert, details });
    }
    decision.timers.push(Timer {
        due: now,
        kind: TimerKind::AlertDeclared { alert, incident: id, severity, by: Some(who.user.clone()) },
    });
    decision
}

/// What a `/incident` command needs loaded before it is decided. A
/// declare the person may not make takes no number: the refusal leaves no
/// gap in the incidents' numbering.
pub fn needs(cmd: &Command, who: &Invocation, runbook: &Runbook) -> Need {
    match cmd {
        Command::Help => Need::Nothing,
        Command::Declare { severity, .. } if runbook.may(Action::Declare(*severity), who, None).is_err() => {
            Need::Nothing
        }
        Command::Declare { .. } => Need::NewId,
        Command::List => Need::OpenFirst(render::LIST_MAX),
        Command::Show(id) | Command::Report(id) => Need::WithTimeline(*id),
        Command::Stats => Need::Tallies(STATS_WINDOW.num_days()),
        Command::Ack(id)
        | Command::Resolve { id, .. }
        | Command::Update { id, .. }
        | Command::Commander { id, .. }
        | Command::ChangeSeverity { id, .. } => Need::One(*id),
    }
}

/// Whether a declare from a form (an alert's, or the Home tab's) gets as
/// far as taking a number: not when a field is missing or the person may
/// not declare that severity.
pub fn form_declare_needs_a_number(
    severity: Option<Severity>,
    title: &str,
    who: &Invocation,
    runbook: &Runbook,
) -> bool {
    severity.is_some_and(|s| !title.trim().is_empty() && runbook.may(Action::Declare(s), who, None).is_ok())
}

/// Decides what a `/incident` command does, with what [`needs`] asked for.
pub fn command(
    cmd: &Command,
    loaded: Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    if let Err(refused) = permitted(cmd, &loaded, who, runbook) {
        return refused.decision(who);
    }
    match (cmd, loaded) {
        (Command::Help, _) => Decision::reply(USAGE),
        (Command::Declare { severity, title }, Loaded::NewId(id)) => declare(id, *severity, title, who, runbook, now),
        (Command::List, Loaded::Page(open, total)) => Decision::answer(render::incident_list(&open, total, now)),
        (Command::Show(id), Loaded::WithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                Decision::answer(render::incident_details(&incident, &timeline, runbook, now))
            }
            None => unknown(*id),
        },
        (Command::Ack(id), Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.acknowledge(&who.user, now)?;
            let reply = Reply::text(format!("👀 You acknowledged *{}*; escalation is stopped.", inc.id));
            let note = format!("👀 <@{}> acknowledged *{}*; escalation stopped.", who.user, inc.id);
            Ok((reply, entry, vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)]))
        }),
        (Command::Resolve { id, summary }, Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.resolve(&who.user, summary.clone(), now)?;
            inc.post_incident = start_checklist(&runbook.post_incident.sections);
            let reply = Reply::text(format!("✅ *{}* resolved. The post-incident checklist is in its thread.", inc.id));
            let note = match summary {
                Some(s) => format!("✅ Resolved by <@{}>: {}", who.user, crate::text::escape(s)),
                None => format!("✅ Resolved by <@{}>.", who.user),
            };
            let mut effects = vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)];
            // The playbook's buttons go away: its steps can no longer be settled.
            effects.extend(
                crate::checklist::parts(&inc.playbook)
                    .into_iter()
                    .map(|part| Effect::Refresh(checklist(inc.id, IncidentChecklist::Playbook, part))),
            );
            effects.extend(
                crate::checklist::parts(&inc.post_incident)
                    .into_iter()
                    .map(|part| Effect::Post(checklist(inc.id, IncidentChecklist::PostIncident, part))),
            );
            Ok((reply, entry, effects))
        }),
        (Command::Update { id, text }, Loaded::One(found)) => {
            let every = found.as_ref().and_then(|inc| runbook.policy(inc.severity).update_every);
            let mut decision = transition(*id, found, |inc| {
                let entry = inc.post_update(&who.user, text.clone(), now)?;
                inc.update_due = every.map(|every| now + every);
                let note = format!("📣 *Status update* from <@{}>: {}", who.user, crate::text::escape(text));
                Ok((
                    Reply::text(format!("📣 Update posted in *{}*'s thread.", inc.id)),
                    entry,
                    vec![in_thread(inc.id, note)],
                ))
            });
            if let Some(IncidentChange { incident: inc, .. }) = &decision.change {
                if let Some(due) = inc.update_due {
                    decision.timers.push(Timer::incident(*id, inc.generation, due, IncidentReminder::UpdateDue));
                }
            }
            decision
        }
        (Command::Commander { id, user }, Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.assign_commander(&who.user, user.clone(), now)?;
            let note = format!("🎖️ <@{user}> is now the incident commander (assigned by <@{}>).", who.user);
            Ok((
                Reply::text(format!("🎖️ <@{user}> commands *{}*.", inc.id)),
                entry,
                vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)],
            ))
        }),
        (Command::Report(id), Loaded::WithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                let text = crate::text::truncate(
                    &super::report::report(&incident, &timeline, runbook, super::report::Style::Slack),
                    39_000,
                );
                let mut d = Decision::answer(Reply::text(format!("📋 The report of *{id}* is posted in its thread.")));
                d.effects.push(in_thread(*id, text));
                d
            }
            None => unknown(*id),
        },
        (Command::Stats, Loaded::Tallies(tallies)) => Decision::answer(Reply::text(super::stats::render(
            &tallies,
            runbook,
            mttr_target(runbook),
            STATS_WINDOW.num_days(),
        ))),
        (Command::ChangeSeverity { id, severity }, Loaded::One(found)) => {
            change_severity(*id, *severity, found, who, runbook, now)
        }
        // The shell loads what `needs` asks for; anything else is a bug in
        // the shell, answered without changing anything.
        (_, _) => Decision::reply(crate::replies::INTERNAL_ERROR),
    }
}

/// Whether the runbook's permissions let `who` do what `cmd` does to the
/// incident loaded; commands that change nothing are open to everyone.
fn permitted(cmd: &Command, loaded: &Loaded, who: &Invocation, runbook: &Runbook) -> Result<(), Refusal> {
    let incident = match loaded {
        Loaded::One(Some(incident)) => Some(incident),
        _ => None,
    };
    let commander = incident.and_then(|inc| inc.commander.as_deref());
    let is = |severity: Severity| incident.is_some_and(|inc| inc.severity == severity);
    let actions: Vec<Action> = match cmd {
        Command::Declare { severity, .. } => vec![Action::Declare(*severity)],
        Command::Ack(_) => vec![Action::Acknowledge],
        Command::Resolve { .. } if is(Severity::P0) => vec![Action::Resolve, Action::ResolveP0],
        Command::Resolve { .. } => vec![Action::Resolve],
        Command::Commander { .. } => vec![Action::AssignCommander],
        Command::ChangeSeverity { severity, .. } => {
            // Lower is a larger number: P0 to P2 lowers it.
            let lowers = incident.is_some_and(|inc| inc.severity <= Severity::P1 && *severity > inc.severity);
            if lowers {
                vec![Action::ChangeSeverity, Action::LowerSeverity]
            } else {
                vec![Action::ChangeSeverity]
            }
        }
        _ => Vec::new(),
    };
    runbook.may_all(&actions, who, commander)
}

/// Re-routes and re-times an incident at a new severity. The response
/// clock restarts at the change (a raise is a new page); the resolution
/// target counts from declaration; timers of the old severity go stale.
fn change_severity(
    id: IncidentId,
    to: Severity,
    found: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(mut inc) = found else { return unknown(id) };
    if let Some(by) = &inc.resolved {
        return Decision::answer(Reply::text(render::refusal(&TransitionError::AlreadyResolved {
            id,
            by: by.clone(),
        })));
    }
    let from = inc.severity;
    if from == to {
        return Decision::answer(Reply::text(format!("*{id}* is already {to}; nothing was changed.")));
    }
    let policy = runbook.policy(to);
    inc.severity = to;
    inc.generation += 1;
    let raised = to < from;
    if raised {
        // The more severe playbook starts now, after what was already done.
        inc.playbook.extend(start_checklist(&policy.playbook).into_iter().map(|mut phase| {
            phase.name = format!("{to}: {}", phase.name);
            phase
        }));
    }
    let gen = inc.generation;
    let clock = runbook.clock(to);
    let mut timers = vec![Timer::incident(
        id,
        gen,
        clock.hold((inc.declared.at + policy.targets.resolve).max(now)),
        IncidentReminder::ResolutionOverdue { round: 1 },
    )];
    inc.update_due = policy.update_every.map(|every| clock.add(now, every));
    if let Some(due) = inc.update_due {
        timers.push(Timer::incident(id, gen, due, IncidentReminder::UpdateDue));
    }
    let verb = if raised { "raised" } else { "lowered" };
    let mut note = format!("{} Severity {verb} {from} → {to} by <@{}>.", if raised { "⬆️" } else { "⬇️" }, who.user);
    if inc.status == Status::Declared {
        let (pages, escalates_at, deferred) = schedule_pages(runbook, &mut inc, now, now);
        timers.extend(pages);
        let page = match deferred {
            Some(opening) => deferred_page_text(runbook, &inc, opening),
            None => first_page_text(runbook, &inc, escalates_at, now),
        };
        note.push(' ');
        note.push_str(&page);
    }
    let moves = runbook.channel_for(from) != runbook.channel_for(to);
    let mut effects = vec![if moves { Effect::MoveAlert { incident: id } } else { Effect::Refresh(alert(id)) }];
    effects.push(in_thread(id, note));
    if raised {
        let messages = crate::checklist::parts(&inc.playbook).into_iter().map(|p| checklist(id, Playbook, p));
        effects.extend(messages.filter(|m| inc.posted.get(m).is_none()).map(Effect::Post));
    }
    let entry = TimelineEntry { at: now, user: who.user.clone(), event: TimelineEvent::SeverityChanged { from, to } };
    let reply = if moves {
        format!("*{id}* is now {to}; its alert moves to {}.", runbook.channel_for(to))
    } else {
        format!("*{id}* is now {to}.")
    };
    let mut decision = changed(Reply::text(reply), inc, entry, effects);
    decision.timers = timers;
    decision
}

/// A click on one of an incident's buttons. The HTTP answer to a click is
/// not shown to anyone, so refusals become an ephemeral note to the clicker.
pub fn click(
    button: IncidentButton,
    id: IncidentId,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let mut decision = match button {
        IncidentButton::Acknowledge => command(&Command::Ack(id), Loaded::One(incident), who, runbook, now),
        IncidentButton::TakeCommand => {
            command(&Command::Commander { id, user: who.user.clone() }, Loaded::One(incident), who, runbook, now)
        }
        // Resolve asks for a summary first; the modal's submission resolves.
        IncidentButton::Resolve => match incident {
            Some(inc) if inc.is_open() => {
                let mut d = Decision::nothing();
                d.modal = Some(render::resolve_modal(&inc));
                return d;
            }
            other => command(&Command::Resolve { id, summary: None }, Loaded::One(other), who, runbook, now),
        },
        IncidentButton::Step { checklist: which, phase, step, done } => transition(id, incident, |inc| {
            let entry = inc.settle_step(which, phase, step, done, &who.user, now)?;
            let part = ChecklistPart::of_step(phase, step);
            Ok((
                Reply::text(""),
                entry,
                vec![Effect::Refresh(checklist(inc.id, which, part)), Effect::Refresh(alert(inc.id))],
            ))
        }),
    };
    if !decision.changes_state() {
        decision.effects.push(Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: decision.reply.text.clone(),
        });
    }
    decision
}

/// The resolve modal was submitted. A refusal keeps the modal open, saying
/// why under the summary.
pub fn resolve_submitted(
    id: IncidentId,
    summary: Option<String>,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let summary = summary.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let decision = command(&Command::Resolve { id, summary }, Loaded::One(incident), who, runbook, now);
    if decision.changes_state() {
        decision
    } else {
        Decision::invalid(crate::codec::SUMMARY_FIELD, decision.reply.text)
    }
}

/// A deployment was asked for while the incident is open: its timeline
/// records it and its thread says so. A resolved incident's timeline is
/// left as it was; it was open when the deployment was asked for, but its
/// report was written without it.
pub fn deployment_noted(
    deployment: crate::subject::DeployId,
    by: &str,
    text: &str,
    incident: Option<Incident>,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(incident) = incident.filter(|i| i.is_open()) else { return Decision::nothing() };
    let id = incident.id;
    let entry = TimelineEntry {
        at: now,
        user: by.to_owned(),
        event: TimelineEvent::Deployment { deployment, text: text.to_owned() },
    };
    changed(Reply::text(""), incident, entry, vec![in_thread(id, text.to_owned())])
}

/// One of an incident's timers came due (at `due`, set in `generation`):
/// act on it if its reason still holds.
pub fn timer(
    reminder: IncidentReminder,
    generation: u32,
    due: DateTime<Utc>,
    incident: Option<Incident>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let nothing = Decision::nothing;
    let Some(mut inc) = incident else { return nothing() };
    if inc.status == Status::Resolved || generation != inc.generation {
        return nothing();
    }
    let policy = runbook.policy(inc.severity);
    let clock = runbook.clock(inc.severity);
    // On a clock that pauses, what counts is the time it ran.
    let elapsed = if clock.escalate.pauses() {
        format!("{} of business hours", duration(clock.between(inc.declared.at, now)))
    } else {
        duration(now - inc.declared.at)
    };
    match reminder {
        IncidentReminder::Escalate { level } => {
            let (role, mentions) = escalation_audience(runbook, &inc, level, now);
            let Some(entry) = inc.escalate(level, &role, now) else { return nothing() };
            let last = policy.escalation.len().saturating_sub(1);
            let text = if level <= last {
                format!(
                    "⏫ *{}* has not been acknowledged after {elapsed}. Escalating to the {role}: {mentions}",
                    inc.id
                )
            } else {
                format!(
                    "⏫ *{}* is still not acknowledged after {elapsed}. {mentions}, please acknowledge or hand it on.",
                    inc.id
                )
            };
            let next = clock.add(due, policy.targets.respond);
            let paged = level_role(runbook, &inc, level);
            inc.next_pages.retain(|p| !(p.at == due && p.role == paged));
            inc.next_pages.push(super::NextPage { at: next, role: level_role(runbook, &inc, level + 1) });
            inc.next_pages.sort_by_key(|p| p.at);
            let id = inc.id;
            let mut decision =
                changed(Reply::text(""), inc, entry, vec![in_thread(id, text), Effect::Refresh(alert(id))]);
            decision.timers.push(Timer::incident(
                id,
                generation,
                next,
                IncidentReminder::Escalate { level: level + 1 },
            ));
            decision
        }
        IncidentReminder::FirstPage => {
            if inc.status != Status::Declared {
                return nothing();
            }
            let role = level_role(runbook, &inc, inc.escalation_level);
            if !inc.next_pages.iter().any(|p| p.at == due && p.role == role) {
                return nothing();
            }
            inc.next_pages.retain(|p| !(p.at == due && p.role == role));
            // The response clock started at this opening, as the
            // escalation timer set at declaration counts.
            let escalates_at = clock.add(due, policy.targets.respond);
            let text = format!("☀️ Business hours have started. {}", first_page_text(runbook, &inc, escalates_at, now));
            paged(inc, &role, text, runbook, now)
        }
        IncidentReminder::LatePage { role } => {
            if inc.status != Status::Declared || !inc.next_pages.iter().any(|p| p.at == due && p.role == role) {
                return nothing();
            }
            inc.next_pages.retain(|p| !(p.at == due && p.role == role));
            let Some((name, mentions)) = role_audience(runbook, &role, now) else { return nothing() };
            let text = format!(
                "📟 *{}* is still not acknowledged after {elapsed}. Paging the {name} as well: {mentions}",
                inc.id
            );
            paged(inc, &role, text, runbook, now)
        }
        IncidentReminder::ResolutionOverdue { round } => {
            let (_, mentions) = escalation_audience(runbook, &inc, inc.escalation_level, now);
            let commander = inc.commander.as_ref().map(|c| format!("<@{c}> ")).unwrap_or_default();
            let text = format!(
                "⏰ *{}* is past its resolution target of {} (open for {}). {commander}{mentions}: what is the plan?",
                inc.id,
                duration(policy.targets.resolve),
                duration(now - inc.declared.at)
            );
            let mut decision = nothing();
            decision.effects.push(in_thread(inc.id, text));
            decision.timers.push(Timer::incident(
                inc.id,
                generation,
                clock.hold(due + policy.targets.resolve),
                IncidentReminder::ResolutionOverdue { round: round + 1 },
            ));
            decision
        }
        IncidentReminder::UpdateDue => {
            let (Some(expected), Some(every)) = (inc.update_due, policy.update_every) else { return nothing() };
            if expected != due {
                // A newer update moved the nudge; this one is stale.
                return nothing();
            }
            let who = match &inc.commander {
                Some(c) => format!("<@{c}>"),
                None => escalation_audience(runbook, &inc, inc.escalation_level, now).1,
            };
            let text = format!(
                "📝 {who}: no status update on *{}* for {}. Post one with `/incident update {} <what changed>`.",
                inc.id,
                duration(every),
                inc.id
            );
            let id = inc.id;
            let next = clock.add(due, every);
            inc.update_due = Some(next);
            let mut decision = Decision::nothing();
            decision.change = Some(IncidentChange { incident: inc, timeline: Vec::new(), tally: None });
            decision.effects.push(in_thread(id, text));
            decision.timers.push(Timer::incident(id, generation, next, IncidentReminder::UpdateDue));
            decision
        }
    }
}

/// A role was paged by a timer: the page in the thread and on the timeline.
fn paged(inc: Incident, role: &str, text: String, runbook: &Runbook, now: DateTime<Utc>) -> IncidentDecision {
    let name = runbook.role(role).map_or_else(|| role.to_owned(), |r| r.name.clone());
    let entry = TimelineEntry { at: now, user: "opsbot".to_owned(), event: TimelineEvent::Paged { role: name } };
    let id = inc.id;
    changed(Reply::text(""), inc, entry, vec![in_thread(id, text), Effect::Refresh(alert(id))])
}

/// An `@opsbot …` mention: `help`, or `status` (the first open incidents
/// of the `total` open, as `/incident list` shows them).
pub fn mention(
    text: &str,
    open: &[Incident],
    total: usize,
    channel: &str,
    ts: &str,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let words: Vec<&str> = text.split_whitespace().filter(|w| !(w.starts_with("<@") && w.ends_with('>'))).collect();
    let answer = match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("status") | Some("incidents") => render::incident_list(open, total, now).text,
        _ => render::mention_help(),
    };
    let mut decision = Decision::answer(Reply::text(""));
    decision.effects.push(Effect::Say { channel: channel.to_owned(), thread_ts: Some(ts.to_owned()), text: answer });
    decision
}

fn unknown(id: IncidentId) -> IncidentDecision {
    Decision::answer(Reply::text(format!("There is no incident *{id}*. `/incident list` shows the open ones.")))
}

type Transition = Result<(Reply, TimelineEntry, Vec<Effect>), TransitionError>;

fn transition(
    id: IncidentId,
    found: Option<Incident>,
    apply: impl FnOnce(&mut Incident) -> Transition,
) -> IncidentDecision {
    let Some(mut incident) = found else {
        return unknown(id);
    };
    match apply(&mut incident) {
        Ok((reply, entry, effects)) => changed(reply, incident, entry, effects),
        Err(refused) => Decision::reply(render::refusal(&refused)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn stats_hold_recoveries_against_the_runbooks_own_mttr_target() {
        let mut runbook = Runbook::seed();
        assert_eq!(mttr_target(&runbook), TimeDelta::minutes(30));
        runbook.alerts.kpis.iter_mut().find(|k| k.id == MTTR_KPI).unwrap().target = "< 1 hour".into();
        assert_eq!(mttr_target(&runbook), TimeDelta::hours(1));
        runbook.alerts.kpis.retain(|k| k.id != MTTR_KPI);
        assert_eq!(mttr_target(&runbook), MTTR_TARGET);
    }
    use super::*;
    use crate::severity::Severity;
    use crate::timer::TimerKind;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: Some("acme".into()),
            response_url: None,
            groups: Vec::new(),
        }
    }

    fn runbook() -> Runbook {
        Runbook::seed()
    }

    fn declare_decision(severity: Severity) -> IncidentDecision {
        let cmd = Command::Declare { severity, title: "API down".into() };
        command(&cmd, Loaded::NewId(IncidentId(1)), &alice(), &runbook(), now())
    }

    fn declared(severity: Severity) -> Incident {
        declare_decision(severity).change.unwrap().incident
    }

    #[test]
    fn each_guarded_incident_action_is_refused_to_whoever_the_runbook_leaves_out_and_changes_nothing() {
        use crate::runbook::permissions::{Action, Allowed};
        let id = IncidentId(1);
        let bob = Invocation { user: "U0BOB".into(), ..alice() };
        let cases: Vec<(Action, Command, Severity)> = vec![
            (
                Action::Declare(Severity::P1),
                Command::Declare { severity: Severity::P1, title: "x".into() },
                Severity::P1,
            ),
            (Action::Acknowledge, Command::Ack(id), Severity::P2),
            (Action::Resolve, Command::Resolve { id, summary: None }, Severity::P2),
            (Action::ResolveP0, Command::Resolve { id, summary: None }, Severity::P0),
            (Action::ChangeSeverity, Command::ChangeSeverity { id, severity: Severity::P0 }, Severity::P2),
            (Action::LowerSeverity, Command::ChangeSeverity { id, severity: Severity::P3 }, Severity::P1),
            (Action::AssignCommander, Command::Commander { id, user: "U0BOB".into() }, Severity::P2),
        ];
        for (action, cmd, severity) in cases {
            let mut rb = runbook();
            rb.permissions.rules = vec![(action, vec![Allowed::User("U0ALICE".into())])];
            let loaded = || match cmd {
                Command::Declare { .. } => Loaded::NewId(id),
                _ => Loaded::One(Some(declared(severity))),
            };
            let refused = command(&cmd, loaded(), &bob, &rb, now());
            assert!(refused.change.is_none() && refused.effects.is_empty() && refused.timers.is_empty(), "{action:?}");
            assert!(refused.reply.text.starts_with("🔒 Only <@U0ALICE> may"), "{action:?}: {}", refused.reply.text);
            assert!(refused.log.as_deref().is_some_and(|l| l.contains("U0BOB")), "{action:?}: logged");
            let allowed = command(&cmd, loaded(), &alice(), &rb, now());
            assert!(allowed.change.is_some(), "{action:?}: {}", allowed.reply.text);
        }
        // Raising a P1, or lowering a P2, is not lowering a P0 or P1.
        let mut rb = runbook();
        rb.permissions.rules = vec![(Action::LowerSeverity, vec![Allowed::User("U0ALICE".into())])];
        let raise = Command::ChangeSeverity { id, severity: Severity::P0 };
        assert!(command(&raise, Loaded::One(Some(declared(Severity::P1))), &bob, &rb, now()).change.is_some());
        let lower = Command::ChangeSeverity { id, severity: Severity::P3 };
        assert!(command(&lower, Loaded::One(Some(declared(Severity::P2))), &bob, &rb, now()).change.is_some());
    }

    /// The incident it decided about, if it changed.
    fn changed_incident(d: &IncidentDecision) -> Option<Incident> {
        d.change.clone().map(|c| c.incident)
    }

    /// A timer of INC-1, set at generation 0, due `after` now.
    fn incident_timer(reminder: IncidentReminder, after: TimeDelta) -> Timer {
        Timer::incident(IncidentId(1), 0, now() + after, reminder)
    }

    /// Hands a due timer to the incident's timer handler, as the router does.
    fn fire(t: &Timer, incident: Option<Incident>, runbook: &Runbook, now: DateTime<Utc>) -> IncidentDecision {
        let TimerKind::Incident { generation, reminder, .. } = t.kind.clone() else {
            panic!("not an incident's timer: {t:?}")
        };
        timer(reminder, generation, t.due, incident, runbook, now)
    }

    fn alert_of(id: u64) -> Message {
        Message::Incident(IncidentId(id), IncidentMessage::Alert)
    }

    fn thread_texts(d: &IncidentDecision) -> Vec<&str> {
        d.effects
            .iter()
            .filter_map(|e| match e {
                Effect::InThread { subject: Subject::Incident(_), text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_p0_pages_the_on_call_engineer_and_management_at_once_as_the_seed_says() {
        let p0 = Command::Declare { severity: Severity::P0, title: "Checkout down".into() };
        let d = command(&p0, Loaded::NewId(IncidentId(1)), &alice(), &Runbook::seed(), now());
        let page = &thread_texts(&d)[0];
        assert!(page.contains("Paging the On-call engineer: <!here>, and the Engineering manager: <!here>."), "{page}");
        let p1 = Command::Declare { severity: Severity::P1, title: "Search slow".into() };
        let d = command(&p1, Loaded::NewId(IncidentId(2)), &alice(), &Runbook::seed(), now());
        assert!(
            !thread_texts(&d)[0].contains("Engineering manager"),
            "P1 escalates in its time: {:?}",
            thread_texts(&d)
        );
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Declares `severity` at `when` against the seed runbook.
    fn declare_at(severity: Severity, when: DateTime<Utc>, rb: &Runbook) -> IncidentDecision {
        let cmd = Command::Declare { severity, title: "Something".into() };
        command(&cmd, Loaded::NewId(IncidentId(1)), &alice(), rb, when)
    }

    /// When the decision set a timer for `reminder`.
    fn due_of(d: &IncidentDecision, reminder: &IncidentReminder) -> Option<DateTime<Utc>> {
        d.timers
            .iter()
            .find(|t| matches!(&t.kind, TimerKind::Incident { reminder: r, .. } if r == reminder))
            .map(|t| t.due)
    }

    #[test]
    fn a_p3_declared_on_friday_evening_pages_nobody_until_mondays_opening() {
        let rb = runbook();
        let d = declare_at(Severity::P3, at("2026-11-27T19:00:00Z"), &rb);
        let page = thread_texts(&d)[0];
        assert!(page.starts_with("🌙 Outside business hours: the Development team is paged"), "{page}");
        assert!(page.contains("|Mon 30 Nov 09:00 UTC>") && !page.contains("<!here>"), "nobody is mentioned: {page}");
        assert!(d.reply.text.contains("nobody is paged until"), "{}", d.reply.text);
        assert_eq!(due_of(&d, &IncidentReminder::FirstPage), Some(at("2026-11-30T09:00:00Z")));
        // Its 4 h to respond start at the opening.
        assert_eq!(due_of(&d, &IncidentReminder::Escalate { level: 1 }), Some(at("2026-11-30T13:00:00Z")));
        let inc = changed_incident(&d).unwrap();
        let show = render::incident_details(&inc, &[], &rb, at("2026-11-28T10:00:00Z")).text;
        assert!(show.contains("Next page if nobody acknowledges: the Development team <!date^"), "{show}");
        assert!(show.contains("Paused: outside business hours"), "{show}");

        // Monday 09:00: the first responder is paged, once.
        let first = Timer::incident(IncidentId(1), 0, at("2026-11-30T09:00:00Z"), IncidentReminder::FirstPage);
        let monday = fire(&first, Some(inc.clone()), &rb, first.due);
        let text = thread_texts(&monday)[0];
        assert!(text.starts_with("☀️ Business hours have started. 📟 Paging the Development team: <!here>"), "{text}");
        let paged = changed_incident(&monday).unwrap();
        assert!(fire(&first, Some(paged), &rb, first.due).effects.is_empty(), "a second firing pages nobody");
        // Acknowledged over the weekend: nobody is paged on Monday.
        let mut acked = inc;
        acked.acknowledge("U0BOB", at("2026-11-28T10:00:00Z")).unwrap();
        assert!(fire(&first, Some(acked), &rb, first.due).effects.is_empty());
    }

    #[test]
    fn a_p3_declared_in_business_hours_is_paged_at_once() {
        let d = declare_at(Severity::P3, at("2026-11-26T10:00:00Z"), &runbook());
        assert!(thread_texts(&d)[0].starts_with("📟 Paging the Development team: <!here>"), "{:?}", thread_texts(&d));
        assert_eq!(due_of(&d, &IncidentReminder::FirstPage), None);
    }

    #[test]
    fn a_p2_declared_at_the_end_of_friday_escalates_at_mondays_opening_plus_the_rest_of_its_target() {
        let rb = runbook();
        let d = declare_at(Severity::P2, at("2026-11-27T16:50:00Z"), &rb);
        let page = thread_texts(&d)[0];
        assert!(page.starts_with("📟 Paging the Assigned engineer: <!here>"), "the P2 is paged at once: {page}");
        assert!(
            page.contains("The clock runs during business hours only") && page.contains("Mon 30 Nov 09:50 UTC"),
            "{page}"
        );
        // 1 h to respond: 10 min on Friday, 50 on Monday.
        let escalate = IncidentReminder::Escalate { level: 1 };
        assert_eq!(due_of(&d, &escalate), Some(at("2026-11-30T09:50:00Z")));
        // The next level counts its hour of business time from there.
        let inc = changed_incident(&d).unwrap();
        let t = Timer::incident(IncidentId(1), 0, at("2026-11-30T09:50:00Z"), escalate);
        let e = fire(&t, Some(inc), &rb, t.due);
        assert!(thread_texts(&e)[0].contains("after 1 h of business hours"), "{:?}", thread_texts(&e));
        assert_eq!(due_of(&e, &IncidentReminder::Escalate { level: 2 }), Some(at("2026-11-30T10:50:00Z")));
        // Its resolution target (24 h) falls on Saturday: the reminder waits for Monday.
        assert_eq!(due_of(&d, &IncidentReminder::ResolutionOverdue { round: 1 }), Some(at("2026-11-30T09:00:00Z")));
    }

    #[test]
    fn a_holiday_is_skipped_like_a_weekend() {
        let mut rb = runbook();
        let mut week: [Vec<crate::runbook::hours::Interval>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            *day = vec![crate::runbook::hours::Interval::parse("09:00-17:00").unwrap()];
        }
        let monday = crate::runbook::hours::Holiday { date: "2026-11-30".parse().unwrap(), name: None };
        rb.business_hours = crate::runbook::BusinessHours::new(week, vec![monday]).unwrap();
        let d = declare_at(Severity::P2, at("2026-11-27T16:50:00Z"), &rb);
        assert_eq!(due_of(&d, &IncidentReminder::Escalate { level: 1 }), Some(at("2026-12-01T09:50:00Z")));
        let d = declare_at(Severity::P3, at("2026-11-27T19:00:00Z"), &rb);
        assert_eq!(due_of(&d, &IncidentReminder::FirstPage), Some(at("2026-12-01T09:00:00Z")));
    }

    #[test]
    fn a_p1_pages_the_on_call_engineer_after_30_minutes_unless_acknowledged() {
        let rb = runbook();
        let d = declare_at(Severity::P1, at("2026-11-28T03:00:00Z"), &rb);
        assert!(
            thread_texts(&d)[0].contains("The On-call engineer is paged too if nobody has acknowledged within 30 min"),
            "{:?}",
            thread_texts(&d)
        );
        let late = IncidentReminder::LatePage { role: "on-call-engineer".into() };
        assert_eq!(due_of(&d, &late), Some(at("2026-11-28T03:30:00Z")), "P1 runs around the clock");
        let inc = changed_incident(&d).unwrap();
        let t = Timer::incident(IncidentId(1), 0, at("2026-11-28T03:30:00Z"), late);
        let paged = fire(&t, Some(inc.clone()), &rb, t.due);
        let text = thread_texts(&paged)[0];
        assert!(
            text.contains("still not acknowledged after 30 min. Paging the On-call engineer as well: <!here>"),
            "{text}"
        );
        let after = changed_incident(&paged).unwrap();
        assert!(fire(&t, Some(after), &rb, t.due).effects.is_empty(), "paged once");
        let mut acked = inc;
        acked.acknowledge("U0BOB", at("2026-11-28T03:10:00Z")).unwrap();
        assert!(fire(&t, Some(acked), &rb, t.due).effects.is_empty(), "acknowledged: nobody more is paged");
    }

    #[test]
    fn a_p0_at_3_am_pages_at_once_and_escalates_in_five_minutes() {
        let d = declare_at(Severity::P0, at("2026-11-29T03:00:00Z"), &runbook());
        assert!(thread_texts(&d)[0].starts_with("📟 Paging the On-call engineer: <!here>"), "{:?}", thread_texts(&d));
        assert!(!thread_texts(&d)[0].contains("business hours"), "{:?}", thread_texts(&d));
        assert_eq!(due_of(&d, &IncidentReminder::Escalate { level: 1 }), Some(at("2026-11-29T03:05:00Z")));
    }

    #[test]
    fn lowering_to_p3_at_night_waits_for_the_opening_and_raising_pages_at_once() {
        let rb = runbook();
        let inc = changed_incident(&declare_at(Severity::P1, at("2026-11-27T22:00:00Z"), &rb)).unwrap();
        let lower = Command::ChangeSeverity { id: IncidentId(1), severity: Severity::P3 };
        let d = command(&lower, Loaded::One(Some(inc)), &alice(), &rb, at("2026-11-27T22:10:00Z"));
        assert!(
            thread_texts(&d)[0].contains("🌙 Outside business hours: the Development team is paged"),
            "{:?}",
            thread_texts(&d)
        );
        assert_eq!(due_of(&d, &IncidentReminder::FirstPage), Some(at("2026-11-30T09:00:00Z")));
        let p3 = changed_incident(&d).unwrap();
        let raise = Command::ChangeSeverity { id: IncidentId(1), severity: Severity::P0 };
        let d = command(&raise, Loaded::One(Some(p3)), &alice(), &rb, at("2026-11-27T22:20:00Z"));
        assert!(thread_texts(&d)[0].contains("📟 Paging the On-call engineer"), "{:?}", thread_texts(&d));
        assert_eq!(due_of(&d, &IncidentReminder::Escalate { level: 1 }), Some(at("2026-11-27T22:25:00Z")));
    }

    #[test]
    fn declare_posts_the_alert_pages_the_first_responder_and_starts_the_playbook() {
        let cmd = Command::Declare { severity: Severity::P0, title: "API down".into() };
        let d = command(&cmd, Loaded::NewId(IncidentId(42)), &alice(), &runbook(), now());
        let inc = changed_incident(&d).unwrap();
        assert_eq!((inc.id, inc.status, inc.declared.user.as_str()), (IncidentId(42), Status::Declared, "U0ALICE"));
        assert!(d.reply.text.contains("INC-42") && d.reply.text.contains("#devops-alerts"));
        assert_eq!(d.effects[0], Effect::Post(alert_of(42)));
        assert!(thread_texts(&d)[0].starts_with("📟 Paging the"), "{:?}", thread_texts(&d));
        let phases = runbook().policy(Severity::P0).playbook.len();
        assert_eq!(inc.playbook.len(), phases);
        let posted = d
            .effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Post(Message::Incident(IncidentId(42), IncidentMessage::Checklist(Playbook, _))))
            })
            .count();
        assert!(posted >= phases, "one message per phase at least");
        assert!(matches!(d.effects.last(), Some(Effect::SendAlertLink { user, .. }) if user == "U0ALICE"));
        let respond = runbook().targets(Severity::P0).respond;
        assert!(d.timers.contains(&Timer::incident(
            IncidentId(42),
            0,
            now() + respond,
            IncidentReminder::Escalate { level: 1 }
        )));
    }

    #[test]
    fn p2_declare_is_announced_in_devops() {
        let d = declare_decision(Severity::P2);
        assert!(d.reply.text.contains("#devops;"), "{}", d.reply.text);
    }

    #[test]
    fn p0_escalates_to_the_next_level_after_five_minutes_without_ack() {
        let rb = runbook();
        let inc = declared(Severity::P0);
        let d = fire(
            &incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &rb,
            now() + TimeDelta::minutes(5),
        );
        let escalated = changed_incident(&d).expect("escalation changes the incident");
        assert_eq!(escalated.escalation_level, 1);
        let role = rb.escalation_role(Severity::P0, 1).unwrap();
        let text = thread_texts(&d)[0];
        assert!(text.contains(&format!("Escalating to the {}", role.name)), "{text}");
        assert!(text.contains("after 5 min"), "{text}");
        assert!(d.effects.contains(&Effect::Refresh(alert_of(1))));
        assert_eq!(d.timers, vec![incident_timer(IncidentReminder::Escalate { level: 2 }, TimeDelta::minutes(10))]);
    }

    #[test]
    fn an_acknowledged_incident_never_escalates() {
        let mut inc = declared(Severity::P0);
        inc.acknowledge("U0BOB", now() + TimeDelta::minutes(2)).unwrap();
        let d = fire(
            &incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &runbook(),
            now() + TimeDelta::minutes(5),
        );
        assert!(!d.changes_state() && d.effects.is_empty() && d.timers.is_empty());
    }

    #[test]
    fn a_timer_firing_twice_escalates_once() {
        let rb = runbook();
        let t = incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5));
        let once = changed_incident(&fire(&t, Some(declared(Severity::P0)), &rb, t.due)).unwrap();
        let twice = fire(&t, Some(once), &rb, t.due);
        assert!(!twice.changes_state() && twice.effects.is_empty());
    }

    #[test]
    fn past_the_resolution_target_the_thread_is_reminded_each_round() {
        let rb = runbook();
        let resolve = rb.targets(Severity::P1).resolve;
        let t = incident_timer(IncidentReminder::ResolutionOverdue { round: 1 }, resolve);
        let d = fire(&t, Some(declared(Severity::P1)), &rb, t.due);
        assert!(thread_texts(&d)[0].contains("past its resolution target of 4 h"), "{:?}", thread_texts(&d));
        assert_eq!(d.timers[0].due, now() + resolve + resolve);
        let mut resolved = declared(Severity::P1);
        resolved.resolve("U0BOB", None, now()).unwrap();
        assert!(fire(&t, Some(resolved), &rb, t.due).effects.is_empty());
    }

    #[test]
    fn an_update_moves_the_nudge_and_the_old_nudge_does_nothing() {
        let rb = runbook();
        let inc = declared(Severity::P0);
        let every = rb.policy(Severity::P0).update_every.expect("P0 asks for updates");
        let first_due = inc.update_due.unwrap();
        assert_eq!(first_due, now() + every);
        let later = now() + TimeDelta::minutes(10);
        let cmd = Command::Update { id: IncidentId(1), text: "rolled back".into() };
        let d = command(&cmd, Loaded::One(Some(inc)), &alice(), &rb, later);
        let updated = changed_incident(&d).unwrap();
        assert_eq!(updated.update_due, Some(later + every));
        assert_eq!(d.timers, vec![Timer::incident(IncidentId(1), 0, later + every, IncidentReminder::UpdateDue)]);
        let stale = Timer::incident(IncidentId(1), 0, first_due, IncidentReminder::UpdateDue);
        assert!(fire(&stale, Some(updated.clone()), &rb, first_due).effects.is_empty());
        let fresh = Timer::incident(IncidentId(1), 0, later + every, IncidentReminder::UpdateDue);
        let nudge = fire(&fresh, Some(updated), &rb, later + every);
        assert!(thread_texts(&nudge)[0].contains("no status update"), "{:?}", thread_texts(&nudge));
    }

    #[test]
    fn ack_refreshes_the_alert_and_notes_it_in_the_thread() {
        let d = command(
            &Command::Ack(IncidentId(1)),
            Loaded::One(Some(declared(Severity::P0))),
            &alice(),
            &runbook(),
            now(),
        );
        assert_eq!(changed_incident(&d).unwrap().status, Status::Acknowledged);
        assert_eq!(d.effects[0], Effect::Refresh(alert_of(1)));
        assert!(thread_texts(&d)[0].contains("escalation stopped"));
    }

    #[test]
    fn resolve_starts_the_post_incident_checklist() {
        let cmd = Command::Resolve { id: IncidentId(1), summary: Some("rolled back".into()) };
        let d = command(&cmd, Loaded::One(Some(declared(Severity::P0))), &alice(), &runbook(), now());
        let inc = changed_incident(&d).unwrap();
        assert!(!inc.post_incident.is_empty());
        assert!(d.effects.iter().any(|e| matches!(
            e,
            Effect::Post(Message::Incident(
                IncidentId(1),
                IncidentMessage::Checklist(IncidentChecklist::PostIncident, _)
            ))
        )));
    }

    #[test]
    fn resolving_a_resolved_incident_changes_nothing() {
        let mut inc = declared(Severity::P1);
        inc.resolve("U0BOB", None, now()).unwrap();
        let cmd = Command::Resolve { id: IncidentId(1), summary: None };
        let d = command(&cmd, Loaded::One(Some(inc)), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.effects.is_empty());
        assert!(d.reply.text.contains("already resolved"), "{}", d.reply.text);
        assert!(d.reply.text.contains("<@U0BOB>"), "{}", d.reply.text);
    }

    #[test]
    fn unknown_id_is_answered_and_changes_nothing() {
        let d = command(&Command::Ack(IncidentId(999)), Loaded::One(None), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.reply.text.contains("no incident *INC-999*"));
    }

    #[test]
    fn a_step_click_settles_once_and_refreshes_its_message() {
        let rb = runbook();
        let step = IncidentButton::Step { checklist: IncidentChecklist::Playbook, phase: 0, step: 1, done: true };
        let d = click(step, IncidentId(1), Some(declared(Severity::P0)), &alice(), &rb, now());
        let inc = changed_incident(&d).unwrap();
        assert_eq!(crate::checklist::progress(&inc.playbook).0, 1);
        assert!(d.effects.contains(&Effect::Refresh(Message::Incident(
            IncidentId(1),
            IncidentMessage::Checklist(IncidentChecklist::Playbook, ChecklistPart { phase: 0, part: 0 })
        ))));
        let again = click(step, IncidentId(1), Some(inc), &alice(), &rb, now());
        assert!(!again.changes_state());
        assert!(
            matches!(&again.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("already done by <@U0ALICE>"))
        );
    }

    #[test]
    fn refused_button_click_tells_the_clicker_privately() {
        let mut inc = declared(Severity::P0);
        inc.resolve("U0BOB", None, now()).unwrap();
        let d = click(IncidentButton::Acknowledge, IncidentId(1), Some(inc), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(
            matches!(&d.effects[..], [Effect::Ephemeral { user, text, .. }] if user == "U0ALICE" && text.contains("already resolved"))
        );
    }

    #[test]
    fn mention_answers_in_the_thread() {
        let d = mention("<@U0OPSBOT> status", &[declared(Severity::P0)], 1, "C1", "1.2", now());
        assert!(
            matches!(&d.effects[..], [Effect::Say { thread_ts: Some(ts), text, .. }] if ts == "1.2" && text.contains("INC-1"))
        );
        let d = mention("<@U0OPSBOT> help", &[], 0, "C1", "1.2", now());
        assert!(matches!(&d.effects[..], [Effect::Say { text, .. }] if text.contains("/incident")));
    }
}
