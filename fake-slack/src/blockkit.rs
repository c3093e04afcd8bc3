//! Block Kit validation with Slack's limits, so that a payload the real API
//! would reject with `invalid_blocks` / `invalid_arguments` is rejected here
//! too, with a Slack-style message per violation:
//! `[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
//!
//! The valid path allocates almost nothing (pointers are built lazily), since
//! every message of the load benchmark goes through here.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

const MAX_MESSAGE_BLOCKS: usize = 50;
const MAX_VIEW_BLOCKS: usize = 100;
const MAX_ID: usize = 255;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_SECTION_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_CONTEXT_ELEMENTS: usize = 10;
const MAX_ACTIONS_ELEMENTS: usize = 25;
const MAX_BUTTON_TEXT: usize = 75;
const MAX_BUTTON_VALUE: usize = 2000;
const MAX_URL: usize = 3000;
const MAX_ALT_TEXT: usize = 2000;
const MAX_LABEL: usize = 2000;
const MAX_VIEW_TITLE: usize = 24;
const MAX_PRIVATE_METADATA: usize = 3000;

const BLOCK_TYPES: &str = "section, header, context, divider, actions, image, rich_text, input";

/// Checks a message's `blocks` array; `Err` holds one Slack-style message per
/// violation, pointing below `/blocks`.
pub fn validate_blocks(blocks: &Value) -> Result<(), Vec<String>> {
    let mut v = Validator::default();
    v.block_list(blocks, Ptr::root("blocks"), MAX_MESSAGE_BLOCKS);
    v.finish()
}

/// Checks a modal passed to `views.open`; messages point below `/view`.
pub fn validate_view(view: &Value) -> Result<(), Vec<String>> {
    let mut v = Validator::default();
    let ptr = Ptr::root("view");
    let Some(obj) = v.object(view, ptr) else {
        return v.finish();
    };
    match v.required(obj, "type", ptr).map(Value::as_str) {
        Some(Some("modal")) => {}
        Some(_) => v.error("must be one of: modal", ptr.key("type")),
        None => {}
    }
    if let Some(title) = v.required(obj, "title", ptr) {
        v.text_object(title, ptr.key("title"), MAX_VIEW_TITLE, true);
    }
    for key in ["submit", "close"] {
        if let Some(text) = obj.get(key) {
            v.text_object(text, ptr.key(key), MAX_VIEW_TITLE, true);
        }
    }
    if let Some(blocks) = v.required(obj, "blocks", ptr) {
        v.block_list(blocks, ptr.key("blocks"), MAX_VIEW_BLOCKS);
    }
    v.max_len(obj.get("callback_id"), ptr.key("callback_id"), MAX_ID);
    v.max_len(obj.get("external_id"), ptr.key("external_id"), MAX_ID);
    v.max_len(obj.get("private_metadata"), ptr.key("private_metadata"), MAX_PRIVATE_METADATA);
    // Slack refuses a modal that collects input but offers no way to submit it.
    if v.saw_input && obj.get("submit").is_none() {
        v.error("missing required field: submit (a view with input blocks needs one)", ptr);
    }
    v.finish()
}

/// Checks an App Home view passed to `views.publish`.
pub fn validate_home(view: &Value) -> Result<(), Vec<String>> {
    let mut v = Validator::default();
    let ptr = Ptr::root("view");
    let Some(obj) = v.object(view, ptr) else {
        return v.finish();
    };
    match v.required(obj, "type", ptr).map(Value::as_str) {
        Some(Some("home")) => {}
        Some(_) => v.error("must be one of: home", ptr.key("type")),
        None => {}
    }
    if let Some(blocks) = v.required(obj, "blocks", ptr) {
        v.block_list(blocks, ptr.key("blocks"), MAX_VIEW_BLOCKS);
    }
    v.max_len(obj.get("callback_id"), ptr.key("callback_id"), MAX_ID);
    v.max_len(obj.get("external_id"), ptr.key("external_id"), MAX_ID);
    v.max_len(obj.get("private_metadata"), ptr.key("private_metadata"), MAX_PRIVATE_METADATA);
    if v.saw_input {
        v.error("input blocks cannot be used in a Home tab", ptr.key("blocks"));
    }
    v.finish()
}

/// A JSON pointer kept as a chain of borrowed segments, rendered only when an
/// error is reported.
#[derive(Clone, Copy)]
struct Ptr<'a> {
    parent: Option<&'a Ptr<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Ptr<'a> {
    fn root(key: &'a str) -> Self {
        Ptr { parent: None, seg: Seg::Key(key) }
    }

    fn key(&'a self, key: &'a str) -> Ptr<'a> {
        Ptr { parent: Some(self), seg: Seg::Key(key) }
    }

    fn index(&'a self, index: usize) -> Ptr<'a> {
        Ptr { parent: Some(self), seg: Seg::Index(index) }
    }
}

impl fmt::Display for Ptr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.seg {
            // Slack's keys never contain `~` or `/`, so no escaping is needed.
            Seg::Key(k) => write!(f, "/{k}"),
            Seg::Index(i) => write!(f, "/{i}"),
        }
    }
}

#[derive(Default)]
struct Validator<'v> {
    errors: Vec<String>,
    block_ids: HashSet<&'v str>,
    action_ids: HashSet<&'v str>,
    saw_input: bool,
}

impl<'v> Validator<'v> {
    fn finish(self) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn error(&mut self, message: impl fmt::Display, ptr: Ptr<'_>) {
        self.errors.push(format!("[ERROR] {message} [json-pointer:{ptr}]"));
    }

    fn object(&mut self, value: &'v Value, ptr: Ptr<'_>) -> Option<&'v Map<String, Value>> {
        let obj = value.as_object();
        if obj.is_none() {
            self.error("must be an object", ptr);
        }
        obj
    }

    fn array(&mut self, value: &'v Value, ptr: Ptr<'_>) -> Option<&'v Vec<Value>> {
        let arr = value.as_array();
        if arr.is_none() {
            self.error("must be an array", ptr);
        }
        arr
    }

    fn string(&mut self, value: &'v Value, ptr: Ptr<'_>) -> Option<&'v str> {
        let s = value.as_str();
        if s.is_none() {
            self.error("must be a string", ptr);
        }
        s
    }

    fn required(&mut self, obj: &'v Map<String, Value>, key: &str, ptr: Ptr<'_>) -> Option<&'v Value> {
        let value = obj.get(key);
        if value.is_none() {
            self.error(format_args!("missing required field: {key}"), ptr);
        }
        value
    }

    /// Slack counts characters, not bytes.
    fn too_long(&mut self, s: &str, ptr: Ptr<'_>, max: usize) -> bool {
        // A string cannot hold more characters than bytes, so short strings
        // skip the count.
        if s.len() > max && s.chars().count() > max {
            self.error(format_args!("must be less than {} characters", max + 1), ptr);
            return true;
        }
        false
    }

    fn max_len(&mut self, value: Option<&'v Value>, ptr: Ptr<'_>, max: usize) -> Option<&'v str> {
        let s = self.string(value?, ptr)?;
        self.too_long(s, ptr, max);
        Some(s)
    }

    fn item_count(&mut self, items: &[Value], ptr: Ptr<'_>, max: usize) {
        if items.is_empty() {
            self.error("must contain at least 1 item", ptr);
        } else if items.len() > max {
            self.error(format_args!("no more than {max} items allowed"), ptr);
        }
    }

    fn text_object(&mut self, value: &'v Value, ptr: Ptr<'_>, max: usize, plain_only: bool) {
        let Some(obj) = self.object(value, ptr) else {
            return;
        };
        if let Some(kind) = self.required(obj, "type", ptr) {
            match (kind.as_str(), plain_only) {
                (Some("plain_text"), _) | (Some("mrkdwn"), false) => {}
                (_, true) => self.error("must be one of: plain_text", ptr.key("type")),
                (_, false) => self.error("must be one of: plain_text, mrkdwn", ptr.key("type")),
            }
        }
        let Some(text) = self.required(obj, "text", ptr) else {
            return;
        };
        let text_ptr = ptr.key("text");
        if let Some(s) = self.string(text, text_ptr) {
            if s.is_empty() {
                self.error("must be more than 0 characters", text_ptr);
            } else {
                self.too_long(s, text_ptr, max);
            }
        }
    }

    fn block_list(&mut self, blocks: &'v Value, ptr: Ptr<'_>, max: usize) {
        let Some(list) = self.array(blocks, ptr) else {
            return;
        };
        if list.len() > max {
            self.error(format_args!("no more than {max} items allowed"), ptr);
        }
        for (i, block) in list.iter().enumerate() {
            self.block(block, ptr.index(i));
        }
    }

    fn unique_id(&mut self, value: Option<&'v Value>, ptr: Ptr<'_>, action: bool) {
        let Some(id) = self.max_len(value, ptr, MAX_ID) else {
            return;
        };
        let seen = if action { &mut self.action_ids } else { &mut self.block_ids };
        if !seen.insert(id) {
            self.error(format_args!("must be unique, \"{id}\" is repeated"), ptr);
        }
    }

    fn block(&mut self, block: &'v Value, ptr: Ptr<'_>) {
        let Some(obj) = self.object(block, ptr) else {
            return;
        };
        self.unique_id(obj.get("block_id"), ptr.key("block_id"), false);
        let Some(kind) = self.required(obj, "type", ptr) else {
            return;
        };
        let type_ptr = ptr.key("type");
        let Some(kind) = self.string(kind, type_ptr) else {
            return;
        };
        match kind {
            "section" => self.section(obj, ptr),
            "header" => {
                if let Some(text) = self.required(obj, "text", ptr) {
                    self.text_object(text, ptr.key("text"), MAX_HEADER_TEXT, true);
                }
            }
            "context" => {
                let Some(elements) = self.required(obj, "elements", ptr) else {
                    return;
                };
                let el_ptr = ptr.key("elements");
                let Some(elements) = self.array(elements, el_ptr) else {
                    return;
                };
                self.item_count(elements, el_ptr, MAX_CONTEXT_ELEMENTS);
                for (i, el) in elements.iter().enumerate() {
                    let p = el_ptr.index(i);
                    if el.get("type").and_then(Value::as_str) == Some("image") {
                        self.image(el, p);
                    } else {
                        self.text_object(el, p, usize::MAX, false);
                    }
                }
            }
            "divider" => {}
            "actions" => {
                let Some(elements) = self.required(obj, "elements", ptr) else {
                    return;
                };
                let el_ptr = ptr.key("elements");
                let Some(elements) = self.array(elements, el_ptr) else {
                    return;
                };
                self.item_count(elements, el_ptr, MAX_ACTIONS_ELEMENTS);
                for (i, el) in elements.iter().enumerate() {
                    self.element(el, el_ptr.index(i));
                }
            }
            "image" => self.image(block, ptr),
            "rich_text" => {
                if let Some(elements) = self.required(obj, "elements", ptr) {
                    self.array(elements, ptr.key("elements"));
                }
            }
            "input" => {
                self.saw_input = true;
                if let Some(label) = self.required(obj, "label", ptr) {
                    self.text_object(label, ptr.key("label"), MAX_LABEL, true);
                }
                if let Some(hint) = obj.get("hint") {
                    self.text_object(hint, ptr.key("hint"), MAX_LABEL, true);
                }
                if let Some(element) = self.required(obj, "element", ptr) {
                    self.element(element, ptr.key("element"));
                }
            }
            other => self.error(format_args!("unsupported type: {other}, must be one of: {BLOCK_TYPES}"), type_ptr),
        }
    }

    fn section(&mut self, obj: &'v Map<String, Value>, ptr: Ptr<'_>) {
        let text = obj.get("text");
        let fields = obj.get("fields");
        if text.is_none() && fields.is_none() {
            self.error("missing required field: text or fields", ptr);
        }
        if let Some(text) = text {
            self.text_object(text, ptr.key("text"), MAX_SECTION_TEXT, false);
        }
        if let Some(fields) = fields {
            let f_ptr = ptr.key("fields");
            if let Some(list) = self.array(fields, f_ptr) {
                self.item_count(list, f_ptr, MAX_SECTION_FIELDS);
                for (i, field) in list.iter().enumerate() {
                    self.text_object(field, f_ptr.index(i), MAX_FIELD_TEXT, false);
                }
            }
        }
        if let Some(accessory) = obj.get("accessory") {
            let a_ptr = ptr.key("accessory");
            if accessory.get("type").and_then(Value::as_str) == Some("image") {
                self.image(accessory, a_ptr);
            } else {
                self.element(accessory, a_ptr);
            }
        }
    }

    fn image(&mut self, value: &'v Value, ptr: Ptr<'_>) {
        let Some(obj) = self.object(value, ptr) else {
            return;
        };
        if obj.get("slack_file").is_none() {
            if let Some(url) = self.required(obj, "image_url", ptr) {
                self.max_len(Some(url), ptr.key("image_url"), MAX_URL);
            }
        }
        if let Some(alt) = self.required(obj, "alt_text", ptr) {
            self.max_len(Some(alt), ptr.key("alt_text"), MAX_ALT_TEXT);
        }
        if let Some(title) = obj.get("title") {
            self.text_object(title, ptr.key("title"), MAX_ALT_TEXT, true);
        }
    }

    /// Interactive elements: buttons get the full rules; other kinds only
    /// the `action_id` rules, which are what collide in practice.
    fn element(&mut self, value: &'v Value, ptr: Ptr<'_>) {
        let Some(obj) = self.object(value, ptr) else {
            return;
        };
        let Some(kind) = self.required(obj, "type", ptr) else {
            return;
        };
        let Some(kind) = self.string(kind, ptr.key("type")) else {
            return;
        };
        self.unique_id(obj.get("action_id"), ptr.key("action_id"), true);
        if kind != "button" {
            return;
        }
        if let Some(text) = self.required(obj, "text", ptr) {
            self.text_object(text, ptr.key("text"), MAX_BUTTON_TEXT, true);
        }
        self.max_len(obj.get("value"), ptr.key("value"), MAX_BUTTON_VALUE);
        self.max_len(obj.get("url"), ptr.key("url"), MAX_URL);
        let style_ptr = ptr.key("style");
        if let Some(style) = self.max_len(obj.get("style"), style_ptr, MAX_ID) {
            if style != "primary" && style != "danger" {
                self.error("must be one of: primary, danger", style_ptr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(blocks: Value) -> Vec<String> {
        validate_blocks(&blocks).expect_err("blocks should be rejected")
    }

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    fn button(text: &str, action_id: &str) -> Value {
        json!({"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id})
    }

    #[test]
    fn accepts_a_typical_message() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Incident #42"}},
            section("*Deploy failed* on `main`"),
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Env*\nprod"}]},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0ALICE>"}]},
            {"type": "actions", "block_id": "acts", "elements": [
                button("Ack", "ack"),
                {"type": "button", "text": {"type": "plain_text", "text": "Resolve"},
                 "action_id": "resolve", "style": "danger", "value": "42"}
            ]},
            {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "graph"},
            {"type": "rich_text", "elements": []}
        ]);
        assert_eq!(validate_blocks(&blocks), Ok(()));
    }

    #[test]
    fn section_text_limit_matches_slack_message() {
        let ok = "x".repeat(3000);
        assert_eq!(validate_blocks(&json!([section(&ok)])), Ok(()));
        assert_eq!(
            errors(json!([section(&"x".repeat(3001))])),
            ["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
        );
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert_eq!(validate_blocks(&json!([section(&"é".repeat(3000))])), Ok(()));
    }

    #[test]
    fn too_many_blocks() {
        let blocks: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert_eq!(errors(Value::Array(blocks)), ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]);
    }

    #[test]
    fn every_violation_is_reported_with_its_pointer() {
        let long_id = "b".repeat(256);
        let got = errors(json!([
            {"type": "section", "block_id": long_id},
            {"type": "header", "text": {"type": "mrkdwn", "text": "h"}},
            {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}},
            {"type": "table"},
            {"type": "section", "text": {"type": "markdown", "text": ""}},
        ]));
        assert_eq!(
            got,
            [
                "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]",
                "[ERROR] missing required field: text or fields [json-pointer:/blocks/0]",
                "[ERROR] must be one of: plain_text [json-pointer:/blocks/1/text/type]",
                "[ERROR] must be less than 151 characters [json-pointer:/blocks/2/text/text]",
                "[ERROR] unsupported type: table, must be one of: section, header, context, divider, actions, image, rich_text, input [json-pointer:/blocks/3/type]",
                "[ERROR] must be one of: plain_text, mrkdwn [json-pointer:/blocks/4/text/type]",
                "[ERROR] must be more than 0 characters [json-pointer:/blocks/4/text/text]",
            ]
        );
    }

    #[test]
    fn section_fields_limits() {
        let fields: Vec<Value> = (0..11).map(|_| json!({"type": "mrkdwn", "text": "f"})).collect();
        assert_eq!(
            errors(json!([{"type": "section", "fields": fields}])),
            ["[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"]
        );
        assert_eq!(
            errors(json!([{"type": "section", "fields": [
                {"type": "mrkdwn", "text": "ok"},
                {"type": "mrkdwn", "text": "f".repeat(2001)}
            ]}])),
            ["[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/1/text]"]
        );
    }

    #[test]
    fn context_and_actions_element_counts() {
        let texts: Vec<Value> = (0..11).map(|_| json!({"type": "plain_text", "text": "c"})).collect();
        assert_eq!(
            errors(json!([{"type": "context", "elements": texts}])),
            ["[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements]"]
        );
        let buttons: Vec<Value> = (0..26).map(|i| button("b", &format!("a{i}"))).collect();
        assert_eq!(
            errors(json!([{"type": "actions", "elements": buttons}])),
            ["[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]"]
        );
    }

    #[test]
    fn button_rules() {
        let got = errors(json!([{"type": "actions", "elements": [
            button(&"t".repeat(76), "a"),
            {"type": "button", "text": {"type": "mrkdwn", "text": "b"}, "action_id": "a".repeat(256)},
            {"type": "button", "text": {"type": "plain_text", "text": "c"}, "style": "warning",
             "value": "v".repeat(2001), "url": "u".repeat(3001)},
        ]}]));
        assert_eq!(
            got,
            [
                "[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
                "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/1/action_id]",
                "[ERROR] must be one of: plain_text [json-pointer:/blocks/0/elements/1/text/type]",
                "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/2/value]",
                "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/elements/2/url]",
                "[ERROR] must be one of: primary, danger [json-pointer:/blocks/0/elements/2/style]",
            ]
        );
    }

    #[test]
    fn ids_must_be_unique_within_the_message() {
        let got = errors(json!([
            {"type": "actions", "block_id": "x", "elements": [button("a", "dup")]},
            {"type": "actions", "block_id": "x", "elements": [button("b", "dup")]},
        ]));
        assert_eq!(
            got,
            [
                "[ERROR] must be unique, \"x\" is repeated [json-pointer:/blocks/1/block_id]",
                "[ERROR] must be unique, \"dup\" is repeated [json-pointer:/blocks/1/elements/0/action_id]",
            ]
        );
    }

    #[test]
    fn non_array_blocks() {
        assert_eq!(errors(json!({"type": "divider"})), ["[ERROR] must be an array [json-pointer:/blocks]"]);
    }

    fn modal() -> Value {
        json!({
            "type": "modal",
            "title": {"type": "plain_text", "text": "New incident"},
            "submit": {"type": "plain_text", "text": "Open"},
            "callback_id": "incident_new",
            "blocks": [{"type": "input", "block_id": "title",
                        "label": {"type": "plain_text", "text": "Title"},
                        "element": {"type": "plain_text_input", "action_id": "title"}}]
        })
    }

    #[test]
    fn accepts_a_modal() {
        assert_eq!(validate_view(&modal()), Ok(()));
    }

    #[test]
    fn view_limits() {
        let mut view = modal();
        view["type"] = json!("home");
        view["title"]["text"] = json!("t".repeat(25));
        view["close"] = json!({"type": "plain_text", "text": "c".repeat(25)});
        view["callback_id"] = json!("c".repeat(256));
        view["private_metadata"] = json!("m".repeat(3001));
        view["blocks"] = Value::Array((0..101).map(|_| json!({"type": "divider"})).collect());
        view.as_object_mut().unwrap().remove("submit");
        assert_eq!(
            validate_view(&view).unwrap_err(),
            [
                "[ERROR] must be one of: modal [json-pointer:/view/type]",
                "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]",
                "[ERROR] must be less than 25 characters [json-pointer:/view/close/text]",
                "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]",
                "[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]",
                "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]",
            ]
        );
    }

    #[test]
    fn input_blocks_need_a_submit_button() {
        let mut view = modal();
        view.as_object_mut().unwrap().remove("submit");
        assert_eq!(
            validate_view(&view).unwrap_err(),
            ["[ERROR] missing required field: submit (a view with input blocks needs one) [json-pointer:/view]"]
        );
    }
}
