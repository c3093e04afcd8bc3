//! What a handoff looks like: the message in the team channel and the DM
//! to whoever takes over, each showing whether they have said "I have it"
//! yet, with the button while they have not.

use super::handoff::Handoff;
use crate::blocks::{button, sections, SlackMessage, MAX_BLOCKS};
use crate::codec::{Button, HandoffButton};
use crate::subject::HandoffMessage;
use crate::text::{duration, escape, slack_date};
use serde_json::{json, Value};

pub fn message(h: &Handoff, which: HandoffMessage) -> SlackMessage {
    let role = escape(&h.role_name);
    let mut lines = match which {
        HandoffMessage::Announcement => {
            let who = if h.outgoing == h.incoming {
                format!("<@{}> stays on call", h.incoming)
            } else {
                format!("<@{}> hands over to <@{}>", h.outgoing, h.incoming)
            };
            vec![format!("🔄 *On-call handoff, {role}*: {who}, on call until {}.", slack_date(h.ends))]
        }
        HandoffMessage::Direct => vec![format!(
            "🔄 You are on call as *{role}* from {} until {}, taking over from <@{}>.",
            slack_date(h.starts),
            slack_date(h.ends),
            h.outgoing
        )],
    };
    lines.push(h.open.clone());
    if let Some(late) = h.late() {
        lines.push(format!("_Posted {} late: opsbot was not running at the handoff._", duration(late)));
    }
    lines.extend(status(h, which));
    let text = lines.join("\n");
    let mut blocks = match sections(&text) {
        Value::Array(blocks) => blocks,
        _ => Vec::new(),
    };
    if h.is_open() {
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(json!({
            "type": "actions",
            "elements": [button(Button::Handoff(h.id, HandoffButton::Acknowledge), "I have it", Some("primary"))],
        }));
    }
    SlackMessage { text, blocks: Value::Array(blocks) }
}

/// Whether the incoming person has it: the line under the handoff.
fn status(h: &Handoff, which: HandoffMessage) -> Option<String> {
    if let Some(done) = &h.acknowledged {
        return Some(match which {
            HandoffMessage::Announcement => format!("✅ <@{}> has it since {}.", done.user, slack_date(done.at)),
            HandoffMessage::Direct => format!("✅ You have it since {}.", slack_date(done.at)),
        });
    }
    let by = h.acknowledge_by?;
    Some(match (which, h.reminded) {
        (HandoffMessage::Announcement, false) => {
            format!("⏳ Waiting for <@{}> to say *I have it* (by {}).", h.incoming, slack_date(by))
        }
        (HandoffMessage::Announcement, true) => format!(
            "⚠️ <@{}> has not said *I have it* yet (asked by {}); <@{}> stays on until they do.",
            h.incoming,
            slack_date(by),
            h.outgoing
        ),
        (HandoffMessage::Direct, false) => {
            format!("Press *I have it* so <@{}> knows they can go (by {}).", h.outgoing, slack_date(by))
        }
        (HandoffMessage::Direct, true) => {
            format!("⚠️ Please press *I have it*: <@{}> is staying on until you do.", h.outgoing)
        }
    })
}
