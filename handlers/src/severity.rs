//! Incident severities P0–P3, as the runbook's "Incident Severity Levels"
//! table defines them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad an incident is; P0 is the worst.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::P0, Severity::P1, Severity::P2, Severity::P3];

    /// Accepts `p0`…`p3` in any case; nothing else, so a typo like `p9` is
    /// answered with usage help instead of a guessed severity.
    pub fn parse(word: &str) -> Option<Severity> {
        match word.to_ascii_lowercase().as_str() {
            "p0" => Some(Severity::P0),
            "p1" => Some(Severity::P1),
            "p2" => Some(Severity::P2),
            "p3" => Some(Severity::P3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }

    /// The runbook's one-word description of the level.
    pub fn label(self) -> &'static str {
        match self {
            Severity::P0 => "Critical",
            Severity::P1 => "High",
            Severity::P2 => "Medium",
            Severity::P3 => "Low",
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Severity::P0 => "🔴",
            Severity::P1 => "🟠",
            Severity::P2 => "🟡",
            Severity::P3 => "🔵",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_rejects_unknown_levels() {
        assert_eq!(Severity::parse("p0"), Some(Severity::P0));
        assert_eq!(Severity::parse("P3"), Some(Severity::P3));
        assert_eq!(Severity::parse("p9"), None);
        assert_eq!(Severity::parse("sev1"), None);
        assert_eq!(Severity::parse(""), None);
    }

    #[test]
    fn serializes_as_the_runbook_spells_it() {
        assert_eq!(serde_json::to_string(&Severity::P1).unwrap(), "\"P1\"");
    }
}
