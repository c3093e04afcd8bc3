//! Configuration from the environment (and flags of the same meaning), as
//! DESIGN.md's contract lists it. A missing or malformed setting stops
//! start-up with one line naming the variable; secrets are never echoed.

use clap::Args;
use std::fmt;
use std::net::SocketAddr;

/// A token or secret: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A setting that stops start-up; its message names the variable and says
/// what is expected, without the value when the value may be secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `opsbot serve` flags; each also reads its environment variable.
/// Secrets are read from the environment only, so they never show in `ps`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// HTTP listen address.
    #[arg(long, env = "OPSBOT_BIND", default_value = "0.0.0.0:3000")]
    pub bind: String,
    /// Slack Web API base URL (tests point it at a fake).
    #[arg(long, env = "SLACK_API_URL", default_value = "https://slack.com/api/")]
    pub slack_api_url: String,
    /// Key prefix, so several bots or tests share one Redis.
    #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
    pub redis_prefix: String,
    /// Path to a runbook YAML (default: the embedded seed runbook).
    #[arg(long, env = "OPSBOT_RUNBOOK")]
    pub runbook: Option<String>,
    /// This replica's name in the outbox consumer group (default: the host name).
    #[arg(long, env = "OPSBOT_REPLICA")]
    pub replica: Option<String>,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub signing_secret: Secret,
    pub bot_token: Secret,
    pub slack_api_url: String,
    /// May carry a password, hence a secret.
    pub redis_url: Secret,
    pub redis_prefix: String,
    pub replica: String,
    /// The embedded seed runbook, or the team's file (validated).
    pub runbook: opsbot_handlers::Runbook,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env(args: &ServeArgs) -> Result<Config, ConfigError> {
        let bind = args
            .bind
            .parse()
            .map_err(|_| ConfigError(format!("OPSBOT_BIND: `{}` is not an address like 0.0.0.0:3000", args.bind)))?;
        let signing_secret = env("SLACK_SIGNING_SECRET").ok_or_else(|| {
            ConfigError("SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page".into())
        })?;
        let bot_token = env("SLACK_BOT_TOKEN").ok_or_else(|| {
            ConfigError(
                "SLACK_BOT_TOKEN is not set: copy the xoxb- token from your Slack app's OAuth & Permissions page"
                    .into(),
            )
        })?;
        if !bot_token.starts_with("xoxb-") {
            return Err(ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-".into()));
        }
        if env("SLACK_APP_TOKEN").is_some() {
            return Err(ConfigError(
                "SLACK_APP_TOKEN is set, but Socket Mode is not built yet: unset it and point Slack at opsbot's HTTP endpoints".into(),
            ));
        }
        let api = url::Url::parse(&args.slack_api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if api.is_none() {
            return Err(ConfigError(format!(
                "SLACK_API_URL: `{}` is not an http(s) URL like https://slack.com/api/",
                args.slack_api_url
            )));
        }
        let redis_url = env("REDIS_URL").ok_or_else(|| {
            ConfigError("REDIS_URL is not set: give it a Redis, e.g. redis://127.0.0.1:6379/ (the embedded in-memory store is not built yet)".into())
        })?;
        if redis::Client::open(redis_url.as_str()).is_err() {
            return Err(ConfigError("REDIS_URL is not a valid redis:// or rediss:// URL".into()));
        }
        let runbook = match &args.runbook {
            None => opsbot_handlers::Runbook::seed(),
            Some(path) => load_runbook(path)?,
        };
        if args.redis_prefix.is_empty() || args.redis_prefix.contains(char::is_whitespace) {
            return Err(ConfigError("OPSBOT_REDIS_PREFIX must be a non-empty word".into()));
        }
        let replica = args.replica.clone().or_else(|| env("HOSTNAME")).unwrap_or_else(|| "opsbot".to_owned());
        Ok(Config {
            bind,
            signing_secret: Secret::new(signing_secret),
            bot_token: Secret::new(bot_token),
            slack_api_url: args.slack_api_url.clone(),
            redis_url: Secret::new(redis_url),
            redis_prefix: args.redis_prefix.clone(),
            replica,
            runbook,
        })
    }
}

/// Reads and validates a team's runbook; every mistake is reported as
/// `FILE:LINE:COLUMN: message`, one per line.
pub fn load_runbook(path: &str) -> Result<opsbot_handlers::Runbook, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("OPSBOT_RUNBOOK: cannot read `{path}`: {e}")))?;
    opsbot_handlers::runbook::parse(&text).map_err(|errors| {
        let lines: Vec<String> =
            errors.iter().map(|e| format!("{path}:{}:{}: {}", e.line, e.column, e.message)).collect();
        ConfigError(format!("OPSBOT_RUNBOOK `{path}` is not a valid runbook:\n{}", lines.join("\n")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("xoxb-123-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
