//! The runbook as data: channels, roles and who fills them, severities with
//! their targets, escalation matrix and playbooks, the checklists, the
//! alert rules ([`alerts`]), the deployable environments ([`pipeline`]),
//! the on-call rotations ([`oncall`]), the business hours the slower
//! severities escalate in ([`hours`]) and who may do what ([`permissions`]).
//!
//! The seed runbook ships embedded (`runbook.default.yml`); a team's own
//! file replaces it. [`load`] turns YAML into this model and reports every
//! mistake with its line and column.

pub mod alerts;
pub mod hours;
pub mod load;
pub mod oncall;
pub mod permissions;
pub mod pipeline;
pub mod schedule;

use crate::schedule::Schedule;
use crate::severity::Severity;
pub use alerts::AlertRules;
use chrono::TimeDelta;
use chrono_tz::Tz;
pub use hours::{BusinessHours, Escalate, LatePage};
pub use oncall::OnCall;
pub use pipeline::Pipeline;

pub use load::{check, parse, Checked, RunbookError};

/// The whole runbook.
#[derive(Clone, Debug, PartialEq)]
pub struct Runbook {
    pub name: String,
    /// The time zone schedules run in, e.g. `Europe/Berlin`; `name()` (or
    /// `Display`) gives its IANA name. Every checklist's [`Schedule`]
    /// carries this same zone, set by the loader.
    pub timezone: Tz,
    pub channels: Channels,
    pub roles: Vec<Role>,
    /// P0, P1, P2, P3, in that order.
    pub severities: [SeverityPolicy; 4],
    /// Posted in the incident's thread on resolution.
    pub post_incident: Checklist,
    /// The checklists and on-demand procedures (`/runbook`).
    pub checklists: Vec<Checklist>,
    /// KPIs, KPI alerts and webhook routing.
    pub alerts: AlertRules,
    /// The environments `/pipeline deploy` and `/pipeline rollback` act on.
    pub pipeline: Pipeline,
    /// Who is on call for the roles that have a rotation.
    pub oncall: OnCall,
    /// When the team is at work, in `timezone`: the clock of the
    /// severities that escalate during business hours or the next
    /// business day.
    pub business_hours: BusinessHours,
    /// Who may do what; what it leaves out, everyone may.
    pub permissions: permissions::Permissions,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels {
    /// Where P0 and P1 are announced, e.g. `#devops-alerts`.
    pub alerts: String,
    /// Where P2 and P3 are announced, e.g. `#devops`.
    pub team: String,
}

/// A role from the escalation matrix or a checklist, and who fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The key used in the file, e.g. `devops-team-lead`.
    pub id: String,
    /// How people say it, e.g. `DevOps team lead`.
    pub name: String,
    /// Never empty: a role nobody fills cannot be escalated to.
    pub people: Vec<Mention>,
}

/// Someone Slack can notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mention {
    /// `U…` or `W…`
    User(String),
    /// `S…`, a user group
    UserGroup(String),
    /// `@here`
    Here,
    /// `@channel`
    Channel,
}

impl Mention {
    /// Slack's mrkdwn for a notifying mention.
    pub fn to_mrkdwn(&self) -> String {
        match self {
            Mention::User(id) => format!("<@{id}>"),
            Mention::UserGroup(id) => format!("<!subteam^{id}>"),
            Mention::Here => "<!here>".to_owned(),
            Mention::Channel => "<!channel>".to_owned(),
        }
    }
}

/// Response and resolution targets for one severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub respond: TimeDelta,
    pub resolve: TimeDelta,
}

/// Everything the runbook says about one severity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityPolicy {
    pub severity: Severity,
    /// e.g. `Critical`
    pub label: String,
    /// e.g. `Complete pipeline failure, security breach`
    pub description: String,
    pub targets: Targets,
    /// A status-update nudge when an open incident has had none this long.
    pub update_every: Option<TimeDelta>,
    /// Roles paged at declare beside the first responder (the seed's P0:
    /// "immediate to on-call engineer and management"); they are not
    /// levels of the matrix.
    pub also_page: Vec<String>,
    /// Role ids, first responder first.
    pub escalation: Vec<String>,
    /// Which clock the pages run on: around the clock, or paused outside
    /// business hours (the seed's P2 and P3).
    pub escalate: Escalate,
    /// Roles paged when the incident is still unacknowledged some time
    /// after it was declared (the seed's P1 pages the on-call engineer
    /// after 30 minutes).
    pub also_page_after: Vec<LatePage>,
    pub playbook: Vec<Phase>,
}

/// A named group of steps: a playbook phase or a checklist section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// e.g. `Immediate actions (0–5 min)`
    pub name: String,
    pub steps: Vec<Step>,
}

/// One thing to do, with the command to run when the runbook gives one,
/// and the live figure to show beside it when the runbook asks for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub command: Option<String>,
    /// The step's `check`: a figure opsbot fetches from GitHub when the
    /// checklist is posted, e.g. the failed runs of the last 24 hours.
    pub check: Option<pipeline::Figure>,
}

/// One of the runbook's checklists: scheduled (a routine the team runs
/// daily, weekly, …) or on demand (a deployment, a rollback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checklist {
    /// Stable key, e.g. `morning-health-check`.
    pub id: String,
    /// e.g. `Morning Health Check`
    pub name: String,
    /// How the runbook says it, e.g. `Daily at 9:00 AM`.
    pub frequency: Option<String>,
    /// Cron expression (minute hour day-of-month month day-of-week) in the
    /// runbook's time zone, parsed by the loader; `None` for on-demand
    /// procedures.
    pub schedule: Option<Schedule>,
    pub duration: Option<TimeDelta>,
    /// Role id of who is responsible.
    pub responsible: Option<String>,
    pub sections: Vec<Phase>,
}

impl Runbook {
    /// The seed runbook embedded in the binary.
    pub const SEED_YAML: &'static str = include_str!("runbook.default.yml");

    /// The embedded seed runbook, parsed. A test proves it parses.
    pub fn seed() -> Runbook {
        match parse(Self::SEED_YAML) {
            Ok(runbook) => runbook,
            Err(errors) => panic!("the embedded runbook is invalid: {errors:?}"),
        }
    }

    pub fn policy(&self, severity: Severity) -> &SeverityPolicy {
        &self.severities[severity as usize]
    }

    pub fn targets(&self, severity: Severity) -> Targets {
        self.policy(severity).targets
    }

    /// P0 and P1 go to the alerts channel, P2 and P3 to the team channel.
    pub fn channel_for(&self, severity: Severity) -> &str {
        match severity {
            Severity::P0 | Severity::P1 => &self.channels.alerts,
            Severity::P2 | Severity::P3 => &self.channels.team,
        }
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Who to page for `role` at `at`: whoever is on call when the role
    /// has a rotation, else its `people`.
    pub fn paged(&self, role: &Role, at: chrono::DateTime<chrono::Utc>) -> Vec<Mention> {
        oncall::paged(role, &self.oncall, self.timezone, at)
    }

    /// Who is reminded, beside the outgoing person, when nobody says "I
    /// have it" to a handoff of `rotation`: its `escalate_to`, else the
    /// role after the rotation's in the most severe escalation matrix that
    /// lists it (the seed's on-call engineer answers to the DevOps team
    /// lead), else nobody.
    pub fn handoff_escalation(&self, rotation: &oncall::Rotation) -> Option<&Role> {
        if let Some(id) = &rotation.escalate_to {
            return self.role(id);
        }
        self.severities.iter().find_map(|policy| {
            let at = policy.escalation.iter().position(|r| *r == rotation.role)?;
            self.role(policy.escalation.get(at + 1)?)
        })
    }

    /// The clock a severity's pages and reminders run on.
    pub fn clock(&self, severity: Severity) -> hours::Clock<'_> {
        hours::Clock { escalate: self.policy(severity).escalate, hours: &self.business_hours, zone: self.timezone }
    }

    /// The role at escalation `level` (0: the first responder) for a
    /// severity; past the last level, the last one stays responsible.
    pub fn escalation_role(&self, severity: Severity, level: usize) -> Option<&Role> {
        let matrix = &self.policy(severity).escalation;
        let id = matrix.get(level).or_else(|| matrix.last())?;
        self.role(id)
    }
}
