//! The Slack user groups rotations keep in step (`usergroup` of a
//! rotation): whom each should hold now, overrides and swaps included, so
//! `@oncall-devops` always reaches whoever is on call.

use crate::decision::Effect;
use crate::runbook::Runbook;
use chrono::{DateTime, Utc};

/// Each kept group and who should be its one member at `now`.
pub fn wanted(runbook: &Runbook, now: DateTime<Utc>) -> Vec<(String, String)> {
    runbook
        .oncall
        .rotations
        .iter()
        .filter_map(|r| {
            let group = r.usergroup.clone()?;
            let on_call = runbook.oncall.on_call(&r.role, runbook.timezone, now)?;
            Some((group, on_call.member))
        })
        .collect()
}

/// The update that makes `member` the group's only member.
pub fn sync(group: &str, member: &str) -> Effect {
    Effect::SyncUserGroup { group: group.to_owned(), users: vec![member.to_owned()] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::with_rotation;
    use crate::runbook::oncall::Cover;

    #[test]
    fn a_rotations_group_holds_whoever_is_on_call_overrides_included() {
        let mut rb = with_rotation();
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        assert!(wanted(&rb, at("2026-12-08T12:00:00Z")).is_empty(), "no group, nothing kept");
        rb.oncall.rotations[0].usergroup = Some("S0ONCALL".into());
        assert_eq!(wanted(&rb, at("2026-12-08T12:00:00Z")), [("S0ONCALL".to_owned(), "U0BOB".to_owned())]);
        rb.oncall.covers.push(Cover {
            role: "on-call-engineer".into(),
            member: "U0CAROL".into(),
            starts: at("2026-12-08T10:00:00Z"),
            ends: at("2026-12-08T14:00:00Z"),
            id: 1,
        });
        assert_eq!(wanted(&rb, at("2026-12-08T12:00:00Z")), [("S0ONCALL".to_owned(), "U0CAROL".to_owned())]);
        assert_eq!(
            sync("S0ONCALL", "U0CAROL"),
            Effect::SyncUserGroup { group: "S0ONCALL".into(), users: vec!["U0CAROL".into()] }
        );
    }
}
