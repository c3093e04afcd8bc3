//! `manifest.yml` creates a Slack app that talks to the endpoints the bot
//! serves, with the scopes it needs.

use serde_json::Value;

fn manifest() -> Value {
    let text = include_str!("../../manifest.yml");
    serde_saphyr::from_str(text).expect("manifest.yml is valid YAML")
}

#[test]
fn declares_the_four_commands_on_the_commands_endpoint() {
    let m = manifest();
    let commands: Vec<&str> = m["features"]["slash_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["url"].as_str().unwrap().ends_with("/slack/commands"), "{c}");
            assert!(c["description"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
            c["command"].as_str().unwrap()
        })
        .collect();
    assert_eq!(commands, ["/incident", "/runbook", "/oncall", "/pipeline"]);
}

#[test]
fn events_and_interactivity_point_at_the_bot() {
    let m = manifest();
    let settings = &m["settings"];
    assert!(settings["event_subscriptions"]["request_url"].as_str().unwrap().ends_with("/slack/events"));
    assert_eq!(settings["event_subscriptions"]["bot_events"], serde_json::json!(["app_mention"]));
    assert_eq!(settings["interactivity"]["is_enabled"], true);
    assert!(settings["interactivity"]["request_url"].as_str().unwrap().ends_with("/slack/interactions"));
    assert_eq!(settings["socket_mode_enabled"], false);
}

#[test]
fn asks_for_the_scopes_it_uses_and_no_more() {
    let m = manifest();
    let scopes: Vec<&str> =
        m["oauth_config"]["scopes"]["bot"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        scopes,
        [
            "commands",
            "chat:write",
            "chat:write.public",
            "app_mentions:read",
            "users:read",
            "channels:read",
            "usergroups:read",
            "usergroups:write"
        ]
    );
    assert!(m["display_information"]["name"].as_str().is_some());
    assert!(m["features"]["bot_user"]["display_name"].as_str().is_some());
}
