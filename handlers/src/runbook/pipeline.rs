//! What the runbook says about the pipeline on GitHub: the environments
//! `/pipeline deploy` and `/pipeline rollback` dispatch a workflow for, the
//! inputs each workflow gets and who may ask for it; and the live figures
//! ([`Figure`]) a checklist step can show beside it (`check:`).
//!
//! Everything here is data and pure functions: filling a workflow's inputs,
//! answering whether someone may deploy, saying who may. Asking GitHub or
//! Slack anything is the shell's; where an answer needs Slack (who is in a
//! user group), [`Permission`] says so instead of guessing.

use super::load::closest;
use super::{Channels, Mention, Role};
use crate::text::escape;
use chrono::TimeDelta;
use std::fmt;

/// The `pipeline` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// In file order; no two names differ only by case.
    pub environments: Vec<Environment>,
}

impl Pipeline {
    /// The environment `name` names, ignoring case: people type
    /// `/pipeline deploy Production` too.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// The environment a mistyped name most likely meant (`prod` for
    /// `production`), for "did you mean"; `None` when none is close.
    pub fn closest(&self, typo: &str) -> Option<&Environment> {
        let name = closest(typo, self.environments.iter().map(|e| e.name.as_str()))?;
        self.environment(name)
    }

    /// What a runbook without a `pipeline` section gets. The seed's
    /// deployment and rollback procedures become two environments,
    /// `production` and `staging`, dispatching `deploy.yml` and
    /// `rollback.yml` in the configured repository, announced in the team
    /// channel. Production is for the roles the seed's procedures and
    /// escalation give deployments and rollbacks to: the DevOps engineer
    /// (standard deployment), the senior DevOps engineer and the DevOps team
    /// lead (P1 escalation), and the on-call engineer (emergency rollback,
    /// P0). Staging is for them and the DevOps team.
    ///
    /// The roles are named by the seed's ids. A runbook that renamed them
    /// and has no `pipeline` section names roles nobody fills, so nobody
    /// may deploy until it says who may: closed rather than open.
    pub fn seed_defaults(channels: &Channels) -> Pipeline {
        let roles = |ids: &[&str]| ids.iter().map(|id| Deployer::Role((*id).to_owned())).collect::<Vec<_>>();
        let production = ["devops-engineer", "senior-devops-engineer", "devops-team-lead", "on-call-engineer"];
        let staging =
            ["devops-team", "devops-engineer", "senior-devops-engineer", "devops-team-lead", "on-call-engineer"];
        let environment = |name: &str, may| Environment {
            name: name.to_owned(),
            repository: None,
            default_ref: None,
            may,
            channel: channels.team.clone(),
            timeout: DEFAULT_TIMEOUT,
            deploy: Dispatch::seed("deploy.yml", "ref"),
            rollback: Dispatch::seed("rollback.yml", "to_ref"),
        };
        Pipeline {
            environments: vec![environment("production", roles(&production)), environment("staging", roles(&staging))],
        }
    }
}

/// How long opsbot follows a deployment when an environment's `timeout`
/// does not say: long enough for a deploy workflow that waits for a
/// runner and an approval, short enough that a run that never reports is
/// not shown "deploying" all afternoon.
pub const DEFAULT_TIMEOUT: TimeDelta = TimeDelta::hours(1);

/// One environment opsbot may deploy to and roll back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// As the file writes it, e.g. `production`: what `{environment}`
    /// fills in, and one word, since it is typed in `/pipeline deploy`.
    pub name: String,
    /// `owner/name`; `None`: the configured repository (`GITHUB_REPOSITORY`).
    pub repository: Option<String>,
    /// The file's `ref`: what a deployment deploys when no ref is typed;
    /// `None`: the repository's default branch, which only GitHub knows.
    pub default_ref: Option<String>,
    /// Who may deploy and roll back; empty: everyone. Ask
    /// [`Environment::permits`] rather than reading it.
    pub may: Vec<Deployer>,
    /// Where "deploying … by @who" is posted: the runbook's `alerts` or
    /// `team` channel already resolved, or a channel of its own.
    pub channel: String,
    /// How long after the dispatch opsbot waits for GitHub to report the
    /// run finished before it stops following the deployment (a workflow
    /// without `{id}` in its `run-name`, a lost webhook, a run that never
    /// started). A report that comes later still settles it.
    pub timeout: TimeDelta,
    pub deploy: Dispatch,
    pub rollback: Dispatch,
}

/// An entry of `may`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployer {
    /// A role id of the runbook's `roles`: whoever fills it.
    Role(String),
    /// A Slack user id, `U…` or `W…`.
    User(String),
    /// A Slack user group id, `S…`: its members, which only Slack knows.
    UserGroup(String),
}

/// What `/pipeline` asks of an environment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Rollback,
}

impl Action {
    pub const ALL: [Action; 2] = [Action::Deploy, Action::Rollback];

    /// The word `/pipeline` and the file use: `deploy`, `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
        }
    }

    /// The word read back from [`Action::as_str`].
    pub fn parse(word: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

/// Whether someone may deploy to (or roll back) an environment, as far as
/// the runbook alone can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permission {
    Yes,
    No,
    /// Yes if the user is a member of any of these Slack user groups
    /// (`S…` ids, in `may`'s order), else no. Only Slack knows a group's
    /// members (`usergroups.users.list`); [`Permission::resolve`] finishes
    /// the answer once the shell has asked.
    DependsOnGroups(Vec<String>),
}

impl Permission {
    /// The final answer, given a way to tell whether the user is in a
    /// group. Groups are asked in order, and no further than the first
    /// that has the user.
    pub fn resolve(&self, mut user_is_in: impl FnMut(&str) -> bool) -> bool {
        match self {
            Permission::Yes => true,
            Permission::No => false,
            Permission::DependsOnGroups(groups) => groups.iter().any(|g| user_is_in(g)),
        }
    }
}

impl Environment {
    /// The workflow an action dispatches.
    pub fn dispatch(&self, action: Action) -> &Dispatch {
        match action {
            Action::Deploy => &self.deploy,
            Action::Rollback => &self.rollback,
        }
    }

    /// The inputs to dispatch `action`'s workflow with, in file order, the
    /// placeholders filled: `git_ref` is the ref typed (or the default the
    /// caller chose), `by` the Slack user id of who confirmed, `id`
    /// opsbot's id for the deployment (`DEP-3`).
    pub fn inputs(&self, action: Action, git_ref: &str, by: &str, id: &str) -> Vec<(String, String)> {
        let values = PlaceholderValues { environment: &self.name, git_ref, by, id };
        self.dispatch(action).fill(&values)
    }

    /// Whether Slack user `user` may deploy here and roll back, given the
    /// runbook's roles. A user may when `may` is empty, when it lists the
    /// user, or when it lists a role whose `people` name the user or
    /// `@here`/`@channel`: a role left at the seed's `"@here"` stands for
    /// everyone, as it does when the role is called. User groups, listed
    /// or in a role, make the answer [`Permission::DependsOnGroups`] when
    /// nothing else says yes. A role the runbook does not define is filled
    /// by nobody.
    pub fn permits(&self, user: &str, roles: &[Role]) -> Permission {
        if self.may.is_empty() {
            return Permission::Yes;
        }
        let mut groups: Vec<String> = Vec::new();
        let mut depends_on = |group: &String| {
            if !groups.contains(group) {
                groups.push(group.clone());
            }
        };
        for entry in &self.may {
            match entry {
                Deployer::User(id) if id == user => return Permission::Yes,
                Deployer::User(_) => {}
                Deployer::UserGroup(group) => depends_on(group),
                Deployer::Role(id) => {
                    for person in roles.iter().filter(|r| r.id == *id).flat_map(|r| &r.people) {
                        match person {
                            Mention::User(id) if id == user => return Permission::Yes,
                            Mention::Here | Mention::Channel => return Permission::Yes,
                            Mention::User(_) => {}
                            Mention::UserGroup(group) => depends_on(group),
                        }
                    }
                }
            }
        }
        if groups.is_empty() {
            Permission::No
        } else {
            Permission::DependsOnGroups(groups)
        }
    }

    /// Who may deploy here, in words (mrkdwn): `the DevOps engineer,
    /// Senior DevOps engineer or DevOps team lead (ask <@U1> or <@U2>)`.
    /// Roles go by their names, people listed in `may` by their mentions,
    /// and "ask" names up to five of the people who fill the roles, so a
    /// refused user knows whom to turn to. `everyone` when `may` is empty.
    pub fn who_may(&self, roles: &[Role]) -> String {
        if self.may.is_empty() {
            return "everyone".to_owned();
        }
        let mut who: Vec<String> = Vec::new();
        let mut ask: Vec<String> = Vec::new();
        // One "the" before the first role reads as it would be said: "the
        // DevOps engineer, Senior DevOps engineer or DevOps team lead".
        let mut article = "the ";
        for entry in &self.may {
            match entry {
                Deployer::Role(id) => match roles.iter().find(|r| r.id == *id) {
                    Some(role) => {
                        who.push(format!("{article}{}", escape(&role.name)));
                        article = "";
                        for person in &role.people {
                            let mention = person.to_mrkdwn();
                            let named = matches!(person, Mention::User(_) | Mention::UserGroup(_));
                            if named && !ask.contains(&mention) {
                                ask.push(mention);
                            }
                        }
                    }
                    None => who.push(format!("`{id}`")),
                },
                Deployer::User(id) => who.push(Mention::User(id.clone()).to_mrkdwn()),
                Deployer::UserGroup(id) => who.push(Mention::UserGroup(id.clone()).to_mrkdwn()),
            }
        }
        // Listed by name already; asking them again says nothing new.
        ask.retain(|mention| !who.contains(mention));
        let mut words = or_list(&who);
        if !ask.is_empty() {
            const ASKED: usize = 5;
            let more = ask.len().saturating_sub(ASKED);
            ask.truncate(ASKED);
            if more > 0 {
                ask.push(format!("{more} more"));
            }
            words.push_str(&format!(" (ask {})", or_list(&ask)));
        }
        words
    }

    /// The polite refusal: `Deploying to production is for the DevOps
    /// engineer, … (ask <@U1>).` or `Rolling back production is for …`.
    pub fn refusal(&self, action: Action, roles: &[Role]) -> String {
        let doing = match action {
            Action::Deploy => "Deploying to",
            Action::Rollback => "Rolling back",
        };
        format!("{doing} {} is for {}.", escape(&self.name), self.who_may(roles))
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Whether `text` is a ref opsbot passes to a workflow: a branch, a tag or
/// a commit, as git allows them (no `..`, `@{`, `//`, no part starting with
/// `.` or ending in `.lock`, no `/` or `.` at the end), and stricter than
/// git on purpose: only ASCII letters, digits and `.`, `_`, `-`, `/`, `+`,
/// `@`, and no `-` first. Workflows often put the ref in a shell command,
/// where quotes, `$` or `;` would do harm; no real branch needs them.
pub fn is_git_ref(text: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-/+@".contains(&b);
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(allowed)
        && !text.starts_with(['-', '/'])
        && !text.ends_with(['/', '.'])
        && !text.contains("..")
        && !text.contains("@{")
        && !text.contains("//")
        && text != "@"
        && text.split('/').all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

/// Whether `text` is a GitHub repository as `owner/name`: the owner's
/// letters, digits and `-` (not first), the name's letters, digits, `-`,
/// `_` and `.` (not `.` or `..`).
pub fn is_repository(text: &str) -> bool {
    let Some((owner, name)) = text.split_once('/') else {
        return false;
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && !owner.starts_with('-')
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    owner_ok && name_ok
}

/// A workflow opsbot dispatches (`workflow_dispatch`), with its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    pub workflow: Workflow,
    /// Input name and value template, in file order.
    pub inputs: Vec<(String, Template)>,
}

impl Dispatch {
    /// The seed's dispatch: `workflow`, with the environment, the ref as
    /// `ref_input`, who confirmed and opsbot's id.
    fn seed(workflow: &str, ref_input: &str) -> Dispatch {
        let input = |name: &str, placeholder| (name.to_owned(), Template::of(placeholder));
        Dispatch {
            workflow: Workflow::File(workflow.to_owned()),
            inputs: vec![
                input("environment", Placeholder::Environment),
                input(ref_input, Placeholder::Ref),
                input("requested_by", Placeholder::By),
                input("opsbot_id", Placeholder::Id),
            ],
        }
    }

    /// The inputs with the placeholders filled, in file order.
    pub fn fill(&self, values: &PlaceholderValues) -> Vec<(String, String)> {
        self.inputs.iter().map(|(name, template)| (name.clone(), template.fill(values))).collect()
    }

    /// Whether some input carries `{id}`, so the workflow can put opsbot's
    /// id in its `run-name` and opsbot can tell its run from others. When
    /// none does, the run can only be guessed at (workflow, time, ref).
    pub fn carries_id(&self) -> bool {
        self.inputs.iter().any(|(_, template)| template.placeholders().any(|p| p == Placeholder::Id))
    }
}

/// A workflow as GitHub's API takes it in
/// `/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches`:
/// its file name or its numeric id. `Display` writes that segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workflow {
    /// A file in `.github/workflows`, e.g. `deploy.yml`.
    File(String),
    Id(u64),
}

impl fmt::Display for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workflow::File(file) => f.write_str(file),
            Workflow::Id(id) => write!(f, "{id}"),
        }
    }
}

/// A placeholder an input's value may hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{environment}`: the environment's name as the file writes it.
    Environment,
    /// `{ref}`: the ref typed, or the default.
    Ref,
    /// `{by}`: the Slack user id of who confirmed.
    By,
    /// `{id}`: opsbot's id for the deployment, e.g. `DEP-3`.
    Id,
}

impl Placeholder {
    pub const ALL: [Placeholder; 4] = [Placeholder::Environment, Placeholder::Ref, Placeholder::By, Placeholder::Id];

    /// The name between the braces.
    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Environment => "environment",
            Placeholder::Ref => "ref",
            Placeholder::By => "by",
            Placeholder::Id => "id",
        }
    }

    pub fn parse(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What the placeholders stand for in one dispatch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PlaceholderValues<'a> {
    pub environment: &'a str,
    pub git_ref: &'a str,
    pub by: &'a str,
    pub id: &'a str,
}

impl PlaceholderValues<'_> {
    fn of(&self, placeholder: Placeholder) -> &str {
        match placeholder {
            Placeholder::Environment => self.environment,
            Placeholder::Ref => self.git_ref,
            Placeholder::By => self.by,
            Placeholder::Id => self.id,
        }
    }
}

/// An input's value: text with placeholders such as `{ref}`. `{{` and `}}`
/// stand for a brace, as in most template languages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// As the file writes it.
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(Placeholder),
}

impl Template {
    /// Reads a template. Refused: an unknown or empty placeholder, a `{`
    /// without its `}`, a `}` without its `{`.
    pub fn parse(text: &str) -> Result<Template, String> {
        Template::parse_for(text, "")
    }

    /// [`Template::parse`], with `context` (e.g. " in input `ref` of …")
    /// woven into the message where a reader expects it.
    pub(crate) fn parse_for(text: &str, context: &str) -> Result<Template, String> {
        let names = || Placeholder::ALL.map(|p| format!("`{{{}}}`", p.as_str())).join(", ");
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let brace = &rest[at..at + 1];
            let after = &rest[at + 1..];
            if after.starts_with(brace) {
                literal.push_str(brace);
                rest = &after[1..];
                continue;
            }
            if brace == "}" {
                return Err(format!("unmatched `}}`{context} (write `}}}}` for a brace)"));
            }
            let Some(end) = after.find(['{', '}']).filter(|&end| after[end..].starts_with('}')) else {
                return Err(format!(
                    "unclosed `{{`{context} (close the placeholder, e.g. `{{ref}}`, or write `{{{{` for a brace)"
                ));
            };
            let name = &after[..end];
            let Some(placeholder) = Placeholder::parse(name) else {
                let hint = match closest(name, Placeholder::ALL.iter().map(|p| p.as_str())) {
                    Some(near) if !name.is_empty() => format!("did you mean `{{{near}}}`?"),
                    _ => format!("expected one of: {}", names()),
                };
                let what = if name.is_empty() { "empty" } else { "unknown" };
                return Err(format!("{what} placeholder `{{{name}}}`{context} ({hint})"));
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Placeholder(placeholder));
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { text: text.to_owned(), parts })
    }

    /// A template that is one placeholder.
    fn of(placeholder: Placeholder) -> Template {
        Template { text: format!("{{{}}}", placeholder.as_str()), parts: vec![Part::Placeholder(placeholder)] }
    }

    /// The template as the file writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The placeholders it holds, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder(p) => Some(*p),
            Part::Text(_) => None,
        })
    }

    /// The value, the placeholders filled.
    pub fn fill(&self, values: &PlaceholderValues) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.as_str(),
                Part::Placeholder(p) => values.of(*p),
            })
            .collect()
    }
}

/// A live figure from GitHub Actions that a checklist step shows beside it
/// when the checklist is posted (the step's `check`). A closed set: each is
/// one opsbot knows how to fetch and compute. Windows end when the
/// checklist is posted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Figure {
    /// `failed_runs_24h`: the workflow runs that failed in the last 24 hours.
    FailedRuns24h,
    /// `success_rate_24h`: successful runs over finished runs, last 24 hours.
    SuccessRate24h,
    /// `success_rate_7d`: the same over the last 7 days.
    SuccessRate7d,
    /// `build_time_24h`: the median and 95th percentile of run durations,
    /// last 24 hours.
    BuildTime24h,
    /// `slowest_workflows_7d`: the workflows with the longest median run
    /// time over the last 7 days, slowest first.
    SlowestWorkflows7d,
    /// `queued_runs`: the runs waiting for a runner now, and how long the
    /// oldest has waited.
    QueuedRuns,
    /// `default_branch_status`: the last run on the default branch: its
    /// workflow, conclusion and when.
    DefaultBranchStatus,
    /// `deployments_7d`: the deployments of the last 7 days, by
    /// environment, and how many succeeded.
    Deployments7d,
    /// `kpi_trend_4w`: the runbook's measured KPIs for each of the last 4
    /// weeks, side by side.
    KpiTrend4w,
}

impl Figure {
    /// Every figure, in the order messages list them.
    pub const ALL: [Figure; 9] = [
        Figure::FailedRuns24h,
        Figure::SuccessRate24h,
        Figure::SuccessRate7d,
        Figure::BuildTime24h,
        Figure::SlowestWorkflows7d,
        Figure::QueuedRuns,
        Figure::DefaultBranchStatus,
        Figure::Deployments7d,
        Figure::KpiTrend4w,
    ];

    /// The name a runbook writes, e.g. `failed_runs_24h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::FailedRuns24h => "failed_runs_24h",
            Figure::SuccessRate24h => "success_rate_24h",
            Figure::SuccessRate7d => "success_rate_7d",
            Figure::BuildTime24h => "build_time_24h",
            Figure::SlowestWorkflows7d => "slowest_workflows_7d",
            Figure::QueuedRuns => "queued_runs",
            Figure::DefaultBranchStatus => "default_branch_status",
            Figure::Deployments7d => "deployments_7d",
            Figure::KpiTrend4w => "kpi_trend_4w",
        }
    }

    pub fn parse(name: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// How far back from now the runs or deployments count; `None` for the
    /// figures of this moment (queued runs, the default branch's last run).
    pub fn window(self) -> Option<TimeDelta> {
        match self {
            Figure::FailedRuns24h | Figure::SuccessRate24h | Figure::BuildTime24h => Some(TimeDelta::hours(24)),
            Figure::SuccessRate7d | Figure::SlowestWorkflows7d | Figure::Deployments7d => Some(TimeDelta::days(7)),
            Figure::KpiTrend4w => Some(TimeDelta::weeks(4)),
            Figure::QueuedRuns | Figure::DefaultBranchStatus => None,
        }
    }

    /// What the figure is, shown before its value: `Failed runs, last 24 h`.
    pub fn label(self) -> &'static str {
        match self {
            Figure::FailedRuns24h => "Failed runs, last 24 h",
            Figure::SuccessRate24h => "Success rate, last 24 h",
            Figure::SuccessRate7d => "Success rate, last 7 days",
            Figure::BuildTime24h => "Build time (median, p95), last 24 h",
            Figure::SlowestWorkflows7d => "Slowest workflows, last 7 days",
            Figure::QueuedRuns => "Queued runs now",
            Figure::DefaultBranchStatus => "Default branch, last run",
            Figure::Deployments7d => "Deployments, last 7 days",
            Figure::KpiTrend4w => "KPIs, last 4 weeks",
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored by its runbook name, as a run keeps its steps' checks.
impl serde::Serialize for Figure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        Channels { alerts: "#devops-alerts".into(), team: "#devops".into() }
    }

    fn role(id: &str, name: &str, people: &[Mention]) -> Role {
        Role { id: id.into(), name: name.into(), people: people.to_vec() }
    }

    fn user(id: &str) -> Mention {
        Mention::User(id.into())
    }

    fn group(id: &str) -> Mention {
        Mention::UserGroup(id.into())
    }

    /// Roles filled the way a team that configured opsbot fills them.
    fn filled_roles() -> Vec<Role> {
        vec![
            role("devops-engineer", "DevOps engineer", &[user("U1"), user("U2")]),
            role("senior-devops-engineer", "Senior DevOps engineer", &[user("U3")]),
            role("devops-team-lead", "DevOps team lead", &[user("U4")]),
            role("on-call-engineer", "On-call engineer", &[group("SONCALL")]),
            role("devops-team", "DevOps team", &[group("SDEVOPS")]),
            role("development-team", "Development team", &[Mention::Here]),
        ]
    }

    fn production() -> Environment {
        Pipeline::seed_defaults(&channels()).environment("production").unwrap().clone()
    }

    fn with_may(may: Vec<Deployer>) -> Environment {
        Environment { may, ..production() }
    }

    #[test]
    fn deploy_inputs_fill_the_environment_the_ref_who_confirmed_and_the_id() {
        let inputs = production().inputs(Action::Deploy, "v1.4.2", "U0ALICE", "DEP-3");
        let expected =
            [("environment", "production"), ("ref", "v1.4.2"), ("requested_by", "U0ALICE"), ("opsbot_id", "DEP-3")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(inputs, expected);
    }

    #[test]
    fn rollback_inputs_name_the_ref_to_go_back_to() {
        let inputs = production().inputs(Action::Rollback, "v1.4.1", "U0BOB", "DEP-4");
        assert_eq!(inputs[1], ("to_ref".to_owned(), "v1.4.1".to_owned()));
        assert_eq!(production().rollback.workflow, Workflow::File("rollback.yml".into()));
    }

    #[test]
    fn a_template_mixes_text_and_placeholders_and_keeps_doubled_braces_as_braces() {
        let template = Template::parse("deploy {ref} to {environment} for {by} ({id}) {{literal}}").unwrap();
        let values = PlaceholderValues { environment: "staging", git_ref: "main", by: "U1", id: "DEP-9" };
        assert_eq!(template.fill(&values), "deploy main to staging for U1 (DEP-9) {literal}");
        assert_eq!(template.as_str(), "deploy {ref} to {environment} for {by} ({id}) {{literal}}");
        assert_eq!(
            template.placeholders().collect::<Vec<_>>(),
            [Placeholder::Ref, Placeholder::Environment, Placeholder::By, Placeholder::Id]
        );
        assert_eq!(Template::parse("").unwrap().fill(&values), "");
        assert_eq!(Template::parse("{ref}{ref}").unwrap().fill(&values), "mainmain");
        // Values are put in as they are: a ref holding braces stays itself.
        let odd = PlaceholderValues { git_ref: "{id}", ..values };
        assert_eq!(Template::parse("{ref}").unwrap().fill(&odd), "{id}");
    }

    #[test]
    fn a_template_with_an_unknown_placeholder_or_a_lone_brace_is_refused_with_a_hint() {
        let error = |text| Template::parse(text).unwrap_err();
        assert_eq!(error("{reff}"), "unknown placeholder `{reff}` (did you mean `{ref}`?)");
        assert_eq!(error("{Environment}"), "unknown placeholder `{Environment}` (did you mean `{environment}`?)");
        assert_eq!(
            error("{sha}"),
            "unknown placeholder `{sha}` (expected one of: `{environment}`, `{ref}`, `{by}`, `{id}`)"
        );
        assert_eq!(error("x{}"), "empty placeholder `{}` (expected one of: `{environment}`, `{ref}`, `{by}`, `{id}`)");
        for unclosed in ["{ref", "{ref {by}", "a {"] {
            assert_eq!(
                error(unclosed),
                "unclosed `{` (close the placeholder, e.g. `{ref}`, or write `{{` for a brace)",
                "{unclosed}"
            );
        }
        assert_eq!(error("ref}"), "unmatched `}` (write `}}` for a brace)");
        assert_eq!(
            Template::parse_for("{sha}", " in input `a`").unwrap_err(),
            "unknown placeholder `{sha}` in input `a` (expected one of: `{environment}`, `{ref}`, `{by}`, `{id}`)"
        );
    }

    #[test]
    fn the_seeds_dispatches_carry_opsbots_id() {
        let production = production();
        assert!(production.deploy.carries_id() && production.rollback.carries_id());
        let without = Dispatch { inputs: production.deploy.inputs[..3].to_vec(), ..production.deploy.clone() };
        assert!(!without.carries_id());
    }

    #[test]
    fn environments_are_found_ignoring_case_and_a_typo_gets_the_closest() {
        let pipeline = Pipeline::seed_defaults(&channels());
        assert_eq!(pipeline.environment("Production").unwrap().name, "production");
        assert!(pipeline.environment("prod").is_none());
        assert_eq!(pipeline.closest("prod").unwrap().name, "production");
        assert_eq!(pipeline.closest("stagin").unwrap().name, "staging");
        assert!(pipeline.closest("qa").is_none());
    }

    #[test]
    fn anyone_may_deploy_where_may_is_empty() {
        let open = with_may(Vec::new());
        assert_eq!(open.permits("U9", &filled_roles()), Permission::Yes);
        assert_eq!(open.who_may(&filled_roles()), "everyone");
    }

    #[test]
    fn a_user_may_deploy_when_listed_or_filling_a_listed_role() {
        let production = production();
        let roles = filled_roles();
        assert_eq!(production.permits("U1", &roles), Permission::Yes, "a DevOps engineer");
        assert_eq!(production.permits("U4", &roles), Permission::Yes, "the team lead");
        let listed = with_may(vec![Deployer::User("U7".into())]);
        assert_eq!(listed.permits("U7", &roles), Permission::Yes);
        assert_eq!(listed.permits("U1", &roles), Permission::No);
    }

    #[test]
    fn a_role_left_at_here_lets_everyone_deploy_as_it_calls_everyone() {
        // The seed's roles are all "@here" until a team fills them in.
        let roles: Vec<Role> = filled_roles()
            .into_iter()
            .map(|r| if r.id == "on-call-engineer" { Role { people: vec![Mention::Here], ..r } } else { r })
            .collect();
        assert_eq!(production().permits("U9", &roles), Permission::Yes);
        let channel = vec![role("devops-engineer", "DevOps engineer", &[Mention::Channel])];
        assert_eq!(production().permits("U9", &channel), Permission::Yes);
    }

    #[test]
    fn a_user_in_no_listed_role_may_not_unless_a_user_group_says_so() {
        let roles = filled_roles();
        // The on-call role is a user group: only Slack knows its members.
        assert_eq!(production().permits("U9", &roles), Permission::DependsOnGroups(vec!["SONCALL".into()]));
        let staging = Pipeline::seed_defaults(&channels()).environment("staging").unwrap().clone();
        assert_eq!(
            staging.permits("U9", &roles),
            Permission::DependsOnGroups(vec!["SDEVOPS".into(), "SONCALL".into()])
        );
        let no_groups: Vec<Role> = roles.into_iter().filter(|r| r.id != "on-call-engineer").collect();
        assert_eq!(production().permits("U9", &no_groups), Permission::No);
        // A group listed in `may` itself, and listed twice, is asked once.
        let listed = with_may(vec![
            Deployer::UserGroup("SREL".into()),
            Deployer::Role("on-call-engineer".into()),
            Deployer::UserGroup("SREL".into()),
        ]);
        assert_eq!(
            listed.permits("U9", &filled_roles()),
            Permission::DependsOnGroups(vec!["SREL".into(), "SONCALL".into()])
        );
    }

    #[test]
    fn a_role_the_runbook_does_not_define_is_filled_by_nobody() {
        let renamed = vec![role("ops", "Ops", &[Mention::Here])];
        assert_eq!(production().permits("U1", &renamed), Permission::No);
        assert_eq!(
            production().who_may(&renamed),
            "`devops-engineer`, `senior-devops-engineer`, `devops-team-lead` or `on-call-engineer`"
        );
    }

    #[test]
    fn a_permission_that_depends_on_groups_is_resolved_by_asking_them_in_order() {
        let depends = Permission::DependsOnGroups(vec!["SA".into(), "SB".into(), "SC".into()]);
        let mut asked = Vec::new();
        assert!(depends.resolve(|g| {
            asked.push(g.to_owned());
            g == "SB"
        }));
        assert_eq!(asked, ["SA", "SB"], "no further than the first group that has the user");
        assert!(!depends.resolve(|_| false));
        assert!(Permission::Yes.resolve(|_| unreachable!()));
        assert!(!Permission::No.resolve(|_| unreachable!()));
    }

    #[test]
    fn the_refusal_names_the_roles_and_whom_to_ask() {
        let roles = filled_roles();
        assert_eq!(
            production().refusal(Action::Deploy, &roles),
            "Deploying to production is for the DevOps engineer, Senior DevOps engineer, DevOps team lead or \
             On-call engineer (ask <@U1>, <@U2>, <@U3>, <@U4> or <!subteam^SONCALL>)."
        );
        let mixed = with_may(vec![
            Deployer::Role("devops-team-lead".into()),
            Deployer::User("U7".into()),
            Deployer::UserGroup("SREL".into()),
        ]);
        assert_eq!(
            mixed.refusal(Action::Rollback, &roles),
            "Rolling back production is for the DevOps team lead, <@U7> or <!subteam^SREL> (ask <@U4>)."
        );
        // Someone listed by name is not asked again; only people are asked.
        let both = with_may(vec![Deployer::User("U4".into()), Deployer::Role("devops-team-lead".into())]);
        assert_eq!(both.who_may(&roles), "<@U4> or the DevOps team lead");
        let many: Vec<Mention> = (1..=8).map(|i| user(&format!("U{i}"))).collect();
        let crowd = vec![role("devops-engineer", "DevOps <engineer>", &many)];
        assert_eq!(
            with_may(vec![Deployer::Role("devops-engineer".into())]).who_may(&crowd),
            "the DevOps &lt;engineer&gt; (ask <@U1>, <@U2>, <@U3>, <@U4>, <@U5> or 3 more)"
        );
    }

    #[test]
    fn the_seed_gives_production_to_the_deploying_roles_and_staging_also_to_the_devops_team() {
        let pipeline = Pipeline::seed_defaults(&channels());
        let names: Vec<&str> = pipeline.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["production", "staging"]);
        let role_ids = |e: &Environment| {
            e.may
                .iter()
                .map(|d| match d {
                    Deployer::Role(id) => id.clone(),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        let production = &pipeline.environments[0];
        let staging = &pipeline.environments[1];
        assert_eq!(
            role_ids(production),
            ["devops-engineer", "senior-devops-engineer", "devops-team-lead", "on-call-engineer"]
        );
        assert_eq!(role_ids(staging)[0], "devops-team");
        assert_eq!(
            role_ids(staging)[1..],
            role_ids(production)[..],
            "who may deploy to production may deploy to staging"
        );
        for environment in &pipeline.environments {
            assert_eq!(environment.channel, "#devops");
            assert_eq!((&environment.repository, &environment.default_ref), (&None, &None));
            assert_eq!(environment.deploy.workflow.to_string(), "deploy.yml");
            assert_eq!(environment.rollback.workflow.to_string(), "rollback.yml");
        }
    }

    #[test]
    fn refs_are_what_git_allows_without_what_a_shell_would_act_on() {
        for good in [
            "main",
            "v1.4.2",
            "release/2026.11",
            "3484a3fb816e0859",
            "renovate/@types-node-20.x",
            "v1.0.0+build.7",
            "refs/heads/main",
        ] {
            assert!(is_git_ref(good), "{good}");
        }
        for bad in [
            "",
            "-rf",
            "a..b",
            "main.lock",
            "feature/.hidden",
            "a//b",
            "main/",
            "main.",
            "@",
            "a@{1}",
            "main branch",
            "$(reboot)",
            "main;ls",
            "it's",
            "a\\b",
            "a~1",
            "a^",
            "a:b",
            "*",
        ] {
            assert!(!is_git_ref(bad), "{bad:?}");
        }
    }

    #[test]
    fn repositories_are_owner_slash_name() {
        for good in ["octo-org/shop", "a/b", "octo/shop.web", "octo/shop_2"] {
            assert!(is_repository(good), "{good}");
        }
        for bad in [
            "shop",
            "octo-org/",
            "/shop",
            "octo/shop/web",
            "-octo/shop",
            "octo/..",
            "https://github.com/octo/shop",
            "octo org/shop",
        ] {
            assert!(!is_repository(bad), "{bad}");
        }
    }

    #[test]
    fn figures_have_one_name_each_and_windows_that_match_their_names() {
        for figure in Figure::ALL {
            assert_eq!(Figure::parse(figure.as_str()), Some(figure));
            let hours = figure.window().map(|w| w.num_hours());
            let name = figure.as_str();
            let expected = if name.ends_with("_24h") {
                Some(24)
            } else if name.ends_with("_7d") {
                Some(7 * 24)
            } else if name.ends_with("_4w") {
                Some(28 * 24)
            } else {
                None
            };
            assert_eq!(hours, expected, "{name}");
        }
        assert_eq!(Figure::parse("failed_runs"), None);
        assert_eq!(Workflow::Id(161335).to_string(), "161335");
    }
}
