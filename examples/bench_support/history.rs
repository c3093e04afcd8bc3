//! A long history for the benchmarks: resolved incidents stored through
//! the bot's own store (same keys, encoding and indexes as the bot writes),
//! and the latency of the commands that read it, `/incident list` and
//! `/incident stats`. Only `declare_storm` uses it, so it is its own
//! module there (`#[path]`) rather than part of `bench_support`, whose
//! every item each benchmark must use.

use crate::bench_support::{connect, percentiles, unix_micros, BoxError, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Request, StatusCode};
use opsbot::slack::signature::sign;
use opsbot::store::{Commit, Store, Stored};
use opsbot_handlers::checklist::start_checklist;
use opsbot_handlers::incident::{stats, Stamp, TimelineEvent};
use opsbot_handlers::subject::IncidentMessage;
use opsbot_handlers::{Incident, IncidentId, Message, MessageRef, Runbook, Severity, TimelineEntry};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Commits in flight at once: enough to keep Redis busy on the shared
/// connection without any of them waiting past the store's own timeout.
const IN_FLIGHT: usize = 256;

/// How far back the history goes: a year, so `/incident stats` (the last
/// 30 days) has about a twelfth of it in its window.
pub const HISTORY_DAYS: i64 = 365;

/// What seeding took.
pub struct Seeded {
    pub incidents: u64,
    pub took: Duration,
}

/// Stores `n` resolved incidents, INC-1 to INC-n, declared evenly over the
/// last [`HISTORY_DAYS`] up to `now` (oldest first), each acknowledged,
/// resolved and with its alert posted, then moves the numbering past them
/// so the bot's next declare is INC-(n+1). Each goes through the store's
/// commit and `record_posted`, as the bot's own would: the history is what
/// the bot would have left, not a guess at its keys.
pub async fn seed(redis_url: &str, prefix: &str, n: u64, now: chrono::DateTime<chrono::Utc>) -> Result<Seeded> {
    let started = Instant::now();
    let store = Store::connect(redis_url, prefix)?;
    let runbook = Runbook::seed();
    let span_ms = chrono::TimeDelta::days(HISTORY_DAYS).num_milliseconds();
    let first = now - chrono::TimeDelta::days(HISTORY_DAYS);
    stream::iter(1..=n)
        .map(|number| {
            let store = store.clone();
            let declared = first + chrono::TimeDelta::milliseconds(span_ms / n.max(1) as i64 * (number as i64 - 1));
            let (incident, timeline) = resolved_incident(number, declared, &runbook);
            // What the engine's commit of the same incident would add to
            // its day's tally (new: it counted for nothing before).
            let tally = stats::tally(&[], &incident, &runbook);
            let route = runbook.channel_for(incident.severity).to_owned();
            async move {
                let outcome = store
                    .subjects
                    .commit(&Commit {
                        subject: Some(Stored::Incident(&incident, 0)),
                        timeline: &timeline,
                        tally: tally.as_ref(),
                        ..Commit::default()
                    })
                    .await?;
                if outcome != opsbot::store::CommitOutcome::Committed {
                    return Err(format!("seeding INC-{number}: {outcome:?}").into());
                }
                let alert = Message::Incident(incident.id, IncidentMessage::Alert);
                let at = MessageRef { channel: "C0HISTORY".to_owned(), ts: slack_ts(declared) };
                store.subjects.record_posted(&alert, &at, Some(&route)).await?;
                Ok::<_, BoxError>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    // The bot numbers with INCR on this key (see the README's key table).
    let mut redis = redis::Client::open(redis_url)?.get_multiplexed_async_connection().await?;
    redis::cmd("SET").arg(format!("{prefix}:incidents:seq")).arg(n).query_async::<()>(&mut redis).await?;
    Ok(Seeded { incidents: n, took: started.elapsed() })
}

/// One incident of the history, as the bot's own transitions leave it:
/// declared with its severity's playbook, acknowledged after 1 to 20
/// minutes, resolved after 10 minutes to 6 hours with the post-incident
/// checklist started. Severities and times vary with the number, the same
/// in every run.
fn resolved_incident(
    number: u64,
    declared: chrono::DateTime<chrono::Utc>,
    runbook: &Runbook,
) -> (Incident, Vec<TimelineEntry>) {
    // A fixed scramble of the number, so runs compare.
    let mix = number.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let severity = match mix % 20 {
        0 => Severity::P0,
        1..=4 => Severity::P1,
        5..=12 => Severity::P2,
        _ => Severity::P3,
    };
    let ack_after = chrono::TimeDelta::seconds(60 + (mix >> 8) as i64 % (19 * 60));
    let resolve_after = chrono::TimeDelta::seconds(600 + (mix >> 24) as i64 % (6 * 3600 - 600));
    let title = format!("history-{number:07}");
    let mut incident = Incident::new(
        IncidentId(number),
        severity,
        title.clone(),
        Stamp { user: "U0ALICE".to_owned(), at: declared },
        "C0GENERAL".to_owned(),
        None,
    );
    incident.playbook = start_checklist(&runbook.policy(severity).playbook);
    let mut timeline = vec![TimelineEntry {
        at: declared,
        user: "U0ALICE".to_owned(),
        event: TimelineEvent::Declared { severity, title },
    }];
    let acked = declared + ack_after.min(resolve_after);
    timeline.push(incident.acknowledge("U0BOB", acked).expect("a new incident can be acknowledged"));
    timeline.push(
        incident
            .resolve("U0BOB", Some("rolled back".to_owned()), declared + resolve_after)
            .expect("an open incident can be resolved"),
    );
    incident.post_incident = start_checklist(&runbook.post_incident.sections);
    (incident, timeline)
}

fn slack_ts(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{:06}", at.timestamp(), at.timestamp_subsec_micros())
}

/// `INFO memory`'s `used_memory_human`.
pub async fn redis_memory(redis_url: &str) -> Result<String> {
    let mut redis = redis::Client::open(redis_url)?.get_multiplexed_async_connection().await?;
    let memory: String = redis::cmd("INFO").arg("memory").query_async(&mut redis).await?;
    Ok(memory.lines().find_map(|l| l.strip_prefix("used_memory_human:")).unwrap_or("?").trim().to_owned())
}

/// How long `/incident <text>` took, `times` times one after the other on
/// one keep-alive connection (as a person would type them, not a load),
/// and the first answer's opening, to show what was answered.
pub struct Probe {
    pub text: &'static str,
    pub latencies_us: Vec<u64>,
    pub first_answer: String,
}

impl Probe {
    pub fn line(&self) -> String {
        let shown: String = self.first_answer.chars().take(90).collect();
        format!(
            "`/incident {}` × {}: {} — {shown:?}",
            self.text,
            self.latencies_us.len(),
            percentiles(&self.latencies_us)
        )
    }
}

/// Sends signed `/incident list` and `/incident stats`, `times` each.
pub async fn probe_reads(addr: SocketAddr, signing_secret: &str, times: usize) -> Result<Vec<Probe>> {
    let mut sender = connect(addr).await?;
    let mut probes = Vec::new();
    for text in ["list", "stats"] {
        let mut probe = Probe { text, latencies_us: Vec::new(), first_answer: String::new() };
        for _ in 0..times {
            let body = serde_urlencoded::to_string([
                ("team_id", "T0OPSBOT"),
                ("team_domain", "opsbot-sandbox"),
                ("channel_id", "C0GENERAL"),
                ("channel_name", "general"),
                ("user_id", "U0ALICE"),
                ("user_name", "alice"),
                ("command", "/incident"),
                ("text", text),
                ("response_url", "https://hooks.slack.com/commands/T0OPSBOT/1/x"),
                ("trigger_id", "1.2.3"),
            ])?;
            let ts = (unix_micros() / 1_000_000) as i64;
            let request = Request::post("/slack/commands")
                .header(header::HOST, addr.to_string())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", sign(signing_secret.as_bytes(), ts, body.as_bytes()))
                .body(Full::new(Bytes::from(body)))?;
            let sent = Instant::now();
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let answer = response.into_body().collect().await?.to_bytes();
            probe.latencies_us.push(sent.elapsed().as_micros() as u64);
            if status != StatusCode::OK {
                return Err(format!("/incident {text}: HTTP {status}").into());
            }
            if probe.first_answer.is_empty() {
                probe.first_answer = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| v["text"].as_str().map(str::to_owned))
                    .unwrap_or_default();
            }
        }
        probe.latencies_us.sort_unstable();
        probes.push(probe);
    }
    Ok(probes)
}
