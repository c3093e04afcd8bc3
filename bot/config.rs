//! Configuration from the environment (and flags of the same meaning): the
//! environment variables the README's Configuration section documents are
//! the contract. A missing or malformed setting stops start-up with one line
//! naming the variable; secrets are never echoed.

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

/// What the webhook routes check deliveries against; a route whose secret
/// is not set does not exist.
#[derive(Clone, Debug, Default)]
pub struct HookSecrets {
    /// GitHub's webhook secret (`GITHUB_WEBHOOK_SECRET`).
    pub github: Option<Secret>,
    /// The bearer token Alertmanager sends (`OPSBOT_ALERTMANAGER_TOKEN`).
    pub alertmanager: Option<Secret>,
}

/// How opsbot signs in to GitHub.
#[derive(Clone, Debug)]
pub enum GitHubAuth {
    /// `GITHUB_TOKEN`: a fine-grained (or classic) personal access token.
    Token(Secret),
    /// `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY`: the App's installation
    /// on each repository is looked up when first needed.
    App { id: u64, private_key: Secret },
}

/// What `serve` was configured with.
#[derive(Clone, Debug)]
pub struct GitHubSettings {
    pub auth: Option<GitHubAuth>,
    pub repository: Option<opsbot_handlers::github::Repo>,
    pub api_url: String,
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
    /// HTTP listen address [default: 0.0.0.0:3000; in sandbox mode
    /// 127.0.0.1:3000, so the sandbox is not open to the network].
    #[arg(long, env = "OPSBOT_BIND")]
    pub bind: Option<String>,
    /// Slack Web API base URL (tests point it at a fake).
    #[arg(long, env = "SLACK_API_URL", default_value = "https://slack.com/api/")]
    pub slack_api_url: String,
    /// Key prefix, so several bots or tests share one Redis.
    #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
    pub redis_prefix: String,
    /// After each commit, wait until this many Redis replicas have it
    /// (WAIT), so a failover cannot lose it; 0: do not wait.
    #[arg(long, env = "OPSBOT_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,
    /// Requests in flight at most on the Slack and webhook routes; more are
    /// turned away with 503 and Retry-After.
    #[arg(long, env = "OPSBOT_MAX_IN_FLIGHT", default_value_t = crate::admission::MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// How long a commit waits for those replicas, in milliseconds (at most 1000).
    #[arg(long, env = "OPSBOT_REDIS_WAIT_TIMEOUT_MS", default_value_t = 100)]
    pub redis_wait_timeout_ms: u64,
    /// Path to a runbook YAML (default: the embedded seed runbook).
    #[arg(long, env = "OPSBOT_RUNBOOK")]
    pub runbook: Option<String>,
    /// This replica's name in the outbox consumer group (default: the host name).
    #[arg(long, env = "OPSBOT_REPLICA")]
    pub replica: Option<String>,
    /// Seconds a stopping replica (SIGTERM, Ctrl-C) gives requests and
    /// deliveries in flight before it exits [default: 10].
    #[arg(long, env = "OPSBOT_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Verifies requests to `/slack/*`. `None` (Socket Mode without it):
    /// those routes do not exist, as Slack sends nothing over HTTP then.
    pub signing_secret: Option<Secret>,
    pub bot_token: Secret,
    /// `SLACK_APP_TOKEN` (`xapp-…`): Slack's commands, interactions and
    /// events arrive over Socket Mode connections this token opens.
    pub app_token: Option<Secret>,
    pub slack_api_url: String,
    /// May carry a password, hence a secret. `None`: the embedded
    /// in-memory store (nothing persists; one replica only).
    pub redis_url: Option<Secret>,
    /// No Slack configured: the bot serves a local Slack at `/sandbox/`
    /// and talks to it; a configured bot has no sandbox routes at all.
    pub sandbox: bool,
    pub redis_prefix: String,
    /// Replicas each commit waits for (`WAIT`), and for how long at most;
    /// `None`: commits do not wait.
    pub redis_wait: Option<(u32, std::time::Duration)>,
    /// `OPSBOT_REDIS_CA_FILE`: the certificate authority (PEM) a
    /// `rediss://` Redis's certificate is checked against, when not a
    /// public one.
    pub redis_ca: Option<Vec<u8>>,
    /// Requests in flight at most on the work routes.
    pub max_in_flight: usize,
    pub replica: String,
    /// How long a stop waits for requests and deliveries in flight.
    pub shutdown_grace: std::time::Duration,
    /// The embedded seed runbook, or the team's file (validated).
    pub runbook: opsbot_handlers::Runbook,
    /// Verifies GitHub's webhook deliveries (`X-Hub-Signature-256`).
    /// `None`: `/hooks/github` does not exist.
    pub github_webhook_secret: Option<Secret>,
    /// The bearer token Alertmanager sends. `None`: `/hooks/alertmanager`
    /// does not exist.
    pub alertmanager_token: Option<Secret>,
    /// How `/pipeline` reaches GitHub (`GITHUB_TOKEN` or a GitHub App,
    /// `GITHUB_REPOSITORY`, `GITHUB_API_URL`).
    pub github: GitHubSettings,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env(args: &ServeArgs) -> Result<Config, ConfigError> {
        // Nothing of Slack configured: the local sandbox, never a half-set
        // production configuration.
        let sandbox = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"].iter().all(|n| env(n).is_none());
        // The sandbox has no login: it listens on loopback unless told otherwise.
        let bind_text = args.bind.clone().unwrap_or_else(|| {
            if sandbox {
                "127.0.0.1:3000".to_owned()
            } else {
                "0.0.0.0:3000".to_owned()
            }
        });
        let bind = bind_text
            .parse()
            .map_err(|_| ConfigError(format!("OPSBOT_BIND: `{bind_text}` is not an address like 0.0.0.0:3000")))?;
        let (signing_secret, bot_token, app_token) = if sandbox {
            (Some(Secret::new(random_secret())), Secret::new(SANDBOX_TOKEN), None)
        } else {
            let app_token = env("SLACK_APP_TOKEN");
            if app_token.as_deref().is_some_and(|t| !t.starts_with("xapp-")) {
                return Err(ConfigError(
                    "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information → App-Level Tokens, with the connections:write scope)".into(),
                ));
            }
            // Socket Mode needs no signing secret: nothing comes over HTTP.
            let signing_secret = env("SLACK_SIGNING_SECRET");
            if signing_secret.is_none() && app_token.is_none() {
                return Err(ConfigError(
                    "SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page (or set SLACK_APP_TOKEN for Socket Mode)".into(),
                ));
            }
            let bot_token = env("SLACK_BOT_TOKEN").ok_or_else(|| {
                ConfigError(
                    "SLACK_BOT_TOKEN is not set: copy the xoxb- token from your Slack app's OAuth & Permissions page"
                        .into(),
                )
            })?;
            if !bot_token.starts_with("xoxb-") {
                return Err(ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-".into()));
            }
            (signing_secret.map(Secret::new), Secret::new(bot_token), app_token.map(Secret::new))
        };
        let api = url::Url::parse(&args.slack_api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if api.is_none() {
            return Err(ConfigError(format!(
                "SLACK_API_URL: `{}` is not an http(s) URL like https://slack.com/api/",
                args.slack_api_url
            )));
        }
        let redis_url = env("REDIS_URL");
        if let Some(Err(why)) = redis_url.as_deref().map(crate::store::check_url) {
            return Err(ConfigError(format!("REDIS_URL: {why}")));
        }
        let runbook = match &args.runbook {
            None => opsbot_handlers::Runbook::seed(),
            Some(path) => load_runbook(path)?,
        };
        if args.redis_prefix.is_empty() || args.redis_prefix.contains(char::is_whitespace) {
            return Err(ConfigError("OPSBOT_REDIS_PREFIX must be a non-empty word".into()));
        }
        if args.redis_wait_replicas > 0 && !(1..=1000).contains(&args.redis_wait_timeout_ms) {
            return Err(ConfigError(
                "OPSBOT_REDIS_WAIT_TIMEOUT_MS must be 1 to 1000: a commit waits that long before Slack is answered"
                    .into(),
            ));
        }
        let redis_ca = match env("OPSBOT_REDIS_CA_FILE") {
            None => None,
            Some(path) => Some(
                std::fs::read(&path)
                    .map_err(|e| ConfigError(format!("OPSBOT_REDIS_CA_FILE: cannot read `{path}`: {e}")))?,
            ),
        };
        let redis_wait = (args.redis_wait_replicas > 0)
            .then(|| (args.redis_wait_replicas, std::time::Duration::from_millis(args.redis_wait_timeout_ms)));
        let replica = args.replica.clone().or_else(|| env("HOSTNAME")).unwrap_or_else(|| "opsbot".to_owned());
        let shutdown_grace = match args.shutdown_grace.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_SHUTDOWN_GRACE,
            Some(text) => text
                .strip_suffix('s')
                .unwrap_or(text)
                .parse()
                .ok()
                .filter(|secs| *secs <= 3600)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| {
                    ConfigError(format!("OPSBOT_SHUTDOWN_GRACE: `{text}` is not a number of seconds like 10"))
                })?,
        };
        Ok(Config {
            bind,
            signing_secret,
            bot_token,
            app_token,
            slack_api_url: args.slack_api_url.clone(),
            redis_url: redis_url.map(Secret::new),
            sandbox,
            redis_prefix: args.redis_prefix.clone(),
            redis_wait,
            redis_ca,
            max_in_flight: args.max_in_flight.max(1),
            replica,
            shutdown_grace,
            runbook,
            github_webhook_secret: env("GITHUB_WEBHOOK_SECRET").map(Secret::new),
            alertmanager_token: env("OPSBOT_ALERTMANAGER_TOKEN").map(Secret::new),
            github: github_settings()?,
        })
    }
}

/// GitHub's settings; every mistake names its variable, never a secret.
fn github_settings() -> Result<GitHubSettings, ConfigError> {
    use GitHubAuth as Auth;
    let api_url = env("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned());
    if url::Url::parse(&api_url).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()).is_none()
    {
        return Err(ConfigError(format!(
            "GITHUB_API_URL: `{api_url}` is not an http(s) URL like https://api.github.com"
        )));
    }
    let repository = match env("GITHUB_REPOSITORY") {
        None => None,
        Some(text) => Some(opsbot_handlers::github::Repo::parse(&text).ok_or_else(|| {
            ConfigError(format!("GITHUB_REPOSITORY: `{text}` is not a repository like octo-org/shop"))
        })?),
    };
    let auth = match (env("GITHUB_TOKEN"), env("GITHUB_APP_ID"), env("GITHUB_APP_PRIVATE_KEY")) {
        (Some(_), Some(_), _) => {
            return Err(ConfigError("GITHUB_TOKEN and GITHUB_APP_ID are both set: choose a token or an App".into()))
        }
        (Some(token), None, _) => Some(Auth::Token(Secret::new(token))),
        (None, Some(id), key) => {
            let id = id
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("GITHUB_APP_ID: `{id}` is not the App's numeric id")))?;
            let key = key.ok_or_else(|| {
                ConfigError("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not: give the App's private key (PEM) or the path of its .pem file".into())
            })?;
            Some(Auth::App { id, private_key: Secret::new(app_private_key(&key)?) })
        }
        (None, None, Some(_)) => {
            return Err(ConfigError("GITHUB_APP_PRIVATE_KEY is set but GITHUB_APP_ID is not".into()))
        }
        (None, None, None) => None,
    };
    Ok(GitHubSettings { auth, repository, api_url })
}

/// How long a stopping replica waits for what is in flight: well inside
/// Kubernetes' default 30 s before it kills the pod.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// GitHub's REST API; GitHub Enterprise Server's is `https://HOST/api/v3`.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// `GITHUB_APP_PRIVATE_KEY` holds the PEM itself or the path of the `.pem`
/// file GitHub let the admin download.
fn app_private_key(value: &str) -> Result<String, ConfigError> {
    if value.contains("-----BEGIN") {
        // Environment files often carry the key on one line with `\n`.
        return Ok(value.replace("\\n", "\n"));
    }
    std::fs::read_to_string(value.trim()).map_err(|e| {
        ConfigError(format!(
            "GITHUB_APP_PRIVATE_KEY: it is not a PEM key, and `{}` cannot be read as a file: {e}",
            value.trim()
        ))
    })
}

/// The bot token the sandbox's own Slack accepts.
pub const SANDBOX_TOKEN: &str = "xoxb-sandbox";

/// A secret for the sandbox (Slack's signing secret, its GitHub's webhook
/// secret), new at every start: only the sandbox signs with it, so it never
/// needs to leave the process.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    // Without an entropy source the sandbox still works; its requests stay
    // on this machine.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    hex::encode(bytes)
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
