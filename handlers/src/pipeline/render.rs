//! What `/pipeline` answers look like: the status against the KPIs, the
//! latest runs, and GitHub's troubles told in words. Every answer keeps
//! within Block Kit's limits, however many runs GitHub lists.

use super::figures::{self, Figures, KpiReading};
use crate::codec::{Button, ListedRun};
use crate::decision::Reply;
use crate::github::{Activity, Lookup, Repo, RunConclusion, RunRecord, RunState, Unavailable};
use crate::runbook::alerts::Quantity;
use crate::runbook::Runbook;
use crate::text::{duration, escape, slack_date, truncate};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

pub const NO_REPOSITORY: &str = "Which repository? Name one, `/pipeline status octo-org/shop`, or ask an admin \
to set `GITHUB_REPOSITORY` so `/pipeline` knows yours.";

/// How many runs `/pipeline runs` lists: one section each, well within
/// the 50 blocks of a message.
pub const RUNS_SHOWN: usize = 15;
/// How many workflows the status lists by failures.
const FAILING_SHOWN: usize = 10;

/// The acknowledgement shown while GitHub is asked.
pub fn asking(lookup: &Lookup) -> String {
    match lookup {
        Lookup::Activity { repo, hours } => format!("⏳ Asking GitHub about the last {hours} h of `{repo}`…"),
        Lookup::Runs { repo, .. } => format!("⏳ Asking GitHub for the latest runs of `{repo}`…"),
    }
}

/// GitHub could not answer: why, and what the person can do.
pub fn unavailable(why: &Unavailable, repo: Option<&Repo>) -> Reply {
    let text = match why {
        Unavailable::NotConnected => "opsbot is not connected to GitHub yet. An admin sets `GITHUB_TOKEN` (a \
fine-grained token with *Actions: read*, *Deployments: read* and *Contents: read*; *Actions: write* to re-run and \
deploy) or a GitHub App (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY`), and `GITHUB_REPOSITORY`; the README's \
\"Connect GitHub\" section says how."
            .to_owned(),
        Unavailable::RateLimited { resets } => format!(
            "GitHub's rate limit for opsbot is spent; it resets at {}. Try again then: opsbot does not ask \
GitHub before it resets.",
            slack_date(*resets)
        ),
        Unavailable::NotFound { what } => match repo {
            Some(repo) => format!(
                "GitHub does not know {} in `{repo}`, or opsbot's token cannot see it (GitHub answers the same for both).",
                escape(what)
            ),
            None => format!("GitHub does not know {}, or opsbot's token cannot see it.", escape(what)),
        },
        Unavailable::Refused { status, message } => format!(
            "GitHub refused opsbot's request ({status}: {}). The token may lack a permission the README's \
\"Connect GitHub\" section lists.",
            escape(&truncate(message, 300))
        ),
        Unavailable::Down { why } => format!(
            "GitHub did not answer ({}). Try again in a minute; https://www.githubstatus.com says whether it is GitHub.",
            escape(&truncate(why, 200))
        ),
    };
    Reply::text(format!("⚠️ {text}"))
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": truncate(text, crate::blocks::HEADER_MAX)}})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, crate::blocks::SECTION_MAX)}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, 2000)}]})
}

fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", duration(now - at))
}

pub(crate) fn icon(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "⏸️",
        RunState::InProgress => "🔄",
        RunState::Completed(RunConclusion::Success) => "✅",
        RunState::Completed(RunConclusion::Failure) => "❌",
        RunState::Completed(RunConclusion::Cancelled) => "⊘",
        RunState::Completed(RunConclusion::Other) => "➖",
    }
}

pub(crate) fn run_link(run: &RunRecord) -> String {
    format!("<{}|{} #{}>", run.url, escape(&run.workflow), run.number)
}

fn reading_line(r: &KpiReading<'_>) -> String {
    let value = r.value_text().unwrap_or_else(|| "no finished runs".to_owned());
    let mark = match r.met {
        Some(true) => "✅",
        Some(false) => "⚠️",
        None => "➖",
    };
    format!("{mark} *{}*: {value} (target {})", escape(&r.kpi.name), escape(&r.kpi.target))
}

fn window_counts(f: &Figures<'_>) -> String {
    let mut parts = vec![format!("{} passed", f.succeeded), format!("{} failed", f.failed)];
    if f.cancelled > 0 {
        parts.push(format!("{} cancelled", f.cancelled));
    }
    let rate = f.success_rate.map(|r| format!(", success rate {r:.1}%")).unwrap_or_default();
    format!("*Runs*: {} ({}){rate}", f.runs, parts.join(", "))
}

fn build_times(f: &Figures<'_>) -> String {
    match (f.median, f.p95) {
        (Some(median), Some(p95)) => {
            format!("*Build time*: median {}, p95 {}", Quantity::Duration(median), Quantity::Duration(p95))
        }
        _ => "*Build time*: no finished runs".to_owned(),
    }
}

/// `/pipeline status`: the window's runs, the KPIs against their targets,
/// what is failing, what is running, and the default branch's last run.
pub fn status(activity: &Activity, hours: u32, runbook: &Runbook, now: DateTime<Utc>) -> Reply {
    let f = figures::of(activity);
    let repo = &activity.repo;
    let mut blocks = vec![header(&format!("Pipeline of {repo}, last {hours} h"))];
    if activity.runs.is_empty() {
        blocks.push(section(&format!("No workflow runs in the last {hours} h.")));
    } else {
        let readings = figures::readings(&runbook.alerts.kpis, &f);
        if !readings.is_empty() {
            let lines: Vec<String> = readings.iter().map(reading_line).collect();
            blocks.push(section(&lines.join("\n")));
        }
        let now_running = format!("*Now*: {} running, {} queued", f.in_progress, f.queued);
        let last = match f.default_branch {
            Some(run) => format!(
                "*`{}`*: {} {} {}, {}",
                escape(&activity.default_branch),
                icon(run.state),
                run_link(run),
                escape(&truncate(&run.title, 80)),
                ago(run.updated, now)
            ),
            None => format!("*`{}`*: no runs in the window", escape(&activity.default_branch)),
        };
        blocks.push(section(&[window_counts(&f), build_times(&f), now_running, last].join("\n")));
        if !f.failures.is_empty() {
            let mut lines = vec!["*Failures by workflow*".to_owned()];
            lines.extend(f.failures.iter().take(FAILING_SHOWN).map(|w| {
                let n = crate::text::plural(w.count as u64, "failure", "failures");
                format!(
                    "• {} {n}, last {} on `{}`",
                    run_link(w.latest),
                    ago(w.latest.updated, now),
                    escape(&w.latest.branch)
                )
            }));
            if f.failures.len() > FAILING_SHOWN {
                lines.push(format!("… and {} more workflows", f.failures.len() - FAILING_SHOWN));
            }
            blocks.push(section(&lines.join("\n")));
        }
    }
    blocks.push(context(&footer(activity, now)));
    let text = match f.success_rate {
        Some(rate) => format!("{repo}: {} runs in {hours} h, success rate {rate:.1}%", f.runs),
        None => format!("{repo}: {} runs in {hours} h", f.runs),
    };
    Reply { text, blocks: Some(Value::Array(blocks)) }
}

fn footer(activity: &Activity, now: DateTime<Utc>) -> String {
    let mut footer = format!("From GitHub at {}", slack_date(activity.fetched));
    let age = now - activity.fetched;
    if age >= TimeDelta::seconds(5) {
        footer.push_str(&format!(" ({} old)", duration(age)));
    }
    if activity.truncated {
        footer.push_str(&format!("; the newest {} runs only", activity.runs.len()));
    }
    footer
}

/// `/pipeline runs`: the latest runs, newest first.
/// **Re-run failed jobs** beside a run that failed; `None` for the others
/// (GitHub re-runs only the failed jobs of a completed run).
fn rerun_button(repo: &Repo, run: &RunRecord) -> Option<Value> {
    if run.state != RunState::Completed(RunConclusion::Failure) {
        return None;
    }
    let button = Button::Rerun(ListedRun {
        repo: repo.clone(),
        run_id: run.id,
        run_number: run.number,
        attempt: run.attempt,
        workflow_id: run.workflow_id,
        branch: run.branch.clone(),
    });
    let value = button.value();
    // Slack takes 2000 characters in a value; a branch that long is listed
    // without the button rather than with one that would be refused.
    (value.chars().count() <= 2000).then(|| {
        json!({
            "type": "button",
            "action_id": button.action_id(),
            "value": value,
            "text": {"type": "plain_text", "text": "Re-run failed jobs"},
        })
    })
}

pub fn runs(activity: &Activity, workflow: Option<&str>, branch: Option<&str>, now: DateTime<Utc>) -> Reply {
    let mut title = format!("Latest runs of {}", activity.repo);
    if let Some(w) = workflow {
        title.push_str(&format!(", {w}"));
    }
    if let Some(b) = branch {
        title.push_str(&format!(" on {b}"));
    }
    let mut blocks = vec![header(&title)];
    if activity.runs.is_empty() {
        blocks.push(section("No runs match."));
    }
    for run in activity.runs.iter().take(RUNS_SHOWN) {
        let took = match run.state {
            RunState::Completed(_) => run.duration().map(|d| Quantity::Duration(d).to_string()).unwrap_or_default(),
            RunState::InProgress => format!("running for {}", duration(now - run.started)),
            RunState::Queued => format!("queued for {}", duration(now - run.created)),
        };
        let attempt = if run.attempt > 1 { format!(", attempt {}", run.attempt) } else { String::new() };
        let mut line = section(&format!(
            "{} {} on `{}`, {} by {}, {took}{attempt}, {}\n{}",
            icon(run.state),
            run_link(run),
            escape(&run.branch),
            escape(&run.event),
            escape(&run.actor),
            ago(run.created, now),
            escape(&truncate(&run.title, 120)),
        ));
        if let Some(button) = rerun_button(&activity.repo, run) {
            line["accessory"] = button;
        }
        blocks.push(line);
    }
    if activity.runs.len() > RUNS_SHOWN {
        blocks.push(context(&format!(
            "{} of {} runs shown; name a workflow or a branch to narrow them.",
            RUNS_SHOWN,
            activity.runs.len()
        )));
    }
    blocks.push(context(&footer(activity, now)));
    let text = format!("{}: {} runs", title, activity.runs.len());
    Reply { text, blocks: Some(Value::Array(blocks)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::figures::tests::{activity, at, run};

    const PASS: RunState = RunState::Completed(RunConclusion::Success);
    const FAIL: RunState = RunState::Completed(RunConclusion::Failure);

    fn text_of(reply: &Reply) -> String {
        reply.blocks.as_ref().unwrap().to_string()
    }

    #[test]
    fn status_shows_each_kpi_beside_its_target_and_the_failing_workflows() {
        let mut runs: Vec<RunRecord> = (1..=18).map(|i| run(i, "CI", "main", PASS, 3)).collect();
        runs.insert(0, run(30, "Deploy", "main", FAIL, 12));
        runs.insert(0, run(31, "CI", "feature/x", RunState::InProgress, 0));
        let reply = status(&activity(runs), 24, &crate::Runbook::seed(), at("2026-12-01T09:00:00Z"));
        let text = text_of(&reply);
        assert!(text.contains("⚠️ *Build Success Rate*: 94.7% (target &gt; 95%)"), "{text}");
        assert!(text.contains("✅ *Average Build Time*"), "{text}");
        assert!(text.contains("Deploy #30> 1 failure"), "{text}");
        assert!(text.contains("1 running, 0 queued"), "{text}");
        assert!(reply.text.contains("19 runs in 24 h") || reply.text.contains("20 runs in 24 h"), "{}", reply.text);
    }

    #[test]
    fn a_quiet_window_says_so() {
        let reply = status(&activity(vec![]), 24, &crate::Runbook::seed(), at("2026-12-01T09:00:00Z"));
        assert!(text_of(&reply).contains("No workflow runs in the last 24 h."));
    }

    #[test]
    fn runs_list_stays_within_one_message() {
        let runs: Vec<RunRecord> = (1..=100).map(|i| run(i, "CI", "main", PASS, 3)).collect();
        let reply = runs_reply(runs);
        let blocks = reply.blocks.unwrap();
        assert!(blocks.as_array().unwrap().len() <= crate::blocks::MAX_BLOCKS);
        assert!(blocks.to_string().contains("15 of 100 runs shown"));
    }

    #[test]
    fn failed_runs_carry_re_run_failed_jobs_and_the_others_do_not() {
        let mut failed = run(2, "CI", "main", FAIL, 3);
        failed.attempt = 2;
        let list = vec![run(1, "CI", "main", PASS, 3), failed, run(3, "CI", "main", RunState::InProgress, 0)];
        let blocks = runs_reply(list).blocks.unwrap();
        let buttons: Vec<&Value> = blocks.as_array().unwrap().iter().filter_map(|b| b.get("accessory")).collect();
        let [button] = buttons[..] else { panic!("{blocks}") };
        assert_eq!(button["text"]["text"], "Re-run failed jobs");
        let parsed = Button::parse(button["action_id"].as_str().unwrap(), button["value"].as_str().unwrap());
        let Some(Button::Rerun(listed)) = parsed else { panic!("{button}") };
        assert_eq!((listed.run_id, listed.run_number, listed.attempt, listed.workflow_id), (2, 2, 2, 7));
        assert_eq!((listed.repo.to_string().as_str(), listed.branch.as_str()), ("octo-org/shop", "main"));
        // Fifteen failed runs: fifteen buttons, each with its own action id.
        let blocks = runs_reply((1..=20).map(|i| run(i, "CI", "main", FAIL, 3)).collect()).blocks.unwrap();
        let ids: std::collections::HashSet<String> = blocks
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["accessory"]["action_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(ids.len(), RUNS_SHOWN);
    }

    fn runs_reply(list: Vec<RunRecord>) -> Reply {
        runs(&activity(list), Some("CI"), Some("main"), at("2026-12-01T09:00:00Z"))
    }

    #[test]
    fn github_trouble_is_told_in_words_with_the_reset_time() {
        let reply = unavailable(&Unavailable::RateLimited { resets: at("2026-12-01T14:05:00Z") }, None);
        assert!(reply.text.contains("rate limit") && reply.text.contains("14:05 UTC"), "{}", reply.text);
        let reply = unavailable(&Unavailable::Down { why: "timed out after 10 s".into() }, None);
        assert!(reply.text.contains("did not answer (timed out after 10 s)"), "{}", reply.text);
    }
}
