//! The payloads Slack sends: slash-command forms, interaction payloads and
//! Events API envelopes. Parsing never panics; what does not parse is a 400.

use serde::Deserialize;

/// A slash command, `application/x-www-form-urlencoded`.
#[derive(Debug, Deserialize)]
pub struct SlashCommandForm {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub user_id: String,
    pub channel_id: String,
    #[serde(default)]
    pub team_domain: Option<String>,
    /// Where a later answer to this command goes.
    #[serde(default)]
    pub response_url: Option<String>,
    /// Opens a modal within 3 s of the command (`/pipeline deploy`).
    #[serde(default)]
    pub trigger_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(String);

pub fn slash_command(body: &[u8]) -> Result<SlashCommandForm, PayloadError> {
    serde_urlencoded::from_bytes(body).map_err(|e| PayloadError(format!("not a slash command: {e}")))
}

/// `payload=<json>` as Slack posts interactions.
#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

#[derive(Debug, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct TeamRef {
    #[serde(default)]
    pub domain: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub channel_id: Option<String>,
    /// `message`, or `view` for a button on a Home tab or modal.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// The interaction types opsbot acts on; others are acknowledged and ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interaction {
    BlockActions {
        user: IdOnly,
        #[serde(default)]
        team: Option<TeamRef>,
        #[serde(default)]
        channel: Option<IdOnly>,
        #[serde(default)]
        container: Option<Container>,
        #[serde(default)]
        actions: Vec<Action>,
        #[serde(default)]
        trigger_id: Option<String>,
        /// Where a later answer to the click goes (it replaces the
        /// message clicked, an ephemeral one included).
        #[serde(default)]
        response_url: Option<String>,
    },
    ViewSubmission {
        user: IdOnly,
        view: SubmittedView,
    },
    #[serde(other)]
    Other,
}

/// A submitted modal: which one, what it was about, what was typed.
#[derive(Debug, Deserialize)]
pub struct SubmittedView {
    #[serde(default)]
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    #[serde(default)]
    pub state: ViewState,
}

#[derive(Debug, Default, Deserialize)]
pub struct ViewState {
    /// block id → action id → the input's state.
    #[serde(default)]
    pub values: std::collections::HashMap<String, std::collections::HashMap<String, InputValue>>,
}

#[derive(Debug, Deserialize)]
pub struct InputValue {
    /// What a plain-text input holds.
    #[serde(default)]
    pub value: Option<String>,
    /// What a select has chosen.
    #[serde(default)]
    pub selected_option: Option<SelectedOption>,
}

#[derive(Debug, Deserialize)]
pub struct SelectedOption {
    pub value: String,
}

impl SubmittedView {
    /// The text typed into a plain-text input, or the value of the option
    /// chosen in a select.
    pub fn text(&self, block_id: &str, action_id: &str) -> Option<String> {
        let input = self.state.values.get(block_id)?.get(action_id)?;
        input.value.clone().or_else(|| input.selected_option.as_ref().map(|o| o.value.clone()))
    }
}

impl Interaction {
    /// The channel a block action came from: the message's channel.
    pub fn channel_of(channel: &Option<IdOnly>, container: &Option<Container>) -> Option<String> {
        channel.as_ref().map(|c| c.id.clone()).or_else(|| container.as_ref().and_then(|c| c.channel_id.clone()))
    }
}

pub fn interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let form: InteractionForm =
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError(format!("not an interaction: {e}")))?;
    serde_json::from_str(&form.payload).map_err(|e| PayloadError(format!("interaction payload: {e}")))
}

/// An Events API request.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        event_id: String,
        event: Event,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AppMention {
        #[serde(default)]
        text: String,
        channel: String,
        ts: String,
        /// When the mention is itself in a thread, answer in that thread.
        #[serde(default)]
        thread_ts: Option<String>,
    },
    /// Someone opened the bot's App Home (`tab: home`) or Messages tab.
    AppHomeOpened {
        user: String,
        #[serde(default)]
        tab: String,
    },
    #[serde(other)]
    Other,
}

pub fn event(body: &[u8]) -> Result<EventEnvelope, PayloadError> {
    serde_json::from_slice(body).map_err(|e| PayloadError(format!("not an Events API request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slacks_sample_slash_command() {
        let form = slash_command(include_bytes!("../../tests/fixtures/slack/slash_command.form.txt")).unwrap();
        assert_eq!(form.command, "/webhook-collect");
        assert_eq!(form.user_id, "U2CERLKJA");
        assert_eq!(form.team_domain.as_deref(), Some("testteamnow"));
    }

    #[test]
    fn parses_slacks_sample_block_action() {
        let json = include_str!("../../tests/fixtures/slack/block_actions.json");
        let body = serde_urlencoded::to_string([("payload", json)]).unwrap();
        let Interaction::BlockActions { user, actions, channel, container, .. } = interaction(body.as_bytes()).unwrap()
        else {
            panic!("expected block_actions");
        };
        assert_eq!(user.id, "U111");
        assert_eq!(actions[0].action_id, "a");
        assert_eq!(Interaction::channel_of(&channel, &container).as_deref(), Some("C111"));
    }

    #[test]
    fn parses_slacks_sample_view_submission() {
        let json = include_str!("../../tests/fixtures/slack/view_submission.json");
        let body = serde_urlencoded::to_string([("payload", json)]).unwrap();
        let Interaction::ViewSubmission { user, view } = interaction(body.as_bytes()).unwrap() else {
            panic!("expected view_submission");
        };
        assert!(!user.id.is_empty());
        assert!(!view.state.values.is_empty());
    }

    #[test]
    fn parses_slacks_sample_events() {
        let mention = event(include_bytes!("../../tests/fixtures/slack/event_callback.app_mention.json")).unwrap();
        assert!(matches!(mention, EventEnvelope::EventCallback { event: Event::AppMention { .. }, .. }));
        let challenge = event(include_bytes!("../../tests/fixtures/slack/url_verification.json")).unwrap();
        assert!(matches!(challenge, EventEnvelope::UrlVerification { .. }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(slash_command(b"\xff\xfe").is_err());
        assert!(slash_command(b"text=hi").is_err());
        assert!(interaction(b"payload=%7B").is_err());
        assert!(interaction(b"nothing").is_err());
        assert!(event(b"[1,2]").is_err());
    }
}
