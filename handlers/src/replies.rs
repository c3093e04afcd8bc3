//! What people are told when the core could not be asked, or could not be
//! heard: the shell shows these, so every word a person reads is written
//! in the core.

/// The answer when the store is away: clear, and true (nothing was changed).
pub const STORE_LOST: &str = "⛔ opsbot's database (Redis) lost its data, so nothing was recorded: a new incident now could reuse a number already in Slack. An operator has been told how to bring it back (`opsbot redis adopt`); meanwhile, coordinate in the channel.";
pub const STORE_DOWN: &str = "⚠️ opsbot cannot reach its database (Redis) right now, so nothing was changed. Try again in a minute; if it persists, check opsbot's `/readyz`.";

/// Several people changed one incident or run in the same few milliseconds,
/// again and again.
pub const CONTENDED: &str = "Several people changed this at the same moment; nothing was changed. Please try again.";

/// The shell loaded something other than what the core asked for: a bug.
pub const INTERNAL_ERROR: &str = "Something went wrong on opsbot's side; nothing was changed.";
