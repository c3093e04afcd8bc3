//! Webhook deliveries back to the bot: the `workflow_run` payload built like
//! `handlers/tests/fixtures/github/workflow_run.completed.success.json`, the
//! `X-Hub-Signature-256` HMAC and the POST itself, with the headers GitHub's
//! "Hookshot" sends. Deliveries are fire-and-forget, as on GitHub: the
//! outcome is recorded, never retried.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::json;
use crate::state::{Delivery, State};
use crate::FakeGitHub;

/// The id GitHub would give the repository's webhook (`X-GitHub-Hook-ID`).
const HOOK_ID: u64 = 470_000_001;

#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub url: String,
    pub secret: String,
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`, the value of
/// `X-Hub-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The payload for a `workflow_run` event about `run_id`, or `None` if the
/// run (or its workflow or repository) is unknown.
pub(crate) fn workflow_run_payload(state: &State, run_id: u64, action: &str) -> Option<Value> {
    let run = state.run(run_id)?;
    let repo = state.repo(&run.repo)?;
    let workflow = state.workflows.iter().find(|w| w.id == run.workflow_id)?;
    Some(json!({
        "action": action,
        "workflow_run": json::run(run, repo, &workflow.path),
        "workflow": json::workflow(workflow),
        "repository": json::repository(repo),
        "sender": json::user(&run.triggering_actor),
    }))
}

/// A uuid-shaped delivery id, unique within the process.
fn delivery_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{n}:{:?}", std::time::SystemTime::now());
    let h = hex::encode(&Sha256::digest(seed)[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Sends the delivery on the current tokio runtime and records its outcome.
/// Outside a runtime the delivery is recorded as failed rather than lost
/// silently.
pub(crate) fn send(fake: FakeGitHub, target: Target, event: &str, action: &str, run_id: u64, payload: Value) {
    let delivery = Delivery {
        id: delivery_id(),
        event: event.to_owned(),
        action: action.to_owned(),
        run_id,
        status: None,
        error: None,
    };
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let request = hyper::Request::post(&target.url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/fake")
        .header("x-github-event", event)
        .header("x-github-delivery", &delivery.id)
        .header("x-github-hook-id", HOOK_ID.to_string())
        .header("x-github-hook-installation-target-type", "repository")
        .header("x-github-hook-installation-target-id", payload["repository"]["id"].to_string())
        .header("x-hub-signature-256", signature(&target.secret, &body))
        .body(Full::new(Bytes::from(body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return fake.record_delivery(Delivery { error: Some(format!("bad webhook url: {e}")), ..delivery }),
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        let error = Some("no tokio runtime to deliver from".to_owned());
        return fake.record_delivery(Delivery { error, ..delivery });
    };
    runtime.spawn(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let outcome = match client.request(request).await {
            Ok(res) => Delivery { status: Some(res.status().as_u16()), ..delivery },
            Err(e) => Delivery { error: Some(e.to_string()), ..delivery },
        };
        fake.record_delivery(outcome);
    });
}
