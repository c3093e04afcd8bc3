//! Property tests of what arrives from outside before anyone has vouched
//! for it: signature headers, and Slack's forms and JSON. Whatever the
//! bytes, the answer is a value (a payload, or why not), never a panic.
//! The normal run tries a few hundred cases each; the long run sets
//! `PROPTEST_CASES` (see the README's "Fuzzing the parsers").

use opsbot::slack::payloads;
use opsbot::slack::signature;
use proptest::prelude::*;

/// One of Slack's real payloads with a value somewhere replaced by
/// anything: a field of the right name and the wrong shape.
fn mutated(sample: &'static str) -> impl Strategy<Value = String> {
    (0usize..64, any::<String>(), any::<i64>()).prop_map(move |(at, text, number)| {
        let mut value: serde_json::Value = serde_json::from_str(sample).expect("the fixture is JSON");
        let mut leaves = Vec::new();
        collect_leaves(&value, String::new(), &mut leaves);
        if let Some(path) = leaves.get(at % leaves.len().max(1)) {
            if let Some(leaf) = value.pointer_mut(path) {
                *leaf = if number % 2 == 0 { serde_json::json!(text) } else { serde_json::json!(number) };
            }
        }
        value.to_string()
    })
}

fn collect_leaves(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                collect_leaves(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_leaves(v, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

proptest! {
    #[test]
    fn any_signature_headers_are_checked_without_a_panic(
        timestamp in proptest::option::of(prop_oneof![any::<i64>().prop_map(|n| n.to_string()), any::<String>()]),
        signature in proptest::option::of(prop_oneof![
            "v0=[0-9a-f]{0,80}".prop_map(|s| s),
            any::<String>(),
        ]),
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let _ = signature::verify(b"secret", timestamp.as_deref(), signature.as_deref(), &body, now);
    }

    #[test]
    fn any_bytes_are_read_as_slack_payloads_or_refused(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = payloads::slash_command(&body);
        let _ = payloads::interaction(&body);
        let _ = payloads::event(&body);
    }

    #[test]
    fn slacks_payloads_with_a_field_of_the_wrong_shape_are_read_or_refused(
        clicked in mutated(include_str!("fixtures/slack/block_actions.json")),
        submitted in mutated(include_str!("fixtures/slack/view_submission.json")),
        mentioned in mutated(include_str!("fixtures/slack/event_callback.app_mention.json")),
    ) {
        for json in [clicked, submitted] {
            let form = serde_urlencoded::to_string([("payload", json)]).unwrap();
            let _ = payloads::interaction(form.as_bytes());
        }
        let _ = payloads::event(mentioned.as_bytes());
    }

    #[test]
    fn webhooks_with_a_field_of_the_wrong_shape_are_read_or_refused(
        run in mutated(include_str!("../handlers/tests/fixtures/github/workflow_run.completed.success.json")),
        deployment in mutated(include_str!("../handlers/tests/fixtures/github/deployment_status.created.json")),
        notification in mutated(include_str!("../handlers/tests/fixtures/alertmanager/firing.two_alerts.json")),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        use opsbot_handlers::alert::{alertmanager, github};
        let _ = github::parse("workflow_run", run.as_bytes());
        let _ = github::parse("deployment_status", deployment.as_bytes());
        let _ = alertmanager::parse(notification.as_bytes());
        for event in ["workflow_run", "workflow_job", "deployment_status", "ping", "other"] {
            let _ = github::parse(event, &bytes);
        }
        let _ = alertmanager::parse(&bytes);
    }
}
