//! The runbook's incident policy: where each severity is announced and its
//! response and resolution targets.
//!
//! The defaults are the seed runbook's. Loading a team's own runbook file
//! (YAML, validated with line and column) replaces this value at start-up.

use crate::severity::Severity;
use chrono::TimeDelta;

/// Response and resolution targets for one severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub respond: TimeDelta,
    pub resolve: TimeDelta,
}

/// Routing and targets per severity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentPolicy {
    /// Where P0 and P1 are announced.
    pub alerts_channel: String,
    /// Where P2 and P3 are announced.
    pub team_channel: String,
    targets: [Targets; 4],
}

impl Default for IncidentPolicy {
    /// The seed runbook: P0 respond < 5 min / resolve < 1 h, P1 < 15 min /
    /// < 4 h, P2 < 1 h / < 24 h, P3 < 4 h / < 72 h.
    fn default() -> Self {
        let t = |respond_min: i64, resolve_h: i64| Targets {
            respond: TimeDelta::minutes(respond_min),
            resolve: TimeDelta::hours(resolve_h),
        };
        IncidentPolicy {
            alerts_channel: "#devops-alerts".to_owned(),
            team_channel: "#devops".to_owned(),
            targets: [t(5, 1), t(15, 4), t(60, 24), t(240, 72)],
        }
    }
}

impl IncidentPolicy {
    pub fn channel_for(&self, severity: Severity) -> &str {
        match severity {
            Severity::P0 | Severity::P1 => &self.alerts_channel,
            Severity::P2 | Severity::P3 => &self.team_channel,
        }
    }

    pub fn targets(&self, severity: Severity) -> Targets {
        self.targets[severity as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p0_and_p1_go_to_the_alerts_channel_p2_and_p3_to_devops() {
        let policy = IncidentPolicy::default();
        assert_eq!(policy.channel_for(Severity::P0), "#devops-alerts");
        assert_eq!(policy.channel_for(Severity::P1), "#devops-alerts");
        assert_eq!(policy.channel_for(Severity::P2), "#devops");
        assert_eq!(policy.channel_for(Severity::P3), "#devops");
    }

    #[test]
    fn targets_follow_the_runbook_table() {
        let policy = IncidentPolicy::default();
        let p0 = policy.targets(Severity::P0);
        assert_eq!(
            (p0.respond, p0.resolve),
            (TimeDelta::minutes(5), TimeDelta::hours(1))
        );
        let p3 = policy.targets(Severity::P3);
        assert_eq!(
            (p3.respond, p3.resolve),
            (TimeDelta::hours(4), TimeDelta::hours(72))
        );
    }
}
