//! Block Kit building blocks shared by every feature's rendering, and the
//! limits they keep (50 blocks, 3000-character sections, 150-character
//! headers) however long the input, so Slack never rejects what we send.

use crate::text::truncate;
use serde_json::{json, Value};

pub const HEADER_MAX: usize = 150;
pub const SECTION_MAX: usize = 3000;
pub const MAX_BLOCKS: usize = 50;

/// A rendered Slack message: fallback text (notifications, screen readers)
/// and blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Value,
}

/// Splits long mrkdwn into section blocks on line boundaries, each within
/// the section limit, and at most [`MAX_BLOCKS`] of them.
pub fn sections(text: &str) -> Value {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = truncate(line, SECTION_MAX);
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > SECTION_MAX {
            blocks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    if blocks.len() > MAX_BLOCKS {
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push("… (cut to fit one Slack message)".to_owned());
    }
    Value::Array(
        blocks.into_iter().map(|t| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}})).collect(),
    )
}

/// A button element.
pub fn button(button: crate::codec::Button, label: &str, style: Option<&str>) -> Value {
    let mut json = json!({"type": "button", "action_id": button.action_id(), "value": button.value(), "text": {"type": "plain_text", "text": label}});
    if let Some(style) = style {
        json["style"] = json!(style);
    }
    json
}

/// A modal with one text input, the shape of every modal opsbot opens.
pub fn input_modal(
    ids: crate::codec::ModalIds,
    title: &str,
    submit: &str,
    intro: &str,
    field: &str,
    label: &str,
    optional: bool,
) -> Value {
    json!({
        "type": "modal",
        "callback_id": ids.callback_id,
        "private_metadata": ids.private_metadata,
        "title": {"type": "plain_text", "text": truncate(title, 24)},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(intro, SECTION_MAX)}},
            {"type": "input", "block_id": field, "optional": optional,
             "label": {"type": "plain_text", "text": label},
             "element": {"type": "plain_text_input", "action_id": field, "multiline": true, "max_length": 2000}}
        ]
    })
}
