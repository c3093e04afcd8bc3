//! **Re-run failed jobs** pressed on a run `/pipeline runs` listed.
//!
//! When a firing workflow-failure alert group follows that run (it is the
//! group's latest), the press is the alert message's own button: the
//! message in the channel shows who asked and the new attempt's result.
//! Otherwise it is a person's re-run: GitHub is asked through the outbox,
//! the person is answered at once, and the request ([`RerunRequest`]) is
//! stored by the run's id until GitHub's webhook reports a later attempt
//! of the run finished, when the person gets a DM with the result, once.
//! A refusal by GitHub reaches them the same way, saying why.

use crate::alert::decide::{self as alert_decide, AlertDecision};
use crate::alert::signal::{Conclusion, WorkflowRun};
use crate::alert::{AlertGroup, Detail};
use crate::codec::{AlertButton, ListedRun};
use crate::decision::{AnswerTo, Caller, Decision, Effect, Invocation};
use crate::github::Call;
use crate::text::{duration, escape, slack_date};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A re-run a person asked for from `/pipeline runs`, stored by the run's
/// id (GitHub's run ids are unique across repositories).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunRequest {
    pub run_id: u64,
    pub repo: String,
    pub run_number: u64,
    /// The attempt that failed; GitHub's report of a later one answers it.
    pub attempt: u32,
    /// The Slack user who asked, who gets the result in a DM.
    pub by: String,
    pub at: DateTime<Utc>,
    pub state: RerunState,
}

/// Where a person's re-run is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RerunState {
    /// GitHub is asked; no later attempt reported yet.
    Asked,
    /// GitHub would not, and said why.
    Refused { why: String },
    /// GitHub reported attempt `attempt` finished with `conclusion`.
    Answered { attempt: u32, conclusion: String },
}

impl RerunRequest {
    /// Waiting for GitHub: a second press would only ask again.
    pub fn is_open(&self) -> bool {
        self.state == RerunState::Asked
    }
}

pub type RerunDecision = Decision<RerunRequest>;

/// What a re-run decision needs loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A press: the current alert group of the run's workflow and branch
    /// (its source key), and any request already stored for the run.
    Pressed { alert_key: String, run_id: u64 },
    /// GitHub's answer: the request stored for the run.
    One(u64),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// Boxed: a group is far larger than a request.
    Pressed {
        group: Option<Box<AlertGroup>>,
        asked: Option<RerunRequest>,
    },
    One(Option<RerunRequest>),
}

/// How a press was decided: as the alert message's own button, or as a
/// person's re-run.
#[derive(Clone, Debug, PartialEq)]
pub enum Pressed {
    Alert(Box<AlertDecision>),
    Person(Box<RerunDecision>),
}

pub fn needs(run: &ListedRun) -> Need {
    let alert_key = alert_decide::workflow_key(&run.repo.to_string(), run.workflow_id, &run.branch);
    Need::Pressed { alert_key, run_id: run.run_id }
}

/// Whether `group` is a firing workflow-failure group whose latest run is
/// `run_id`: its message's button would re-run the same.
fn follows(group: &AlertGroup, run_id: u64) -> bool {
    let Detail::Workflow(failures) = &group.detail else { return false };
    group.firing && failures.latest().is_some_and(|latest| latest.run_id == run_id)
}

/// The answer to the person who pressed: through the click's
/// `response_url` (it replaces the list), else an ephemeral note.
fn answer(who: &Invocation, text: String) -> Effect {
    let to = AnswerTo { channel: who.channel.clone(), user: who.user.clone(), response_url: who.response_url.clone() };
    Effect::Answer { to, text }
}

/// The press. Re-runs the failed jobs of the listed run, unless the
/// person's own request for it is still waiting for GitHub.
pub fn pressed(run: &ListedRun, loaded: Loaded, who: &Invocation, now: DateTime<Utc>) -> Pressed {
    let Loaded::Pressed { group, asked } = loaded else { return Pressed::Person(Box::new(Decision::nothing())) };
    if let Some(group) = group.filter(|g| follows(g, run.run_id)) {
        let id = group.id;
        return Pressed::Alert(Box::new(alert_decide::click(AlertButton::Rerun, id, Some(*group), who, now)));
    }
    let mut decision = Decision::nothing();
    // A list showing a later attempt failed means GitHub's report of it
    // never came: the request it answered no longer holds the button.
    if let Some(asked) = asked.filter(|a| a.is_open() && run.attempt <= a.attempt) {
        let text = format!(
            "<@{}> asked for a re-run of run #{} {}; GitHub has not reported its new attempt yet.",
            asked.by,
            asked.run_number,
            slack_date(asked.at)
        );
        decision.effects.push(answer(who, text));
        return Pressed::Person(Box::new(decision));
    }
    let request = RerunRequest {
        run_id: run.run_id,
        repo: run.repo.to_string(),
        run_number: run.run_number,
        attempt: run.attempt,
        by: who.user.clone(),
        at: now,
        state: RerunState::Asked,
    };
    let call = Call::RerunFailedJobs { repo: run.repo.clone(), run_id: run.run_id };
    let text = format!(
        "🔁 Re-run of the failed jobs of run #{} (attempt {}) asked — I'll DM you the result.",
        run.run_number,
        run.attempt + 1
    );
    decision.effects = vec![Effect::Call { call, caller: Caller::Person { run_id: run.run_id } }, answer(who, text)];
    decision.change = Some(request);
    Pressed::Person(Box::new(decision))
}

/// A DM to the person who asked.
fn dm(request: &RerunRequest, text: String) -> Effect {
    Effect::Say { channel: request.by.clone(), thread_ts: None, text }
}

/// GitHub refused the re-run: the person is told why; nothing else
/// changes, and the button may be pressed again.
pub fn refused(found: Option<RerunRequest>, call: &Call, why: &str) -> RerunDecision {
    let Some(mut request) = found.filter(RerunRequest::is_open) else { return Decision::nothing() };
    if !matches!(call, Call::RerunFailedJobs { run_id, .. } if *run_id == request.run_id) {
        return Decision::nothing();
    }
    let text = format!(
        "⚠️ GitHub would not re-run the failed jobs of run #{} in `{}`: {}.",
        request.run_number,
        escape(&request.repo),
        escape(why)
    );
    let effects = vec![dm(&request, text)];
    request.state = RerunState::Refused { why: why.to_owned() };
    let mut decision = Decision::nothing();
    decision.change = Some(request);
    decision.effects = effects;
    decision
}

/// Whether a finished run may answer a stored request: a later attempt of
/// a run, which only a re-run makes.
pub fn may_answer(run: &WorkflowRun) -> bool {
    run.attempt > 1
}

/// GitHub reported a later attempt of the run finished: the person gets a
/// DM with the result, once (a redelivery finds the request answered).
pub fn finished(found: Option<RerunRequest>, run: &WorkflowRun) -> RerunDecision {
    let Some(mut request) = found.filter(RerunRequest::is_open) else { return Decision::nothing() };
    if !run.repo.eq_ignore_ascii_case(&request.repo) || run.run_id != request.run_id || run.attempt <= request.attempt {
        return Decision::nothing();
    }
    let (mark, result) = match run.conclusion() {
        Conclusion::Passed => ("✅", "passed".to_owned()),
        _ => ("❌", format!("failed ({})", escape(&run.conclusion))),
    };
    let text = format!(
        "{mark} The re-run you asked for {result}: *{}* #{} on `{}`, attempt {}, in {}: <{}|the run>",
        escape(&run.workflow),
        run.run_number,
        escape(&run.branch),
        run.attempt,
        duration(run.duration()),
        run.url
    );
    let effects = vec![dm(&request, text)];
    request.state = RerunState::Answered { attempt: run.attempt, conclusion: run.conclusion.clone() };
    let mut decision = Decision::nothing();
    decision.change = Some(request);
    decision.effects = effects;
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::WorkflowFailures;
    use crate::github::Repo;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn bob() -> Invocation {
        Invocation {
            user: "U0BOB".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: Some("https://hooks.slack.com/actions/T1/2/3".into()),
            groups: Vec::new(),
        }
    }

    fn listed() -> ListedRun {
        ListedRun {
            repo: Repo::parse("octo-org/shop").unwrap(),
            run_id: 99,
            run_number: 12,
            attempt: 1,
            workflow_id: 7,
            branch: "feature/x".into(),
        }
    }

    fn finished_run(attempt: u32, conclusion: &str) -> WorkflowRun {
        WorkflowRun {
            repo: "octo-org/shop".into(),
            workflow: "CI".into(),
            workflow_path: ".github/workflows/ci.yml".into(),
            workflow_id: 7,
            branch: "feature/x".into(),
            default_branch: "main".into(),
            run_id: 99,
            run_number: 12,
            attempt,
            conclusion: conclusion.into(),
            title: "Add gift cards".into(),
            author: "bob".into(),
            sha: "abc".into(),
            url: "https://github.com/octo-org/shop/actions/runs/99".into(),
            started: now(),
            finished: now() + chrono::TimeDelta::seconds(200),
            display_title: "Add gift cards".into(),
        }
    }

    fn person(p: Pressed) -> RerunDecision {
        match p {
            Pressed::Person(d) => *d,
            Pressed::Alert(d) => panic!("decided as the alert's button: {d:?}"),
        }
    }

    fn asked() -> RerunRequest {
        let loaded = Loaded::Pressed { group: None, asked: None };
        person(pressed(&listed(), loaded, &bob(), now())).change.expect("a request")
    }

    fn dm_of(d: &RerunDecision) -> (String, String) {
        match &d.effects[..] {
            [Effect::Say { channel, text, thread_ts: None }] => (channel.clone(), text.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_press_asks_github_answers_at_once_and_remembers_who_asked() {
        let loaded = Loaded::Pressed { group: None, asked: None };
        let d = person(pressed(&listed(), loaded, &bob(), now()));
        let request = d.change.clone().unwrap();
        assert_eq!((request.by.as_str(), request.attempt, &request.state), ("U0BOB", 1, &RerunState::Asked));
        let [Effect::Call { call, caller }, Effect::Answer { to, text }] = &d.effects[..] else {
            panic!("{:?}", d.effects)
        };
        assert_eq!(call, &Call::RerunFailedJobs { repo: Repo::parse("octo-org/shop").unwrap(), run_id: 99 });
        assert_eq!(caller, &Caller::Person { run_id: 99 });
        assert_eq!(to.response_url.as_deref(), Some("https://hooks.slack.com/actions/T1/2/3"));
        assert!(text.contains("Re-run") && text.contains("I'll DM you the result"), "{text}");
    }

    #[test]
    fn a_second_press_while_github_has_not_answered_asks_nothing() {
        let loaded = Loaded::Pressed { group: None, asked: Some(asked()) };
        let d = person(pressed(&listed(), loaded, &bob(), now()));
        assert!(d.change.is_none());
        let [Effect::Answer { text, .. }] = &d.effects[..] else { panic!("{:?}", d.effects) };
        assert!(text.contains("<@U0BOB> asked for a re-run of run #12"), "{text}");
        // Once answered, it may be asked again.
        let done = finished(Some(asked()), &finished_run(2, "failure")).change.unwrap();
        let again = Loaded::Pressed { group: None, asked: Some(done) };
        assert!(person(pressed(&listed(), again, &bob(), now())).change.is_some());
        // So it may when the list shows a later attempt failed, whose
        // report never came.
        let later = ListedRun { attempt: 2, ..listed() };
        let lost = Loaded::Pressed { group: None, asked: Some(asked()) };
        let asked_again = person(pressed(&later, lost, &bob(), now())).change.expect("asked again");
        assert_eq!(asked_again.attempt, 2);
    }

    #[test]
    fn the_later_attempt_finishing_dms_the_result_once() {
        let d = finished(Some(asked()), &finished_run(2, "success"));
        let (to, text) = dm_of(&d);
        assert_eq!(to, "U0BOB");
        assert!(text.starts_with("✅ The re-run you asked for passed"), "{text}");
        assert!(text.contains("attempt 2") && text.contains("3 min") && text.contains("actions/runs/99"), "{text}");
        let answered = d.change.unwrap();
        assert_eq!(answered.state, RerunState::Answered { attempt: 2, conclusion: "success".into() });
        assert_eq!(finished(Some(answered), &finished_run(2, "success")), Decision::nothing(), "a redelivery");

        let (_, text) = dm_of(&finished(Some(asked()), &finished_run(2, "failure")));
        assert!(text.starts_with("❌ The re-run you asked for failed (failure)"), "{text}");
        assert_eq!(finished(Some(asked()), &finished_run(1, "failure")), Decision::nothing(), "not a later attempt");
        assert_eq!(finished(None, &finished_run(2, "success")), Decision::nothing());
        assert!(!may_answer(&finished_run(1, "success")) && may_answer(&finished_run(2, "success")));
    }

    #[test]
    fn a_refusal_reaches_the_asker_with_why_and_changes_nothing_else() {
        let call = Call::RerunFailedJobs { repo: Repo::parse("octo-org/shop").unwrap(), run_id: 99 };
        let why = "GitHub said \"This workflow is already running\" (403)";
        let d = refused(Some(asked()), &call, why);
        let (to, text) = dm_of(&d);
        assert_eq!(to, "U0BOB");
        assert!(text.contains("would not re-run") && text.contains("already running"), "{text}");
        let refused_request = d.change.unwrap();
        assert!(matches!(refused_request.state, RerunState::Refused { .. }));
        assert_eq!(refused(Some(refused_request), &call, why), Decision::nothing(), "told once");
    }

    #[test]
    fn the_run_a_firing_alert_follows_is_re_run_as_the_alerts_own_button() {
        let group = AlertGroup {
            id: crate::subject::AlertId(4),
            key: needs_key(),
            channel: "#devops-alerts".into(),
            firing: true,
            opened: now(),
            updated: now(),
            resolved: None,
            muted: None,
            declared: None,
            quiet: false,
            detail: Detail::Workflow(WorkflowFailures {
                repo: "octo-org/shop".into(),
                workflow: "CI".into(),
                branch: "feature/x".into(),
                failures: 1,
                runs: vec![finished_run(1, "failure")],
                recovered_by: None,
                rerun: None,
            }),
            posted: Default::default(),
        };
        let loaded = Loaded::Pressed { group: Some(Box::new(group.clone())), asked: None };
        let Pressed::Alert(d) = pressed(&listed(), loaded, &bob(), now()) else { panic!("a person's re-run") };
        let written = d.change.expect("the group").group.expect("written").group;
        let Detail::Workflow(failures) = &written.detail else { panic!() };
        assert_eq!(failures.rerun.as_ref().map(|r| r.by.as_str()), Some("U0BOB"));
        // A group that recovered, or follows another run, leaves it to the person.
        let mut other = group;
        other.firing = false;
        let loaded = Loaded::Pressed { group: Some(Box::new(other)), asked: None };
        assert!(matches!(pressed(&listed(), loaded, &bob(), now()), Pressed::Person(_)));
    }

    fn needs_key() -> String {
        match needs(&listed()) {
            Need::Pressed { alert_key, run_id: 99 } => alert_key,
            other => panic!("{other:?}"),
        }
    }
}
