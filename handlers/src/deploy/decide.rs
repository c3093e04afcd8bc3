//! Deployment decisions: the command that opens the confirmation modal,
//! the confirmation that dispatches the workflow, GitHub's refusal, the
//! run that ends it, and the timeout that stops following a run GitHub
//! never reports. Each takes what was loaded and `now`, and returns a
//! [`Decision`] as every feature does.
//!
//! Who may deploy is checked when the modal opens and again when it is
//! confirmed: the modal's metadata comes back from Slack, and the runbook
//! may have changed meanwhile, so the form is never trusted.

use super::render;
use super::{Action, DeployState, Deployment, RunLink};
use crate::alert::signal::{Conclusion, WorkflowRun};
use crate::codec::DEPLOY_REASON_FIELD;
use crate::decision::{Caller, Decision, Effect, Invocation, Modal};
use crate::github::{Call, DeployPreview, Repo, Unavailable};
use crate::pipeline::Setup;
use crate::runbook::pipeline::{is_git_ref, Environment, Permission, Workflow};
use crate::runbook::Runbook;
use crate::subject::{DeployId, DeploymentMessage, IncidentId, Message, Subject};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, Utc};

pub type DeployDecision = Decision<Deployment>;

/// What a deployment decision needs loaded first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The command is refused whatever GitHub says.
    Nothing,
    /// The command was fine: GitHub's preview for the modal (the shell
    /// gives it a short deadline), and how GitHub is connected. `repo`
    /// `None`: the configured repository; `git_ref` `None`: its default
    /// branch.
    /// `groups`: the Slack user groups whose membership decides whether
    /// `user` may (empty when the runbook decides alone); the preview is
    /// worth asking for only when [`preview_wanted`] says so.
    Preview {
        repo: Option<Repo>,
        environment: String,
        action: Action,
        git_ref: Option<String>,
        user: String,
        groups: Vec<String>,
    },
    /// A confirmation: a fresh number, how GitHub is connected, the open
    /// incidents that note it, and whether `user` is in `groups`.
    New {
        user: String,
        groups: Vec<String>,
    },
    One(DeployId),
}

/// Slack's answer about one user group, for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InGroup {
    Yes,
    No,
    /// Slack could not be asked (and nothing was known from before): why,
    /// in words.
    Unread(String),
}

/// What Slack said about the user groups a permission depends on, group by
/// group, for the user asking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership(pub Vec<(String, InGroup)>);

impl Membership {
    fn of(&self, group: &str) -> Option<&InGroup> {
        self.0.iter().find(|(g, _)| g == group).map(|(_, answer)| answer)
    }

    /// The user is in one of the groups.
    pub fn admits(&self) -> bool {
        self.0.iter().any(|(_, answer)| *answer == InGroup::Yes)
    }
}

/// Whether GitHub's preview is worth asking for: the runbook alone lets
/// the user, or Slack says a group does. A refusal asks GitHub nothing.
pub fn preview_wanted(groups: &[String], membership: &Membership) -> bool {
    groups.is_empty() || membership.admits()
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    /// `preview` is `None` when GitHub was not asked (not connected, or no
    /// repository to ask about).
    Preview {
        setup: Setup,
        preview: Option<Result<DeployPreview, Unavailable>>,
        membership: Membership,
    },
    New {
        id: DeployId,
        setup: Setup,
        open_incidents: Vec<IncidentId>,
        membership: Membership,
    },
    One(Option<Deployment>),
}

/// A request that passed the runbook's checks.
struct Checked<'a> {
    environment: &'a Environment,
    /// Typed, or the environment's default; `None`: the repository's
    /// default branch, which only GitHub knows.
    git_ref: Option<String>,
}

/// The checks every request passes, in the order a person fixes them:
/// the environment, the ref, then who may (Slack's answer about user
/// groups in `membership`).
fn check<'a>(
    action: Action,
    environment: &str,
    git_ref: Option<&str>,
    user: &str,
    runbook: &'a Runbook,
    membership: &Membership,
) -> Result<Checked<'a>, String> {
    let checked = check_request(action, environment, git_ref, runbook)?;
    let env = checked.environment;
    match env.permits(user, &runbook.roles) {
        Permission::Yes => Ok(checked),
        Permission::No => Err(env.refusal(action, &runbook.roles)),
        Permission::DependsOnGroups(groups) => {
            if Permission::DependsOnGroups(groups.clone()).resolve(|g| membership.of(g) == Some(&InGroup::Yes)) {
                return Ok(checked);
            }
            let unread: Vec<(String, String)> = groups
                .iter()
                .filter_map(|g| match membership.of(g) {
                    Some(InGroup::Yes | InGroup::No) => None,
                    Some(InGroup::Unread(why)) => Some((g.clone(), why.clone())),
                    None => Some((g.clone(), "opsbot did not ask Slack".to_owned())),
                })
                .collect();
            if unread.is_empty() {
                Err(env.refusal(action, &runbook.roles))
            } else {
                Err(render::groups_unread(env, action, &unread, runbook))
            }
        }
    }
}

/// The environment and the ref, which the runbook alone answers.
fn check_request<'a>(
    action: Action,
    environment: &str,
    git_ref: Option<&str>,
    runbook: &'a Runbook,
) -> Result<Checked<'a>, String> {
    let pipeline = &runbook.pipeline;
    let Some(env) = pipeline.environment(environment) else {
        return Err(render::unknown_environment(environment, action, pipeline));
    };
    let git_ref = match (action, git_ref) {
        (_, Some(r)) if !is_git_ref(r) => return Err(render::bad_ref(r)),
        (_, Some(r)) => Some(r.to_owned()),
        (Action::Rollback, None) => return Err(render::rollback_needs_ref(env)),
        (Action::Deploy, None) => env.default_ref.clone(),
    };
    Ok(Checked { environment: env, git_ref })
}

/// The user groups Slack must be asked about before `user` may act on the
/// environment; `None` when the runbook refuses whatever Slack says.
fn groups_to_ask(env: &Environment, user: &str, runbook: &Runbook) -> Option<Vec<String>> {
    match env.permits(user, &runbook.roles) {
        Permission::Yes => Some(Vec::new()),
        Permission::No => None,
        Permission::DependsOnGroups(groups) => Some(groups),
    }
}

/// The repository an environment deploys: its own, or the configured one.
fn repository(env: &Environment, setup: &Setup) -> Option<Repo> {
    env.repository.as_deref().and_then(Repo::parse).or_else(|| setup.repository.clone())
}

/// The workflow's runs on GitHub's web pages, when GitHub's address is
/// known: a file's own page, or the repository's Actions for a workflow
/// named by its id (GitHub's pages go by file).
fn runs_page(setup: &Setup, repo: &Repo, workflow: &Workflow) -> Option<String> {
    let web = setup.web.as_deref()?.trim_end_matches('/');
    Some(match workflow {
        Workflow::File(file) => format!("{web}/{repo}/actions/workflows/{file}"),
        Workflow::Id(_) => format!("{web}/{repo}/actions"),
    })
}

/// What a command needs: Slack's word on the user groups that decide who
/// may, and GitHub's preview when the runbook's checks pass; nothing when
/// the answer is a refusal anyway.
pub fn needs(action: Action, environment: &str, git_ref: Option<&str>, who: &Invocation, runbook: &Runbook) -> Need {
    let Ok(checked) = check_request(action, environment, git_ref, runbook) else { return Need::Nothing };
    let Some(groups) = groups_to_ask(checked.environment, &who.user, runbook) else { return Need::Nothing };
    Need::Preview {
        repo: checked.environment.repository.as_deref().and_then(Repo::parse),
        environment: checked.environment.name.clone(),
        action,
        git_ref: checked.git_ref,
        user: who.user.clone(),
        groups,
    }
}

/// What a confirmation needs: a number and the rest ([`Need::New`]), with
/// the user groups Slack must be asked about again (the dialog may have
/// stayed open while someone left the group).
pub fn confirm_needs(environment: &str, who: &Invocation, runbook: &Runbook) -> Need {
    let groups = runbook
        .pipeline
        .environment(environment)
        .and_then(|env| groups_to_ask(env, &who.user, runbook))
        .unwrap_or_default();
    Need::New { user: who.user.clone(), groups }
}

/// `/pipeline deploy|rollback`: a refusal that says why, or the
/// confirmation modal with GitHub's preview.
pub fn command(
    action: Action,
    environment: &str,
    git_ref: Option<&str>,
    loaded: Loaded,
    who: &Invocation,
    runbook: &Runbook,
) -> DeployDecision {
    let membership = match &loaded {
        Loaded::Preview { membership, .. } => membership.clone(),
        _ => Membership::default(),
    };
    let checked = match check(action, environment, git_ref, &who.user, runbook, &membership) {
        Ok(checked) => checked,
        Err(refusal) => return Decision::reply(refusal),
    };
    let Loaded::Preview { setup, preview, .. } = loaded else { return Decision::nothing() };
    let env = checked.environment;
    if !setup.connected {
        return Decision::answer(crate::pipeline::render::unavailable(&Unavailable::NotConnected, None));
    }
    let Some(repo) = repository(env, &setup) else {
        return Decision::reply(render::NO_REPOSITORY);
    };
    let git_ref = match (checked.git_ref, &preview) {
        (Some(r), _) => r,
        (None, Some(Ok(p))) => p.default_branch.clone(),
        (None, Some(Err(why))) => return Decision::reply(render::default_branch_unknown(env, action, Some(why))),
        (None, None) => return Decision::reply(render::default_branch_unknown(env, action, None)),
    };
    let view = render::confirm_modal(env, action, &repo, &git_ref, preview.as_ref());
    let mut decision = Decision::reply(render::confirm_in_dialog(env, action, &git_ref));
    decision.modal = Some(Modal { view, fallback: render::MODAL_FAILED.to_owned() });
    decision
}

fn announcement(id: DeployId) -> Message {
    Message::Deployment(id, DeploymentMessage::Announcement)
}

fn in_thread(id: DeployId, text: String) -> Effect {
    Effect::InThread { subject: Subject::Deployment(id), text }
}

fn written(deployment: Deployment, effects: Vec<Effect>) -> DeployDecision {
    let mut decision = Decision::nothing();
    decision.change = Some(deployment);
    decision.effects = effects;
    decision
}

/// The modal was confirmed: checked again, then the deployment starts.
#[allow(clippy::too_many_arguments)]
pub fn confirmed(
    action: Action,
    environment: &str,
    git_ref: &str,
    reason: Option<&str>,
    loaded: Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> DeployDecision {
    let membership = match &loaded {
        Loaded::New { membership, .. } => membership.clone(),
        _ => Membership::default(),
    };
    let checked = match check(action, environment, Some(git_ref), &who.user, runbook, &membership) {
        Ok(checked) => checked,
        Err(refusal) => return Decision::invalid(DEPLOY_REASON_FIELD, crate::text::plain(&refusal)),
    };
    let Loaded::New { id, setup, open_incidents, .. } = loaded else { return Decision::nothing() };
    let env = checked.environment;
    if !setup.connected {
        return Decision::invalid(DEPLOY_REASON_FIELD, "opsbot is not connected to GitHub, so it cannot deploy.");
    }
    let Some(repo) = repository(env, &setup) else {
        return Decision::invalid(DEPLOY_REASON_FIELD, crate::text::plain(render::NO_REPOSITORY));
    };
    let dispatch = env.dispatch(action);
    let inputs = env.inputs(action, git_ref, &who.user, &id.to_string());
    let deployment = Deployment {
        id,
        action,
        environment: env.name.clone(),
        repo: repo.to_string(),
        git_ref: git_ref.to_owned(),
        workflow: dispatch.workflow.to_string(),
        by: who.user.clone(),
        at: now,
        channel: env.channel.clone(),
        reason: reason.map(str::trim).filter(|r| !r.is_empty()).map(|r| crate::text::truncate(r, 500)),
        state: DeployState::Requested,
        dispatched: None,
        run: None,
        runs_page: runs_page(&setup, &repo, &dispatch.workflow),
        posted: Default::default(),
    };
    let once = dispatch.carries_id().then(|| id.to_string());
    let call = Call::Dispatch { repo, workflow: deployment.workflow.clone(), git_ref: None, inputs, once };
    // The message first, so a refusal has a thread to be told in.
    let effects = vec![Effect::Post(announcement(id)), Effect::Call { call, caller: Caller::Deployment(id) }];
    let note = render::incident_note(&deployment);
    let mut timers: Vec<Timer> = open_incidents
        .into_iter()
        .map(|incident| Timer {
            due: now,
            kind: TimerKind::DeploymentNoted { incident, deployment: id, by: who.user.clone(), text: note.clone() },
        })
        .collect();
    timers.push(Timer { due: now + env.timeout, kind: TimerKind::DeploymentTimeout { deployment: id } });
    let mut decision = written(deployment, effects);
    decision.timers = timers;
    decision
}

/// GitHub would not start the workflow: the message says so and why.
pub fn github_refused(found: Option<Deployment>, call: &Call, why: &str) -> DeployDecision {
    let Some(mut deployment) = found else { return Decision::nothing() };
    if !matches!(call, Call::Dispatch { .. }) || !deployment.is_open() {
        return Decision::nothing(); // its run was reported meanwhile
    }
    deployment.state = DeployState::Refused { why: why.to_owned() };
    let id = deployment.id;
    let note = render::refused_note(&deployment, why);
    written(deployment, vec![Effect::Refresh(announcement(id)), in_thread(id, note)])
}

/// GitHub accepted the dispatch and named its run: the message links it
/// while it runs. A run that finished first has said more already.
pub fn dispatched(found: Option<Deployment>, run: &crate::github::DispatchedRun) -> DeployDecision {
    let Some(mut deployment) = found else { return Decision::nothing() };
    if deployment.state != DeployState::Requested {
        return Decision::nothing();
    }
    deployment.state = DeployState::Dispatched;
    deployment.dispatched = Some(run.clone());
    let id = deployment.id;
    written(deployment, vec![Effect::Refresh(announcement(id))])
}

/// Whether `run` is the deployment's own: of its repository, and the run
/// GitHub named when it took the dispatch, once it named one. A title can
/// be typed by anyone who dispatches a workflow.
fn is_its_run(deployment: &Deployment, run: &WorkflowRun) -> bool {
    deployment.repo.eq_ignore_ascii_case(&run.repo)
        && deployment.dispatched.as_ref().is_none_or(|d| d.run_id == run.run_id)
}

/// The deployment's run started on a runner: the message says since when.
pub fn run_started(found: Option<Deployment>, run: &WorkflowRun) -> DeployDecision {
    let Some(mut deployment) = found else { return Decision::nothing() };
    let waiting = matches!(deployment.state, DeployState::Requested | DeployState::Dispatched);
    if !waiting || !is_its_run(&deployment, run) {
        return Decision::nothing();
    }
    deployment.state = DeployState::Running { since: run.started };
    deployment.dispatched = Some(crate::github::DispatchedRun { run_id: run.run_id, url: run.url.clone() });
    let id = deployment.id;
    written(deployment, vec![Effect::Refresh(announcement(id))])
}

/// The environment's `timeout` passed since the deployment was confirmed.
/// Still open, it is closed: its message says opsbot stopped following
/// it, why, and where to look, and its thread says so. One that ended
/// (its run reported, GitHub's refusal) is left as it is.
pub fn timed_out(found: Option<Deployment>, due: DateTime<Utc>) -> DeployDecision {
    let Some(mut deployment) = found else { return Decision::nothing() };
    if !deployment.is_open() {
        return Decision::nothing();
    }
    deployment.state = DeployState::Unfollowed { at: due };
    let id = deployment.id;
    let note = render::unfollowed_note(&deployment);
    written(deployment, vec![Effect::Refresh(announcement(id)), in_thread(id, note)])
}

/// The deployment a finished run names in its title, if any.
pub fn named_by(run: &WorkflowRun) -> Option<DeployId> {
    DeployId::find_in(&run.display_title)
}

/// A run whose title names the deployment finished: the message shows how
/// it ended, and the thread says so with the run's link and how long.
pub fn run_finished(found: Option<Deployment>, run: &WorkflowRun) -> DeployDecision {
    let Some(mut deployment) = found else { return Decision::nothing() };
    // A title can be typed by anyone who dispatches a workflow; only a run
    // of the deployment's own repository ends it, and only once. One
    // opsbot stopped following is still settled by its run: late word is
    // better than none.
    if !deployment.awaits_its_run() || !is_its_run(&deployment, run) {
        return Decision::nothing();
    }
    let late = matches!(deployment.state, DeployState::Unfollowed { .. });
    deployment.state = match run.conclusion() {
        Conclusion::Passed => DeployState::Succeeded,
        _ => DeployState::Failed { conclusion: run.conclusion.clone() },
    };
    deployment.run = Some(RunLink {
        run_id: run.run_id,
        number: run.run_number,
        url: run.url.clone(),
        started: run.started,
        finished: run.finished,
    });
    let id = deployment.id;
    let mut note = render::finished_note(&deployment);
    if late {
        note.push_str(render::REPORTED_LATE);
    }
    written(deployment, vec![Effect::Refresh(announcement(id)), in_thread(id, note)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::pipeline::Deployer;
    use crate::runbook::Role;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    fn connected() -> Setup {
        Setup { connected: true, repository: Repo::parse("octo-org/shop"), web: Some("https://github.com".into()) }
    }

    /// The seed, with production for Bob (a DevOps engineer) only.
    fn runbook() -> Runbook {
        let mut runbook = Runbook::seed();
        for role in &mut runbook.roles {
            role.people = vec![crate::runbook::Mention::User("U0BOB".into())];
        }
        runbook
    }

    fn preview() -> DeployPreview {
        DeployPreview {
            repo: Repo::parse("octo-org/shop").unwrap(),
            default_branch: "main".into(),
            last: Some(crate::github::LastDeployment {
                git_ref: "v1.4.1".into(),
                sha: "a1b2c3d4e5f6".into(),
                creator: "alice".into(),
                at: now() - chrono::TimeDelta::days(1),
            }),
            commits: vec![crate::github::CommitLine {
                short_sha: "f00ba44".into(),
                title: "Add gift cards".into(),
                author: "bob".into(),
            }],
            total_commits: 1,
            compare_url: None,
        }
    }

    fn bob() -> Invocation {
        Invocation { user: "U0BOB".into(), ..alice() }
    }

    #[test]
    fn a_deploy_by_someone_allowed_opens_the_confirmation_with_the_commits_that_would_go_out() {
        let rb = runbook();
        let need = needs(Action::Deploy, "Production", Some("v1.4.2"), &bob(), &rb);
        assert!(
            matches!(&need, Need::Preview { environment, git_ref: Some(r), .. } if environment == "production" && r == "v1.4.2")
        );
        let loaded =
            Loaded::Preview { setup: connected(), preview: Some(Ok(preview())), membership: Membership::default() };
        let d = command(Action::Deploy, "Production", Some("v1.4.2"), loaded, &bob(), &rb);
        let modal = d.modal.expect("a modal");
        let view = modal.view.to_string();
        assert!(view.contains("Add gift cards"), "{view}");
        assert!(view.contains("deploy.yml"), "{view}");
        assert!(view.contains("v1.4.1"), "{view}");
        assert_eq!(modal.view["private_metadata"], "deploy production v1.4.2");
        assert!(d.change.is_none() && d.effects.is_empty());
    }

    #[test]
    fn someone_not_allowed_is_told_who_may_and_nothing_is_asked() {
        let rb = runbook();
        assert_eq!(needs(Action::Deploy, "production", None, &alice(), &rb), Need::Nothing);
        let d = command(Action::Deploy, "production", None, Loaded::Nothing, &alice(), &rb);
        assert!(d.reply.text.starts_with("Deploying to production is for the DevOps engineer"), "{}", d.reply.text);
        assert!(d.reply.text.contains("<@U0BOB>"), "{}", d.reply.text);
        assert!(d.modal.is_none() && d.effects.is_empty());
    }

    fn deployers_group() -> Runbook {
        let mut rb = runbook();
        rb.pipeline.environments[0].may = vec![Deployer::UserGroup("S0DEPLOYERS".into())];
        rb
    }

    fn slack_says(answer: InGroup) -> Membership {
        Membership(vec![("S0DEPLOYERS".into(), answer)])
    }

    #[test]
    fn a_member_of_a_user_group_in_may_deploys_once_slack_says_so() {
        let rb = deployers_group();
        let need = needs(Action::Deploy, "production", Some("v1.4.2"), &alice(), &rb);
        let Need::Preview { groups, user, .. } = &need else { panic!("{need:?}") };
        assert_eq!((groups.as_slice(), user.as_str()), (&["S0DEPLOYERS".to_owned()][..], "U0ALICE"));
        assert!(preview_wanted(groups, &slack_says(InGroup::Yes)));
        assert!(!preview_wanted(groups, &slack_says(InGroup::No)), "a refusal asks GitHub nothing");
        let loaded = Loaded::Preview { setup: connected(), preview: None, membership: slack_says(InGroup::Yes) };
        let d = command(Action::Deploy, "production", Some("v1.4.2"), loaded, &alice(), &rb);
        assert!(d.modal.is_some(), "{}", d.reply.text);
        let loaded = Loaded::New {
            id: DeployId(3),
            setup: connected(),
            open_incidents: vec![],
            membership: slack_says(InGroup::Yes),
        };
        let d = confirmed(Action::Deploy, "production", "v1.4.2", None, loaded, &alice(), &rb, now());
        assert!(d.change.is_some(), "{:?}", d.invalid);
        assert_eq!(
            confirm_needs("production", &alice(), &rb),
            Need::New { user: "U0ALICE".into(), groups: vec!["S0DEPLOYERS".into()] }
        );
    }

    #[test]
    fn someone_slack_says_is_not_in_the_group_is_told_who_may() {
        let rb = deployers_group();
        let loaded = Loaded::Preview { setup: connected(), preview: None, membership: slack_says(InGroup::No) };
        let d = command(Action::Deploy, "production", None, loaded, &alice(), &rb);
        assert_eq!(d.reply.text, "Deploying to production is for <!subteam^S0DEPLOYERS>.");
        assert!(d.modal.is_none() && d.effects.is_empty());
    }

    #[test]
    fn when_slack_cannot_be_asked_the_refusal_says_so_rather_than_guessing() {
        let rb = deployers_group();
        let unread = slack_says(InGroup::Unread("Slack did not answer within 1 s".into()));
        let loaded = Loaded::Preview { setup: connected(), preview: None, membership: unread };
        let d = command(Action::Deploy, "production", None, loaded, &alice(), &rb);
        assert!(
            d.reply.text.contains("Slack could not be asked whether you are in <!subteam^S0DEPLOYERS>"),
            "{}",
            d.reply.text
        );
        assert!(d.reply.text.contains("(Slack did not answer within 1 s)"), "{}", d.reply.text);
        assert!(d.modal.is_none());
        let d = command(Action::Deploy, "production", None, Loaded::Nothing, &alice(), &rb);
        assert!(d.reply.text.contains("opsbot did not ask Slack"), "{}", d.reply.text);
    }

    #[test]
    fn typos_bad_refs_and_a_rollback_without_a_ref_are_refused_with_why() {
        let rb = runbook();
        let d = command(Action::Deploy, "prod", None, Loaded::Nothing, &bob(), &rb);
        assert!(d.reply.text.contains("Did you mean `production`"), "{}", d.reply.text);
        let d = command(Action::Deploy, "production", Some("main;rm"), Loaded::Nothing, &bob(), &rb);
        assert!(d.reply.text.contains("is not a branch, tag or commit"), "{}", d.reply.text);
        let d = command(Action::Rollback, "production", None, Loaded::Nothing, &bob(), &rb);
        assert!(d.reply.text.contains("/pipeline rollback production v1.4.2"), "{}", d.reply.text);
        assert!(d.effects.is_empty() && d.modal.is_none());
    }

    #[test]
    fn the_modal_opens_when_github_cannot_list_the_commits_and_says_why() {
        let rb = runbook();
        let down = Unavailable::Down { why: "no answer within 1.5 s".into() };
        let loaded =
            Loaded::Preview { setup: connected(), preview: Some(Err(down)), membership: Membership::default() };
        let d = command(Action::Deploy, "production", Some("v1.4.2"), loaded, &bob(), &rb);
        let view = d.modal.expect("a modal").view.to_string();
        assert!(view.contains("could not be listed"), "{view}");
        assert!(view.contains("no answer within 1.5 s"), "{view}");
    }

    #[test]
    fn confirming_dispatches_the_runbooks_workflow_posts_and_notes_each_open_incident() {
        let rb = runbook();
        let loaded = Loaded::New {
            id: DeployId(3),
            setup: connected(),
            open_incidents: vec![IncidentId(7)],
            membership: Membership::default(),
        };
        let d = confirmed(Action::Deploy, "production", "v1.4.2", Some("gift cards"), loaded, &bob(), &rb, now());
        let deployment = d.change.as_ref().expect("a deployment");
        assert_eq!(deployment.state, DeployState::Requested);
        assert_eq!(deployment.channel, rb.channels.team);
        let [Effect::Post(_), Effect::Call { call: Call::Dispatch { workflow, inputs, .. }, .. }] = &d.effects[..]
        else {
            panic!("{:?}", d.effects)
        };
        assert_eq!(workflow, "deploy.yml");
        assert!(inputs.contains(&("ref".into(), "v1.4.2".into())), "{inputs:?}");
        assert!(inputs.contains(&("opsbot_id".into(), "DEP-3".into())), "{inputs:?}");
        assert!(inputs.contains(&("requested_by".into(), "U0BOB".into())), "{inputs:?}");
        let notes: Vec<&TimerKind> =
            d.timers.iter().map(|t| &t.kind).filter(|k| matches!(k, TimerKind::DeploymentNoted { .. })).collect();
        let [TimerKind::DeploymentNoted { incident, text, .. }] = notes[..] else { panic!("{:?}", d.timers) };
        assert_eq!(*incident, IncidentId(7));
        assert!(text.contains("DEP-3") && text.contains("v1.4.2") && text.contains("<@U0BOB>"), "{text}");
    }

    #[test]
    fn a_confirmation_is_checked_again_and_refused_in_the_modal() {
        let rb = runbook();
        let loaded = Loaded::New {
            id: DeployId(3),
            setup: connected(),
            open_incidents: vec![],
            membership: Membership::default(),
        };
        let d = confirmed(Action::Deploy, "production", "v1.4.2", None, loaded, &alice(), &rb, now());
        assert!(d.invalid.is_some() && d.change.is_none() && d.effects.is_empty());
    }

    fn requested() -> Deployment {
        let rb = runbook();
        let loaded = Loaded::New {
            id: DeployId(3),
            setup: connected(),
            open_incidents: vec![],
            membership: Membership::default(),
        };
        confirmed(Action::Deploy, "production", "v1.4.2", None, loaded, &bob(), &rb, now()).change.unwrap()
    }

    fn run(conclusion: &str) -> WorkflowRun {
        WorkflowRun {
            repo: "octo-org/shop".into(),
            workflow: "Deploy".into(),
            workflow_path: ".github/workflows/deploy.yml".into(),
            workflow_id: 1,
            branch: "main".into(),
            default_branch: "main".into(),
            run_id: 99,
            run_number: 12,
            attempt: 1,
            conclusion: conclusion.into(),
            title: "Deploy DEP-3".into(),
            author: "opsbot[bot]".into(),
            sha: "abc".into(),
            url: "https://github.com/octo-org/shop/actions/runs/99".into(),
            started: now(),
            finished: now() + chrono::TimeDelta::seconds(192),
            display_title: "Deploy DEP-3".into(),
        }
    }

    #[test]
    fn the_run_ends_the_deployment_once_and_the_thread_says_how_long() {
        assert_eq!(named_by(&run("success")), Some(DeployId(3)));
        let d = run_finished(Some(requested()), &run("success"));
        let done = d.change.clone().unwrap();
        assert_eq!(done.state, DeployState::Succeeded);
        let note = d.effects.iter().find_map(|e| match e {
            Effect::InThread { text, .. } => Some(text.clone()),
            _ => None,
        });
        let note = note.unwrap();
        assert!(note.contains("✅") && note.contains("in 3 min") && note.contains("actions/runs/99"), "{note}");
        assert_eq!(run_finished(Some(done), &run("failure")), Decision::nothing(), "a redelivery changes nothing");
        let failed = run_finished(Some(requested()), &run("failure")).change.unwrap();
        assert_eq!(failed.state, DeployState::Failed { conclusion: "failure".into() });
        let mut elsewhere = run("success");
        elsewhere.repo = "someone/else".into();
        assert_eq!(run_finished(Some(requested()), &elsewhere), Decision::nothing());
    }

    #[test]
    fn a_dispatch_github_accepted_links_its_run_and_only_that_run_ends_it() {
        let named = crate::github::DispatchedRun { run_id: 99, url: "https://github.com/o/r/actions/runs/99".into() };
        let d = dispatched(Some(requested()), &named);
        let waiting = d.change.unwrap();
        assert_eq!(waiting.state, DeployState::Dispatched);
        let shown = render::message(&waiting, &runbook());
        assert!(shown.blocks.to_string().contains("actions/runs/99|the run"), "{shown:?}");
        let mut other = run("success");
        other.run_id = 100;
        assert_eq!(run_finished(Some(waiting.clone()), &other), Decision::nothing(), "another run with the title");
        assert!(run_finished(Some(waiting.clone()), &run("success")).change.is_some());
        let done = run_finished(Some(waiting), &run("success")).change.unwrap();
        assert_eq!(dispatched(Some(done), &named), Decision::nothing(), "a late answer changes nothing");
    }

    #[test]
    fn a_run_that_started_shows_the_deployment_running_until_it_finishes() {
        let mut started = run("unknown");
        started.finished = started.started;
        let running = run_started(Some(requested()), &started).change.expect("running");
        assert_eq!(running.state, DeployState::Running { since: now() });
        let shown = render::message(&running, &runbook()).blocks.to_string();
        assert!(shown.contains("actions/runs/99|the run") && shown.contains("running since"), "{shown}");
        assert_eq!(run_started(Some(running.clone()), &started), Decision::nothing(), "a redelivery");
        let done = run_finished(Some(running), &run("success")).change.unwrap();
        assert_eq!(done.state, DeployState::Succeeded);
        assert_eq!(run_started(Some(done), &started), Decision::nothing(), "a late start changes nothing");
    }

    fn timeout_of(d: &DeployDecision) -> DateTime<Utc> {
        let timeouts: Vec<&Timer> =
            d.timers.iter().filter(|t| matches!(t.kind, TimerKind::DeploymentTimeout { .. })).collect();
        let [timer] = timeouts[..] else { panic!("{:?}", d.timers) };
        assert_eq!(timer.kind, TimerKind::DeploymentTimeout { deployment: DeployId(3) });
        timer.due
    }

    #[test]
    fn a_deployment_whose_run_never_reports_is_closed_after_the_environments_timeout() {
        let rb = runbook();
        let loaded = Loaded::New {
            id: DeployId(3),
            setup: connected(),
            open_incidents: vec![],
            membership: Membership::default(),
        };
        let confirmed = confirmed(Action::Deploy, "production", "v1.4.2", None, loaded, &bob(), &rb, now());
        let due = timeout_of(&confirmed);
        assert_eq!(due, now() + chrono::TimeDelta::hours(1), "the seed's environments wait an hour");

        let d = timed_out(confirmed.change, due);
        let closed = d.change.clone().expect("closed");
        assert_eq!(closed.state, DeployState::Unfollowed { at: due });
        let shown = render::message(&closed, &rb);
        assert!(shown.text.contains("stopped following"), "{}", shown.text);
        assert!(shown.text.contains("no word from GitHub about the run in 1 h"), "{}", shown.text);
        let blocks = shown.blocks.to_string();
        assert!(
            blocks.contains("https://github.com/octo-org/shop/actions/workflows/deploy.yml"),
            "GitHub never named the run: the workflow's runs: {blocks}"
        );
        assert!(blocks.contains("still show how it ended"), "{blocks}");
        let note = d.effects.iter().find_map(|e| match e {
            Effect::InThread { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert!(note.unwrap().contains("stopped following"));
        assert_eq!(timed_out(Some(closed), due), Decision::nothing(), "a second timer changes nothing");
    }

    #[test]
    fn the_timeout_links_the_run_when_github_named_it_and_a_late_report_still_settles_it() {
        let named = crate::github::DispatchedRun { run_id: 99, url: "https://github.com/o/r/actions/runs/99".into() };
        let waiting = dispatched(Some(requested()), &named).change.unwrap();
        let closed = timed_out(Some(waiting), now() + chrono::TimeDelta::hours(1)).change.unwrap();
        let blocks = render::message(&closed, &runbook()).blocks.to_string();
        assert!(blocks.contains("actions/runs/99|the run"), "{blocks}");
        assert!(!blocks.contains("actions/workflows"), "{blocks}");

        let d = run_finished(Some(closed), &run("success"));
        let settled = d.change.clone().expect("settled late");
        assert_eq!(settled.state, DeployState::Succeeded);
        let note = d.effects.iter().find_map(|e| match e {
            Effect::InThread { text, .. } => Some(text.clone()),
            _ => None,
        });
        let note = note.unwrap();
        assert!(note.contains("✅") && note.contains("after opsbot had stopped following it"), "{note}");
        assert_eq!(run_finished(Some(settled), &run("success")), Decision::nothing(), "a redelivery");
    }

    #[test]
    fn a_timeout_for_a_deployment_that_ended_does_nothing() {
        let due = now() + chrono::TimeDelta::hours(1);
        let done = run_finished(Some(requested()), &run("success")).change.unwrap();
        assert_eq!(timed_out(Some(done), due), Decision::nothing());
        let call = Call::Dispatch {
            repo: Repo::parse("octo-org/shop").unwrap(),
            workflow: "deploy.yml".into(),
            git_ref: None,
            inputs: vec![],
            once: None,
        };
        let refused = github_refused(Some(requested()), &call, "no").change.unwrap();
        assert_eq!(timed_out(Some(refused), due), Decision::nothing());
        assert_eq!(timed_out(None, due), Decision::nothing());
    }

    #[test]
    fn a_refused_dispatch_is_shown_with_githubs_reason() {
        let call = Call::Dispatch {
            repo: Repo::parse("octo-org/shop").unwrap(),
            workflow: "deploy.yml".into(),
            git_ref: None,
            inputs: vec![],
            once: None,
        };
        let d = github_refused(Some(requested()), &call, "GitHub said \"Required input 'x' not provided\" (422)");
        let refused = d.change.unwrap();
        assert!(matches!(refused.state, DeployState::Refused { .. }));
        let message = render::message(&refused, &runbook()).text;
        assert!(message.contains("did not start"), "{message}");
    }

    #[test]
    fn roles_without_people_refuse_rather_than_open() {
        let mut rb = runbook();
        rb.roles = vec![Role { id: "other".into(), name: "Other".into(), people: vec![] }];
        let d = command(Action::Deploy, "production", None, Loaded::Nothing, &bob(), &rb);
        assert!(d.reply.text.starts_with("Deploying to production is for"), "{}", d.reply.text);
    }
}
