//! Reading a runbook from YAML, and telling the team every mistake in it.
//!
//! The file is first read by `serde-saphyr` into *raw* structs that mirror
//! the YAML: every value is wrapped in [`Spanned`] so it keeps its line and
//! column, and almost every key is optional. Serde stops at the first
//! structural problem (bad YAML, an unknown key, a list where a map belongs),
//! so those come back one at a time. Everything else — missing keys, empty
//! lists, bad durations, mentions, cron expressions, time zones, undefined
//! roles, duplicate ids, alert conditions, channels, workflows and their
//! inputs — is checked here, on the raw structs, and *all* of it is
//! reported at once, sorted by place in the file. Only a file without a
//! single mistake becomes a [`Runbook`].

mod hours;

use super::alerts::{
    AlertmanagerRoute, BranchRule, Comparison, Condition, DeploymentRule, GithubRules, Kpi, KpiAction, KpiAlert,
    Metric, Quantity,
};
use super::oncall::{Layer, OnCall, Rotation, ShiftLength};
use super::permissions::{self, Allowed, Permissions};
use super::pipeline::{
    is_git_ref, is_repository, Action, Deployer, Dispatch, Environment, Figure, Template, Workflow, DEFAULT_TIMEOUT,
};
use super::{AlertRules, Channels, Checklist, Mention, Phase, Pipeline, Role, Runbook, SeverityPolicy, Step, Targets};
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
    check(text).map(|checked| checked.runbook)
}

/// A valid runbook, and what in it works but is probably not what the team
/// wants yet (the seed's `@here` placeholders, say), in file order.
#[derive(Debug)]
pub struct Checked {
    pub runbook: Runbook,
    pub warnings: Vec<RunbookError>,
}

/// [`parse`], with the warnings `opsbot runbook check` prints.
pub fn check(text: &str) -> Result<Checked, Vec<RunbookError>> {
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
            let mut warnings = check.warnings;
            warnings.sort_by_key(|w| (w.line, w.column));
            return Ok(Checked { runbook, warnings });
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
    let hint = match mrkdwn_id(text) {
        Some(id) => format!(" (write the bare id `{id}`)"),
        None => String::new(),
    };
    Err(format!(
        "bad mention `{text}`: write a Slack user id (`U…` or `W…`), a user group id (`S…`), \
         `@here` or `@channel`{hint}"
    ))
}

/// The id inside Slack's mrkdwn for a mention (`<@U012AB3CD>`,
/// `<!subteam^S0G8|ops>`): what people copy from messages. Messages point
/// at the bare id rather than just refusing.
fn mrkdwn_id(text: &str) -> Option<&str> {
    text.strip_prefix("<@")
        .or_else(|| text.strip_prefix("<!subteam^"))
        .and_then(|s| s.strip_suffix('>'))
        .map(|s| s.split('|').next().unwrap_or(s))
}

/// Parses a workflow as `pipeline` names it: a file in `.github/workflows`
/// by its name (`deploy.yml`), or GitHub's numeric workflow id. A path or
/// a workflow's display name is refused: GitHub's dispatch takes neither.
pub fn parse_workflow(text: &str) -> Result<Workflow, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u64>() {
            Ok(id) if id > 0 => Ok(Workflow::Id(id)),
            _ => Err(format!("bad workflow id `{text}`: a workflow id is a whole number above zero")),
        };
    }
    let is_file = |name: &str| name.ends_with(".yml") || name.ends_with(".yaml");
    if let Some((_, file)) = text.rsplit_once('/') {
        let hint =
            if is_file(file) { format!("write the file name alone: `{file}`") } else { how_to_name_a_workflow() };
        return Err(format!("bad workflow `{text}`: {hint} (opsbot looks in .github/workflows)"));
    }
    let stem = text.trim_end_matches(".yaml").trim_end_matches(".yml");
    let name_ok = !stem.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if is_file(text) && name_ok {
        return Ok(Workflow::File(text.to_owned()));
    }
    Err(format!("bad workflow `{text}`: {}", how_to_name_a_workflow()))
}

fn how_to_name_a_workflow() -> String {
    "write a file in .github/workflows such as `deploy.yml`, or the workflow's numeric id".to_owned()
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

/// Parses a KPI alert's condition as runbooks write it: `<metric>
/// <comparison> <value>`, e.g. `failure_rate > 10%` or `avg_build_time >
/// 10m`. `failure_rate` and `success_rate` take a percent (at most 100%),
/// `avg_build_time` a duration; the comparisons are `>`, `>=`, `<` and
/// `<=`. The condition keeps the text as written, for messages.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    let word = text.len() - text.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
    if word == 0 {
        return Err(format!(
            "bad condition `{text}`: write `<metric> <comparison> <value>`, e.g. `failure_rate > 10%`"
        ));
    }
    let metric = metric_named(&text[..word])?;
    let (comparison, threshold) = comparison_and_threshold(metric, &text[word..], text)?;
    Ok(Condition { text: text.to_owned(), metric, comparison, threshold })
}

/// Parses a measured KPI's target, `<comparison> <value>` such as `> 95%`
/// or `< 5 minutes`, into the condition it sets on `metric`. The file
/// writes the metric and the target apart, so the condition's text is put
/// together in the short form an alert's condition has: `avg_build_time <
/// 5m`.
pub fn parse_target(metric: Metric, target: &str) -> Result<Condition, String> {
    let target = target.trim();
    let (comparison, threshold) = comparison_and_threshold(metric, target, target)?;
    Ok(Condition {
        text: format!("{} {} {threshold}", metric.as_str(), comparison.symbol()),
        metric,
        comparison,
        threshold,
    })
}

/// A KPI target that is a duration, `< 30 minutes`, as the duration; `None`
/// for any other target (a percent, a count, no comparison).
pub fn duration_target(target: &str) -> Option<TimeDelta> {
    match comparison_and_threshold(Metric::AverageBuildTime, target, target) {
        Ok((_, Quantity::Duration(d))) => Some(d),
        _ => None,
    }
}

/// The metric a condition or a KPI's `measure` names.
fn metric_named(word: &str) -> Result<Metric, String> {
    Metric::parse(word).ok_or_else(|| {
        let names = Metric::ALL.map(Metric::as_str);
        match closest(word, names.iter().copied()) {
            Some(near) => format!("unknown metric `{word}` (did you mean `{near}`?)"),
            None => format!("unknown metric `{word}` (expected one of: {})", names.join(", ")),
        }
    })
}

/// The `<comparison> <value>` at the start of `text`, the value in the unit
/// `metric` is measured in. `whole` is the condition or target the text is
/// part of, quoted in messages.
fn comparison_and_threshold(metric: Metric, text: &str, whole: &str) -> Result<(Comparison, Quantity), String> {
    let text = text.trim_start();
    let symbol = text.len() - text.trim_start_matches(['<', '>', '=', '!']).len();
    let comparison = match &text[..symbol] {
        ">" => Comparison::Above,
        ">=" => Comparison::AtLeast,
        "<" => Comparison::Below,
        "<=" => Comparison::AtMost,
        // A value straight after the metric lacks the comparison; a word
        // there (`above`, `≥`) is one opsbot does not know.
        "" if text.is_empty() || text.starts_with(|c: char| c.is_ascii_digit()) => {
            return Err(format!("missing comparison in `{whole}`: write `>`, `>=`, `<` or `<=` before the value"));
        }
        "" => {
            let word = text.split_whitespace().next().unwrap_or(text);
            return Err(format!("bad comparison `{word}` in `{whole}`: write `>`, `>=`, `<` or `<=`"));
        }
        other => return Err(format!("bad comparison `{other}` in `{whole}`: write `>`, `>=`, `<` or `<=`")),
    };
    let value = text[symbol..].trim();
    let (unit, example) = match metric {
        Metric::FailureRate | Metric::SuccessRate => ("a percent", "`10%`"),
        Metric::AverageBuildTime => ("a duration", "`10m`, `2h 30m` or `10 minutes`"),
    };
    let name = metric.as_str();
    if value.is_empty() {
        return Err(format!("missing value in `{whole}`: `{name}` is {unit}, e.g. {example}"));
    }
    match (metric, parse_quantity(value)) {
        (Metric::FailureRate | Metric::SuccessRate, Some(Quantity::Percent(p))) if p > 100.0 => {
            Err(format!("`{value}` in `{whole}` is more than 100%"))
        }
        (Metric::FailureRate | Metric::SuccessRate, Some(q @ Quantity::Percent(_)))
        | (Metric::AverageBuildTime, Some(q @ Quantity::Duration(_))) => Ok((comparison, q)),
        _ => Err(format!("bad value `{value}` in `{whole}`: `{name}` is {unit}, e.g. {example}")),
    }
}

/// A threshold as written: a percent (`95%`), a plain number (`10`) or a
/// duration. A duration's units may be spelled out here (`5 minutes`,
/// `2 hours`) because KPI targets quote the runbook's table, which writes
/// them so; everywhere else durations keep [`parse_duration`]'s short units.
fn parse_quantity(text: &str) -> Option<Quantity> {
    let number = |s: &str| {
        let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if !(digits(whole) && digits(fraction)) {
            return None;
        }
        s.parse::<f64>().ok().filter(|n| n.is_finite())
    };
    if let Some(percent) = text.strip_suffix('%') {
        return number(percent.trim_end()).map(Quantity::Percent);
    }
    if let Some(n) = number(text) {
        return Some(Quantity::Count(n));
    }
    parse_duration(&short_units(text)).ok().map(Quantity::Duration)
}

/// `5 minutes` → `5 m`: spelled-out units in the short form
/// [`parse_duration`] reads. Other words are left as they are, for it to
/// refuse.
fn short_units(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        out.push_str(match &rest[..end] {
            "second" | "seconds" => "s",
            "minute" | "minutes" => "m",
            "hour" | "hours" => "h",
            "day" | "days" => "d",
            word => word,
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
    #[serde(default, deserialize_with = "key")]
    kpis: Key<Map<RawKpi>>,
    #[serde(default, deserialize_with = "key")]
    alerts: Key<List<RawKpiAlert>>,
    #[serde(default, deserialize_with = "key")]
    webhooks: Key<RawWebhooks>,
    #[serde(default, deserialize_with = "key")]
    pipeline: Key<RawPipeline>,
    #[serde(default, deserialize_with = "key")]
    oncall: Key<RawOnCall>,
    #[serde(default, deserialize_with = "key")]
    business_hours: Key<Map<String>>,
    #[serde(default, deserialize_with = "key")]
    holidays: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    permissions: Key<Map<List<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnCall {
    #[serde(default, deserialize_with = "key")]
    rotations: Key<Map<RawRotation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    #[serde(default, deserialize_with = "key")]
    members: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    shift: Key<String>,
    #[serde(default, deserialize_with = "key")]
    handoff: Key<String>,
    #[serde(default, deserialize_with = "key")]
    acknowledge_within: Key<String>,
    #[serde(default, deserialize_with = "key")]
    remind_before: Key<String>,
    #[serde(default, deserialize_with = "key")]
    escalate_to: Key<String>,
    #[serde(default, deserialize_with = "key")]
    usergroup: Key<String>,
    #[serde(default, deserialize_with = "key")]
    layers: Key<List<RawLayer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    members: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    shift: Key<String>,
    #[serde(default, deserialize_with = "key")]
    handoff: Key<String>,
    #[serde(default, deserialize_with = "key")]
    only: Key<Map<String>>,
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
    also_page: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    escalate: Key<String>,
    #[serde(default, deserialize_with = "key")]
    also_page_after: Key<Map<String>>,
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

/// A step is either a bare line of text or `{ text, command, check }`: most
/// checklist items have neither a command nor a figure, and a bare line
/// keeps those short.
enum RawStep {
    Text(String),
    /// Boxed: a map holds several spanned keys, a line only its text, and
    /// most steps are lines.
    Full(Box<RawStepMap>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepMap {
    #[serde(default, deserialize_with = "key")]
    text: Key<String>,
    #[serde(default, deserialize_with = "key")]
    command: Key<String>,
    #[serde(default, deserialize_with = "key")]
    check: Key<String>,
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = RawStep;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step: a line of text, or a map with `text` and `command` or `check`")
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
                // spans of `text`, `command` and `check` work as everywhere
                // else.
                RawStepMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|map| RawStep::Full(Box::new(map)))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    area: Key<String>,
    #[serde(default, deserialize_with = "key")]
    target: Key<String>,
    #[serde(default, deserialize_with = "key")]
    measure: Key<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpiAlert {
    #[serde(default, deserialize_with = "key")]
    name: Key<String>,
    #[serde(default, deserialize_with = "key")]
    condition: Key<String>,
    #[serde(default, deserialize_with = "key")]
    action: Key<String>,
    #[serde(default, deserialize_with = "key")]
    window: Key<String>,
    /// Read as text and parsed by the check, so `0`, `-1` and `five` all get
    /// its message rather than serde's terse "invalid i64".
    #[serde(default, deserialize_with = "key")]
    min_runs: Key<String>,
    #[serde(default, deserialize_with = "key")]
    channel: Key<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    #[serde(default, deserialize_with = "key")]
    github: Key<RawGithub>,
    #[serde(default, deserialize_with = "key")]
    alertmanager: Key<List<RawRoute>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGithub {
    #[serde(default, deserialize_with = "key")]
    branches: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    channel: Key<String>,
    #[serde(default, deserialize_with = "key")]
    ignore_workflows: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    deployments: Key<List<RawDeployment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    #[serde(default, deserialize_with = "key")]
    environment: Key<String>,
    #[serde(default, deserialize_with = "key")]
    failed: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    declare: Key<String>,
    #[serde(default, deserialize_with = "key")]
    channel: Key<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default, deserialize_with = "key")]
    environments: Key<Map<RawEnvironment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    #[serde(default, deserialize_with = "key")]
    repository: Key<String>,
    #[serde(rename = "ref", default, deserialize_with = "key")]
    default_ref: Key<String>,
    #[serde(default, deserialize_with = "key")]
    may: Key<List<String>>,
    #[serde(default, deserialize_with = "key")]
    channel: Key<String>,
    #[serde(default, deserialize_with = "key")]
    timeout: Key<String>,
    #[serde(default, deserialize_with = "key")]
    deploy: Key<RawDispatch>,
    #[serde(default, deserialize_with = "key")]
    rollback: Key<RawDispatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    /// Text, parsed by the check: `deploy.yml` or a numeric id.
    #[serde(default, deserialize_with = "key")]
    workflow: Key<String>,
    /// Each value is text, whatever it looks like (`dry_run: false`): a
    /// workflow's inputs arrive as strings.
    #[serde(default, deserialize_with = "key")]
    inputs: Key<Map<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(rename = "match", default, deserialize_with = "key")]
    matchers: Key<Map<String>>,
    #[serde(default, deserialize_with = "key")]
    channel: Key<String>,
    #[serde(default, deserialize_with = "key")]
    declare: Key<String>,
    /// Text, parsed by the check, for the same reason as `min_runs`.
    #[serde(default, deserialize_with = "key")]
    mute: Key<String>,
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
    warnings: Vec<RunbookError>,
}

impl Check {
    fn error(&mut self, location: &Location, message: impl Into<String>) {
        self.errors.push(RunbookError::at(location, message));
    }

    /// `permissions`: per action, who may (roles, `U…`, `S…`, `commander`,
    /// `everyone`). Optional, and so is every action in it.
    fn permissions(&mut self, key: &Key<Map<List<String>>>, roles: &HashSet<String>) -> Option<Permissions> {
        let Some(Spanned { value: Some(map), .. }) = key else { return Some(Permissions::default()) };
        let mut rules = Some(Vec::new());
        for (action_key, list) in in_file_order(map) {
            let at = &action_key.referenced;
            let Some(action) = permissions::Action::parse(action_key.value.trim()) else {
                let hint = closest(action_key.value.trim(), permissions::Action::ALL.iter().map(|a| a.key()))
                    .map(|near| format!("did you mean `{near}`?"))
                    .unwrap_or_else(|| {
                        let all: Vec<&str> = permissions::Action::ALL.iter().map(|a| a.key()).collect();
                        format!("expected one of: {}", all.join(", "))
                    });
                self.error(at, format!("unknown action `{}` in `permissions` ({hint})", action_key.value.trim()));
                rules = None;
                continue;
            };
            let whose = format!("`permissions.{}`", action.key());
            let Some(items) = list.value.as_ref().filter(|l| !l.is_empty()) else {
                self.error(
                    &list.referenced,
                    format!(
                        "{whose} is empty: list who may (role ids, `U…`, `S…`, `commander` or `everyone`), \
                         or leave it out for everyone"
                    ),
                );
                rules = None;
                continue;
            };
            let mut allowed = Some(Vec::new());
            for item in items {
                let text = item.value.as_deref().map(str::trim).unwrap_or("");
                let entry = match text {
                    "everyone" => Some(Allowed::Everyone),
                    "commander" => Some(Allowed::Commander),
                    _ => match parse_mention(text) {
                        Ok(Mention::User(id)) => Some(Allowed::User(id)),
                        Ok(Mention::UserGroup(id)) => Some(Allowed::UserGroup(id)),
                        Ok(Mention::Here | Mention::Channel) => {
                            self.error(&item.referenced, format!("{whose}: write `everyone` rather than `{text}`"));
                            None
                        }
                        Err(_) if roles.contains(text) => Some(Allowed::Role(text.to_owned())),
                        Err(_) => {
                            self.role_ref(text, &item.referenced, roles, &whose);
                            None
                        }
                    },
                };
                match (entry, allowed.as_mut()) {
                    (Some(e), Some(all)) => all.push(e),
                    _ => allowed = None,
                }
            }
            match (allowed, rules.as_mut()) {
                (Some(allowed), Some(all)) => all.push((action, allowed)),
                _ => rules = None,
            }
        }
        Some(Permissions { rules: rules? })
    }

    /// Roles paged as `@here` or `@channel` with no rotation, as the seed
    /// ships them: valid, but a P0 at 3 a.m. then pages whoever happens to
    /// be in the channel, so `runbook check` says so at each role's people.
    fn warn_of_placeholders(&mut self, raw: &Key<Map<RawRole>>, roles: &[Role], oncall: &OnCall) {
        let Some(Spanned { value: Some(map), .. }) = raw else { return };
        for (id, raw) in in_file_order(map) {
            let Some(role) = roles.iter().find(|r| r.id == id.value) else { continue };
            let broadcast = |m: &Mention| matches!(m, Mention::Here | Mention::Channel);
            if oncall.rotation(&role.id).is_some() || !role.people.iter().all(broadcast) {
                continue;
            }
            let at = raw.value.as_ref().and_then(|r| r.people.as_ref()).map_or(&id.referenced, |p| &p.referenced);
            let written = |m: &Mention| if matches!(m, Mention::Here) { "`@here`" } else { "`@channel`" };
            let people: Vec<&str> = role.people.iter().map(written).collect();
            self.warnings.push(RunbookError::at(
                at,
                format!(
                    "role `{}` pages {}, whoever happens to be in the channel: list its people (`U…`, `S…`) \
                     or give it a rotation under `oncall.rotations`",
                    role.id,
                    people.join(" and ")
                ),
            ));
        }
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

        let alerts = self.alert_rules(doc, channels.as_ref());
        let pipeline = self.pipeline(&doc.pipeline, channels.as_ref(), &role_ids);
        let oncall = self.oncall(&doc.oncall, &role_ids);
        let business_hours = self.business_hours(&doc.business_hours, &doc.holidays, top);
        let permissions = self.permissions(&doc.permissions, &role_ids);
        if let (Some(roles), Some(oncall)) = (&roles, &oncall) {
            self.warn_of_placeholders(&doc.roles, roles, oncall);
        }

        Some(Runbook {
            name: name?,
            timezone: timezone?,
            alerts: alerts?,
            channels: channels?,
            roles: roles?,
            severities: severities?,
            post_incident: post_incident?,
            checklists: checklists?,
            pipeline: pipeline?,
            oncall: oncall?,
            business_hours: business_hours?,
            permissions: permissions?,
        })
    }

    /// The `oncall` section: optional; without it every role pages its
    /// `people`.
    fn oncall(&mut self, key: &Key<RawOnCall>, roles: &HashSet<String>) -> Option<OnCall> {
        let Some(raw) = key.as_ref().and_then(|k| k.value.as_ref()) else {
            return Some(OnCall::default());
        };
        let Some(Spanned { value: Some(map), .. }) = &raw.rotations else {
            return Some(OnCall::default());
        };
        let mut rotations = Some(Vec::new());
        for (role, raw) in in_file_order(map) {
            let rotation = self.rotation(role, raw, roles);
            match (rotation, rotations.as_mut()) {
                (Some(r), Some(all)) => all.push(r),
                _ => rotations = None,
            }
        }
        Some(OnCall { rotations: rotations?, covers: Vec::new() })
    }

    fn rotation(
        &mut self,
        role: &Spanned<String>,
        raw: &Spanned<Option<RawRotation>>,
        roles: &HashSet<String>,
    ) -> Option<Rotation> {
        let at = &role.referenced;
        let id = role.value.trim();
        self.role_ref(id, at, roles, "a rotation");
        let whose = format!("the `{id}` rotation");
        let Some(raw) = &raw.value else {
            self.error(at, format!("{whose} is empty (expected `members`, `shift` and `handoff`)"));
            return None;
        };
        let turns = self.turns(&raw.members, &raw.shift, &raw.handoff, at, &whose);
        let layers = self.layers(&raw.layers, &whose, role.value.trim());
        let acknowledge_within = self.duration_or_off(
            &raw.acknowledge_within,
            &format!("`acknowledge_within` of {whose}"),
            super::oncall::ACKNOWLEDGE_WITHIN,
        );
        let remind_before = self.duration_or_off(
            &raw.remind_before,
            &format!("`remind_before` of {whose}"),
            super::oncall::REMIND_BEFORE,
        );
        let escalate_to = Self::optional_text(&raw.escalate_to);
        if let (Some(to), Some(Spanned { referenced, .. })) = (&escalate_to, &raw.escalate_to) {
            self.role_ref(to, referenced, roles, &format!("`escalate_to` of {whose}"));
        }
        let usergroup = match (Self::optional_text(&raw.usergroup), &raw.usergroup) {
            (Some(text), Some(Spanned { referenced, .. })) => match parse_mention(&text) {
                Ok(Mention::UserGroup(group)) => Some(Some(group)),
                _ => {
                    self.error(
                        referenced,
                        format!(
                            "bad `usergroup` `{text}` of {whose}: a Slack user group id such as `S0123ONCALL` \
                             (the group's profile → ⋮ → Copy group ID)"
                        ),
                    );
                    None
                }
            },
            _ => Some(None),
        };
        let (members, shift, handoff) = turns?;
        let mut rotation = Rotation::new(id, members, shift, handoff);
        rotation.layers = layers?;
        rotation.usergroup = usergroup?;
        rotation.acknowledge_within = acknowledge_within?;
        rotation.remind_before = remind_before?;
        rotation.escalate_to = escalate_to;
        Some(rotation)
    }

    /// Members in turn, a shift length and a first handoff: what a
    /// rotation and each of its layers have.
    fn turns(
        &mut self,
        members: &Key<List<String>>,
        shift: &Key<String>,
        handoff: &Key<String>,
        at: &Location,
        whose: &str,
    ) -> Option<(Vec<String>, ShiftLength, chrono::NaiveDateTime)> {
        let members = match self.required(members, at, "`members`", &format!(" of {whose} (Slack user ids, in turn)")) {
            Some((list, list_at)) => {
                let mut members = Some(Vec::new());
                for item in list {
                    let member = item.value.as_deref().map(str::trim).unwrap_or("");
                    if matches!(parse_mention(member), Ok(Mention::User(_))) {
                        if let Some(all) = members.as_mut() {
                            all.push(member.to_owned());
                        }
                    } else {
                        self.error(
                            &item.referenced,
                            format!(
                                "bad member `{member}` of {whose}: a Slack user id such as `U0123ABCD` \
                                 (profile → ⋮ → Copy member ID)"
                            ),
                        );
                        members = None;
                    }
                }
                if members.as_ref().is_some_and(Vec::is_empty) {
                    self.error(list_at, format!("`members` of {whose} is empty: a rotation needs someone"));
                    members = None;
                }
                members
            }
            None => None,
        };
        let shift = match self.required(shift, at, "`shift`", &format!(" of {whose} (e.g. `1w`, `1d` or `12h`)")) {
            Some((text, shift_at)) => match ShiftLength::parse(text) {
                Ok(shift) => Some(shift),
                Err(why) => {
                    self.error(shift_at, format!("bad `shift` of {whose}: {why}"));
                    None
                }
            },
            None => None,
        };
        let handoff = match self.required(
            handoff,
            at,
            "`handoff`",
            &format!(" of {whose} (when its first shift starts, e.g. `2026-11-30 09:00`)"),
        ) {
            Some((text, handoff_at)) => {
                let text = text.trim();
                let parsed = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
                    .iter()
                    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok());
                if parsed.is_none() {
                    self.error(
                        handoff_at,
                        format!(
                            "bad `handoff` `{text}` of {whose}: a local date and time in the runbook's time zone, \
                             such as `2026-11-30 09:00`"
                        ),
                    );
                }
                parsed
            }
            None => None,
        };
        Some((members?, shift?, handoff?))
    }

    /// A rotation's `layers`, each a rotation of its own that `only` some
    /// hours of the week turn on.
    fn layers(&mut self, key: &Key<List<RawLayer>>, whose: &str, role: &str) -> Option<Vec<Layer>> {
        let Some(Spanned { value: Some(list), .. }) = key else { return Some(Vec::new()) };
        let mut layers = Some(Vec::new());
        let mut names: HashSet<String> = HashSet::new();
        for (i, item) in list.iter().enumerate() {
            let at = &item.referenced;
            let Some(raw) = &item.value else {
                self.error(
                    at,
                    format!("layer {} of {whose} is empty (expected `members`, `shift`, `handoff` and `only`)", i + 1),
                );
                layers = None;
                continue;
            };
            let name = Self::optional_text(&raw.name).unwrap_or_else(|| format!("layer {}", i + 1));
            if !names.insert(name.clone()) {
                let place = raw.name.as_ref().map_or(at, |k| &k.referenced);
                self.error(place, format!("two layers of {whose} are called `{name}`"));
                layers = None;
            }
            let whose = format!("the `{name}` layer of the `{role}` rotation");
            let turns = self.turns(&raw.members, &raw.shift, &raw.handoff, at, &whose);
            let only = match &raw.only {
                None => Some(None),
                Some(Spanned { value: None, referenced, .. }) => {
                    self.error(
                        referenced,
                        format!("`only` of {whose} is empty: give its hours per weekday, such as `mon-fri: 17:00-24:00`, or leave the key out for always"),
                    );
                    None
                }
                Some(Spanned { value: Some(map), referenced, .. }) => {
                    self.hours_of_layer(map, referenced, &format!("`only` of {whose}")).map(Some)
                }
            };
            match (turns, only, layers.as_mut()) {
                (Some((members, shift, handoff)), Some(only), Some(all)) => {
                    all.push(Layer { name, members, shift, handoff, only });
                }
                _ => layers = None,
            }
        }
        layers
    }

    /// An optional duration that `off` turns off: `Some(None)` for off,
    /// `Some(Some(default))` when absent, `None` (reported) when bad.
    fn duration_or_off(&mut self, key: &Key<String>, what: &str, default: TimeDelta) -> Option<Option<TimeDelta>> {
        let Some(Spanned { value: Some(value), referenced, .. }) = key else {
            return Some(Some(default));
        };
        match value.trim() {
            "" => Some(Some(default)),
            off if off.eq_ignore_ascii_case("off") => Some(None),
            value => match duration_for(value, &format!(" for {what} (or `off`)")) {
                Ok(d) => Some(Some(d)),
                Err(message) => {
                    self.error(referenced, message);
                    None
                }
            },
        }
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
        let mut also_page = Some(Vec::new());
        if let Some(Spanned { value: Some(list), .. }) = &s.also_page {
            for item in list {
                match item.value.as_deref().map(str::trim) {
                    Some(id) if !id.is_empty() => {
                        self.role_ref(id, &item.referenced, roles, &format!("{severity} `also_page`"));
                        if let Some(all) = also_page.as_mut() {
                            all.push(id.to_owned());
                        }
                    }
                    _ => {
                        self.error(
                            &item.referenced,
                            format!("empty entry in {severity} `also_page` (expected a role id)"),
                        );
                        also_page = None;
                    }
                }
            }
        }
        let escalate = self.escalate(&s.escalate, severity);
        let also_page_after = self.also_page_after(&s.also_page_after, severity, roles);
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
            also_page: also_page?,
            escalate: escalate?,
            also_page_after: also_page_after?,
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
                Some(Step { text: text.to_owned(), command: None, check: None })
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
                let check = match &map.check {
                    None | Some(Spanned { value: None, .. }) => Some(None),
                    Some(Spanned { value: Some(name), referenced, .. }) => {
                        let name = name.trim();
                        let figure = Figure::parse(name);
                        if figure.is_none() {
                            let names = Figure::ALL.map(Figure::as_str);
                            let hint = match closest(name, names.iter().copied()) {
                                Some(near) => format!("did you mean `{near}`?"),
                                None => format!("expected one of: {}", names.join(", ")),
                            };
                            self.error(
                                referenced,
                                format!("unknown check `{name}` in a step of {phase} in {whose} ({hint})"),
                            );
                        }
                        figure.map(Some)
                    }
                };
                Some(Step { text: text?, command, check: check? })
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

/// Deployment states GitHub reports (`deployment_status.state`).
const DEPLOYMENT_STATES: [&str; 7] = ["error", "failure", "inactive", "in_progress", "pending", "queued", "success"];

/// The id an alert's name makes: its ASCII letters and digits, lowercased,
/// the words between joined by `-` (`High Build Failure Rate` →
/// `high-build-failure-rate`).
fn id_from_name(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// A Prometheus label name: letters, digits and `_`, not starting with a
/// digit. Anything else could never be on an Alertmanager group.
fn is_label_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The alert sections: KPIs, KPI alerts and webhook routing. Each part a
/// file leaves out keeps the seed's, so a runbook written before these
/// sections existed behaves as it did.
impl Check {
    fn alert_rules(&mut self, doc: &RawRunbook, channels: Option<&Channels>) -> Option<AlertRules> {
        // The seed's parts post to the runbook's channels; with `channels`
        // broken (already reported) there is no seed, and no runbook.
        let seed = channels.map(AlertRules::seed_defaults);
        let kpis = self.replacing(
            &doc.kpis,
            "`kpis`",
            "leave it out to keep the seed's KPIs, or write `kpis: {}` for none",
            || seed.as_ref().map(|s| s.kpis.clone()),
            |check, map| check.kpis(map),
        );
        let kpi_alerts = self.replacing(
            &doc.alerts,
            "`alerts`",
            "leave it out to keep the seed's alerts, or write `alerts: []` for none",
            || seed.as_ref().map(|s| s.kpi_alerts.clone()),
            |check, list| check.kpi_alerts(list, channels),
        );
        // `webhooks:` or `github:` with everything under it commented out
        // means the same as leaving it out: every key below has a default.
        let webhooks = doc.webhooks.as_ref().and_then(|w| w.value.as_ref());
        let github = match webhooks.and_then(|w| w.github.as_ref()).and_then(|g| g.value.as_ref()) {
            Some(raw) => self.github(raw, seed.as_ref().map(|s| &s.github), channels),
            None => seed.as_ref().map(|s| s.github.clone()),
        };
        let alertmanager = match webhooks {
            Some(webhooks) => self.replacing(
                &webhooks.alertmanager,
                "`alertmanager`",
                "leave it out to keep the seed's routes, or write `alertmanager: []` to send every group to `team`",
                || seed.as_ref().map(|s| s.alertmanager.clone()),
                |check, list| check.routes(list, channels),
            ),
            None => seed.as_ref().map(|s| s.alertmanager.clone()),
        };
        Some(AlertRules { github: github?, alertmanager: alertmanager?, kpis: kpis?, kpi_alerts: kpi_alerts? })
    }

    /// A part that replaces the seed's when written: left out, `seed`
    /// applies. Written with nothing under it, it is refused, since that
    /// could mean the seed's or none; `choices` says how to write each.
    fn replacing<T, R>(
        &mut self,
        key: &Key<T>,
        what: &str,
        choices: &str,
        seed: impl FnOnce() -> Option<R>,
        parse: impl FnOnce(&mut Check, &T) -> Option<R>,
    ) -> Option<R> {
        match key {
            None => seed(),
            Some(Spanned { value: None, referenced, .. }) => {
                self.error(referenced, format!("{what} is empty ({choices})"));
                None
            }
            Some(Spanned { value: Some(raw), .. }) => parse(self, raw),
        }
    }

    fn kpis(&mut self, map: &Map<RawKpi>) -> Option<Vec<Kpi>> {
        let mut kpis = Some(Vec::new());
        for (id, raw) in in_file_order(map) {
            let kpi = self.kpi(id, raw);
            match (kpi, kpis.as_mut()) {
                (Some(k), Some(all)) => all.push(k),
                _ => kpis = None,
            }
        }
        kpis
    }

    fn kpi(&mut self, id: &Spanned<String>, raw: &Spanned<Option<RawKpi>>) -> Option<Kpi> {
        let id_ok = is_kebab(&id.value);
        if !id_ok {
            self.error(
                &id.referenced,
                format!("KPI id `{}` must be kebab-case (lowercase letters, digits, `-`)", id.value),
            );
        }
        let Some(kpi) = &raw.value else {
            self.error(&id.referenced, format!("KPI `{}` is empty (expected `name`, `area` and `target`)", id.value));
            return None;
        };
        let at = &id.referenced;
        let whose = format!("of KPI `{}`", id.value);
        let name = self.text(&kpi.name, at, &format!("`name` {whose}"), " (how the KPI is shown)");
        let area = self.text(&kpi.area, at, &format!("`area` {whose}"), " (its heading, e.g. `Build Performance`)");
        let target = self.text(&kpi.target, at, &format!("`target` {whose}"), " (e.g. `> 95%`)");
        let measured = match &kpi.measure {
            None | Some(Spanned { value: None, .. }) => Some(None),
            Some(Spanned { value: Some(word), referenced, .. }) => match metric_named(word.trim()) {
                Err(message) => {
                    self.error(referenced, message);
                    None
                }
                // A missing target is already reported.
                Ok(metric) => target.as_deref().and_then(|target| {
                    let target_at = kpi.target.as_ref().map_or(at, |k| &k.referenced);
                    parse_target(metric, target).map(Some).map_err(|message| self.error(target_at, message)).ok()
                }),
            },
        };
        id_ok.then_some(())?;
        Some(Kpi { id: id.value.clone(), name: name?, area: area?, target: target?, measured: measured? })
    }

    fn kpi_alerts(&mut self, list: &List<RawKpiAlert>, channels: Option<&Channels>) -> Option<Vec<KpiAlert>> {
        let mut ids: HashMap<String, Location> = HashMap::new();
        let mut alerts = Some(Vec::new());
        for item in list {
            let alert = match &item.value {
                Some(raw) => self.kpi_alert(raw, &item.referenced, channels, &mut ids),
                None => {
                    self.error(&item.referenced, "empty alert entry (expected `name`, `condition` and `action`)");
                    None
                }
            };
            match (alert, alerts.as_mut()) {
                (Some(a), Some(all)) => all.push(a),
                _ => alerts = None,
            }
        }
        alerts
    }

    fn kpi_alert(
        &mut self,
        raw: &RawKpiAlert,
        at: &Location,
        channels: Option<&Channels>,
        ids: &mut HashMap<String, Location>,
    ) -> Option<KpiAlert> {
        let name = self.text(&raw.name, at, "`name` of an alert", " (its title; its id is made from it)");
        let name_at = raw.name.as_ref().map_or(at, |k| &k.referenced);
        let id = name.as_deref().and_then(|name| {
            let id = id_from_name(name);
            if id.is_empty() {
                self.error(name_at, format!("alert name `{name}` has no letters or digits to make its id from"));
                return None;
            }
            if let Some(first) = ids.get(&id) {
                let line = first.line();
                self.error(
                    name_at,
                    format!("duplicate alert id `{id}` from name `{name}` (first used on line {line})"),
                );
                return None;
            }
            ids.insert(id.clone(), *name_at);
            Some(id)
        });
        let whose = match &id {
            Some(id) => format!("of alert `{id}`"),
            None => "of an alert".to_owned(),
        };
        let condition = self
            .text(
                &raw.condition,
                at,
                &format!("`condition` {whose}"),
                " (`<metric> <comparison> <value>`, e.g. `failure_rate > 10%`)",
            )
            .and_then(|text| {
                let condition_at = raw.condition.as_ref().map_or(at, |k| &k.referenced);
                parse_condition(&text).map_err(|message| self.error(condition_at, message)).ok()
            });
        let action = self
            .text(&raw.action, at, &format!("`action` {whose}"), " (`notify_team` or `investigate`)")
            .and_then(|word| {
                let action_at = raw.action.as_ref().map_or(at, |k| &k.referenced);
                let action = KpiAction::parse(&word);
                if action.is_none() {
                    let names = KpiAction::ALL.map(KpiAction::as_str);
                    let hint = match closest(&word, names.iter().copied()) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("expected one of: {}", names.join(", ")),
                    };
                    self.error(action_at, format!("unknown action `{word}` {whose} ({hint})"));
                }
                action
            });
        let window_ok = raw.window.as_ref().and_then(|k| k.value.as_ref()).is_none();
        let window = self.optional_duration(&raw.window, &format!("`window` {whose}"));
        let min_runs = match &raw.min_runs {
            None | Some(Spanned { value: None, .. }) => Some(5),
            Some(Spanned { value: Some(n), referenced, .. }) => match n.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    self.error(
                        referenced,
                        format!("bad number `{}` for `min_runs` {whose}: write a whole number, 1 or more", n.trim()),
                    );
                    None
                }
            },
        };
        let channel = self.channel_ref(&raw.channel, "team", channels, &format!("`channel` {whose}"));
        (window_ok || window.is_some()).then_some(())?;
        Some(KpiAlert {
            id: id?,
            name: name?,
            condition: condition?,
            window: window.unwrap_or(TimeDelta::hours(24)),
            min_runs: min_runs?,
            action: action?,
            channel: channel?,
        })
    }

    /// A channel as the alert sections name it: `alerts` or `team` for the
    /// runbook's `channels`, or a `#name` or channel id of its own. Left
    /// out, `default` (one of the two words) applies. The word is checked
    /// even when `channels` is broken, but then resolves to nothing.
    fn channel_ref(
        &mut self,
        key: &Key<String>,
        default: &str,
        channels: Option<&Channels>,
        what: &str,
    ) -> Option<String> {
        let written = match key {
            None => default,
            Some(Spanned { value: None, referenced, .. }) => {
                self.error(
                    referenced,
                    format!(
                        "{what} is empty (quote a channel name: `\"#devops\"`; an unquoted `#` starts a YAML \
                         comment; or leave it out for `{default}`)"
                    ),
                );
                return None;
            }
            Some(Spanned { value: Some(value), referenced, .. }) => {
                let value = value.trim();
                if value != "alerts" && value != "team" && !is_channel(value) {
                    let hint = match closest(value, ["alerts", "team"].into_iter()) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => "write `alerts` or `team` for the runbook's `channels`, or `\"#name\"` \
                                 (lowercase letters, digits, `-`, `_`) or a channel id such as `C0123456789`"
                            .to_owned(),
                    };
                    self.error(referenced, format!("bad channel `{value}` for {what} ({hint})"));
                    return None;
                }
                value
            }
        };
        match written {
            "alerts" => channels.map(|c| c.alerts.clone()),
            "team" => channels.map(|c| c.team.clone()),
            literal => Some(literal.to_owned()),
        }
    }

    /// An optional `declare`: `Some(None)` when left out (or empty),
    /// `None` when the severity is unknown (reported).
    fn declare(&mut self, key: &Key<String>, whose: &str) -> Option<Option<Severity>> {
        let Some(Spanned { value: Some(word), referenced, .. }) = key else {
            return Some(None);
        };
        let word = word.trim();
        match Severity::parse(word) {
            Some(severity) => Some(Some(severity)),
            None => {
                self.error(
                    referenced,
                    format!("unknown severity `{word}` for `declare` {whose} (expected one of: P0, P1, P2, P3)"),
                );
                None
            }
        }
    }

    /// A list of names (`branches`, `ignore_workflows`, `failed`), each
    /// trimmed and not blank.
    fn names(&mut self, list: &List<String>, what: &str) -> Option<Vec<(String, Location)>> {
        let mut names = Some(Vec::new());
        for item in list {
            let name = match item.value.as_deref().map(str::trim) {
                Some(name) if !name.is_empty() => Some(name.to_owned()),
                _ => {
                    self.error(&item.referenced, format!("empty entry in {what}"));
                    None
                }
            };
            match (name, names.as_mut()) {
                (Some(n), Some(all)) => all.push((n, item.referenced)),
                _ => names = None,
            }
        }
        names
    }

    fn github(
        &mut self,
        raw: &RawGithub,
        seed: Option<&GithubRules>,
        channels: Option<&Channels>,
    ) -> Option<GithubRules> {
        let branches = match &raw.branches {
            None => seed.map(|s| s.branches.clone()),
            Some(Spanned { value: Some(list), .. }) if !list.is_empty() => {
                self.names(list, "`branches`").map(|names| {
                    names
                        .into_iter()
                        .map(|(name, _)| if name == "default" { BranchRule::Default } else { BranchRule::Named(name) })
                        .collect()
                })
            }
            Some(Spanned { referenced, .. }) => {
                self.error(
                    referenced,
                    "`branches` lists no branch, so no workflow run would alert (`default` is the repository's \
                     default branch)",
                );
                None
            }
        };
        let channel = self.channel_ref(&raw.channel, "team", channels, "`channel` of `github`");
        let ignore_workflows = match &raw.ignore_workflows {
            Some(Spanned { value: Some(list), .. }) => {
                self.names(list, "`ignore_workflows`").map(|names| names.into_iter().map(|(n, _)| n).collect())
            }
            _ => Some(Vec::new()),
        };
        let deployments = self.replacing(
            &raw.deployments,
            "`deployments`",
            "leave it out to keep the seed's rule for `production`, or write `deployments: []` for none",
            || seed.map(|s| s.deployments.clone()),
            |check, list| check.deployments(list, channels),
        );
        Some(GithubRules {
            branches: branches?,
            channel: channel?,
            ignore_workflows: ignore_workflows?,
            deployments: deployments?,
        })
    }

    fn deployments(&mut self, list: &List<RawDeployment>, channels: Option<&Channels>) -> Option<Vec<DeploymentRule>> {
        // By environment, lowercased: GitHub's names are matched ignoring case.
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut rules = Some(Vec::new());
        for item in list {
            let rule = match &item.value {
                Some(raw) => self.deployment(raw, &item.referenced, channels, &mut seen),
                None => {
                    self.error(&item.referenced, "empty deployment rule (expected `environment`)");
                    None
                }
            };
            match (rule, rules.as_mut()) {
                (Some(r), Some(all)) => all.push(r),
                _ => rules = None,
            }
        }
        rules
    }

    fn deployment(
        &mut self,
        raw: &RawDeployment,
        at: &Location,
        channels: Option<&Channels>,
        seen: &mut HashMap<String, Location>,
    ) -> Option<DeploymentRule> {
        let environment = self.text(&raw.environment, at, "`environment` of a deployment rule", " (e.g. `production`)");
        let environment = environment.and_then(|environment| {
            let env_at = raw.environment.as_ref().map_or(at, |k| &k.referenced);
            if let Some(first) = seen.get(&environment.to_lowercase()) {
                let line = first.line();
                self.error(
                    env_at,
                    format!(
                        "duplicate environment `{environment}` (first used on line {line}; environments are \
                         matched ignoring case)"
                    ),
                );
                return None;
            }
            seen.insert(environment.to_lowercase(), *env_at);
            Some(environment)
        });
        let whose = match &environment {
            Some(environment) => format!("of deployment `{environment}`"),
            None => "of a deployment rule".to_owned(),
        };
        let failed = match &raw.failed {
            None => Some(vec!["failure".to_owned(), "error".to_owned()]),
            Some(Spanned { value: Some(list), .. }) if !list.is_empty() => {
                self.names(list, &format!("`failed` {whose}")).and_then(|names| {
                    let mut states = Some(Vec::new());
                    for (state, state_at) in names {
                        let known = DEPLOYMENT_STATES.contains(&state.as_str());
                        if !known {
                            let hint = match closest(&state, DEPLOYMENT_STATES.into_iter()) {
                                Some(near) => format!("did you mean `{near}`?"),
                                None => format!("GitHub's states are: {}", DEPLOYMENT_STATES.join(", ")),
                            };
                            self.error(
                                &state_at,
                                format!("unknown deployment state `{state}` in `failed` {whose} ({hint})"),
                            );
                        }
                        match (known, states.as_mut()) {
                            (true, Some(all)) => all.push(state),
                            _ => states = None,
                        }
                    }
                    states
                })
            }
            Some(Spanned { referenced, .. }) => {
                self.error(
                    referenced,
                    format!(
                        "`failed` {whose} lists no state, so it would never alert (e.g. `[failure, error]`, \
                         or leave it out for those two)"
                    ),
                );
                None
            }
        };
        let declare = self.declare(&raw.declare, &whose);
        let channel = self.channel_ref(&raw.channel, "alerts", channels, &format!("`channel` {whose}"));
        Some(DeploymentRule { environment: environment?, failed_states: failed?, declare: declare?, channel: channel? })
    }

    fn routes(&mut self, list: &List<RawRoute>, channels: Option<&Channels>) -> Option<Vec<AlertmanagerRoute>> {
        let mut routes = Some(Vec::new());
        // The first route without `match` takes every group; any after it
        // would never be used, which is surely not what the file means.
        let mut catch_all: Option<usize> = None;
        for (index, item) in list.iter().enumerate() {
            let number = index + 1;
            if let Some(first) = catch_all {
                self.error(
                    &item.referenced,
                    format!(
                        "Alertmanager route {number} is never used: route {first} above it has no `match` and \
                         takes every group"
                    ),
                );
            }
            let route = match &item.value {
                Some(raw) => self.route(raw, &item.referenced, number, channels),
                None => {
                    self.error(&item.referenced, format!("Alertmanager route {number} is empty (expected `channel`)"));
                    None
                }
            };
            // Read from the file, not the checked route, so a catch-all
            // with a mistake of its own still shows the routes it hides.
            let matches_all = item
                .value
                .as_ref()
                .is_some_and(|r| r.matchers.as_ref().and_then(|m| m.value.as_ref()).is_none_or(HashMap::is_empty));
            if catch_all.is_none() && matches_all {
                catch_all = Some(number);
            }
            match (route, routes.as_mut()) {
                (Some(r), Some(all)) => all.push(r),
                _ => routes = None,
            }
        }
        routes
    }

    fn route(
        &mut self,
        raw: &RawRoute,
        at: &Location,
        number: usize,
        channels: Option<&Channels>,
    ) -> Option<AlertmanagerRoute> {
        let whose = format!("of Alertmanager route {number}");
        let matchers = match &raw.matchers {
            Some(Spanned { value: Some(map), .. }) => {
                let mut matchers = Some(Vec::new());
                for (label, value) in in_file_order(map) {
                    let label_ok = is_label_name(&label.value);
                    if !label_ok {
                        self.error(
                            &label.referenced,
                            format!(
                                "bad label name `{}` in `match` {whose} (letters, digits and `_`, not starting \
                                 with a digit)",
                                label.value
                            ),
                        );
                    }
                    let value = match value.value.as_deref().map(str::trim) {
                        Some(v) if !v.is_empty() => Some(v.to_owned()),
                        _ => {
                            self.error(
                                &value.referenced,
                                format!("label `{}` in `match` {whose} has no value", label.value),
                            );
                            None
                        }
                    };
                    match (label_ok, value, matchers.as_mut()) {
                        (true, Some(v), Some(all)) => all.push((label.value.clone(), v)),
                        _ => matchers = None,
                    }
                }
                matchers
            }
            // `match:` with nothing under it matches every group, as no `match` does.
            _ => Some(Vec::new()),
        };
        let channel = self.channel_ref(&raw.channel, "team", channels, &format!("`channel` {whose}"));
        let declare = self.declare(&raw.declare, &whose);
        let mute_at = raw.mute.as_ref().map_or(at, |k| &k.referenced);
        let mute = match raw.mute.as_ref().and_then(|m| m.value.as_deref()).map(str::trim) {
            None | Some("false") => Some(false),
            Some("true") => Some(true),
            Some(other) => {
                self.error(mute_at, format!("bad value `{other}` for `mute` {whose}: write `true` or `false`"));
                None
            }
        };
        if let (Some(true), Some(Some(_))) = (mute, declare) {
            self.error(
                mute_at,
                format!(
                    "Alertmanager route {number} both mutes and declares: a muted group tells nobody, so keep one \
                     of the two"
                ),
            );
            return None;
        }
        Some(AlertmanagerRoute { matchers: matchers?, channel: channel?, declare: declare?, mute: mute? })
    }
}

/// The `pipeline` section. Left out, or written with nothing under it, the
/// seed's environments apply, so a runbook written before the section
/// existed gets them too.
impl Check {
    fn pipeline(
        &mut self,
        key: &Key<RawPipeline>,
        channels: Option<&Channels>,
        roles: &HashSet<String>,
    ) -> Option<Pipeline> {
        // The seed posts to the runbook's team channel; with `channels`
        // broken (already reported) there is no seed, and no runbook.
        let seed = || channels.map(Pipeline::seed_defaults);
        let Some(raw) = key.as_ref().and_then(|k| k.value.as_ref()) else {
            return seed();
        };
        let environments = self.replacing(
            &raw.environments,
            "`environments`",
            "leave it out to keep the seed's `production` and `staging`, or write `environments: {}` for none",
            || seed().map(|s| s.environments),
            |check, map| check.environments(map, channels, roles),
        );
        Some(Pipeline { environments: environments? })
    }

    fn environments(
        &mut self,
        map: &Map<RawEnvironment>,
        channels: Option<&Channels>,
        roles: &HashSet<String>,
    ) -> Option<Vec<Environment>> {
        // By name, lowercased: `/pipeline deploy` finds them ignoring case.
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut environments = Some(Vec::new());
        for (name, raw) in in_file_order(map) {
            let environment = self.environment(name, raw, channels, roles, &mut seen);
            match (environment, environments.as_mut()) {
                (Some(e), Some(all)) => all.push(e),
                _ => environments = None,
            }
        }
        environments
    }

    fn environment(
        &mut self,
        name: &Spanned<String>,
        raw: &Spanned<Option<RawEnvironment>>,
        channels: Option<&Channels>,
        roles: &HashSet<String>,
        seen: &mut HashMap<String, Location>,
    ) -> Option<Environment> {
        let at = &name.referenced;
        let label = name.value.trim();
        // The name is typed as one word of `/pipeline deploy <environment>`.
        let name_ok = if label.is_empty() || label.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                at,
                format!(
                    "bad environment name `{}`: one word, since it is typed in `/pipeline deploy <environment>`",
                    name.value.escape_debug()
                ),
            );
            false
        } else if let Some(first) = seen.get(&label.to_lowercase()) {
            let line = first.line();
            self.error(
                at,
                format!(
                    "duplicate environment `{label}` (first used on line {line}; environments are matched \
                     ignoring case)"
                ),
            );
            false
        } else {
            seen.insert(label.to_lowercase(), *at);
            true
        };
        let Some(environment) = &raw.value else {
            self.error(
                at,
                format!("environment `{label}` is empty (expected `deploy` and `rollback`, each with a `workflow`)"),
            );
            return None;
        };
        let whose = format!("of environment `{label}`");
        let repository = match &environment.repository {
            None | Some(Spanned { value: None, .. }) => Some(None),
            Some(Spanned { value: Some(text), referenced, .. }) => {
                let text = text.trim();
                if is_repository(text) {
                    Some(Some(text.to_owned()))
                } else {
                    let hint = text
                        .strip_prefix("https://github.com/")
                        .map(|rest| rest.trim_end_matches('/').trim_end_matches(".git"))
                        .filter(|rest| is_repository(rest))
                        .map(|rest| format!("write `{rest}`"))
                        .unwrap_or_else(|| "write `owner/name`, e.g. `octo-org/shop`".to_owned());
                    self.error(referenced, format!("bad repository `{text}` {whose} ({hint})"));
                    None
                }
            }
        };
        let default_ref = match &environment.default_ref {
            None | Some(Spanned { value: None, .. }) => Some(None),
            Some(Spanned { value: Some(text), referenced, .. }) => {
                let text = text.trim();
                if is_git_ref(text) {
                    Some(Some(text.to_owned()))
                } else {
                    self.error(
                        referenced,
                        format!(
                            "bad ref `{}` {whose}: a branch, tag or commit, in letters, digits and `.`, `_`, `-`, \
                             `/`, `+`, `@` (or leave it out for the repository's default branch)",
                            text.escape_debug()
                        ),
                    );
                    None
                }
            }
        };
        let may = match &environment.may {
            Some(Spanned { value: Some(list), .. }) => self.names(list, &format!("`may` {whose}")).and_then(|names| {
                let mut may = Some(Vec::new());
                for (entry, entry_at) in names {
                    let deployer = self.deployer(&entry, &entry_at, roles, &whose);
                    match (deployer, may.as_mut()) {
                        (Some(d), Some(all)) => all.push(d),
                        _ => may = None,
                    }
                }
                may
            }),
            _ => Some(Vec::new()),
        };
        let channel = self.channel_ref(&environment.channel, "team", channels, &format!("`channel` {whose}"));
        let timeout_ok = environment.timeout.as_ref().and_then(|k| k.value.as_ref()).is_none();
        let timeout = self.optional_duration(&environment.timeout, &format!("`timeout` {whose}"));
        let deploy = self.dispatch(&environment.deploy, at, label, Action::Deploy);
        let rollback = self.dispatch(&environment.rollback, at, label, Action::Rollback);
        name_ok.then_some(())?;
        (timeout_ok || timeout.is_some()).then_some(())?;
        Some(Environment {
            name: label.to_owned(),
            repository: repository?,
            default_ref: default_ref?,
            may: may?,
            channel: channel?,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            deploy: deploy?,
            rollback: rollback?,
        })
    }

    /// An entry of `may`: a Slack user or user group id, or a role id of
    /// `roles`. `@here` and `@channel` are refused: leaving `may` out says
    /// "everyone" plainly.
    fn deployer(&mut self, entry: &str, at: &Location, roles: &HashSet<String>, whose: &str) -> Option<Deployer> {
        match parse_mention(entry) {
            Ok(Mention::User(id)) => return Some(Deployer::User(id)),
            Ok(Mention::UserGroup(id)) => return Some(Deployer::UserGroup(id)),
            Ok(Mention::Here | Mention::Channel) => {
                self.error(
                    at,
                    format!(
                        "`{entry}` in `may` {whose}: leave `may` out to let everyone deploy, or list roles and \
                         Slack ids"
                    ),
                );
                return None;
            }
            Err(_) if roles.contains(entry) => return Some(Deployer::Role(entry.to_owned())),
            Err(_) => {}
        }
        let mut defined: Vec<&str> = roles.iter().map(String::as_str).collect();
        defined.sort_unstable();
        let hint = if let Some(id) = mrkdwn_id(entry) {
            format!("write the bare id `{id}`")
        } else if let Some(near) = closest(entry, defined.iter().copied()) {
            format!("did you mean `{near}`?")
        } else if defined.is_empty() {
            "write a user id `U…`/`W…` or a user group id `S…`".to_owned()
        } else {
            format!("defined roles: {}; or a user id `U…`/`W…` or a user group id `S…`", defined.join(", "))
        };
        self.error(
            at,
            format!(
                "`may` {whose} names `{entry}`, which is neither a role nor a Slack user or user group id ({hint})"
            ),
        );
        None
    }

    /// `deploy` or `rollback` of an environment: a workflow and its inputs.
    fn dispatch(
        &mut self,
        key: &Key<RawDispatch>,
        parent: &Location,
        environment: &str,
        action: Action,
    ) -> Option<Dispatch> {
        let what = format!("`{}` of environment `{environment}`", action.as_str());
        let (raw, at) = self.required(key, parent, &what, " (the `workflow` opsbot dispatches, and its `inputs`)")?;
        let workflow = self
            .text(
                &raw.workflow,
                at,
                &format!("`workflow` in {what}"),
                " (a file in .github/workflows such as `deploy.yml`, or a numeric workflow id)",
            )
            .and_then(|text| {
                let workflow_at = raw.workflow.as_ref().map_or(at, |k| &k.referenced);
                parse_workflow(&text).map_err(|message| self.error(workflow_at, message)).ok()
            });
        let inputs = match &raw.inputs {
            Some(Spanned { value: Some(map), .. }) => {
                let mut inputs = Some(Vec::new());
                for (input, value) in in_file_order(map) {
                    let input = self.input(input, value, &what);
                    match (input, inputs.as_mut()) {
                        (Some(i), Some(all)) => all.push(i),
                        _ => inputs = None,
                    }
                }
                inputs
            }
            // A workflow may take no inputs.
            _ => Some(Vec::new()),
        };
        Some(Dispatch { workflow: workflow?, inputs: inputs? })
    }

    /// One of a dispatch's inputs: a name as GitHub allows it, and a value
    /// template.
    fn input(
        &mut self,
        name: &Spanned<String>,
        value: &Spanned<Option<String>>,
        what: &str,
    ) -> Option<(String, Template)> {
        let input = &name.value;
        // GitHub's rule for an input's id in `workflow_dispatch`.
        let name_ok = input.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            self.error(
                &name.referenced,
                format!(
                    "bad input name `{}` in {what} (letters, digits, `_` and `-`, starting with a letter or `_`)",
                    input.escape_debug()
                ),
            );
        }
        let Some(text) = &value.value else {
            self.error(
                &value.referenced,
                format!("input `{input}` in {what} has no value (write `\"\"` for an empty one)"),
            );
            return None;
        };
        let template = Template::parse_for(text, &format!(" in input `{input}` of {what}"))
            .map_err(|message| self.error(&value.referenced, message))
            .ok();
        name_ok.then_some(())?;
        Some((input.clone(), template?))
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

    /// The alert sections for [`MINI`], each key set to something other
    /// than the seed's. Appended to `MINI`, its first line is line 51.
    const ALERTS: &str = "\
kpis:
  build-success-rate: { name: Build Success Rate, area: Build, target: \"> 95%\", measure: success_rate }
  cache-hit-rate: { name: Cache Hit Rate, area: Build, target: \"> 80%\" }
alerts:
  - name: High Build Failure Rate
    condition: \"failure_rate > 10%\"
    action: notify_team
  - name: Slow builds
    condition: \"avg_build_time > 10 minutes\"
    action: investigate
    window: 2h
    min_runs: 3
    channel: alerts
webhooks:
  github:
    branches: [default, release]
    channel: \"#ci\"
    ignore_workflows: [Nightly, .github/workflows/docs.yml]
    deployments:
      - environment: production
        declare: p0
      - environment: staging
        failed: [failure]
        channel: team
  alertmanager:
    - match: { severity: critical, team: ops }
      channel: alerts
      declare: P1
    - match: { severity: critical }
      channel: C0123456789
    - match: { severity: info }
      mute: true
    - channel: team
";

    /// `MINI` with channels of its own, so a resolved `alerts` or `team`
    /// cannot be mistaken for the seed's names. Line numbers are MINI's.
    fn mini() -> String {
        MINI.replace("\"#devops-alerts\"", "\"#mini-alerts\"").replace("\"#devops\"", "\"#mini\"")
    }

    /// [`mini`] with [`ALERTS`], after `from` is replaced by `to` in it
    /// (once; it must be there).
    fn with_alerts(from: &str, to: &str) -> String {
        assert!(ALERTS.contains(from), "{from:?} is not in ALERTS");
        format!("{}{}", mini(), ALERTS.replacen(from, to, 1))
    }

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
        assert_eq!(rb.severities[1].playbook[0].steps[0], Step { text: "Look".into(), command: None, check: None });
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
            ["17:5: unknown key `escalaton` (expected one of: label, description, respond, resolve, update_every, escalation, also_page, escalate, also_page_after, playbook)"]
        );
        let text = MINI.replace("name: Mini", "name: Mini\nowner: me");
        assert_eq!(errors(&text)[0], "2:1: unknown key `owner` (expected one of: name, timezone, channels, roles, severities, post_incident, checklists, kpis, alerts, webhooks, pipeline, oncall, business_hours, holidays, permissions)");
        let text = MINI.replace("            command:", "            comand:");
        assert_eq!(errors(&text), ["22:13: unknown key `comand` (expected one of: text, command, check)"]);
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
    fn seed_alert_sections_are_the_seed_defaults() {
        let rb = Runbook::seed();
        assert_eq!(rb.alerts, AlertRules::seed_defaults(&rb.channels));
        let kpi = &rb.alerts.kpis[1];
        assert_eq!(kpi.target, "< 5 minutes");
        assert_eq!(kpi.measured.as_ref().unwrap().text, "avg_build_time < 5m");

        // The sections are read, not defaulted: a change in each shows.
        let changed = parse(
            &Runbook::SEED_YAML
                .replacen("    target: \"> 95%\"", "    target: \"> 90%\"", 1)
                .replacen("    min_runs: 3\n", "    min_runs: 4\n", 1)
                .replacen("        declare: P1\n", "        declare: P0\n", 1)
                .replacen("    - match: { severity: critical }", "    - match: { severity: page }", 1),
        )
        .unwrap();
        let alerts = &changed.alerts;
        assert_eq!(alerts.kpis[0].measured.as_ref().unwrap().threshold, Quantity::Percent(90.0));
        assert_eq!(alerts.kpi_alerts[1].min_runs, 4);
        assert_eq!(alerts.github.deployments[0].declare, Some(Severity::P0));
        assert_eq!(alerts.alertmanager[0].matchers, [("severity".to_owned(), "page".to_owned())]);
    }

    #[test]
    fn alert_sections_left_out_keep_the_seeds() {
        let rb = parse(&mini()).unwrap();
        assert_eq!(rb.alerts, AlertRules::seed_defaults(&rb.channels));
        assert_eq!(rb.alerts.github.channel, "#mini");
        assert_eq!(rb.alerts.github.deployments[0].channel, "#mini-alerts");

        // `webhooks:` or `github:` with nothing under it is the same as
        // leaving it out.
        for empty in ["webhooks:\n", "webhooks:\n  github:\n", "webhooks: {}\n"] {
            let rb = parse(&format!("{}{empty}", mini())).unwrap();
            assert_eq!(rb.alerts, AlertRules::seed_defaults(&rb.channels), "{empty:?}");
        }

        // Within a written part, what is left out is still the seed's.
        let rb = parse(&format!("{}webhooks:\n  github:\n    branches: [main]\n", mini())).unwrap();
        let seed = AlertRules::seed_defaults(&rb.channels);
        assert_eq!(rb.alerts.github.branches, [BranchRule::Named("main".into())]);
        assert_eq!(rb.alerts.github.channel, "#mini");
        assert_eq!(rb.alerts.github.deployments, seed.github.deployments);
        assert_eq!(
            (&rb.alerts.alertmanager, &rb.alerts.kpis, &rb.alerts.kpi_alerts),
            (&seed.alertmanager, &seed.kpis, &seed.kpi_alerts)
        );

        // Written empty on purpose: none.
        let rb = parse(&format!(
            "{}kpis: {{}}\nalerts: []\nwebhooks:\n  github: {{deployments: []}}\n  alertmanager: []\n",
            mini()
        ))
        .unwrap();
        assert!(rb.alerts.kpis.is_empty() && rb.alerts.kpi_alerts.is_empty() && rb.alerts.alertmanager.is_empty());
        assert!(rb.alerts.github.deployments.is_empty());
    }

    #[test]
    fn alert_sections_are_read_with_defaults_and_channel_words() {
        let rb = parse(&with_alerts("", "")).unwrap();
        let alerts = &rb.alerts;

        assert_eq!(alerts.kpis.len(), 2);
        assert_eq!(
            alerts.kpis[0].measured,
            Some(Condition {
                text: "success_rate > 95%".into(),
                metric: Metric::SuccessRate,
                comparison: Comparison::Above,
                threshold: Quantity::Percent(95.0),
            })
        );
        assert_eq!((alerts.kpis[1].id.as_str(), alerts.kpis[1].target.as_str()), ("cache-hit-rate", "> 80%"));
        assert_eq!(alerts.kpis[1].measured, None);

        let [high, slow] = &alerts.kpi_alerts[..] else { panic!("{:?}", alerts.kpi_alerts) };
        assert_eq!(high.id, "high-build-failure-rate");
        assert_eq!((high.window, high.min_runs, high.action), (TimeDelta::hours(24), 5, KpiAction::NotifyTeam));
        assert_eq!(high.channel, "#mini", "`channel` defaults to `team`");
        assert_eq!(slow.id, "slow-builds");
        assert_eq!(slow.condition.text, "avg_build_time > 10 minutes", "kept as written");
        assert_eq!(slow.condition.threshold, Quantity::Duration(TimeDelta::minutes(10)));
        assert_eq!((slow.window, slow.min_runs, slow.action), (TimeDelta::hours(2), 3, KpiAction::Investigate));
        assert_eq!(slow.channel, "#mini-alerts", "`alerts` is the runbook's alerts channel");

        let github = &alerts.github;
        assert_eq!(github.branches, [BranchRule::Default, BranchRule::Named("release".into())]);
        assert_eq!(github.channel, "#ci", "a literal channel is kept");
        assert_eq!(github.ignore_workflows, ["Nightly", ".github/workflows/docs.yml"]);
        assert_eq!(
            github.deployments,
            [
                DeploymentRule {
                    environment: "production".into(),
                    failed_states: vec!["failure".into(), "error".into()],
                    declare: Some(Severity::P0),
                    channel: "#mini-alerts".into(),
                },
                DeploymentRule {
                    environment: "staging".into(),
                    failed_states: vec!["failure".into()],
                    declare: None,
                    channel: "#mini".into(),
                },
            ]
        );

        let routes = &alerts.alertmanager;
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[1].channel, "C0123456789");
        assert!(routes[2].mute && !routes[0].mute);
        assert_eq!(routes[3].matchers, []);
        assert_eq!(routes[3].channel, "#mini");
    }

    #[test]
    fn alertmanager_routes_keep_their_order_and_the_first_match_wins() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>()
        };
        let ops_critical = labels(&[("severity", "critical"), ("team", "ops"), ("alertname", "Down")]);
        let rb = parse(&with_alerts("", "")).unwrap();
        let route = rb.alerts.alertmanager_route(&ops_critical).unwrap();
        assert_eq!((route.channel.as_str(), route.declare), ("#mini-alerts", Some(Severity::P1)));
        let route = rb.alerts.alertmanager_route(&labels(&[("severity", "critical")])).unwrap();
        assert_eq!(route.channel, "C0123456789");
        assert!(rb.alerts.alertmanager_route(&labels(&[("severity", "info")])).unwrap().mute);
        assert_eq!(rb.alerts.alertmanager_route(&labels(&[])).unwrap().channel, "#mini");

        // The same two routes the other way round: the broader one now
        // takes the group first.
        let swapped = with_alerts(
            "    - match: { severity: critical, team: ops }\n      channel: alerts\n      declare: P1\n    - match: { severity: critical }\n      channel: C0123456789\n",
            "    - match: { severity: critical }\n      channel: C0123456789\n    - match: { severity: critical, team: ops }\n      channel: alerts\n      declare: P1\n",
        );
        let rb = parse(&swapped).unwrap();
        let route = rb.alerts.alertmanager_route(&ops_critical).unwrap();
        assert_eq!((route.channel.as_str(), route.declare), ("C0123456789", None));
    }

    #[test]
    fn bad_conditions_are_explained() {
        for (condition, error) in [
            ("failur_rate > 10%", "56:16: unknown metric `failur_rate` (did you mean `failure_rate`?)"),
            (
                "build_failures > 10%",
                "56:16: unknown metric `build_failures` (expected one of: failure_rate, success_rate, avg_build_time)",
            ),
            ("failure_rate = 10%", "56:16: bad comparison `=` in `failure_rate = 10%`: write `>`, `>=`, `<` or `<=`"),
            (
                "failure_rate above 10%",
                "56:16: bad comparison `above` in `failure_rate above 10%`: write `>`, `>=`, `<` or `<=`",
            ),
            (
                "failure_rate 10%",
                "56:16: missing comparison in `failure_rate 10%`: write `>`, `>=`, `<` or `<=` before the value",
            ),
            ("failure_rate >", "56:16: missing value in `failure_rate >`: `failure_rate` is a percent, e.g. `10%`"),
            ("failure_rate > 10", "56:16: bad value `10` in `failure_rate > 10`: `failure_rate` is a percent, e.g. `10%`"),
            ("failure_rate > 110%", "56:16: `110%` in `failure_rate > 110%` is more than 100%"),
            (
                "avg_build_time > 10%",
                "56:16: bad value `10%` in `avg_build_time > 10%`: `avg_build_time` is a duration, e.g. `10m`, `2h 30m` or `10 minutes`",
            ),
            ("> 10%", "56:16: bad condition `> 10%`: write `<metric> <comparison> <value>`, e.g. `failure_rate > 10%`"),
        ] {
            let text = with_alerts("failure_rate > 10%", condition);
            assert_eq!(errors(&text), [error], "{condition}");
        }
        let text = with_alerts("    condition: \"failure_rate > 10%\"\n", "");
        assert_eq!(
            errors(&text),
            ["55:5: missing `condition` of alert `high-build-failure-rate` (`<metric> <comparison> <value>`, e.g. `failure_rate > 10%`)"]
        );
    }

    #[test]
    fn conditions_and_targets() {
        let condition = |text| parse_condition(text).unwrap();
        let c = condition("failure_rate>10%");
        assert_eq!(
            (c.metric, c.comparison, c.threshold),
            (Metric::FailureRate, Comparison::Above, Quantity::Percent(10.0))
        );
        let c = condition(" success_rate >= 99.5 % ");
        assert_eq!(
            (c.text.as_str(), c.comparison, c.threshold),
            ("success_rate >= 99.5 %", Comparison::AtLeast, Quantity::Percent(99.5))
        );
        let c = condition("average_build_time <= 2h 30m");
        assert_eq!((c.metric, c.comparison), (Metric::AverageBuildTime, Comparison::AtMost));
        assert_eq!(c.threshold, Quantity::Duration(TimeDelta::minutes(150)));
        assert_eq!(condition("avg_build_time < 2 hours 30 minutes").threshold, c.threshold);
        assert!(condition("avg_build_time > 10m").holds(601.0) && !condition("avg_build_time > 10m").holds(600.0));

        let target = |metric, text| parse_target(metric, text).unwrap();
        for (metric, written, text) in [
            (Metric::SuccessRate, "> 95%", "success_rate > 95%"),
            (Metric::AverageBuildTime, "< 5 minutes", "avg_build_time < 5m"),
            (Metric::AverageBuildTime, "<= 1 hour", "avg_build_time <= 1h"),
            (Metric::AverageBuildTime, "< 90 seconds", "avg_build_time < 1m 30s"),
            (Metric::AverageBuildTime, "< 1 day", "avg_build_time < 1d"),
            (Metric::FailureRate, "< 2.5%", "failure_rate < 2.5%"),
        ] {
            assert_eq!(target(metric, written).text, text, "{written}");
        }
        for bad in ["< 5 minutes?", "< 1.5h", "< five minutes", "< 5 weeks", "< 0 minutes"] {
            assert!(parse_target(Metric::AverageBuildTime, bad).is_err(), "{bad}");
        }
        assert!(parse_target(Metric::SuccessRate, "> 10 per day").is_err());
        assert_eq!(Quantity::Count(10.0).to_string(), "10");
    }

    #[test]
    fn kpi_mistakes() {
        assert_eq!(
            errors(&with_alerts("measure: success_rate", "measure: sucess_rate")),
            ["52:90: unknown metric `sucess_rate` (did you mean `success_rate`?)"]
        );
        assert_eq!(
            errors(&with_alerts("target: \"> 95%\"", "target: \"about 95%\"")),
            ["52:72: bad comparison `about` in `about 95%`: write `>`, `>=`, `<` or `<=`"]
        );
        assert_eq!(
            errors(&with_alerts("target: \"> 95%\"", "target: \"< 5m\"")),
            ["52:72: bad value `5m` in `< 5m`: `success_rate` is a percent, e.g. `10%`"]
        );
        // Unmeasured, the target is the runbook's words.
        let rb = parse(&with_alerts("target: \"> 80%\"", "target: most of the time")).unwrap();
        assert_eq!(rb.alerts.kpis[1].target, "most of the time");
        assert_eq!(
            errors(&with_alerts("build-success-rate:", "Build-Success:")),
            ["52:3: KPI id `Build-Success` must be kebab-case (lowercase letters, digits, `-`)"]
        );
        assert_eq!(
            errors(&with_alerts("name: Cache Hit Rate, area: Build, ", "")),
            [
                "53:3: missing `name` of KPI `cache-hit-rate` (how the KPI is shown)",
                "53:3: missing `area` of KPI `cache-hit-rate` (its heading, e.g. `Build Performance`)",
            ]
        );
        assert_eq!(
            errors(&with_alerts("  cache-hit-rate: { name", "  cache-hit-rate: { nme")),
            ["53:21: unknown key `nme` (expected one of: name, area, target, measure)"]
        );
    }

    #[test]
    fn kpi_alert_mistakes() {
        assert_eq!(
            errors(&with_alerts("action: notify_team", "action: notify-team")),
            ["57:13: unknown action `notify-team` of alert `high-build-failure-rate` (did you mean `notify_team`?)"]
        );
        assert_eq!(
            errors(&with_alerts("action: notify_team", "action: page")),
            ["57:13: unknown action `page` of alert `high-build-failure-rate` (expected one of: notify_team, investigate)"]
        );
        assert_eq!(
            errors(&with_alerts("    action: investigate\n", "")),
            ["58:5: missing `action` of alert `slow-builds` (`notify_team` or `investigate`)"]
        );
        assert_eq!(
            errors(&with_alerts("    window: 2h", "    window: 0m")),
            ["61:13: duration `0m` for `window` of alert `slow-builds` must be more than zero"]
        );
        assert!(errors(&with_alerts("    window: 2h", "    window: 2 hours"))[0]
            .starts_with("61:13: bad duration `2 hours` for `window` of alert `slow-builds`: write"));
        for bad in ["0", "-1", "five", "99999999999"] {
            assert_eq!(
                errors(&with_alerts("    min_runs: 3", &format!("    min_runs: {bad}"))),
                [format!(
                    "62:15: bad number `{bad}` for `min_runs` of alert `slow-builds`: write a whole number, 1 or more"
                )]
            );
        }
        assert_eq!(
            errors(&with_alerts("name: Slow builds", "name: high build failure-rate")),
            ["58:11: duplicate alert id `high-build-failure-rate` from name `high build failure-rate` (first used on line 55)"]
        );
        assert_eq!(
            errors(&with_alerts("name: Slow builds", "name: \"!!\"")),
            ["58:11: alert name `!!` has no letters or digits to make its id from"]
        );
        assert_eq!(
            errors(&with_alerts("    action: investigate", "    acton: investigate")),
            ["60:5: unknown key `acton` (expected one of: name, condition, action, window, min_runs, channel)"]
        );
    }

    #[test]
    fn alert_channels_are_words_or_channels() {
        assert_eq!(
            errors(&with_alerts("    channel: alerts\n", "    channel: teem\n")),
            ["63:14: bad channel `teem` for `channel` of alert `slow-builds` (did you mean `team`?)"]
        );
        assert_eq!(
            errors(&with_alerts("    channel: alerts\n", "    channel: devops\n")),
            ["63:14: bad channel `devops` for `channel` of alert `slow-builds` (write `alerts` or `team` for the runbook's `channels`, or `\"#name\"` (lowercase letters, digits, `-`, `_`) or a channel id such as `C0123456789`)"]
        );
        assert_eq!(
            errors(&with_alerts("    channel: alerts\n", "    channel: #ops\n")),
            ["63:12: `channel` of alert `slow-builds` is empty (quote a channel name: `\"#devops\"`; an unquoted `#` starts a YAML comment; or leave it out for `team`)"]
        );
        let rb = parse(&with_alerts("    channel: alerts\n", "    channel: \"#build-alerts\"\n")).unwrap();
        assert_eq!(rb.alerts.kpi_alerts[1].channel, "#build-alerts");
        // A broken `channels` is reported once; the words that would name it
        // are not reported again.
        let text = with_alerts("", "").replace("  team: \"#mini\"", "  team: mini");
        assert_eq!(errors(&text).len(), 1, "{:?}", errors(&text));
    }

    #[test]
    fn webhook_mistakes() {
        for (from, to, error) in [
            (
                "    branches: [default, release]",
                "    branches: []",
                "66:15: `branches` lists no branch, so no workflow run would alert (`default` is the repository's default branch)",
            ),
            ("    branches: [default, release]", "    branches: [default, \"\"]", "66:25: empty entry in `branches`"),
            (
                "failed: [failure]",
                "failed: [failure, failed]",
                "73:27: unknown deployment state `failed` in `failed` of deployment `staging` (GitHub's states are: error, failure, inactive, in_progress, pending, queued, success)",
            ),
            (
                "failed: [failure]",
                "failed: [failur]",
                "73:18: unknown deployment state `failur` in `failed` of deployment `staging` (did you mean `failure`?)",
            ),
            (
                "failed: [failure]",
                "failed: []",
                "73:17: `failed` of deployment `staging` lists no state, so it would never alert (e.g. `[failure, error]`, or leave it out for those two)",
            ),
            (
                "environment: staging",
                "environment: Production",
                "72:22: duplicate environment `Production` (first used on line 70; environments are matched ignoring case)",
            ),
            (
                "declare: p0",
                "declare: P5",
                "71:18: unknown severity `P5` for `declare` of deployment `production` (expected one of: P0, P1, P2, P3)",
            ),
            (
                "      mute: true",
                "      mute: maybe",
                "82:13: bad value `maybe` for `mute` of Alertmanager route 3: write `true` or `false`",
            ),
            (
                "      mute: true",
                "      mute: true\n      declare: P2",
                "82:13: Alertmanager route 3 both mutes and declares: a muted group tells nobody, so keep one of the two",
            ),
            (
                "    - channel: team\n",
                "    - channel: team\n    - match: { severity: warning }\n",
                "84:7: Alertmanager route 5 is never used: route 4 above it has no `match` and takes every group",
            ),
            (
                "team: ops",
                "team-name: ops",
                "76:36: bad label name `team-name` in `match` of Alertmanager route 1 (letters, digits and `_`, not starting with a digit)",
            ),
            ("team: ops", "team: ", "76:40: label `team` in `match` of Alertmanager route 1 has no value"),
            (
                "      channel: C0123456789",
                "      channel: c0123456789",
                "80:16: bad channel `c0123456789` for `channel` of Alertmanager route 2 (write `alerts` or `team` for the runbook's `channels`, or `\"#name\"` (lowercase letters, digits, `-`, `_`) or a channel id such as `C0123456789`)",
            ),
            ("  github:", "  gitlab:", "65:3: unknown key `gitlab` (expected one of: github, alertmanager)"),
            (
                "    deployments:",
                "    deployment:",
                "69:5: unknown key `deployment` (expected one of: branches, channel, ignore_workflows, deployments)",
            ),
            (
                "      - environment: staging",
                "      - env: staging",
                "72:9: unknown key `env` (expected one of: environment, failed, declare, channel)",
            ),
            (
                "    - match: { severity: info }",
                "    - matches: { severity: info }",
                "81:7: unknown key `matches` (expected one of: match, channel, declare, mute)",
            ),
        ] {
            assert_eq!(errors(&with_alerts(from, to)), [error], "{to}");
        }
        // A catch-all with a mistake of its own still hides what follows.
        assert_eq!(
            errors(&with_alerts("    - channel: team\n", "    - channel: teem\n    - channel: alerts\n")),
            [
                "83:16: bad channel `teem` for `channel` of Alertmanager route 4 (did you mean `team`?)",
                "84:7: Alertmanager route 5 is never used: route 4 above it has no `match` and takes every group",
            ]
        );
        // A label's value is text, whatever it looks like.
        let rb = parse(&with_alerts("team: ops", "code: 500")).unwrap();
        assert_eq!(rb.alerts.alertmanager[0].matchers[1], ("code".to_owned(), "500".to_owned()));
    }

    #[test]
    fn sections_written_empty_are_refused() {
        let text = format!("{}kpis:\nalerts:\nwebhooks:\n  alertmanager:\n  github:\n    deployments:\n", mini());
        assert_eq!(
            errors(&text),
            [
                "51:5: `kpis` is empty (leave it out to keep the seed's KPIs, or write `kpis: {}` for none)",
                "52:7: `alerts` is empty (leave it out to keep the seed's alerts, or write `alerts: []` for none)",
                "54:15: `alertmanager` is empty (leave it out to keep the seed's routes, or write `alertmanager: []` to send every group to `team`)",
                "56:16: `deployments` is empty (leave it out to keep the seed's rule for `production`, or write `deployments: []` for none)",
            ]
        );
        let text = format!("{}alerts:\n  -\n", mini());
        assert_eq!(errors(&text), ["52:4: empty alert entry (expected `name`, `condition` and `action`)"]);
    }

    #[test]
    fn wrong_types_in_alert_sections_carry_their_place() {
        assert!(errors(&with_alerts("    min_runs: 3", "    min_runs: [3]"))[0].starts_with("62:15: "));
        assert!(errors(&with_alerts("condition: \"failure_rate > 10%\"", "condition: [failure_rate]"))[0]
            .starts_with("56:16: "));
        assert!(errors(&format!("{}alerts:\n  name: x\n", mini()))[0].starts_with("52:3: "));
        assert!(errors(&format!("{}kpis: [a, b]\n", mini()))[0].starts_with("51:7: "));
    }

    #[test]
    fn several_alert_mistakes_are_all_reported_in_file_order() {
        let text = with_alerts("", "")
            .replacen("measure: success_rate", "measure: succes_rate", 1)
            .replacen("failure_rate > 10%", "failure_rate => 10%", 1)
            .replacen("    min_runs: 3", "    min_runs: 0", 1)
            .replacen("declare: p0", "declare: p9", 1)
            .replacen("      mute: true", "      mute: yes", 1);
        let places: Vec<String> = errors(&text).iter().map(|e| e.split(": ").next().unwrap().to_owned()).collect();
        assert_eq!(places, ["52:90", "56:16", "62:15", "71:18", "82:13"]);
    }

    #[test]
    fn also_page_names_roles_that_exist() {
        let text = mini()
            .replace("    escalation: [on-call, lead]\n", "    escalation: [on-call, lead]\n    also_page: [leed]\n");
        let found = errors(&text);
        assert!(
            found
                .iter()
                .any(|e| e.contains("P0 `also_page` names role `leed`, which is not defined (did you mean `lead`?)")),
            "{found:?}"
        );
        let text = mini()
            .replace("    escalation: [on-call, lead]\n", "    escalation: [on-call, lead]\n    also_page: [lead]\n");
        assert_eq!(parse(&text).unwrap().policy(crate::Severity::P0).also_page, ["lead"]);
        assert!(parse(&mini()).unwrap().policy(crate::Severity::P0).also_page.is_empty());
    }

    /// Asserts a mistake starting with `starts` was reported at `line`:`col`.
    fn reported_at(found: &[String], line: usize, col: usize, starts: &str) {
        let expected = format!("{line}:{col}: {starts}");
        assert!(found.iter().any(|e| e.starts_with(&expected)), "no `{expected}` in {found:#?}");
    }

    #[test]
    fn rotations_are_read_in_the_runbooks_zone() {
        let text = format!(
            "{}oncall:\n  rotations:\n    on-call:\n      members: [U0ALICE, W0BOB]\n      shift: 1w\n      handoff: 2026-11-30 09:00\n",
            mini()
        );
        let rb = parse(&text).unwrap();
        let [rotation] = &rb.oncall.rotations[..] else { panic!("{:?}", rb.oncall) };
        assert_eq!(rotation.members, ["U0ALICE", "W0BOB"]);
        assert_eq!(rotation.shift, ShiftLength::Days(7));
        let on_call = rb.role("on-call").unwrap();
        let monday = "2026-11-30T08:00:00Z".parse().unwrap(); // 09:00 in Berlin
        assert_eq!(rb.paged(on_call, monday), vec![Mention::User("U0ALICE".into())]);
        assert_eq!(parse(&mini()).unwrap().oncall, OnCall::default(), "no section, no rotations");
    }

    #[test]
    fn rotation_mistakes_are_reported_where_they_are() {
        let text = format!(
            "{}oncall:\n  rotations:\n    on-cal:\n      members: [alice]\n      shift: 1 fortnight\n      handoff: next monday\n    lead:\n      members: []\n      shift: 1d\n",
            mini()
        );
        let found = errors(&text);
        let base = mini().lines().count();
        let at = |line: usize, col: usize, starts: &str| reported_at(&found, base + line, col, starts);
        at(3, 5, "a rotation names role `on-cal`, which is not defined (did you mean `on-call`?)");
        at(4, 17, "bad member `alice` of the `on-cal` rotation");
        at(5, 14, "bad `shift` of the `on-cal` rotation");
        at(6, 16, "bad `handoff` `next monday` of the `on-cal` rotation");
        at(8, 16, "`members` of the `lead` rotation is empty");
        at(7, 5, "missing `handoff` of the `lead` rotation");
    }

    const WEEKNIGHTS: &str = "oncall:\n  rotations:\n    on-call:\n      members: [U0ALICE, U0BOB]\n      shift: 1w\n      handoff: 2026-11-30 09:00\n      layers:\n        - name: weeknights\n          members: [U0CAROL, U0DAVE]\n          shift: 1d\n          handoff: 2026-11-30 17:00\n          only:\n            mon-fri: 17:00-09:00\n";

    #[test]
    fn a_rotations_layers_are_read_in_order_with_their_hours() {
        let rb = parse(&format!("{}{WEEKNIGHTS}", mini())).unwrap();
        let [rotation] = &rb.oncall.rotations[..] else { panic!("{:?}", rb.oncall) };
        let [layer] = &rotation.layers[..] else { panic!("{rotation:?}") };
        assert_eq!((layer.name.as_str(), layer.shift), ("weeknights", ShiftLength::Days(1)));
        assert_eq!(rotation.everyone(), ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"]);
        let on_call = rb.role("on-call").unwrap();
        // Tuesday 2026-12-01, in Berlin: 12:00 is the week's, 20:00 the layer's.
        let noon = "2026-12-01T11:00:00Z".parse().unwrap();
        let evening = "2026-12-01T19:00:00Z".parse().unwrap();
        assert_eq!(rb.paged(on_call, noon), vec![Mention::User("U0ALICE".into())]);
        assert_eq!(rb.paged(on_call, evening), vec![Mention::User("U0DAVE".into())]);
    }

    #[test]
    fn check_warns_of_roles_that_page_the_whole_channel_unless_a_rotation_covers_them() {
        let seed = check(Runbook::SEED_YAML).unwrap();
        assert_eq!(seed.warnings.len(), seed.runbook.roles.len(), "{:#?}", seed.warnings);
        let rotated = Runbook::SEED_YAML.replace(
            "oncall:\n  rotations: {}",
            "oncall:\n  rotations:\n    on-call-engineer:\n      members: [U0ALICE]\n      shift: 1w\n      handoff: 2026-11-30 09:00",
        );
        let checked = check(&rotated).unwrap();
        assert_eq!(checked.warnings.len(), seed.warnings.len() - 1);
        assert!(checked.warnings.iter().all(|w| !w.message.contains("`on-call-engineer`")), "{:#?}", checked.warnings);
    }

    #[test]
    fn permissions_are_read_per_action_and_the_seed_reserves_closing_and_lowering_a_p0() {
        use crate::runbook::permissions::{Action, Allowed};
        let seed = Runbook::seed();
        let leads = vec![
            Allowed::Commander,
            Allowed::Role("devops-team-lead".into()),
            Allowed::Role("senior-devops-engineer".into()),
        ];
        assert_eq!(seed.permissions.rules, vec![(Action::ResolveP0, leads.clone()), (Action::LowerSeverity, leads)]);
        let text = format!("{}permissions:\n  declare_p0: [on-call, U0ALICE, S0ONCALL, everyone]\n", mini());
        let rb = parse(&text).unwrap();
        assert_eq!(
            rb.permissions.rules,
            vec![(
                Action::Declare(crate::severity::Severity::P0),
                vec![
                    Allowed::Role("on-call".into()),
                    Allowed::User("U0ALICE".into()),
                    Allowed::UserGroup("S0ONCALL".into()),
                    Allowed::Everyone
                ]
            )]
        );
    }

    #[test]
    fn permission_mistakes_are_reported_where_they_are() {
        let text = format!(
            "{}permissions:\n  resolv: [commander]\n  acknowledge: [on-cal, \"@here\"]\n  flag_step: []\n",
            mini()
        );
        let found = errors(&text);
        let base = mini().lines().count();
        let at = |line: usize, col: usize, starts: &str| reported_at(&found, base + line, col, starts);
        at(2, 3, "unknown action `resolv` in `permissions` (did you mean `resolve`?)");
        at(3, 17, "`permissions.acknowledge` names role `on-cal`, which is not defined (did you mean `on-call`?)");
        at(3, 25, "`permissions.acknowledge`: write `everyone` rather than `@here`");
        at(4, 14, "`permissions.flag_step` is empty");
    }

    #[test]
    fn layer_mistakes_are_reported_where_they_are() {
        let text = format!(
            "{}{}        - name: weeknights\n          members: [carol]\n          shift: 1d\n          only:\n            mon-fir: 17:00-24:00\n        - members: [U0ERIN]\n          shift: 1w\n          handoff: 2026-11-30 09:00\n          only: {{}}\n",
            mini(),
            WEEKNIGHTS
        );
        let found = errors(&text);
        let base = mini().lines().count() + WEEKNIGHTS.lines().count();
        let at = |line: usize, col: usize, starts: &str| reported_at(&found, base + line, col, starts);
        at(1, 17, "two layers of the `on-call` rotation are called `weeknights`");
        at(2, 21, "bad member `carol` of the `weeknights` layer of the `on-call` rotation");
        at(1, 11, "missing `handoff` of the `weeknights` layer of the `on-call` rotation");
        at(
            5,
            13,
            "unknown day `fir` in `only` of the `weeknights` layer of the `on-call` rotation (did you mean `fri`?)",
        );
        at(9, 17, "`only` of the `layer 3` layer of the `on-call` rotation: no day has any hours");
    }

    #[test]
    fn a_rotation_asks_for_an_acknowledgement_and_reminds_by_default_and_either_can_be_turned_off() {
        let rotation = |extra: &str| {
            format!(
                "{}oncall:\n  rotations:\n    on-call:\n      members: [U0ALICE]\n      shift: 1w\n      handoff: 2026-11-30 09:00\n{extra}",
                mini()
            )
        };
        let rb = parse(&rotation("")).unwrap();
        let r = &rb.oncall.rotations[0];
        assert_eq!(r.acknowledge_within, Some(TimeDelta::minutes(15)));
        assert_eq!(r.remind_before, Some(TimeDelta::hours(1)));
        assert_eq!(r.escalate_to, None);

        let rb = parse(&rotation("      acknowledge_within: 30m\n      remind_before: off\n      escalate_to: lead\n"))
            .unwrap();
        let r = &rb.oncall.rotations[0];
        assert_eq!(r.acknowledge_within, Some(TimeDelta::minutes(30)));
        assert_eq!(r.remind_before, None);
        assert_eq!(r.escalate_to.as_deref(), Some("lead"));
        let rb = parse(&rotation("      acknowledge_within: OFF\n")).unwrap();
        assert_eq!(rb.oncall.rotations[0].acknowledge_within, None);

        let base = mini().lines().count();
        let found = errors(&rotation("      acknowledge_within: soon\n      escalate_to: leed\n"));
        let expected = format!(
            "{}:27: bad duration `soon` for `acknowledge_within` of the `on-call` rotation (or `off`)",
            base + 7
        );
        assert!(found.iter().any(|e| e.starts_with(&expected)), "no `{expected}` in {found:#?}");
        let expected = format!("{}:20: `escalate_to` of the `on-call` rotation names role `leed`", base + 8);
        assert!(found.iter().any(|e| e.starts_with(&expected)), "no `{expected}` in {found:#?}");

        let rb = parse(&rotation("      usergroup: S0ONCALL\n")).unwrap();
        assert_eq!(rb.oncall.rotations[0].usergroup.as_deref(), Some("S0ONCALL"));
        assert_eq!(parse(&rotation("")).unwrap().oncall.rotations[0].usergroup, None);
        let found = errors(&rotation("      usergroup: oncall-devops\n"));
        let expected = format!("{}:18: bad `usergroup` `oncall-devops` of the `on-call` rotation", base + 7);
        assert!(found.iter().any(|e| e.starts_with(&expected)), "no `{expected}` in {found:#?}");
    }

    /// A `pipeline` section for [`MINI`]. Appended to `mini()`, its first
    /// line is line 51.
    const PIPELINE: &str = "\
pipeline:
  environments:
    production:
      repository: octo-org/shop
      ref: release
      may: [on-call, U0ALICE, S0RELEASE]
      channel: alerts
      deploy:
        workflow: deploy.yml
        inputs: { environment: \"{environment}\", ref: \"{ref}\", requested_by: \"{by}\", opsbot_id: \"{id}\" }
      rollback:
        workflow: 161335
        inputs:
          to_ref: \"{ref}\"
          note: \"rollback of {environment} by <@{by}> ({id}) {{opsbot}}\"
          dry_run: false
    staging:
      deploy: { workflow: deploy.yaml }
      rollback: { workflow: deploy.yaml }
";

    /// [`mini`] with [`PIPELINE`], after `from` is replaced by `to` in it
    /// (once; it must be there).
    fn with_pipeline(from: &str, to: &str) -> String {
        assert!(PIPELINE.contains(from), "{from:?} is not in PIPELINE");
        format!("{}{}", mini(), PIPELINE.replacen(from, to, 1))
    }

    #[test]
    fn the_pipeline_section_is_read_with_its_defaults_and_channel_words() {
        let rb = parse(&with_pipeline("", "")).unwrap();
        let [production, staging] = &rb.pipeline.environments[..] else { panic!("{:?}", rb.pipeline) };
        assert_eq!(production.name, "production");
        assert_eq!(production.repository.as_deref(), Some("octo-org/shop"));
        assert_eq!(production.default_ref.as_deref(), Some("release"));
        assert_eq!(
            production.may,
            [
                Deployer::Role("on-call".into()),
                Deployer::User("U0ALICE".into()),
                Deployer::UserGroup("S0RELEASE".into())
            ]
        );
        assert_eq!(production.channel, "#mini-alerts", "`alerts` is the runbook's alerts channel");
        assert_eq!(production.deploy.workflow, Workflow::File("deploy.yml".into()));
        assert_eq!(production.rollback.workflow, Workflow::Id(161335));
        assert_eq!(
            production.inputs(Action::Rollback, "v1.2.3", "U0BOB", "DEP-7"),
            [
                ("to_ref".to_owned(), "v1.2.3".to_owned()),
                ("note".to_owned(), "rollback of production by <@U0BOB> (DEP-7) {opsbot}".to_owned()),
                ("dry_run".to_owned(), "false".to_owned()),
            ],
            "inputs keep the file's order, and a value is text whatever it looks like"
        );

        assert_eq!(staging.name, "staging");
        assert_eq!((&staging.repository, &staging.default_ref), (&None, &None));
        assert!(staging.may.is_empty(), "no `may`: everyone");
        assert_eq!(staging.channel, "#mini", "`channel` defaults to `team`");
        assert!(staging.deploy.inputs.is_empty() && !staging.deploy.carries_id(), "a workflow may take no inputs");
        assert_eq!(rb.pipeline.environment("STAGING").map(|e| e.name.as_str()), Some("staging"));
    }

    #[test]
    fn a_pipeline_left_out_or_written_empty_keeps_the_seeds_environments() {
        for text in [mini(), format!("{}pipeline:\n", mini()), format!("{}pipeline: {{}}\n", mini())] {
            let rb = parse(&text).unwrap();
            assert_eq!(rb.pipeline, Pipeline::seed_defaults(&rb.channels), "{text}");
            assert_eq!(rb.pipeline.environments[0].channel, "#mini");
        }
        let rb = parse(&format!("{}pipeline: {{environments: {{}}}}\n", mini())).unwrap();
        assert!(rb.pipeline.environments.is_empty(), "written empty on purpose: none");
        assert_eq!(
            errors(&format!("{}pipeline:\n  environments:\n", mini())),
            ["52:15: `environments` is empty (leave it out to keep the seed's `production` and `staging`, or write `environments: {}` for none)"]
        );
    }

    #[test]
    fn the_seeds_pipeline_section_is_the_seed_defaults_and_is_read_not_defaulted() {
        let rb = Runbook::seed();
        assert_eq!(rb.pipeline, Pipeline::seed_defaults(&rb.channels));
        for environment in &rb.pipeline.environments {
            for role in &environment.may {
                let Deployer::Role(id) = role else { panic!("{role:?}") };
                assert!(rb.role(id).is_some(), "{} names {id}", environment.name);
            }
        }
        let changed = parse(&Runbook::SEED_YAML.replacen("      # ref: main", "      ref: main", 1)).unwrap();
        assert_eq!(changed.pipeline.environments[0].default_ref.as_deref(), Some("main"));
    }

    #[test]
    fn pipeline_mistakes_are_reported_with_their_place_and_a_hint() {
        for (from, to, error) in [
            (
                "ref: \"{ref}\"",
                "ref: \"{reff}\"",
                "60:54: unknown placeholder `{reff}` in input `ref` of `deploy` of environment `production` (did you mean `{ref}`?)",
            ),
            (
                "to_ref: \"{ref}\"",
                "to_ref: \"{ref\"",
                "64:19: unclosed `{` in input `to_ref` of `rollback` of environment `production` (close the placeholder, e.g. `{ref}`, or write `{{` for a brace)",
            ),
            (
                "{{opsbot}}",
                "{opsbot}}",
                "65:17: unknown placeholder `{opsbot}` in input `note` of `rollback` of environment `production` (expected one of: `{environment}`, `{ref}`, `{by}`, `{id}`)",
            ),
            (
                "        workflow: deploy.yml",
                "        workflow: \"\"",
                "59:19: `workflow` in `deploy` of environment `production` is empty (a file in .github/workflows such as `deploy.yml`, or a numeric workflow id)",
            ),
            (
                "        workflow: deploy.yml",
                "        workflow: .github/workflows/deploy.yml",
                "59:19: bad workflow `.github/workflows/deploy.yml`: write the file name alone: `deploy.yml` (opsbot looks in .github/workflows)",
            ),
            (
                "        workflow: deploy.yml",
                "        workflow: Deploy",
                "59:19: bad workflow `Deploy`: write a file in .github/workflows such as `deploy.yml`, or the workflow's numeric id",
            ),
            (
                "    staging:",
                "    Production:",
                "67:5: duplicate environment `Production` (first used on line 53; environments are matched ignoring case)",
            ),
            (
                "    staging:",
                "    \"pre prod\":",
                "67:5: bad environment name `pre prod`: one word, since it is typed in `/pipeline deploy <environment>`",
            ),
            (
                "may: [on-call,",
                "may: [on-cal,",
                "56:13: `may` of environment `production` names `on-cal`, which is neither a role nor a Slack user or user group id (did you mean `on-call`?)",
            ),
            (
                "may: [on-call,",
                "may: [release-managers,",
                "56:13: `may` of environment `production` names `release-managers`, which is neither a role nor a Slack user or user group id (defined roles: lead, on-call; or a user id `U…`/`W…` or a user group id `S…`)",
            ),
            (
                "U0ALICE,",
                "\"<@U0ALICE>\",",
                "56:22: `may` of environment `production` names `<@U0ALICE>`, which is neither a role nor a Slack user or user group id (write the bare id `U0ALICE`)",
            ),
            (
                "U0ALICE,",
                "\"@here\",",
                "56:22: `@here` in `may` of environment `production`: leave `may` out to let everyone deploy, or list roles and Slack ids",
            ),
            ("U0ALICE,", "\"\",", "56:22: empty entry in `may` of environment `production`"),
            (
                "repository: octo-org/shop",
                "repository: https://github.com/octo-org/shop.git",
                "54:19: bad repository `https://github.com/octo-org/shop.git` of environment `production` (write `octo-org/shop`)",
            ),
            (
                "repository: octo-org/shop",
                "repository: shop",
                "54:19: bad repository `shop` of environment `production` (write `owner/name`, e.g. `octo-org/shop`)",
            ),
            (
                "ref: release",
                "ref: \"release; rm -rf /\"",
                "55:12: bad ref `release; rm -rf /` of environment `production`: a branch, tag or commit, in letters, digits and `.`, `_`, `-`, `/`, `+`, `@` (or leave it out for the repository's default branch)",
            ),
            (
                "      channel: alerts",
                "      channel: alert",
                "57:16: bad channel `alert` for `channel` of environment `production` (did you mean `alerts`?)",
            ),
            (
                "      rollback: { workflow: deploy.yaml }\n",
                "",
                "67:5: missing `rollback` of environment `staging` (the `workflow` opsbot dispatches, and its `inputs`)",
            ),
            (
                "      deploy: { workflow: deploy.yaml }",
                "      deploy:",
                "68:13: `deploy` of environment `staging` is empty (the `workflow` opsbot dispatches, and its `inputs`)",
            ),
            (
                "          dry_run: false",
                "          dry run: false",
                "66:11: bad input name `dry run` in `rollback` of environment `production` (letters, digits, `_` and `-`, starting with a letter or `_`)",
            ),
            (
                "          dry_run: false",
                "          dry_run:",
                "66:18: input `dry_run` in `rollback` of environment `production` has no value (write `\"\"` for an empty one)",
            ),
            (
                "        workflow: 161335",
                "        workflow: 0",
                "62:19: bad workflow id `0`: a workflow id is a whole number above zero",
            ),
            (
                "      ref: release",
                "      branch: release",
                "55:7: unknown key `branch` (expected one of: repository, ref, may, channel, timeout, deploy, rollback)",
            ),
            (
                "      rollback: { workflow: deploy.yaml }",
                "      rollback: { workflows: deploy.yaml }",
                "69:19: unknown key `workflows` (expected one of: workflow, inputs)",
            ),
            ("  environments:", "  environment:", "52:3: unknown key `environment` (expected one of: environments)"),
        ] {
            assert_eq!(errors(&with_pipeline(from, to)), [error], "{to}");
        }
        // An unquoted `{ref}` is a YAML map, not text; serde says where.
        assert!(errors(&with_pipeline("ref: \"{ref}\"", "ref: {ref}"))[0].starts_with("60:"));
        // An environment with nothing under it.
        assert_eq!(
            errors(&format!("{}pipeline:\n  environments:\n    production:\n", mini())),
            ["53:5: environment `production` is empty (expected `deploy` and `rollback`, each with a `workflow`)"]
        );
    }

    #[test]
    fn an_environment_follows_its_deployments_for_its_timeout_an_hour_unless_it_says() {
        let rb =
            parse(&with_pipeline("      channel: alerts\n", "      channel: alerts\n      timeout: 90m\n")).unwrap();
        assert_eq!(rb.pipeline.environments[0].timeout, TimeDelta::minutes(90));
        assert_eq!(rb.pipeline.environments[1].timeout, TimeDelta::hours(1), "left out: an hour");
        assert_eq!(
            errors(&with_pipeline("      channel: alerts\n", "      channel: alerts\n      timeout: soon\n")),
            ["58:16: bad duration `soon` for `timeout` of environment `production`: write a whole number and a unit (`s`, `m`, `h`, `d`), e.g. `30s`, `5m`, `4h`, `2h 30m`, `1d`"]
        );
        assert_eq!(
            errors(&with_pipeline("      channel: alerts\n", "      channel: alerts\n      timeout: 0m\n")),
            ["58:16: duration `0m` for `timeout` of environment `production` must be more than zero"]
        );
    }

    #[test]
    fn several_pipeline_mistakes_are_all_reported_in_file_order() {
        let text = with_pipeline("", "")
            .replacen("ref: release", "ref: \"a..b\"", 1)
            .replacen("may: [on-call,", "may: [oncall,", 1)
            .replacen("ref: \"{ref}\"", "ref: \"{rev}\"", 1)
            .replacen("        workflow: 161335", "        workflow: rollback", 1)
            .replacen("    staging:", "    STAGING:", 1)
            .replacen("      rollback: { workflow: deploy.yaml }", "      rollback: { workflow: \"\" }", 1);
        let places: Vec<String> = errors(&text).iter().map(|e| e.split(": ").next().unwrap().to_owned()).collect();
        assert_eq!(places, ["55:12", "56:13", "60:54", "62:19", "69:29"]);
    }

    #[test]
    fn a_step_may_name_a_check_and_an_unknown_one_gets_a_suggestion() {
        let with_check = |check: &str| {
            MINI.replace(
                "            command: curl -f https://example.com/health\n",
                &format!("            command: curl -f https://example.com/health\n            check: {check}\n"),
            )
        };
        let rb = parse(&with_check("default_branch_status")).unwrap();
        let step = &rb.policy(Severity::P0).playbook[0].steps[0];
        assert_eq!(step.check, Some(Figure::DefaultBranchStatus));
        assert_eq!(step.command.as_deref(), Some("curl -f https://example.com/health"));
        assert_eq!(
            errors(&with_check("failed_run_24h")),
            ["23:20: unknown check `failed_run_24h` in a step of Act in P0 playbook (did you mean `failed_runs_24h`?)"]
        );
        assert_eq!(
            errors(&with_check("uptime")),
            ["23:20: unknown check `uptime` in a step of Act in P0 playbook (expected one of: failed_runs_24h, success_rate_24h, success_rate_7d, build_time_24h, slowest_workflows_7d, queued_runs, default_branch_status, deployments_7d, kpi_trend_4w)"]
        );
        // A step with a check and no command.
        let text =
            MINI.replace("        steps: [Look around]", "        steps: [{text: Look around, check: queued_runs}]");
        let rb = parse(&text).unwrap();
        let step = &rb.checklists[0].sections[0].steps[0];
        assert_eq!((step.command.as_deref(), step.check), (None, Some(Figure::QueuedRuns)));
    }

    #[test]
    fn the_seeds_routines_show_the_figures_their_steps_are_about() {
        let rb = Runbook::seed();
        let checks = |id: &str| {
            let checklist = rb.checklists.iter().find(|c| c.id == id).unwrap();
            checklist
                .sections
                .iter()
                .flat_map(|s| &s.steps)
                .filter_map(|s| s.check.map(|c| (s.text.as_str(), c)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            checks("morning-health-check"),
            [
                ("Check last 24 hours of workflow runs", Figure::SuccessRate24h),
                ("Count failures", Figure::FailedRuns24h),
                ("Check average build times", Figure::BuildTime24h),
                ("Monitor runner queue times", Figure::QueuedRuns),
                ("Update team on pipeline status", Figure::DefaultBranchStatus),
            ]
        );
        assert_eq!(
            checks("pipeline-performance-review"),
            [
                ("Generate weekly performance report", Figure::SuccessRate7d),
                ("Analyze trends", Figure::KpiTrend4w),
                ("Optimize workflow efficiency", Figure::SlowestWorkflows7d),
            ]
        );
        assert_eq!(
            checks("comprehensive-pipeline-assessment"),
            [
                ("Review build time trends", Figure::KpiTrend4w),
                ("Review deployment frequency and success rates", Figure::Deployments7d),
                ("Identify workflow optimization opportunities", Figure::SlowestWorkflows7d),
            ]
        );
        // Every figure is shown somewhere in the seed.
        let shown: HashSet<Figure> =
            rb.checklists.iter().flat_map(|c| &c.sections).flat_map(|s| &s.steps).filter_map(|s| s.check).collect();
        assert_eq!(shown.len(), Figure::ALL.len());
    }

    #[test]
    fn display_is_line_column_message() {
        let e = RunbookError { line: 12, column: 5, message: "unknown key `escalaton`".into() };
        assert_eq!(e.to_string(), "12:5: unknown key `escalaton`");
    }
}
