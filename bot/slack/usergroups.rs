//! Who is in a Slack user group (`S…`), as `usergroups.users.list` says:
//! asked only when a permission depends on it, kept for a minute, asked by
//! one caller at a time per group (the others wait for that answer), and
//! waited on for at most a second, so a check that reads it still answers
//! within Slack's 3 s. When Slack is slow or failing, the last answer it
//! gave stands; only when it never answered is the group unread, and the
//! caller says so rather than guessing.
//!
//! Deploy permissions read it today; any permission that names user groups
//! can.

use super::client::{DeliveryError, SlackApi};
use crate::clock::Clock;
use chrono::{DateTime, TimeDelta, Utc};
use opsbot_handlers::deploy::decide::{InGroup, Membership};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an answer is used without asking again.
pub const FRESH_FOR: TimeDelta = TimeDelta::seconds(60);
/// How long a caller waits for Slack before using what it knew.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Groups remembered at most: a runbook names a handful.
const MAX_GROUPS: usize = 256;

/// Why a group's members are not known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unread {
    #[error("Slack did not answer within {} s", DEADLINE.as_secs())]
    Slow,
    /// Slack answered, but not with the members: its reason in words.
    #[error("{0}")]
    Refused(String),
}

#[derive(Clone)]
struct Known {
    at: DateTime<Utc>,
    members: Arc<HashSet<String>>,
}

#[derive(Default)]
struct Slot {
    /// Held while Slack is asked, so callers at the same moment share one
    /// call.
    asking: tokio::sync::Mutex<()>,
    last: Mutex<Option<Known>>,
}

impl Slot {
    fn last(&self) -> Option<Known> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The user groups opsbot has read; clones share them.
#[derive(Clone)]
pub struct UserGroups {
    slack: SlackApi,
    clock: Arc<dyn Clock>,
    slots: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

impl UserGroups {
    pub fn new(slack: SlackApi, clock: Arc<dyn Clock>) -> UserGroups {
        UserGroups { slack, clock, slots: Arc::default() }
    }

    /// Whether `user` is in each of `groups`, in their order.
    /// The groups are asked at once, so the wait is one deadline however
    /// many there are.
    pub async fn membership(&self, user: &str, groups: &[String]) -> Membership {
        let mut asks = tokio::task::JoinSet::new();
        for (i, group) in groups.iter().enumerate() {
            let (this, group, user) = (self.clone(), group.clone(), user.to_owned());
            asks.spawn(async move {
                let answer = match this.members(&group).await {
                    Ok(members) if members.contains(&user) => InGroup::Yes,
                    Ok(_) => InGroup::No,
                    Err(why) => InGroup::Unread(why.to_string()),
                };
                (i, answer)
            });
        }
        let mut answers: Vec<(String, InGroup)> =
            groups.iter().map(|g| (g.clone(), InGroup::Unread(Unread::Slow.to_string()))).collect();
        while let Some(done) = asks.join_next().await {
            if let Ok((i, answer)) = done {
                answers[i].1 = answer;
            }
        }
        Membership(answers)
    }

    /// The members of `group`: a fresh answer, else Slack's (within the
    /// deadline), else the last one Slack gave however old.
    pub async fn members(&self, group: &str) -> Result<Arc<HashSet<String>>, Unread> {
        let slot = self.slot(group);
        let now = self.clock.now();
        let fresh = |known: &Known| now >= known.at && now - known.at < FRESH_FOR;
        if let Some(known) = slot.last().filter(fresh) {
            return Ok(known.members);
        }
        let asked = tokio::time::timeout(DEADLINE, async {
            let _asking = slot.asking.lock().await;
            // Someone else may have asked while this one waited.
            if let Some(known) = slot.last().filter(fresh) {
                return Ok(known.members);
            }
            let members: Arc<HashSet<String>> = Arc::new(self.read(group).await?.into_iter().collect());
            *slot.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Known { at: now, members: members.clone() });
            Ok(members)
        })
        .await
        .unwrap_or(Err(Unread::Slow));
        match asked {
            Ok(members) => Ok(members),
            Err(why) => match slot.last() {
                Some(known) => {
                    tracing::info!(group, reason = %why, "Slack could not list a user group; using its last answer");
                    Ok(known.members)
                }
                None => {
                    tracing::warn!(group, reason = %why, "Slack could not list a user group");
                    Err(why)
                }
            },
        }
    }

    async fn read(&self, group: &str) -> Result<Vec<String>, Unread> {
        match self.slack.usergroup_members(group).await {
            Ok(members) => Ok(members),
            // A group Slack does not have (deleted, disabled) has nobody in
            // it; the runbook should be told, but nobody is let in by it.
            Err(DeliveryError::Permanent { code }) if code.starts_with("no_such_subteam") => {
                tracing::warn!(group, "the runbook names a user group Slack does not have");
                Ok(Vec::new())
            }
            Err(DeliveryError::Permanent { code }) if code.starts_with("missing_scope") => Err(Unread::Refused(
                "Slack refused: the app lacks the `usergroups:read` scope; reinstall it from the manifest".into(),
            )),
            Err(DeliveryError::Permanent { code }) => Err(Unread::Refused(format!("Slack refused ({code})"))),
            Err(DeliveryError::Transient { reason, .. } | DeliveryError::Waiting { reason }) => {
                Err(Unread::Refused(format!("Slack did not answer ({reason})")))
            }
        }
    }

    fn slot(&self, group: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(group) && slots.len() >= MAX_GROUPS {
            slots.clear();
        }
        slots.entry(group.to_owned()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::config::Secret;
    use opsbot_fake_slack::{Failure, FakeSlack};

    fn t0() -> DateTime<Utc> {
        "2026-12-01T09:00:00Z".parse().unwrap()
    }

    async fn groups_on(slack: &FakeSlack, clock: &TestClock) -> (UserGroups, opsbot_fake_slack::SpawnedFake) {
        let server = slack.spawn().await.unwrap();
        let api = SlackApi::new(&server.api_url, &Secret::new(opsbot_fake_slack::DEFAULT_TOKEN)).unwrap();
        (UserGroups::new(api, Arc::new(clock.clone())), server)
    }

    fn release() -> Vec<String> {
        vec!["S0RELEASE".to_owned()]
    }

    #[tokio::test]
    async fn ten_checks_at_once_cost_slack_one_call_and_the_answer_is_kept_a_minute() {
        let slack = FakeSlack::new();
        slack.set_usergroup("S0RELEASE", &["U0ALICE"], true);
        let clock = TestClock::new(t0());
        let (groups, _server) = groups_on(&slack, &clock).await;
        let asked = release();
        let checks = (0..10).map(|_| groups.membership("U0ALICE", &asked));
        for membership in futures::future::join_all(checks).await {
            assert_eq!(membership, Membership(vec![("S0RELEASE".into(), InGroup::Yes)]));
        }
        assert_eq!(slack.calls("usergroups.users.list"), 1);
        clock.advance(TimeDelta::seconds(59));
        assert_eq!(groups.membership("U0BOB", &release()).await.0[0].1, InGroup::No);
        assert_eq!(slack.calls("usergroups.users.list"), 1);
        clock.advance(TimeDelta::seconds(1));
        groups.membership("U0BOB", &release()).await;
        assert_eq!(slack.calls("usergroups.users.list"), 2, "asked again after a minute");
    }

    #[tokio::test]
    async fn the_last_answer_stands_while_slack_fails_and_without_one_the_group_is_unread() {
        let slack = FakeSlack::new();
        slack.set_usergroup("S0RELEASE", &["U0ALICE"], true);
        let clock = TestClock::new(t0());
        let (groups, _server) = groups_on(&slack, &clock).await;
        slack.fail_next("usergroups.users.list", Failure::HttpStatus(500));
        let [(_, InGroup::Unread(why))] = &groups.membership("U0ALICE", &release()).await.0[..] else {
            panic!("nothing known, Slack failing: unread")
        };
        assert!(why.contains("Slack did not answer"), "{why}");
        assert_eq!(groups.membership("U0ALICE", &release()).await.0[0].1, InGroup::Yes);
        clock.advance(TimeDelta::minutes(5));
        slack.set_unavailable(true);
        assert_eq!(groups.membership("U0ALICE", &release()).await.0[0].1, InGroup::Yes, "the last answer");
        slack.set_unavailable(false);
        slack.revoke_scope("usergroups:read");
        let (fresh, _server) = groups_on(&slack, &clock).await;
        let [(_, InGroup::Unread(why))] = &fresh.membership("U0ALICE", &release()).await.0[..] else { panic!() };
        assert!(why.contains("usergroups:read"), "{why}");
    }

    #[tokio::test]
    async fn a_group_slack_does_not_have_has_nobody_in_it() {
        let slack = FakeSlack::new();
        let clock = TestClock::new(t0());
        let (groups, _server) = groups_on(&slack, &clock).await;
        assert_eq!(groups.membership("U0ALICE", &release()).await.0[0].1, InGroup::No);
    }
}
