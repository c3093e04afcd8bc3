//! Small text helpers for Slack: escaping, truncation within Block Kit limits,
//! human durations, date tokens and permalinks.

use chrono::{DateTime, TimeDelta, Utc};

/// Escapes the three characters Slack's mrkdwn treats as control characters,
/// so a title like `<!channel>` cannot ping a whole channel.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack sends `&`, `<` and `>` in slash-command text as entities; we store
/// what the user typed and escape again when rendering.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// mrkdwn as a person would type it in a plain-text box: links become
/// `label (url)`, entities their characters. What the box then holds is
/// escaped again when it is shown, and Slack links the bare URLs.
pub fn plain(mrkdwn: &str) -> String {
    let mut out = String::with_capacity(mrkdwn.len());
    let mut rest = mrkdwn;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        match after[..close].split_once('|') {
            Some((url, label)) => out.push_str(&format!("{label} ({url})")),
            None => out.push_str(&after[..close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    unescape(&out)
}

/// Cuts `text` to at most `max` characters (Block Kit counts characters),
/// ending with an ellipsis when it had to cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The first word and the rest, trimmed.
pub fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// A value from outside (a header, an event name) as it can go in a log
/// line or an answer: printable and short.
pub fn loggable(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Echoing a user's word back is friendly; echoing a megabyte is not.
pub fn truncate_word(word: &str) -> String {
    truncate(word, 40)
}

/// `1 failure`, `3 failures`: a count with its noun.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// `5 min`, `1 h`, `2 h 5 min`, `3 d 4 h`: how on-call engineers say it.
pub fn duration(d: TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A Slack date token: each reader sees the time in their own time zone; the
/// fallback is UTC for clients that cannot render it.
pub fn slack_date(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{}>", at.timestamp(), at.format("%Y-%m-%d %H:%M UTC"))
}

/// The documented permalink shape: `https://<domain>.slack.com/archives/<channel>/p<ts without dot>`.
pub fn permalink(team_domain: &str, channel: &str, ts: &str) -> String {
    format!("https://{team_domain}.slack.com/archives/{channel}/p{}", ts.replace('.', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_ping_a_channel() {
        assert_eq!(escape("a <!channel> & b"), "a &lt;!channel&gt; &amp; b");
        assert_eq!(unescape("a &lt;b&gt; &amp;amp;"), "a <b> &amp;");
    }

    #[test]
    fn truncates_by_characters_not_bytes() {
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn links_read_as_people_would_type_them() {
        assert_eq!(plain("<https://x.io/1|run #5> by A &amp; B"), "run #5 (https://x.io/1) by A & B");
        assert_eq!(plain("see <https://x.io> or <broken"), "see https://x.io or <broken");
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(TimeDelta::minutes(5)), "5 min");
        assert_eq!(duration(TimeDelta::hours(1)), "1 h");
        assert_eq!(duration(TimeDelta::minutes(125)), "2 h 5 min");
        assert_eq!(duration(TimeDelta::hours(72)), "3 d");
        assert_eq!(duration(TimeDelta::seconds(42)), "42 s");
    }

    #[test]
    fn permalink_drops_the_dot_of_the_ts() {
        assert_eq!(
            permalink("acme", "C1", "1503435956.000247"),
            "https://acme.slack.com/archives/C1/p1503435956000247"
        );
    }
}
