//! Reading a runbook from YAML, and telling the team every mistake in it.
//!
//! The file is first read by `serde-saphyr` into *raw* structs that mirror
//! the YAML: every value is wrapped in [`Spanned`] so it keeps its line and
//! column, and almost every key is optional. Serde stops at the first
//! structural problem (bad YAML, an unknown key, a list where a map belongs),
//! so those come back one at a time. Everything else — missing keys, empty
//! lists, bad durations, mentions, cron expressions, time zones, undefined
//! roles, duplicate ids — is checked here, on the raw structs, and *all* of
//! it is reported at once, sorted by place in the file. Only a file without
//! a single mistake becomes a [`Runbook`].

use super::{AlertRules, Channels, Checklist, Mention, Phase, Role, Runbook, SeverityPolicy, Step, Targets};
use crate::schedule::Schedule;
use crate::severity::Severity;
use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, MessageFormatter, Spanned};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One mistake in a runbook file, with where it is (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunbookError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RunbookError {
    /// `12:5: unknown key `escalaton` (expected one of: …)`, so a caller can
    /// prefix the file name and get the `FILE:LINE:COLUMN: message` form that
    /// editors and CI logs turn into links.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for RunbookError {}

impl RunbookError {
    fn at(location: &Location, message: impl Into<String>) -> RunbookError {
        // A location serde could not place (line 0) still gets a position a
        // reader can follow: the top of the file.
        RunbookError {
            line: (location.line() as usize).max(1),
            column: (location.column() as usize).max(1),
            message: message.into(),
        }
    }
}

/// Parses and validates a runbook. On failure, returns every mistake found,
/// in file order.
pub fn parse(text: &str) -> Result<Runbook, Vec<RunbookError>> {
    let raw = match serde_saphyr::from_str::<Spanned<Option<RawRunbook>>>(text) {
        Ok(raw) => raw,
        Err(e) => return Err(vec![from_serde(&e)]),
    };
    let Some(doc) = &raw.value else {
        return Err(vec![RunbookError::at(
            &raw.referenced,
            "the runbook is empty (`opsbot runbook print` writes the default one to start from)",
        )]);
    };
    let mut check = Check::default();
    let runbook = check.runbook(doc, &raw.referenced);
    let mut errors = check.errors;
    if errors.is_empty() {
        if let Some(runbook) = runbook {
            return Ok(runbook);
        }
        // Every path that yields no runbook records why; this is a guard
        // against a future check forgetting to.
        errors.push(RunbookError::at(&raw.referenced, "the runbook is invalid"));
    }
    errors.sort_by_key(|e| (e.line, e.column));
    errors.dedup();
    Err(errors)
}

/// Parses a duration as runbooks write them: one or more `<number><unit>`
/// groups, largest unit first, with optional spaces: `30s`, `5m`, `5 min`,
/// `4 h`, `2h 30m`, `1d`. Units are `s`/`sec`, `m`/`min`, `h`, `d`. The
/// duration must be more than zero. The set is small on purpose: `5 minutes`
/// or `1.5h` are refused rather than guessed at.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    duration_for(text, "")
}

/// [`parse_duration`], with `context` (e.g. " for `respond` of P0") woven
/// into the message where a reader expects it.
fn duration_for(text: &str, context: &str) -> Result<TimeDelta, String> {
    let bad = || {
        format!(
            "bad duration `{text}`{context}: write a whole number and a unit (`s`, `m`, `h`, `d`), \
             e.g. `30s`, `5m`, `4h`, `2h 30m`, `1d`"
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    // The previous unit's size in seconds: each group must use a smaller
    // unit than the last, so `30m 2h` or `5m 5m` is refused as a likely typo.
    let mut previous_unit = i64::MAX;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
        let unit = match &rest[..letters] {
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        if unit >= previous_unit {
            return Err(bad());
        }
        previous_unit = unit;
        total = number.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
        rest = rest[letters..].trim_start();
    }
    if total == 0 {
        return Err(format!("duration `{text}`{context} must be more than zero"));
    }
    TimeDelta::try_seconds(total).ok_or_else(bad)
}

/// Parses a mention as runbooks write them: `U…`/`W…` (a user id), `S…` (a
/// user group id), `@here` or `@channel`.
pub fn parse_mention(text: &str) -> Result<Mention, String> {
    let id_like = |rest: &str| rest.len() >= 2 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    match text {
        "@here" => return Ok(Mention::Here),
        "@channel" => return Ok(Mention::Channel),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix('U').or_else(|| text.strip_prefix('W')) {
        if id_like(rest) {
            return Ok(Mention::User(text.to_owned()));
        }
    }
    if let Some(rest) = text.strip_prefix('S') {
        if id_like(rest) {
            return Ok(Mention::UserGroup(text.to_owned()));
        }
    }
    // Slack's own mrkdwn forms are what people copy from messages; point at
    // the bare id inside rather than just refusing.
    let inner = text
        .strip_prefix("<@")
        .or_else(|| text.strip_prefix("<!subteam^"))
        .and_then(|s| s.strip_suffix('>'))
        .map(|s| s.split('|').next().unwrap_or(s));
    let hint = match inner {
        Some(id) => format!(" (write the bare id `{id}`)"),
        None => String::new(),
    };
    Err(format!(
        "bad mention `{text}`: write a Slack user id (`U…` or `W…`), a user group id (`S…`), \
         `@here` or `@channel`{hint}"
    ))
}

/// Parses a schedule the way opsbot runs it: five-field cron (minute hour
/// day-of-month month day-of-week) in croner's dialect, which adds `1#1`
/// (first Monday), `5L` (last Friday) and `L` (last day of the month).
/// Like Vixie cron, a restricted day-of-month and day-of-week match when
/// *either* does. [`Schedule::new`] parses with this function, so the file
/// means the same thing when checked and when run.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build().parse(expr).map_err(|e| {
        format!(
            "bad schedule `{expr}`: {e} (write five cron fields: minute hour day-of-month \
                 month day-of-week, e.g. `0 9 * * *` or `0 10 * * 1#1` for the first Monday)"
        )
    })
}

/// Turns serde-saphyr's one structural error into ours, rewording the two
/// a team meets most in its own words.
fn from_serde(e: &serde_saphyr::Error) -> RunbookError {
    let location = e.location().unwrap_or(Location::UNKNOWN);
    let mut inner = e;
    while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error;
    }
    let message = match inner {
        serde_saphyr::Error::SerdeUnknownField { field, expected, .. } => {
            format!("unknown key `{}` (expected one of: {})", field.escape_debug(), expected.join(", "))
        }
        serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate key `{}`", k.escape_debug())
        }
        serde_saphyr::Error::Eof { .. } => {
            "the runbook is empty (`opsbot runbook print` writes the default one to start from)".to_owned()
        }
        other => {
            let text = serde_saphyr::UserMessageFormatter.format_message(other);
            // The text may quote the file; keep control characters from
            // reaching a terminal.
            text.chars().flat_map(char::escape_debug).collect::<String>()
        }
    };
    RunbookError::at(&location, message)
}

/// A key that may be absent (`None`), present but empty (`Some` holding
/// `None`, e.g. `alerts: #x` where the unquoted `#` starts a comment), or
/// set. Telling the two apart lets "empty" point at the exact line.
type Key<T> = Option<Spanned<Option<T>>>;

/// `deserialize_with` for [`Key`]: only called when the key is present, so
/// a YAML null becomes `Some(Spanned { value: None, .. })` with its place.
fn key<'de, D, T>(deserializer: D) -> Result<Key<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Spanned::<Option<T>>::deserialize(deserializer).map(Some)
}

/// An id with the places it is written, in file order.
type Map<T> = HashMap<Spanned<String>, Spanned<Option<T>>>;
type List<T> = Vec<Spanned<Option<T>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    timezone: Key<String>,
    #[serde(default, deserialize_with = "key")]
    channels: Key<RawChannels>,
    #[serde(default, deserialize_with = "key")]
    roles: Key<Map<RawRole>>,
    #[serde(default, deserialize_with = "key")]
    severities: Key<Map<RawSeverity>>,
    #[serde(default, deserialize_with = "key")]
    post_incident: Key<RawChecklist>,
    #[serde(default, deserialize_with = "key")]
    checklists: Key<List<RawChecklist>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannels {
    #[serde(default, deserialize_with = "key")]
    alerts: Key<String>,
    #[serde(default, deserialize_with = "key")]
    team: Key<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    people: Key<List<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeverity {
    #[serde(default, deserialize_with = "key")]
    label: Key<String>,
    #[serde(default, deserialize_with = "key")]
    description: Key<String>,
    #[serde(default, deserialize_with = "key")]
    respond: Key<String>,
    #[serde(default, deserialize_with = "key")]
    resolve: Key<String>,
    #[serde(default, deserialize_with = "key")]
    update_every: Key<String>,
    #[serde(default, deserialize_with = "key")]
    escalation: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    playbook: Key<List<RawPhase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    steps: Key<List<RawStep>>,
}

/// A step is either a bare line of text or `{ text, command }`: most
/// checklist items have no command, and a bare line keeps those short.
enum RawStep {
    Text(String),
    Full(RawStepMap),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepMap {
    #[serde(default, deserialize_with = "key")]
    text: Key<String>,
    #[serde(default, deserialize_with = "key")]
    command: Key<String>,
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = RawStep;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step: a line of text, or a map with `text` and `command`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawStep, E> {
                Ok(RawStep::Text(v.to_owned()))
            }
            // A plain scalar such as `- 42` or `- yes` arrives typed; a step
            // is text whatever it looks like.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawStep, E> {
                Ok(RawStep::Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawStep, E> {
                Ok(RawStep::Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawStep, E> {
                Ok(RawStep::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawStep, E> {
                Ok(RawStep::Text(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawStep, A::Error> {
                // Hand the map back to serde so `deny_unknown_fields` and the
                // spans of `text` and `command` work as everywhere else.
                RawStepMap::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawStep::Full)
            }
        }
        deserializer.deserialize_any(StepVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecklist {
    #[serde(default, deserialize_with = "key")]
    id: Key<String>,
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    frequency: Key<String>,
    #[serde(default, deserialize_with = "key")]
    schedule: Key<String>,
    #[serde(default, deserialize_with = "key")]
    duration: Key<String>,
    #[serde(default, deserialize_with = "key")]
    responsible: Key<String>,
    #[serde(default, deserialize_with = "key")]
    sections: Key<List<RawPhase>>,
}

/// Sorts a map's entries by where their keys are written, so roles keep the
/// file's order whatever the hash map did.
fn in_file_order<T>(map: &Map<T>) -> Vec<(&Spanned<String>, &Spanned<Option<T>>)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
    entries
}

/// Lowercase letters, digits and `-`, starting with a letter or digit: ids
/// end up in `/runbook start <id>` and in Slack action ids.
fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `#name` (Slack's rules: lowercase letters, digits, `-`, `_`, at most 80)
/// or a channel id (`C…`, `G…`).
fn is_channel(text: &str) -> bool {
    if let Some(name) = text.strip_prefix('#') {
        return !name.is_empty()
            && name.len() <= 80
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    }
    (text.starts_with('C') || text.starts_with('G'))
        && text.len() >= 9
        && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The candidate a typo most likely meant: the same but for case, one that
/// contains the other (`on-call` for `on-call-engineer`), one with all the
/// typo's words (`devops-on-duty` for `devops-engineer-on-duty`), or at most
/// two edits away. `None` when nothing is that close, rather than a guess.
pub(crate) fn closest<'a>(typo: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let typo_lower = typo.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let score = if lower == typo_lower {
            0
        } else if typo_lower.len() >= 3 && (lower.contains(&typo_lower) || typo_lower.contains(&lower)) {
            1
        } else if has_all_words(&typo_lower, &lower) {
            2
        } else {
            match edit_distance(&typo_lower, &lower) {
                d @ 1..=2 => d + 2,
                _ => continue,
            }
        };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Whether every word of `typo` (two or more, split at `-`, `_`, `/`) is a
/// word of `candidate`.
fn has_all_words(typo: &str, candidate: &str) -> bool {
    let split = |s: &str| s.split(['-', '_', '/']).filter(|w| !w.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    let words = split(typo);
    let candidate = split(candidate);
    words.len() >= 2 && words.iter().all(|w| candidate.contains(w))
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The collected mistakes, and the checks that find them.
#[derive(Default)]
struct Check {
    errors: Vec<RunbookError>,
}

impl Check {
    fn error(&mut self, location: &Location, message: impl Into<String>) {
        self.errors.push(RunbookError::at(location, message));
    }

    /// A key that must be there and not empty: reports "missing" at the
    /// enclosing map (the key has no place of its own) or "empty" at the key.
    fn required<'a, T>(
        &mut self,
        key: &'a Key<T>,
        parent: &Location,
        what: &str,
        hint: &str,
    ) -> Option<(&'a T, &'a Location)> {
        match key {
            None => {
                self.error(parent, format!("missing {what}{hint}"));
                None
            }
            Some(Spanned { value: None, referenced, .. }) => {
                self.error(referenced, format!("{what} is empty{hint}"));
                None
            }
            Some(Spanned { value: Some(v), referenced, .. }) => Some((v, referenced)),
        }
    }

    /// A required line of text, trimmed, that must not be blank.
    fn text(&mut self, key: &Key<String>, parent: &Location, what: &str, hint: &str) -> Option<String> {
        let (value, at) = self.required(key, parent, what, hint)?;
        let value = value.trim();
        if value.is_empty() {
            self.error(at, format!("{what} is empty{hint}"));
            return None;
        }
        Some(value.to_owned())
    }

    /// An optional line of text; blank counts as absent.
    fn optional_text(key: &Key<String>) -> Option<String> {
        key.as_ref().and_then(|s| s.value.as_deref()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    fn duration(&mut self, key: &Key<String>, parent: &Location, what: &str) -> Option<TimeDelta> {
        let (value, at) = self.required(key, parent, what, " (a duration such as `5m` or `1h`)")?;
        match duration_for(value, &format!(" for {what}")) {
            Ok(d) => Some(d),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    fn optional_duration(&mut self, key: &Key<String>, what: &str) -> Option<TimeDelta> {
        let Some(Spanned { value: Some(value), referenced, .. }) = key else {
            return None;
        };
        match duration_for(value, &format!(" for {what}")) {
            Ok(d) => Some(d),
            Err(message) => {
                self.error(referenced, message);
                None
            }
        }
    }

    /// Checks that a role id is defined. Only records the mistake: callers
    /// keep the id and go on, so the next mistake is found too.
    fn role_ref(&mut self, id: &str, at: &Location, roles: &HashSet<String>, whose: &str) {
        if !roles.contains(id) {
            let mut defined: Vec<&str> = roles.iter().map(String::as_str).collect();
            defined.sort_unstable();
            let defined = if let Some(near) = closest(id, defined.iter().copied()) {
                format!("did you mean `{near}`?")
            } else if defined.is_empty() {
                "none are defined under `roles`".to_owned()
            } else {
                format!("defined roles: {}", defined.join(", "))
            };
            self.error(at, format!("{whose} names role `{id}`, which is not defined ({defined})"));
        }
    }

    fn runbook(&mut self, doc: &RawRunbook, top: &Location) -> Option<Runbook> {
        let name = self.text(&doc.name, top, "`name`", " (the runbook's title)");
        let timezone = self.timezone(&doc.timezone, top);
        // The checklists' schedules are built in the runbook's zone. When the
        // zone is unknown (already reported) the schedules are still checked,
        // in UTC as a stand-in, so a bad cron is reported in the same run;
        // the runbook is refused anyway (`timezone?` below).
        let zone = timezone.unwrap_or(Tz::UTC);
        let channels = self.channels(&doc.channels, top);

        // Roles come first: everything else refers to them.
        let (roles, role_ids) = self.roles(&doc.roles, top);
        let severities = self.severities(&doc.severities, top, &role_ids);

        let mut ids: HashMap<String, Location> = HashMap::new();
        let post_incident =
            match self.required(&doc.post_incident, top, "`post_incident`", " (the checklist posted on resolution)") {
                Some((raw, at)) => {
                    self.checklist(raw, at, zone, &role_ids, &mut ids, Some(("post-incident", "Post-incident review")))
                }
                None => None,
            };
        let mut checklists = Some(Vec::new());
        // Checklists are optional as a whole: a team may use opsbot for
        // incidents only. `checklists:` with nothing under it is the same.
        if let Some(Spanned { value: Some(list), .. }) = &doc.checklists {
            for item in list {
                let checklist = match &item.value {
                    Some(raw) => self.checklist(raw, &item.referenced, zone, &role_ids, &mut ids, None),
                    None => {
                        self.error(&item.referenced, "empty checklist entry (expected `id`, `name` and `sections`)");
                        None
                    }
                };
                match (checklist, checklists.as_mut()) {
                    (Some(c), Some(all)) => all.push(c),
                    _ => checklists = None,
                }
            }
        }

        Some(Runbook {
            name: name?,
            timezone: timezone?,
            alerts: AlertRules::seed_defaults(channels.as_ref()?),
            channels: channels?,
            roles: roles?,
            severities: severities?,
            post_incident: post_incident?,
            checklists: checklists?,
        })
    }

    fn timezone(&mut self, key: &Key<String>, top: &Location) -> Option<Tz> {
        let hint = " (an IANA time zone such as `UTC` or `Europe/Berlin`)";
        let (value, at) = self.required(key, top, "`timezone`", hint)?;
        let value = value.trim();
        if let Ok(zone) = value.parse::<Tz>() {
            return Some(zone);
        }
        // Slips of case (`europe/berlin`) and spelling get the right name.
        let suggestion = closest(value, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))
            .map(|name| format!(" (did you mean `{name}`?)"))
            .unwrap_or_else(|| hint.to_owned());
        self.error(at, format!("unknown time zone `{value}`{suggestion}"));
        None
    }

    fn channels(&mut self, key: &Key<RawChannels>, top: &Location) -> Option<Channels> {
        let (raw, at) = self.required(key, top, "`channels`", " (`alerts` and `team`)")?;
        // An unquoted `#devops` is a YAML comment, which leaves the key empty.
        let hint = " (quote it: `\"#devops\"`; an unquoted `#` starts a YAML comment)";
        let channel = |check: &mut Check, key: &Key<String>, what: &str| {
            let (value, at) = check.required(key, at, what, hint)?;
            let value = value.trim();
            if !is_channel(value) {
                check.error(
                    at,
                    format!(
                        "bad channel `{value}` for {what}: write `#name` (lowercase letters, \
                         digits, `-`, `_`) or a channel id such as `C0123456789`"
                    ),
                );
                return None;
            }
            Some(value.to_owned())
        };
        let alerts = channel(self, &raw.alerts, "`alerts`");
        let team = channel(self, &raw.team, "`team`");
        Some(Channels { alerts: alerts?, team: team? })
    }

    fn roles(&mut self, key: &Key<Map<RawRole>>, top: &Location) -> (Option<Vec<Role>>, HashSet<String>) {
        let mut ids = HashSet::new();
        let Some((map, at)) =
            self.required(key, top, "`roles`", " (who fills each role of the escalation matrix and checklists)")
        else {
            return (None, ids);
        };
        if map.is_empty() {
            self.error(at, "`roles` is empty: define at least the roles the escalation matrix names");
            return (None, ids);
        }
        let mut roles = Some(Vec::new());
        for (id, raw) in in_file_order(map) {
            // Record the id even if the role is broken, so references to it
            // are not reported a second time as undefined.
            ids.insert(id.value.clone());
            let role = self.role(id, raw);
            match (role, roles.as_mut()) {
                (Some(r), Some(all)) => all.push(r),
                _ => roles = None,
            }
        }
        (roles, ids)
    }

    fn role(&mut self, id: &Spanned<String>, raw: &Spanned<Option<RawRole>>) -> Option<Role> {
        let people_hint = format!(
            "role `{}` has no people: list Slack user ids (`U…`), user group ids (`S…`), \
             `\"@here\"` or `\"@channel\"` under `people`",
            id.value
        );
        let id_ok = is_kebab(&id.value);
        if !id_ok {
            self.error(
                &id.referenced,
                format!("role id `{}` must be kebab-case (lowercase letters, digits, `-`)", id.value),
            );
        }
        let Some(role) = &raw.value else {
            self.error(&id.referenced, people_hint);
            return None;
        };
        let name = Self::optional_text(&role.name).unwrap_or_else(|| id.value.clone());
        let people = match &role.people {
            None | Some(Spanned { value: None, .. }) => {
                self.error(&id.referenced, people_hint);
                None
            }
            Some(Spanned { value: Some(list), referenced, .. }) if list.is_empty() => {
                self.error(referenced, people_hint);
                None
            }
            Some(Spanned { value: Some(list), .. }) => {
                let mut people = Some(Vec::new());
                for person in list {
                    let parsed = match &person.value {
                        Some(text) => parse_mention(text.trim()).map_err(|m| self.error(&person.referenced, m)).ok(),
                        None => {
                            self.error(
                                &person.referenced,
                                "empty mention (a bare `@here` must be quoted: `\"@here\"`)",
                            );
                            None
                        }
                    };
                    match (parsed, people.as_mut()) {
                        (Some(p), Some(all)) => all.push(p),
                        _ => people = None,
                    }
                }
                people
            }
        };
        id_ok.then_some(())?;
        Some(Role { id: id.value.clone(), name, people: people? })
    }

    fn severities(
        &mut self,
        key: &Key<Map<RawSeverity>>,
        top: &Location,
        roles: &HashSet<String>,
    ) -> Option<[SeverityPolicy; 4]> {
        let (map, at) = self.required(key, top, "`severities`", " (P0, P1, P2 and P3)")?;
        let mut found: [Option<SeverityPolicy>; 4] = Default::default();
        let mut seen = [false; 4];
        for (name, raw) in in_file_order(map) {
            // Written the way the runbook's table does; `p0` is accepted too,
            // since `/incident p0` is how people type it.
            let Some(severity) = Severity::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(&name.value))
            else {
                self.error(
                    &name.referenced,
                    format!("unknown severity `{}` (expected one of: P0, P1, P2, P3)", name.value),
                );
                continue;
            };
            if seen[severity as usize] {
                self.error(&name.referenced, format!("severity {severity} is defined twice"));
                continue;
            }
            seen[severity as usize] = true;
            found[severity as usize] = self.severity(severity, name, raw, roles);
        }
        for severity in Severity::ALL {
            if !seen[severity as usize] {
                self.error(at, format!("missing severity {severity} (all of P0, P1, P2 and P3 are required)"));
            }
        }
        let [p0, p1, p2, p3] = found;
        Some([p0?, p1?, p2?, p3?])
    }

    fn severity(
        &mut self,
        severity: Severity,
        name: &Spanned<String>,
        raw: &Spanned<Option<RawSeverity>>,
        roles: &HashSet<String>,
    ) -> Option<SeverityPolicy> {
        let Some(s) = &raw.value else {
            self.error(
                &name.referenced,
                format!("severity {severity} is empty (expected `respond`, `resolve`, `escalation` and `playbook`)"),
            );
            return None;
        };
        // Missing keys are reported at the severity's own key, the closest
        // place a reader can look.
        let at = &name.referenced;
        let label = Self::optional_text(&s.label).unwrap_or_else(|| severity.label().to_owned());
        let description = Self::optional_text(&s.description).unwrap_or_default();
        let respond = self.duration(&s.respond, at, &format!("`respond` of {severity}"));
        let resolve = self.duration(&s.resolve, at, &format!("`resolve` of {severity}"));
        let update_every = self.optional_duration(&s.update_every, &format!("`update_every` of {severity}"));
        let update_ok = s.update_every.as_ref().and_then(|k| k.value.as_ref()).is_none() || update_every.is_some();

        let escalation = match self.required(
            &s.escalation,
            at,
            &format!("`escalation` of {severity}"),
            " (role ids, first responder first)",
        ) {
            Some((levels, at)) if levels.is_empty() => {
                self.error(at, format!("{severity} escalation has no levels (list role ids, first responder first)"));
                None
            }
            Some((levels, _)) => {
                let mut matrix = Some(Vec::new());
                for level in levels {
                    let id = match level.value.as_deref().map(str::trim) {
                        Some(id) if !id.is_empty() => {
                            self.role_ref(id, &level.referenced, roles, &format!("{severity} escalation"));
                            Some(id.to_owned())
                        }
                        _ => {
                            self.error(
                                &level.referenced,
                                format!("empty level in {severity} escalation (expected a role id)"),
                            );
                            None
                        }
                    };
                    match (id, matrix.as_mut()) {
                        (Some(id), Some(all)) => all.push(id),
                        _ => matrix = None,
                    }
                }
                matrix
            }
            None => None,
        };
        let playbook =
            self.phases(&s.playbook, at, &format!("{severity} playbook"), &format!("`playbook` of {severity}"));
        update_ok.then_some(())?;
        Some(SeverityPolicy {
            severity,
            label,
            description,
            targets: Targets { respond: respond?, resolve: resolve? },
            update_every,
            escalation: escalation?,
            playbook: playbook?,
        })
    }

    /// A playbook or a checklist's sections: at least one phase, each named
    /// and with at least one step.
    fn phases(&mut self, key: &Key<List<RawPhase>>, parent: &Location, whose: &str, what: &str) -> Option<Vec<Phase>> {
        let hint = " (a list of phases, each with `name` and `steps`)";
        let (list, at) = self.required(key, parent, what, hint)?;
        if list.is_empty() {
            self.error(at, format!("{whose} is empty: it needs at least one phase with steps"));
            return None;
        }
        let mut phases = Some(Vec::new());
        for item in list {
            let phase = match &item.value {
                Some(raw) => self.phase(raw, &item.referenced, whose),
                None => {
                    self.error(&item.referenced, format!("empty phase in {whose} (expected `name` and `steps`)"));
                    None
                }
            };
            match (phase, phases.as_mut()) {
                (Some(p), Some(all)) => all.push(p),
                _ => phases = None,
            }
        }
        phases
    }

    fn phase(&mut self, raw: &RawPhase, at: &Location, whose: &str) -> Option<Phase> {
        let name = self.text(&raw.name, at, "`name`", &format!(" (every phase of {whose} needs a name)"));
        let label = name.as_deref().unwrap_or("a phase");
        let steps = match self.required(&raw.steps, at, "`steps`", &format!(" ({label} in {whose} has no steps)")) {
            Some((list, at)) if list.is_empty() => {
                self.error(at, format!("{label} in {whose} has no steps"));
                None
            }
            Some((list, _)) => {
                let mut steps = Some(Vec::new());
                for item in list {
                    let step = self.step(item, label, whose);
                    match (step, steps.as_mut()) {
                        (Some(s), Some(all)) => all.push(s),
                        _ => steps = None,
                    }
                }
                steps
            }
            None => None,
        };
        Some(Phase { name: name?, steps: steps? })
    }

    fn step(&mut self, item: &Spanned<Option<RawStep>>, phase: &str, whose: &str) -> Option<Step> {
        let empty = format!("empty step text in {phase} of {whose}");
        match &item.value {
            None => {
                self.error(&item.referenced, empty);
                None
            }
            Some(RawStep::Text(text)) => {
                let text = text.trim();
                if text.is_empty() {
                    self.error(&item.referenced, empty);
                    return None;
                }
                Some(Step { text: text.to_owned(), command: None })
            }
            Some(RawStep::Full(map)) => {
                let text = match &map.text {
                    Some(Spanned { value: Some(t), .. }) if !t.trim().is_empty() => Some(t.trim().to_owned()),
                    Some(Spanned { referenced, .. }) => {
                        self.error(referenced, empty);
                        None
                    }
                    None => {
                        self.error(&item.referenced, format!("missing `text` in a step of {phase} in {whose}"));
                        None
                    }
                };
                // A `|` block ends in a newline; the command is what is
                // between, so trim it but keep its inner lines as written.
                let command = match &map.command {
                    None | Some(Spanned { value: None, .. }) => None,
                    Some(Spanned { value: Some(c), referenced, .. }) => {
                        let c = c.trim_end().trim_start_matches('\n');
                        if c.trim().is_empty() {
                            self.error(referenced, "`command` is empty (leave it out when a step has none)");
                            return None;
                        }
                        Some(c.to_owned())
                    }
                };
                Some(Step { text: text?, command })
            }
        }
    }

    /// One checklist, its schedule read in `zone`. `defaults` gives the id
    /// and name when the file may leave them out (the post-incident
    /// checklist has a single, fixed role).
    fn checklist(
        &mut self,
        raw: &RawChecklist,
        at: &Location,
        zone: Tz,
        roles: &HashSet<String>,
        ids: &mut HashMap<String, Location>,
        defaults: Option<(&str, &str)>,
    ) -> Option<Checklist> {
        let id = match (defaults, &raw.id) {
            (Some((id, _)), None) => Some(id.to_owned()),
            _ => self.text(&raw.id, at, "`id`", " (a kebab-case key such as `morning-health-check`)"),
        };
        let id_at = raw.id.as_ref().map_or(at, |k| &k.referenced);
        let id = id.and_then(|id| {
            if !is_kebab(&id) {
                self.error(id_at, format!("checklist id `{id}` must be kebab-case (lowercase letters, digits, `-`)"));
                return None;
            }
            if let Some(first) = ids.get(&id) {
                let line = first.line();
                self.error(id_at, format!("duplicate checklist id `{id}` (first used on line {line})"));
                return None;
            }
            ids.insert(id.clone(), *id_at);
            Some(id)
        });
        let label = id.clone().unwrap_or_else(|| "a checklist".to_owned());
        let name = match (defaults, &raw.name) {
            (Some((_, name)), None) => Some(name.to_owned()),
            _ => self.text(&raw.name, at, "`name`", &format!(" (how {label} is shown in Slack)")),
        };
        let schedule = match &raw.schedule {
            Some(Spanned { value: Some(expr), referenced, .. }) => {
                let expr = expr.trim();
                match Schedule::new(expr, zone) {
                    Ok(schedule) => Some(Some(schedule)),
                    Err(message) => {
                        self.error(referenced, message);
                        None
                    }
                }
            }
            _ => Some(None),
        };
        let duration_ok = raw.duration.as_ref().and_then(|k| k.value.as_ref()).is_none();
        let duration = self.optional_duration(&raw.duration, &format!("`duration` of {label}"));
        let responsible = match &raw.responsible {
            Some(Spanned { value: Some(role), referenced, .. }) => {
                let role = role.trim();
                self.role_ref(role, referenced, roles, &format!("`responsible` of {label}"));
                Some(role.to_owned())
            }
            _ => None,
        };
        let sections = self.phases(&raw.sections, at, &label, &format!("`sections` of {label}"));
        (duration_ok || duration.is_some()).then_some(())?;
        Some(Checklist {
            id: id?,
            name: name?,
            frequency: Self::optional_text(&raw.frequency),
            schedule: schedule?,
            duration,
            responsible,
            sections: sections?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors' `line:column: message` lines, for compact assertions.
    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => panic!("expected errors, the runbook parsed"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// A small valid runbook that each test breaks in one place. Line numbers
    /// in the tests below refer to this text.
    const MINI: &str = "\
name: Mini
timezone: Europe/Berlin
channels:
  alerts: \"#devops-alerts\"
  team: \"#devops\"
roles:
  on-call:
    name: On-call engineer
    people: [U012AB3CD, S0G8TEAM, \"@here\"]
  lead:
    people: [\"@channel\"]
severities:
  P0:
    respond: 5m
    resolve: 1h
    update_every: 30m
    escalation: [on-call, lead]
    playbook:
      - name: Act
        steps:
          - text: Check health
            command: curl -f https://example.com/health
  P1:
    respond: 15m
    resolve: 4h
    escalation: [on-call]
    playbook: [{name: Act, steps: [Look]}]
  P2:
    respond: 1h
    resolve: 24h
    escalation: [on-call]
    playbook: [{name: Act, steps: [Look]}]
  P3:
    respond: 4h
    resolve: 72h
    escalation: [on-call]
    playbook: [{name: Act, steps: [Look]}]
post_incident:
  sections:
    - name: Report
      steps: [Write the report]
checklists:
  - id: morning
    name: Morning check
    schedule: \"0 9 * * *\"
    duration: 10m
    responsible: on-call
    sections:
      - name: Look
        steps: [Look around]
";

    #[test]
    fn mini_parses() {
        let rb = parse(MINI).unwrap();
        assert_eq!(rb.roles.len(), 2);
        assert_eq!(rb.roles[0].id, "on-call");
        assert_eq!(rb.roles[1].name, "lead", "a role without a name is called by its id");
        assert_eq!(
            rb.roles[0].people,
            vec![Mention::User("U012AB3CD".into()), Mention::UserGroup("S0G8TEAM".into()), Mention::Here]
        );
        assert_eq!(rb.severities[1].label, "High", "the label defaults to the severity's");
        assert_eq!(rb.severities[1].update_every, None);
        assert_eq!(rb.severities[1].playbook[0].steps[0], Step { text: "Look".into(), command: None });
        assert_eq!(rb.post_incident.id, "post-incident");
        let schedule = rb.checklists[0].schedule.as_ref().unwrap();
        assert_eq!(schedule.expression(), "0 9 * * *");
        assert_eq!(schedule.timezone(), rb.timezone, "the schedule is read in the runbook's zone");
        assert_eq!(rb.timezone, Tz::Europe__Berlin);
        assert_eq!(rb.timezone.to_string(), "Europe/Berlin", "printed as the file wrote it");
    }

    #[test]
    fn seed_parses_with_the_seed_runbooks_targets_escalation_and_playbooks() {
        let rb = Runbook::seed();
        assert_eq!(rb.timezone, Tz::UTC);
        assert_eq!(rb.timezone.name(), "UTC");
        assert_eq!(rb.channels.alerts, "#devops-alerts");
        assert_eq!(rb.channels.team, "#devops");
        let minutes = |m| TimeDelta::minutes(m);
        let hours = |h| TimeDelta::hours(h);
        let expected = [
            (minutes(5), hours(1), Some(minutes(30))),
            (minutes(15), hours(4), Some(minutes(30))),
            (hours(1), hours(24), None),
            (hours(4), hours(72), None),
        ];
        for (policy, (respond, resolve, update)) in rb.severities.iter().zip(expected) {
            assert_eq!(policy.targets, Targets { respond, resolve }, "{}", policy.severity);
            assert_eq!(policy.update_every, update, "{}", policy.severity);
        }
        assert_eq!(rb.policy(Severity::P0).escalation, ["on-call-engineer", "devops-team-lead", "engineering-manager"]);
        assert_eq!(
            rb.policy(Severity::P1).escalation,
            ["devops-engineer", "senior-devops-engineer", "devops-team-lead"]
        );
        assert_eq!(rb.policy(Severity::P2).escalation, ["assigned-engineer", "devops-team", "team-lead"]);
        assert_eq!(rb.policy(Severity::P3).escalation, ["development-team", "devops-team"]);
        assert_eq!(rb.escalation_role(Severity::P0, 1).unwrap().name, "DevOps team lead");

        let phases = |s| rb.policy(s).playbook.iter().map(|p| p.name.as_str()).collect::<Vec<_>>();
        assert_eq!(
            phases(Severity::P0),
            ["Immediate actions (0–5 min)", "Stabilization (5–15 min)", "Communication (ongoing)"]
        );
        assert_eq!(phases(Severity::P1), ["Assessment (0–15 min)", "Mitigation (15–60 min)"]);
        assert!(!phases(Severity::P2).is_empty() && !phases(Severity::P3).is_empty());
        let first = &rb.policy(Severity::P0).playbook[0].steps[0];
        assert_eq!(first.text, "Assess impact");
        assert_eq!(first.command.as_deref(), Some("curl -f https://api.modporter.ai/health"));
        assert_eq!(
            rb.policy(Severity::P1).playbook[1].steps[0].command.as_deref(),
            Some("./scripts/apply-temporary-fix.sh")
        );

        let post: Vec<_> = rb.post_incident.sections.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(post, ["Incident report", "Root cause analysis", "Action items"]);
        assert!(rb.post_incident.sections[0].steps.iter().any(|s| s.text.contains("timeline")));
    }

    #[test]
    fn seed_has_every_procedure_with_its_schedule() {
        let rb = Runbook::seed();
        let find = |id: &str| rb.checklists.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id}"));
        let morning = find("morning-health-check");
        assert_eq!(morning.schedule.as_ref().map(Schedule::expression), Some("0 9 * * *"));
        assert_eq!(morning.duration, Some(TimeDelta::minutes(10)));
        assert_eq!(morning.responsible.as_deref(), Some("devops-engineer-on-duty"));
        assert_eq!(morning.sections.len(), 5);
        assert_eq!(morning.sections[4].name, "Actions required");
        assert!(morning.sections[0].steps[1]
            .command
            .as_deref()
            .unwrap()
            .starts_with("gh run list --status failure --limit 20"));
        for (id, schedule, minutes) in [
            ("pipeline-performance-review", "0 10 * * 1", 30),
            ("security-review", "0 14 * * 3", 45),
            ("dependency-management", "0 11 * * 5", 20),
            ("comprehensive-pipeline-assessment", "0 10 * * 1#1", 120),
            ("disaster-recovery-testing", "0 15 * * 5L", 60),
        ] {
            let c = find(id);
            assert_eq!(c.schedule, Some(Schedule::new(schedule, Tz::UTC).unwrap()), "{id}");
            assert_eq!(c.duration, Some(TimeDelta::minutes(minutes)), "{id}");
        }
        assert_eq!(find("pipeline-performance-review").sections.last().unwrap().name, "Deliverables");
        for id in [
            "deployment-monitoring",
            "standard-deployment",
            "canary-deployment",
            "automated-rollback",
            "manual-rollback",
            "post-rollback",
            "security-incident-response",
        ] {
            assert_eq!(find(id).schedule, None, "{id} is on demand");
        }
        let canary: Vec<_> = find("canary-deployment")
            .sections
            .iter()
            .flat_map(|s| s.steps.iter().filter_map(|s| s.command.as_deref()))
            .collect();
        assert!(canary.iter().any(|c| c.contains("--percentage=10")));
        assert!(canary.iter().any(|c| c.contains("--percentage=50")));
        assert!(canary.iter().any(|c| c.contains("complete-canary-rollout")));
        let auto = find("automated-rollback");
        let block = auto.sections[1].steps[0].command.as_deref().unwrap();
        assert!(block.contains('\n') && block.starts_with("if [[ $ERROR_RATE > 5 ]]; then"), "{block:?}");
        for c in &rb.checklists {
            if let Some(r) = &c.responsible {
                assert!(rb.role(r).is_some(), "{} names {r}", c.id);
            }
        }
    }

    #[test]
    fn the_first_monday_and_last_friday_schedules_mean_what_they_say() {
        use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let first_monday = parse_schedule("0 10 * * 1#1").unwrap();
        let last_friday = parse_schedule("0 15 * * 5L").unwrap();
        for (cron, weekday, first) in [(first_monday, Weekday::Mon, true), (last_friday, Weekday::Fri, false)] {
            let runs: Vec<_> = cron.iter_after(from).take(12).collect();
            for run in runs {
                assert_eq!(run.weekday(), weekday);
                let d = run.date_naive();
                let next_month = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap() + chrono::Months::new(1);
                if first {
                    assert!(d.day() <= 7, "{d}");
                } else {
                    assert!((next_month - d).num_days() <= 7, "{d}");
                }
            }
        }
    }

    #[test]
    fn durations() {
        for (text, seconds) in [
            ("30s", 30),
            ("5m", 300),
            ("5 min", 300),
            ("1h", 3600),
            ("4 h", 4 * 3600),
            ("24h", 24 * 3600),
            ("72h", 72 * 3600),
            ("2h 30m", 9000),
            ("2h30m", 9000),
            ("1d", 86_400),
            (" 90 sec ", 90),
        ] {
            assert_eq!(parse_duration(text), Ok(TimeDelta::seconds(seconds)), "{text}");
        }
        for text in [
            "5 minutes?",
            "5 minutes",
            "-1m",
            "0m",
            "0h 0m",
            "soon",
            "",
            "5",
            "m",
            "1.5h",
            "30m 2h",
            "5m 5m",
            "99999999999999999999d",
            "1w",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} should be refused");
        }
        assert!(parse_duration("0m").unwrap_err().contains("more than zero"));
    }

    #[test]
    fn mentions() {
        assert_eq!(parse_mention("U012AB3CD"), Ok(Mention::User("U012AB3CD".into())));
        assert_eq!(parse_mention("W012AB3CD"), Ok(Mention::User("W012AB3CD".into())));
        assert_eq!(parse_mention("S0G8TEAM"), Ok(Mention::UserGroup("S0G8TEAM".into())));
        assert_eq!(parse_mention("@here"), Ok(Mention::Here));
        assert_eq!(parse_mention("@channel"), Ok(Mention::Channel));
        for bad in ["@alice", "alice", "u012ab3cd", "U", "here", "@everyone", "#devops", "C0123456"] {
            assert!(parse_mention(bad).is_err(), "{bad}");
        }
        assert!(parse_mention("<@U012AB3CD>").unwrap_err().contains("write the bare id `U012AB3CD`"));
        assert!(parse_mention("<!subteam^S0G8|ops>").unwrap_err().contains("`S0G8`"));
    }

    #[test]
    fn unknown_key_is_reported_with_line_column_and_the_keys_expected() {
        let text = MINI.replace("    escalation: [on-call, lead]", "    escalaton: [on-call, lead]");
        assert_eq!(
            errors(&text),
            ["17:5: unknown key `escalaton` (expected one of: label, description, respond, resolve, update_every, escalation, playbook)"]
        );
        let text = MINI.replace("name: Mini", "name: Mini\nowner: me");
        assert_eq!(errors(&text)[0], "2:1: unknown key `owner` (expected one of: name, timezone, channels, roles, severities, post_incident, checklists)");
        let text = MINI.replace("            command:", "            comand:");
        assert!(errors(&text)[0].starts_with("22:13: unknown key `comand` (expected one of: text, command)"));
    }

    #[test]
    fn missing_severity() {
        let p3_at = MINI.find("  P3:").unwrap();
        let post_at = MINI.find("post_incident:").unwrap();
        let text = format!("{}{}", &MINI[..p3_at], &MINI[post_at..]);
        // Reported at the `severities` map (its first entry, line 13).
        assert_eq!(errors(&text), ["13:3: missing severity P3 (all of P0, P1, P2 and P3 are required)"]);
        let text = MINI.replace("  P2:", "  P4:");
        assert_eq!(
            errors(&text),
            [
                "13:3: missing severity P2 (all of P0, P1, P2 and P3 are required)",
                "28:3: unknown severity `P4` (expected one of: P0, P1, P2, P3)",
            ]
        );
    }

    #[test]
    fn role_without_people() {
        let text = MINI.replace("    people: [\"@channel\"]", "    people: []");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("11:13: role `lead` has no people"), "{e:?}");
        let text = MINI.replace("  lead:\n    people: [\"@channel\"]", "  lead:");
        assert!(errors(&text)[0].starts_with("10:3: role `lead` has no people"));
        let text = MINI.replace("  lead:\n    people: [\"@channel\"]", "  lead:\n    name: Lead");
        assert!(errors(&text)[0].starts_with("10:3: role `lead` has no people"));
    }

    #[test]
    fn undefined_role_in_escalation_and_checklist() {
        let text = MINI
            .replace("    escalation: [on-call, lead]", "    escalation: [on-call, team-lead]")
            .replace("    responsible: on-call", "    responsible: oncall");
        assert_eq!(
            errors(&text),
            [
                "17:27: P0 escalation names role `team-lead`, which is not defined (did you mean `lead`?)",
                "47:18: `responsible` of morning names role `oncall`, which is not defined (did you mean `on-call`?)",
            ]
        );
    }

    #[test]
    fn bad_durations_in_targets_update_and_checklist() {
        let text = MINI
            .replace("    respond: 5m", "    respond: 5 minutes?")
            .replace("    update_every: 30m", "    update_every: soon")
            .replace("    duration: 10m", "    duration: 0m")
            .replace("    resolve: 4h", "    resolve: -1m");
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("14:14: bad duration `5 minutes?` for `respond` of P0: write"), "{e:?}");
        assert!(e[1].starts_with("16:19: bad duration `soon` for `update_every` of P0: write"), "{e:?}");
        assert!(e[2].starts_with("25:14: bad duration `-1m` for `resolve` of P1: write"), "{e:?}");
        assert_eq!(e[3], "46:15: duration `0m` for `duration` of morning must be more than zero");
    }

    #[test]
    fn undefined_role_with_nothing_close_lists_the_roles() {
        let text = MINI.replace("    escalation: [on-call, lead]", "    escalation: [on-call, engineering-manager]");
        assert_eq!(
            errors(&text),
            ["17:27: P0 escalation names role `engineering-manager`, which is not defined (defined roles: lead, on-call)"]
        );
    }

    #[test]
    fn malformed_mention() {
        let text = MINI.replace("[U012AB3CD, S0G8TEAM, \"@here\"]", "[U012AB3CD, \"@alice\", \"@here\"]");
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("9:25: bad mention `@alice`: write a Slack user id"), "{e:?}");
    }

    #[test]
    fn duplicate_checklist_ids() {
        let text = format!("{MINI}  - id: morning\n    name: Again\n    sections: [{{name: Look, steps: [Look]}}]\n");
        assert_eq!(errors(&text), ["51:9: duplicate checklist id `morning` (first used on line 43)"]);
    }

    #[test]
    fn empty_playbook_checklist_step_and_escalation() {
        let text = MINI
            .replace("    playbook: [{name: Act, steps: [Look]}]\n  P2", "    playbook: []\n  P2")
            .replace(
                "    escalation: [on-call]\n    playbook: [{name: Act, steps: [Look]}]\n  P3",
                "    escalation: []\n    playbook: [{name: Act, steps: [Look]}]\n  P3",
            )
            .replace("      - name: Look\n        steps: [Look around]\n", "      - name: Look\n        steps: []\n")
            .replace("          - text: Check health", "          - text: \"  \"");
        let e = errors(&text);
        assert_eq!(
            e,
            [
                "21:19: empty step text in Act of P0 playbook",
                "27:15: P1 playbook is empty: it needs at least one phase with steps",
                "31:17: P2 escalation has no levels (list role ids, first responder first)",
                "50:16: Look in morning has no steps",
            ]
        );
        let text =
            MINI.replace("    sections:\n      - name: Look\n        steps: [Look around]\n", "    sections: []\n");
        assert_eq!(errors(&text), ["48:15: morning is empty: it needs at least one phase with steps"]);
        let text = MINI.replace("[{name: Act, steps: [Look]}]\n  P3", "[{name: Act, steps: [Look, \"\", ~]}]\n  P3");
        assert_eq!(
            errors(&text),
            ["32:42: empty step text in Act of P2 playbook", "32:46: empty step text in Act of P2 playbook"]
        );
    }

    #[test]
    fn schedules_and_time_zones_are_checked() {
        let text = MINI
            .replace("timezone: Europe/Berlin", "timezone: europe/berlin")
            .replace("    schedule: \"0 9 * * *\"", "    schedule: \"0 25 * * *\"");
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0], "2:11: unknown time zone `europe/berlin` (did you mean `Europe/Berlin`?)");
        assert!(e[1].starts_with("45:15: bad schedule `0 25 * * *`"), "{e:?}");
        let text = MINI.replace("timezone: Europe/Berlin", "timezone: Europe/Berln");
        assert_eq!(errors(&text), ["2:11: unknown time zone `Europe/Berln` (did you mean `Europe/Berlin`?)"]);
        let text = MINI.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus");
        assert!(errors(&text)[0].starts_with("2:11: unknown time zone `Mars/Olympus` (an IANA"));
        let text = MINI.replace("    schedule: \"0 9 * * *\"", "    schedule: \"0 9 * *\"");
        assert!(errors(&text)[0].starts_with("45:15: bad schedule `0 9 * *`"));
    }

    #[test]
    fn unquoted_channel_is_explained() {
        let text = MINI.replace("  alerts: \"#devops-alerts\"", "  alerts: #devops-alerts");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("4:9: `alerts` is empty (quote it"), "{e:?}");
        let text = MINI.replace("  team: \"#devops\"", "  team: devops");
        assert!(errors(&text)[0].starts_with("5:9: bad channel `devops` for `team`"));
    }

    #[test]
    fn several_mistakes_are_all_reported_in_file_order() {
        let text = MINI
            .replace("timezone: Europe/Berlin", "timezone: Nowhere")
            .replace("    people: [\"@channel\"]", "    people: [alice]")
            .replace("    respond: 15m", "    respond: soon")
            .replace("    escalation: [on-call, lead]", "    escalation: [on-call, boss]")
            .replace("    responsible: on-call", "    responsible: nobody")
            .replace("    duration: 10m", "    duration: 10 minutes");
        let lines: Vec<String> = errors(&text).iter().map(|e| e.split(": ").next().unwrap().to_owned()).collect();
        assert_eq!(lines, ["2:11", "11:14", "17:27", "24:14", "46:15", "47:18"]);
    }

    #[test]
    fn missing_keys_are_reported_where_they_belong() {
        let text = MINI.replace("    respond: 15m\n", "").replace("    name: Morning check\n", "");
        assert_eq!(
            errors(&text),
            [
                "23:3: missing `respond` of P1 (a duration such as `5m` or `1h`)",
                "42:5: missing `name` (how morning is shown in Slack)",
            ]
        );
        let text = MINI.replace("name: Mini\n", "");
        assert_eq!(errors(&text), ["1:1: missing `name` (the runbook's title)"]);
    }

    #[test]
    fn structural_errors_carry_their_place() {
        assert_eq!(
            errors(""),
            ["1:1: the runbook is empty (`opsbot runbook print` writes the default one to start from)"]
        );
        assert_eq!(errors("# only a comment\n").len(), 1);
        assert!(errors("name: [a, b]\n")[0].starts_with("1:7: "));
        assert!(errors("roles:\n  a: {people: [x]}\n  a: {people: [y]}\n")[0].starts_with("3:3: duplicate key `a`"));
        // An unclosed quote runs on into the next line, where YAML notices.
        let e = errors(&MINI.replace("  alerts: \"#devops-alerts\"", "  alerts: \"#devops-alerts"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("5:10: "), "{e:?}");
    }

    #[test]
    fn did_you_mean() {
        let roles = ["devops-engineer-on-duty", "on-call-engineer", "devops-team-lead", "team-lead"];
        let guess = |typo| closest(typo, roles.iter().copied());
        assert_eq!(guess("devops-on-duty"), Some("devops-engineer-on-duty"));
        assert_eq!(guess("on-call"), Some("on-call-engineer"));
        assert_eq!(guess("devops-team-laed"), Some("devops-team-lead"));
        assert_eq!(guess("Team-Lead"), Some("team-lead"));
        assert_eq!(guess("engineering-manager"), None);
    }

    #[test]
    fn display_is_line_column_message() {
        let e = RunbookError { line: 12, column: 5, message: "unknown key `escalaton`".into() };
        assert_eq!(e.to_string(), "12:5: unknown key `escalaton`");
    }
}
