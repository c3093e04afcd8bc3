//! Prometheus metrics (`GET /metrics`): what came in from Slack and the
//! webhooks, what went out, and how much is waiting — what an on-call
//! engineer checks when the bot seems quiet.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `commands`, `interactions`, `events`; for webhooks `github`, `alertmanager`
    pub endpoint: &'static str,
    /// `ok`, `unauthorized`, `bad_request`, `unavailable`
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    /// `github`, `alertmanager`, or `unknown` for an entry that cannot be read
    pub source: &'static str,
    /// `decided`, `ignored`, `unreadable`
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    pub severity: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    /// Webhook requests by endpoint (`github`, `alertmanager`) and outcome.
    pub hook_requests: Family<RequestLabels, Counter>,
    /// Webhook deliveries the hook worker settled, by source and outcome.
    pub hook_signals: Family<SignalLabels, Counter>,
    pub declared: Family<SeverityLabels, Counter>,
    /// `delivered`, `retried`, `dead`, `dropped`
    pub deliveries: Family<OutcomeLabels, Counter>,
    pub timers_acted: Counter,
    /// Requests to GitHub's API by outcome (`ok`, `not_found`, `refused`,
    /// `rate_limited`, `down`, `held`: not sent, a rate limit was spent).
    pub github_requests: Family<OutcomeLabels, Counter>,
    /// Sampled at scrape time from the store.
    pub outbox_entries: Gauge,
    pub open_incidents: Gauge,
    pub timers_set: Gauge,
    pub inbox_entries: Gauge,
    /// Socket Mode connections open now (0 over HTTP).
    pub socket_mode_connections: Gauge,
    /// Commits not known to have reached `OPSBOT_REDIS_WAIT_REPLICAS`
    /// replicas in time, since start (sampled from the store).
    pub unreplicated_commits: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let (requests, declared, deliveries) = (Family::default(), Family::default(), Family::default());
        let (hook_requests, hook_signals, github_requests) = (Family::default(), Family::default(), Family::default());
        let (timers_acted, outbox_entries, open_incidents, timers_set, inbox_entries) =
            (Counter::default(), Gauge::default(), Gauge::default(), Gauge::default(), Gauge::default());
        let mut registry = Registry::with_prefix("opsbot");
        registry.register("slack_requests", "Requests from Slack by endpoint and outcome", requests.clone());
        registry.register("hook_requests", "Webhook requests by endpoint and outcome", hook_requests.clone());
        registry.register("hook_signals", "Webhook deliveries settled, by source and outcome", hook_signals.clone());
        registry.register("incidents_declared", "Incidents declared, by severity", declared.clone());
        registry.register("outbox_deliveries", "Outbox delivery attempts by outcome", deliveries.clone());
        registry.register(
            "timers_acted",
            "Timers (escalations, reminders, schedule slots) that acted",
            timers_acted.clone(),
        );
        registry.register("github_requests", "Requests to GitHub's API by outcome", github_requests.clone());
        registry.register("outbox_entries", "Entries not yet delivered to Slack", outbox_entries.clone());
        registry.register("open_incidents", "Incidents not resolved", open_incidents.clone());
        registry.register("timers_set", "Timers waiting to come due", timers_set.clone());
        registry.register("inbox_entries", "Webhook deliveries not yet decided", inbox_entries.clone());
        let socket_mode_connections = Gauge::default();
        registry.register(
            "socket_mode_connections",
            "Socket Mode connections open to Slack",
            socket_mode_connections.clone(),
        );
        let unreplicated_commits = Gauge::default();
        registry.register(
            "redis_unreplicated_commits",
            "Commits not known to have reached OPSBOT_REDIS_WAIT_REPLICAS replicas in time, since start",
            unreplicated_commits.clone(),
        );
        Metrics {
            registry,
            unreplicated_commits,
            requests,
            hook_requests,
            hook_signals,
            declared,
            deliveries,
            timers_acted,
            github_requests,
            outbox_entries,
            open_incidents,
            timers_set,
            inbox_entries,
            socket_mode_connections,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { endpoint, outcome }).inc();
    }

    pub fn hook_request(&self, endpoint: &'static str, outcome: &'static str) {
        self.hook_requests.get_or_create(&RequestLabels { endpoint, outcome }).inc();
    }

    pub fn hook_signal(&self, source: &'static str, outcome: &'static str) {
        self.hook_signals.get_or_create(&SignalLabels { source, outcome }).inc();
    }

    pub fn github_request(&self, outcome: &'static str) {
        self.github_requests.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A request's outcome label, from the status it was answered with.
    pub fn outcome_of(status: http::StatusCode) -> &'static str {
        match status.as_u16() {
            200..=299 => "ok",
            401 => "unauthorized",
            503 => "unavailable",
            400..=499 => "bad_request",
            _ => "error",
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
