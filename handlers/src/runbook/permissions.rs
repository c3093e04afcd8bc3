//! Who may do what, from the runbook's `permissions` section: per action,
//! the roles, people and Slack user groups allowed, and `commander` for the
//! incident's own commander. An action the section leaves out is open to
//! everyone, as opsbot was before permissions, so a team restricts what it
//! cares about and nothing else. The core asks here before any decision
//! that changes something; a refusal is a value the caller turns into a
//! polite answer, and nothing is changed.

use super::{Mention, Role, Runbook};
use crate::decision::{Decision, Invocation};
use crate::severity::Severity;
use crate::text::escape;

/// Something a person does that the runbook may reserve.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Declaring an incident of this severity (`declare_p0` … `declare_p3`).
    Declare(Severity),
    Acknowledge,
    /// Resolving any incident.
    Resolve,
    /// Resolving a P0, on top of [`Action::Resolve`].
    ResolveP0,
    /// Changing any incident's severity.
    ChangeSeverity,
    /// Lowering a P0's or P1's severity, on top of [`Action::ChangeSeverity`].
    LowerSeverity,
    /// Naming or taking the incident commander.
    AssignCommander,
    /// Starting a checklist run by hand (`/runbook start`).
    StartChecklist,
    /// Flagging a step of a checklist run.
    FlagStep,
    /// `/oncall override` and `/oncall swap`.
    OverrideOnCall,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::Declare(Severity::P0),
        Action::Declare(Severity::P1),
        Action::Declare(Severity::P2),
        Action::Declare(Severity::P3),
        Action::Acknowledge,
        Action::Resolve,
        Action::ResolveP0,
        Action::ChangeSeverity,
        Action::LowerSeverity,
        Action::AssignCommander,
        Action::StartChecklist,
        Action::FlagStep,
        Action::OverrideOnCall,
    ];

    /// The key in the runbook's `permissions`.
    pub fn key(self) -> &'static str {
        match self {
            Action::Declare(Severity::P0) => "declare_p0",
            Action::Declare(Severity::P1) => "declare_p1",
            Action::Declare(Severity::P2) => "declare_p2",
            Action::Declare(Severity::P3) => "declare_p3",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
            Action::ResolveP0 => "resolve_p0",
            Action::ChangeSeverity => "change_severity",
            Action::LowerSeverity => "lower_severity",
            Action::AssignCommander => "assign_commander",
            Action::StartChecklist => "start_checklist",
            Action::FlagStep => "flag_step",
            Action::OverrideOnCall => "override_oncall",
        }
    }

    /// What the action is, to finish "Only … may".
    fn doing(self) -> &'static str {
        match self {
            Action::Declare(Severity::P0) => "declare a P0",
            Action::Declare(Severity::P1) => "declare a P1",
            Action::Declare(Severity::P2) => "declare a P2",
            Action::Declare(Severity::P3) => "declare a P3",
            Action::Acknowledge => "acknowledge an incident",
            Action::Resolve => "resolve an incident",
            Action::ResolveP0 => "resolve a P0",
            Action::ChangeSeverity => "change an incident's severity",
            Action::LowerSeverity => "lower a P0's or P1's severity",
            Action::AssignCommander => "assign the incident commander",
            Action::StartChecklist => "start a checklist",
            Action::FlagStep => "flag a checklist step",
            Action::OverrideOnCall => "override or swap on-call shifts",
        }
    }

    pub fn parse(key: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// An entry of a permission's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Everyone: the same as leaving the action out, written down.
    Everyone,
    /// The incident's commander, for actions on an incident.
    Commander,
    /// A role id: whoever fills it (its rotation's members when it has
    /// one, else its `people`).
    Role(String),
    /// A Slack user id, `U…` or `W…`.
    User(String),
    /// A Slack user group id, `S…`: its members, which only Slack knows.
    UserGroup(String),
}

/// The runbook's `permissions`, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub rules: Vec<(Action, Vec<Allowed>)>,
}

/// Why someone may not do something: the action and who may, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub action: Action,
    /// mrkdwn: "the DevOps team lead or the incident's commander".
    pub who_may: String,
}

impl Refusal {
    /// The answer the refused person sees.
    pub fn text(&self) -> String {
        format!(
            "🔒 Only {} may {} (the runbook's `permissions.{}`), so nothing changed.",
            self.who_may,
            self.action.doing(),
            self.action.key()
        )
    }

    /// The line for the log: who was refused what.
    pub fn log(&self, who: &Invocation) -> String {
        format!("refused: {} may not {} ({})", who.user, self.action.doing(), self.action.key())
    }

    /// The decision a refusal is: the answer, nothing changed, and the
    /// line for the log.
    pub fn decision<T>(&self, who: &Invocation) -> Decision<T> {
        self.logged(Decision::reply(self.text()), who)
    }

    /// A refused form: the answer under `field`, the form staying open.
    pub fn under<T>(&self, field: &'static str, who: &Invocation) -> Decision<T> {
        self.logged(Decision::invalid(field, self.text()), who)
    }

    /// `d`, with the line for the log.
    pub fn logged<T>(&self, mut d: Decision<T>, who: &Invocation) -> Decision<T> {
        d.log = Some(self.log(who));
        d
    }
}

impl Permissions {
    /// Every user group the rules name, directly or through a role's
    /// people: what the shell asks Slack about before a decision.
    pub fn user_groups(&self, roles: &[Role]) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        let mut add = |g: &String| {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        };
        for entry in self.rules.iter().flat_map(|(_, allowed)| allowed) {
            match entry {
                Allowed::UserGroup(g) => add(g),
                Allowed::Role(id) => {
                    for person in roles.iter().filter(|r| r.id == *id).flat_map(|r| &r.people) {
                        if let Mention::UserGroup(g) = person {
                            add(g);
                        }
                    }
                }
                _ => {}
            }
        }
        groups
    }

    fn rule(&self, action: Action) -> Option<&[Allowed]> {
        self.rules.iter().find(|(a, _)| *a == action).map(|(_, allowed)| allowed.as_slice())
    }
}

impl Runbook {
    /// Whether `who` may do `action`; `commander` is the incident's, for
    /// actions on one. `who.groups` holds the user groups Slack says they
    /// are in (the shell asks before deciding).
    pub fn may(&self, action: Action, who: &Invocation, commander: Option<&str>) -> Result<(), Refusal> {
        let Some(allowed) = self.permissions.rule(action) else { return Ok(()) };
        if allowed.iter().any(|entry| self.fills(entry, who, commander)) {
            return Ok(());
        }
        Err(Refusal { action, who_may: self.who_may(allowed) })
    }

    /// [`Runbook::may`] for each action in turn: the first refusal.
    pub fn may_all(&self, actions: &[Action], who: &Invocation, commander: Option<&str>) -> Result<(), Refusal> {
        actions.iter().try_for_each(|action| self.may(*action, who, commander))
    }

    fn fills(&self, entry: &Allowed, who: &Invocation, commander: Option<&str>) -> bool {
        let user = who.user.as_str();
        match entry {
            Allowed::Everyone => true,
            Allowed::Commander => commander == Some(user),
            Allowed::User(id) => id == user,
            Allowed::UserGroup(group) => who.groups.contains(group),
            Allowed::Role(id) => {
                if let Some(rotation) = self.oncall.rotation(id) {
                    return rotation.everyone().contains(&user);
                }
                self.role(id).is_some_and(|role| {
                    role.people.iter().any(|person| match person {
                        // A role left at the seed's `@here` stands for
                        // everyone, as it does when the role is paged.
                        Mention::Here | Mention::Channel => true,
                        Mention::User(id) => id == user,
                        Mention::UserGroup(group) => who.groups.contains(group),
                    })
                })
            }
        }
    }

    /// "the DevOps team lead, the incident's commander or <@U1> (ask <@U2>)":
    /// roles by name and, so the refused person knows whom to turn to, up
    /// to five of the people who fill them.
    fn who_may(&self, allowed: &[Allowed]) -> String {
        let mut who: Vec<String> = Vec::new();
        let mut ask: Vec<String> = Vec::new();
        let mut ask_for = |mention: String| {
            if !ask.contains(&mention) {
                ask.push(mention);
            }
        };
        for entry in allowed {
            match entry {
                Allowed::Everyone => who.push("everyone".to_owned()),
                Allowed::Commander => who.push("the incident's commander".to_owned()),
                Allowed::User(id) => who.push(format!("<@{id}>")),
                Allowed::UserGroup(id) => who.push(format!("<!subteam^{id}>")),
                Allowed::Role(id) => {
                    let name = self.role(id).map_or(id.as_str(), |r| r.name.as_str());
                    who.push(format!("the {}", escape(name)));
                    match self.oncall.rotation(id) {
                        Some(rotation) => rotation.everyone().into_iter().for_each(|m| ask_for(format!("<@{m}>"))),
                        None => {
                            for person in self.role(id).map(|r| r.people.as_slice()).unwrap_or_default() {
                                if matches!(person, Mention::User(_) | Mention::UserGroup(_)) {
                                    ask_for(person.to_mrkdwn());
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut text = match who.as_slice() {
            [] => "nobody".to_owned(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        let named: Vec<String> = ask.into_iter().filter(|m| !who.contains(m)).take(5).collect();
        if !named.is_empty() {
            text.push_str(&format!(" (ask {})", named.join(", ")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Runbook;

    fn person(user: &str, groups: &[&str]) -> Invocation {
        Invocation {
            user: user.into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// The seed, its team lead named (Tess), and P0s resolved by their
    /// commander or the lead; P0 declares by the on-call group.
    fn runbook() -> Runbook {
        let mut rb = Runbook::seed();
        rb.roles.iter_mut().find(|r| r.id == "devops-team-lead").unwrap().people = vec![Mention::User("U0TESS".into())];
        rb.permissions.rules = vec![
            (Action::ResolveP0, vec![Allowed::Commander, Allowed::Role("devops-team-lead".into())]),
            (Action::Declare(Severity::P0), vec![Allowed::UserGroup("S0ONCALL".into()), Allowed::User("U0BOB".into())]),
        ];
        rb
    }

    #[test]
    fn an_action_the_runbook_leaves_out_is_open_to_everyone() {
        let rb = runbook();
        assert_eq!(rb.may(Action::Resolve, &person("U0ALICE", &[]), None), Ok(()));
        assert_eq!(rb.may(Action::Declare(Severity::P1), &person("U0ALICE", &[]), None), Ok(()));
    }

    #[test]
    fn a_p0_is_resolved_by_its_commander_or_the_lead_and_a_refusal_says_whom_to_ask() {
        let rb = runbook();
        assert_eq!(rb.may(Action::ResolveP0, &person("U0ALICE", &[]), Some("U0ALICE")), Ok(()), "commander");
        assert_eq!(rb.may(Action::ResolveP0, &person("U0TESS", &[]), Some("U0ALICE")), Ok(()), "the lead");
        let refused = rb.may(Action::ResolveP0, &person("U0BOB", &[]), Some("U0ALICE")).unwrap_err();
        assert_eq!(
            refused.text(),
            "🔒 Only the incident's commander or the DevOps team lead (ask <@U0TESS>) may resolve a P0 \
             (the runbook's `permissions.resolve_p0`), so nothing changed."
        );
    }

    #[test]
    fn a_user_group_permits_its_members_as_slack_reports_them() {
        let rb = runbook();
        let p0 = Action::Declare(Severity::P0);
        assert_eq!(rb.may(p0, &person("U0CAROL", &["S0ONCALL"]), None), Ok(()));
        assert_eq!(rb.may(p0, &person("U0BOB", &[]), None), Ok(()), "named");
        let refused = rb.may(p0, &person("U0CAROL", &[]), None).unwrap_err();
        assert_eq!(refused.who_may, "<!subteam^S0ONCALL> or <@U0BOB>");
        assert_eq!(rb.permissions.user_groups(&rb.roles), ["S0ONCALL"]);
    }

    #[test]
    fn a_role_left_at_here_stands_for_everyone_and_a_rotated_role_for_its_members() {
        use crate::runbook::oncall::{Rotation, ShiftLength};
        let mut rb = Runbook::seed();
        rb.permissions.rules = vec![(Action::OverrideOnCall, vec![Allowed::Role("on-call-engineer".into())])];
        assert_eq!(rb.may(Action::OverrideOnCall, &person("U0ANYONE", &[]), None), Ok(()), "@here");
        rb.oncall.rotations.push(Rotation::new(
            "on-call-engineer",
            vec!["U0ALICE".into(), "U0BOB".into()],
            ShiftLength::Days(7),
            chrono::NaiveDateTime::parse_from_str("2026-11-30 09:00", "%Y-%m-%d %H:%M").unwrap(),
        ));
        assert_eq!(rb.may(Action::OverrideOnCall, &person("U0BOB", &[]), None), Ok(()), "off duty, still a member");
        let refused = rb.may(Action::OverrideOnCall, &person("U0ANYONE", &[]), None).unwrap_err();
        assert_eq!(refused.who_may, "the On-call engineer (ask <@U0ALICE>, <@U0BOB>)");
    }

    #[test]
    fn every_action_has_its_own_key() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.key()), Some(action));
        }
    }
}
