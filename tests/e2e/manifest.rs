//! `manifest.yml` creates a Slack app that talks to the endpoints the bot
//! serves, with the scopes it needs; `manifest.socket-mode.yml` the same
//! app in Socket Mode.

use serde_json::Value;

fn manifest() -> Value {
    let text = include_str!("../../manifest.yml");
    serde_saphyr::from_str(text).expect("manifest.yml is valid YAML")
}

fn socket_mode_manifest() -> Value {
    let text = include_str!("../../manifest.socket-mode.yml");
    serde_saphyr::from_str(text).expect("manifest.socket-mode.yml is valid YAML")
}

/// What is left of a manifest without where Slack sends things over HTTP.
fn without_request_urls(mut m: Value) -> Value {
    for command in m["features"]["slash_commands"].as_array_mut().unwrap() {
        command.as_object_mut().unwrap().remove("url");
    }
    m["settings"]["event_subscriptions"].as_object_mut().unwrap().remove("request_url");
    m["settings"]["interactivity"].as_object_mut().unwrap().remove("request_url");
    m["settings"].as_object_mut().unwrap().remove("socket_mode_enabled");
    m
}

#[test]
fn the_socket_mode_manifest_is_the_same_app_without_request_urls() {
    let socket = socket_mode_manifest();
    assert_eq!(socket["settings"]["socket_mode_enabled"], true);
    assert!(!socket.to_string().contains("opsbot.example.com"), "Socket Mode needs no public address: {socket}");
    assert_eq!(without_request_urls(socket), without_request_urls(manifest()), "both manifests ask for the same");
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
    assert_eq!(settings["event_subscriptions"]["bot_events"], serde_json::json!(["app_mention", "app_home_opened"]));
    assert_eq!(m["features"]["app_home"]["home_tab_enabled"], true);
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
            "usergroups:write",
            "channels:history",
            "im:history",
            "im:write"
        ]
    );
    assert!(m["display_information"]["name"].as_str().is_some());
    assert!(m["features"]["bot_user"]["display_name"].as_str().is_some());
}
