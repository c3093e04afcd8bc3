//! Which feature a slash command is for. Each feature owns its grammar
//! (`incident::command`, `run::command`); this only routes by the
//! command's name, and says so plainly for commands not built yet.

use crate::decision::UsageError;
use crate::{incident, pipeline, run};

/// A parsed slash command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlashCommand {
    Incident(incident::command::Command),
    Runbook(run::command::Command),
    Pipeline(pipeline::command::Command),
    /// A command from the manifest that this version does not do yet; the
    /// person is told so plainly instead of being shown a fake answer.
    NotBuiltYet {
        command: &'static str,
    },
}

/// Parses a slash command by its name (`/incident`) and text.
pub fn parse(command: &str, text: &str) -> Result<SlashCommand, UsageError> {
    match command {
        "/incident" => incident::command::parse(text).map(SlashCommand::Incident),
        "/runbook" => run::command::parse(text).map(SlashCommand::Runbook),
        "/oncall" => Ok(SlashCommand::NotBuiltYet { command: "/oncall" }),
        "/pipeline" => pipeline::command::parse(text).map(SlashCommand::Pipeline),
        other => Err(UsageError {
            message: format!("opsbot does not handle `{}`.", crate::text::truncate_word(other)),
            usage: "opsbot's commands are `/incident`, `/runbook`, `/oncall` and `/pipeline`.",
        }),
    }
}

/// The answer to a command this version does not do yet.
pub fn not_built_yet(command: &str) -> String {
    format!(
        "`{command}` is not built yet in this version of opsbot. `/incident`, `/runbook` and `/pipeline` work today: `/incident help`."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_route_by_name_and_other_manifest_commands_say_they_are_not_built_yet() {
        assert_eq!(parse("/oncall", ""), Ok(SlashCommand::NotBuiltYet { command: "/oncall" }));
        assert_eq!(parse("/runbook", "list"), Ok(SlashCommand::Runbook(run::command::Command::List)));
        assert_eq!(parse("/incident", "list"), Ok(SlashCommand::Incident(incident::command::Command::List)));
        assert!(parse("/frob", "").is_err());
    }
}
