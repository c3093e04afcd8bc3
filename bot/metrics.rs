//! Prometheus metrics (`GET /metrics`): what came in from Slack, what
//! went out, and how much is waiting — what an on-call engineer checks
//! when the bot seems quiet.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `commands`, `interactions`, `events`
    pub endpoint: &'static str,
    /// `ok`, `unauthorized`, `bad_request`, `unavailable`
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
    pub declared: Family<SeverityLabels, Counter>,
    /// `delivered`, `retried`, `dead`, `dropped`
    pub deliveries: Family<OutcomeLabels, Counter>,
    pub timers_acted: Counter,
    /// Sampled at scrape time from the store.
    pub outbox_entries: Gauge,
    pub open_incidents: Gauge,
    pub timers_set: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let (requests, declared, deliveries) = (Family::default(), Family::default(), Family::default());
        let (timers_acted, outbox_entries, open_incidents, timers_set) =
            (Counter::default(), Gauge::default(), Gauge::default(), Gauge::default());
        let mut registry = Registry::with_prefix("opsbot");
        registry.register("slack_requests", "Requests from Slack by endpoint and outcome", requests.clone());
        registry.register("incidents_declared", "Incidents declared, by severity", declared.clone());
        registry.register("outbox_deliveries", "Outbox delivery attempts by outcome", deliveries.clone());
        registry.register(
            "timers_acted",
            "Timers (escalations, reminders, schedule slots) that acted",
            timers_acted.clone(),
        );
        registry.register("outbox_entries", "Entries not yet delivered to Slack", outbox_entries.clone());
        registry.register("open_incidents", "Incidents not resolved", open_incidents.clone());
        registry.register("timers_set", "Timers waiting to come due", timers_set.clone());
        Metrics { registry, requests, declared, deliveries, timers_acted, outbox_entries, open_incidents, timers_set }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { endpoint, outcome }).inc();
    }

    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
