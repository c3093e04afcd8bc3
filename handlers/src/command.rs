//! Which feature a slash command is for. Each feature owns its grammar
//! (`incident::command`, `run::command`, …); this only routes by the
//! command's name.

use crate::decision::UsageError;
use crate::{incident, oncall, pipeline, run};

/// A parsed slash command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlashCommand {
    Incident(incident::command::Command),
    Runbook(run::command::Command),
    Pipeline(pipeline::command::Command),
    OnCall(oncall::Command),
}

/// Parses a slash command by its name (`/incident`) and text.
pub fn parse(command: &str, text: &str) -> Result<SlashCommand, UsageError> {
    match command {
        "/incident" => incident::command::parse(text).map(SlashCommand::Incident),
        "/runbook" => run::command::parse(text).map(SlashCommand::Runbook),
        "/oncall" => oncall::parse(text).map(SlashCommand::OnCall),
        "/pipeline" => pipeline::command::parse(text).map(SlashCommand::Pipeline),
        other => Err(UsageError {
            message: format!("opsbot does not handle `{}`.", crate::text::truncate_word(other)),
            usage: "opsbot's commands are `/incident`, `/runbook`, `/oncall` and `/pipeline`.",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_route_by_name_to_their_feature() {
        assert_eq!(parse("/oncall", ""), Ok(SlashCommand::OnCall(oncall::Command::Now)));
        assert_eq!(parse("/runbook", "list"), Ok(SlashCommand::Runbook(run::command::Command::List)));
        assert_eq!(parse("/incident", "list"), Ok(SlashCommand::Incident(incident::command::Command::List)));
        assert!(parse("/frob", "").is_err());
    }
}
