//! Property tests of every parser that reads what people type or Slack
//! sends back: whatever the input, the answer is a value (a command, a
//! usage error, a list of runbook mistakes with their places), never a
//! panic. The normal run tries a few hundred cases each; the long run sets
//! `PROPTEST_CASES` (see the README's "Fuzzing the parsers").

use opsbot_handlers::codec::{Button, Submission};
use opsbot_handlers::runbook::Runbook;
use proptest::prelude::*;

/// Text people type: words from the grammar mixed with anything at all.
fn typed() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "p0",
        "P1",
        "p2",
        "p3",
        "list",
        "show",
        "ack",
        "resolve",
        "update",
        "severity",
        "commander",
        "report",
        "stats",
        "INC-1",
        "INC-",
        "inc-999999999999999999999",
        "42",
        "start",
        "history",
        "override",
        "swap",
        "withdraw",
        "SWP-3",
        "handoff",
        "for",
        "until",
        "from",
        "2d",
        "4h",
        "18:00",
        "2026-12-14",
        "<@U0BOB|bob>",
        "<@U0BOB>",
        "<!subteam^S1|x>",
        "deploy",
        "rollback",
        "production",
        "v1.2.3",
        "runs",
        "status",
        "&lt;",
        "\u{200b}",
    ]);
    prop::collection::vec(prop_oneof![words.prop_map(str::to_owned), any::<String>()], 0..8).prop_map(|w| w.join(" "))
}

proptest! {
    #[test]
    fn any_typed_command_is_parsed_or_answered_with_usage(
        command in prop::sample::select(vec!["/incident", "/runbook", "/oncall", "/pipeline", "/other"]),
        text in typed(),
    ) {
        if let Err(usage) = opsbot_handlers::command::parse(command, &text) {
            prop_assert!(!usage.message.is_empty());
        }
    }

    #[test]
    fn any_button_or_form_slack_sends_back_is_read_or_refused(
        action_id in prop_oneof![
            prop::sample::select(vec!["incident.ack", "step.done:pb:0:1", "step.flag:rn:1:2", "alert.declare",
                "pipeline.rerun", "home.start:x", "home.declare", "swap.accept"]).prop_map(str::to_owned),
            any::<String>(),
        ],
        value in prop_oneof![
            prop::sample::select(vec!["1", "1:pb:0:1", "3:rn:0:0", "octo/shop:1:2:3:4:main", ""]).prop_map(str::to_owned),
            any::<String>(),
        ],
        callback in prop::sample::select(vec!["incident.resolve", "run.flag", "alert.declare", "pipeline.deploy",
            "home.declare", "other"]),
        metadata in any::<String>(),
        field in proptest::option::of(any::<String>()),
    ) {
        if let Some(button) = Button::parse(&action_id, &value) {
            // What parses, written again, reads back the same.
            prop_assert_eq!(Button::parse(&button.action_id(), &button.value()), Some(button));
        }
        let _ = Submission::parse(callback, &metadata, |_| field.clone());
    }

    #[test]
    fn any_runbook_text_is_read_or_refused_with_places(text in any::<String>()) {
        if let Err(errors) = opsbot_handlers::runbook::parse(&text) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.iter().all(|e| e.line >= 1 && e.column >= 1 && !e.message.is_empty()));
        }
    }

    /// The seed with one line changed, dropped or doubled: the mistakes a
    /// person editing it makes.
    #[test]
    fn a_seed_runbook_edited_anywhere_is_read_or_refused_with_places(
        line in 0usize..1200,
        edit in 0u8..3,
        noise in "[ -~]{0,12}",
    ) {
        let mut lines: Vec<String> = Runbook::SEED_YAML.lines().map(str::to_owned).collect();
        let at = line % lines.len();
        match edit {
            0 => lines[at].push_str(&noise),
            1 => { lines.remove(at); }
            _ => { let copy = lines[at].clone(); lines.insert(at, copy); }
        }
        if let Err(errors) = opsbot_handlers::runbook::parse(&lines.join("\n")) {
            prop_assert!(errors.iter().all(|e| e.line >= 1 && e.column >= 1));
        }
    }
}
