//! The store contract: what the engine, the outbox worker and the timers
//! rely on from a store, written once and run against both backends (a
//! private `redis-server` per test, and the embedded memory store), so the
//! two cannot drift apart.
//!
//! Each contract is an `async fn(Store)`; `contracts!` at the bottom runs
//! every one as `memory::<name>` and `redis::<name>`.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use opsbot::store::{
    Accepted, Commit, CommitOutcome, EnvelopeClaim, Hook, HookSource, InboxEntry, Landed, OutboxEntry, OutboxStream,
    Store, Stored, TallyRebuild, OUTBOX_BLOCK,
};
use opsbot_handlers::incident::stats::{self, Tally};
use opsbot_handlers::incident::Stamp;
use opsbot_handlers::run::{Run, RunId};
use opsbot_handlers::subject::{AlertId, AlertMessage, ChecklistPart, IncidentChecklist, IncidentMessage, RunMessage};
use opsbot_handlers::timer::IncidentReminder;
use opsbot_handlers::{
    Effect, Incident, IncidentId, MessageRef, Runbook, Severity, TimelineEntry, TimelineEvent, Timer,
};
use opsbot_handlers::{Message, Subject};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use OutboxStream::{Alerts, Anchors, People};

// --- The Redis side ----------------------------------------------------------

/// A private redis-server per test (`opsbot-test-redis`). These tests never
/// restart it, so it keeps nothing on disk.
struct RedisServer(opsbot_test_redis::RedisServer);

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer(opsbot_test_redis::RedisServer::start(opsbot_test_redis::Persistence::InMemory))
    }

    /// A one-node Redis Cluster: it refuses (`CROSSSLOT`) any command or
    /// script whose keys are not all in one slot, as a real Cluster does.
    fn start_cluster() -> RedisServer {
        RedisServer(opsbot_test_redis::RedisServer::start_cluster())
    }

    /// A store under a prefix of its own, so nothing a test finds was left
    /// by another. The prefix is a hash tag (`{…}`), as Cluster needs: it
    /// is what puts every key of the store in one slot.
    fn store(&self, test: &str) -> Store {
        let url = self.0.url();
        Store::connect(&url, &format!("{{contract-{test}-{}}}", std::process::id())).expect("store connects")
    }
}

// --- Building blocks -----------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap()
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn incident(id: u64, declared: DateTime<Utc>) -> Incident {
    Incident::new(
        IncidentId(id),
        Severity::P1,
        format!("incident {id}"),
        Stamp { user: "U0ALICE".into(), at: declared },
        "C0GENERAL".into(),
        None,
    )
}

fn run(id: u64, checklist: &str, started: DateTime<Utc>) -> Run {
    Run {
        id: RunId(id),
        checklist: checklist.into(),
        name: checklist.into(),
        started: Stamp { user: "opsbot".into(), at: started },
        due: None,
        responsible: None,
        channel: "#devops".into(),
        slot: None,
        late_by_secs: None,
        sections: Vec::new(),
        completed: None,
        reminded: false,
        posted: Default::default(),
    }
}

fn note(text: &str) -> Effect {
    Effect::Say { channel: "C0GENERAL".into(), thread_ts: None, text: text.into() }
}

fn entry(user: &str, at: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry { at, user: user.into(), event: TimelineEvent::Acknowledged }
}

fn escalation(id: u64, due: DateTime<Utc>, level: usize) -> Timer {
    Timer::incident(IncidentId(id), 0, due, IncidentReminder::Escalate { level })
}

fn at(channel: &str, ts: &str) -> MessageRef {
    MessageRef { channel: channel.into(), ts: ts.into() }
}

/// A commit of nothing; tests fill in what they need.
fn empty() -> Commit<'static> {
    Commit::default()
}

async fn save(store: &Store, inc: &Incident, version: u64) -> CommitOutcome {
    store.subjects.commit(&Commit { subject: Some(Stored::Incident(inc, version)), ..empty() }).await.unwrap()
}

async fn save_run(store: &Store, run: &Run, version: u64) -> CommitOutcome {
    store.subjects.commit(&Commit { subject: Some(Stored::Run(run, version)), ..empty() }).await.unwrap()
}

fn ids(incidents: &[Incident]) -> Vec<u64> {
    incidents.iter().map(|i| i.id.0).collect()
}

fn texts(entries: &[OutboxEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match &e.effect {
            Effect::Say { text, .. } | Effect::InThread { text, .. } => text.clone(),
            other => panic!("not a test note: {other:?}"),
        })
        .collect()
}

/// A note in alert group `id`'s thread: an alert effect, for the alerts'
/// stream.
fn alert_note(id: u64, text: &str) -> Effect {
    Effect::InThread { subject: Subject::Alert(AlertId(id)), text: text.into() }
}

/// A stream id as Redis orders them: milliseconds, then sequence.
fn stream_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or_else(|| panic!("{id:?} is not <ms>-<seq>"));
    (ms.parse().unwrap(), seq.parse().unwrap())
}

// --- The contracts -----------------------------------------------------------

/// Numbers count up from 1, incidents and runs apart.
async fn numbering(store: Store) {
    assert_eq!(store.subjects.next_incident_id().await.unwrap(), IncidentId(1));
    assert_eq!(store.subjects.next_incident_id().await.unwrap(), IncidentId(2));
    assert_eq!(store.subjects.next_run_id().await.unwrap(), RunId(1));
    assert_eq!(store.subjects.next_incident_id().await.unwrap(), IncidentId(3));
    assert_eq!(store.subjects.next_run_id().await.unwrap(), RunId(2));
    store.ping().await.unwrap();
}

/// A commit goes through only at the version the state was loaded at, and
/// a refused one writes nothing at all.
async fn version_conflict(store: Store) {
    let mut inc = incident(1, t0());
    assert_eq!(save(&store, &inc, 0).await, CommitOutcome::Committed);
    let loaded = store.subjects.load_incident(IncidentId(1)).await.unwrap().expect("saved");
    assert_eq!((loaded.version, &loaded.value), (1, &inc));

    inc.title = "renamed".into();
    assert_eq!(save(&store, &inc, 1).await, CommitOutcome::Committed);
    assert_eq!(save(&store, &inc, 1).await, CommitOutcome::Conflict, "a stale version is refused");
    assert_eq!(save(&store, &inc, 7).await, CommitOutcome::Conflict, "a future version is refused");

    store.timers.set(&escalation(1, t0(), 1)).await.unwrap();
    let (raw, _) = store.timers.due(t0(), 10).await.unwrap().remove(0);
    inc.title = "lost".into();
    let stale = Commit {
        subject: Some(Stored::Incident(&inc, 1)),
        also: &[],
        timeline: &[entry("U0BOB", t0())],
        effects: &[note("lost")],
        timers: &[escalation(1, t0() + minutes(5), 2)],
        consume: Some(&raw),
        slot: Some(("nightly", t0())),
        opens: None,
        sample: None,
        tally: None,
    };
    assert_eq!(store.subjects.commit(&stale).await.unwrap(), CommitOutcome::Conflict);
    let now = store.subjects.load_incident(IncidentId(1)).await.unwrap().unwrap();
    assert_eq!((now.version, now.value.title.as_str()), (2, "renamed"));
    assert!(store.subjects.load_timeline(IncidentId(1)).await.unwrap().is_empty());
    assert_eq!(store.outbox.len().await.unwrap(), 0);
    assert_eq!(store.timers.count().await.unwrap(), 1, "the timer is neither consumed nor added");
    assert_eq!(store.subjects.last_handled_slot("nightly").await.unwrap(), None);
}

/// Version 0 means "new": it is refused when the incident exists, so two
/// declarations of one number cannot both win.
async fn new_must_not_exist(store: Store) {
    let first = incident(5, t0());
    let mut second = incident(5, t0() + minutes(1));
    second.title = "the other one".into();
    let (a, b) = tokio::join!(save(&store, &first, 0), save(&store, &second, 0));
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| *o != CommitOutcome::Committed);
    assert_eq!(outcomes, [CommitOutcome::Committed, CommitOutcome::Conflict]);
    assert_eq!(save(&store, &first, 0).await, CommitOutcome::Conflict);
    assert_eq!(store.subjects.load_incident(IncidentId(5)).await.unwrap().unwrap().version, 1);

    let r = run(3, "nightly", t0());
    assert_eq!(save_run(&store, &r, 0).await, CommitOutcome::Committed);
    assert_eq!(save_run(&store, &r, 0).await, CommitOutcome::Conflict);
    assert_eq!(save_run(&store, &r, 1).await, CommitOutcome::Committed);
    assert_eq!(store.subjects.load_run(RunId(3)).await.unwrap().unwrap().version, 2);
}

/// A timer acted on is consumed by the commit, once: a second commit
/// consuming it is refused and writes nothing.
async fn timer_consumed_once(store: Store) {
    let timer = escalation(1, t0(), 1);
    store.timers.set(&timer).await.unwrap();
    store.timers.set(&timer).await.unwrap();
    assert_eq!(store.timers.count().await.unwrap(), 1, "setting a timer twice keeps one");
    let due = store.timers.due(t0(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let (raw, read) = &due[0];
    assert_eq!(read, &timer);

    let acted = Commit { effects: &[note("escalated")], consume: Some(raw), ..empty() };
    assert_eq!(store.subjects.commit(&acted).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.timers.count().await.unwrap(), 0);
    assert_eq!(store.outbox.len().await.unwrap(), 1);

    let again = Commit {
        effects: &[note("escalated again")],
        timers: &[escalation(1, t0() + minutes(5), 2)],
        consume: Some(raw),
        ..empty()
    };
    assert_eq!(store.subjects.commit(&again).await.unwrap(), CommitOutcome::TimerGone);
    assert_eq!(store.outbox.len().await.unwrap(), 1, "a refused commit writes nothing");
    assert_eq!(store.timers.count().await.unwrap(), 0);
    assert!(store.timers.due(t0() + minutes(60), 10).await.unwrap().is_empty());
}

/// A routine's slot is handled once: only a slot later than every one
/// handled before commits, and the slot check comes before the timer's.
async fn slot_mark_monotonic(store: Store) {
    let slot = t0() + minutes(30);
    assert_eq!(store.subjects.last_handled_slot("nightly").await.unwrap(), None);
    let handle = |s| Commit { slot: Some(("nightly", s)), ..empty() };
    assert_eq!(store.subjects.commit(&handle(slot)).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.subjects.last_handled_slot("nightly").await.unwrap(), Some(slot));
    assert_eq!(store.subjects.commit(&handle(slot)).await.unwrap(), CommitOutcome::TimerGone, "the same slot");
    assert_eq!(store.subjects.commit(&handle(t0())).await.unwrap(), CommitOutcome::TimerGone, "an earlier slot");
    assert_eq!(store.subjects.last_handled_slot("nightly").await.unwrap(), Some(slot));

    // Refused for its slot, the commit writes nothing but removes the timer
    // it would consume: a timer for a handled slot (re-added by a replica
    // that read the mark just before another handled the slot) can never
    // act, and left in place it would be tried, and take a run number,
    // on every tick.
    let timer = escalation(1, t0(), 1);
    store.timers.set(&timer).await.unwrap();
    let (raw, _) = store.timers.due(t0(), 1).await.unwrap().remove(0);
    let r = run(1, "nightly", slot);
    let late = Commit {
        subject: Some(Stored::Run(&r, 0)),
        effects: &[note("started")],
        consume: Some(&raw),
        slot: Some(("nightly", slot)),
        ..empty()
    };
    assert_eq!(store.subjects.commit(&late).await.unwrap(), CommitOutcome::TimerGone);
    assert_eq!(store.timers.count().await.unwrap(), 0, "the stale timer is gone");
    assert!(store.subjects.load_run(RunId(1)).await.unwrap().is_none());
    assert_eq!(store.outbox.len().await.unwrap(), 0);
    store.timers.set(&timer).await.unwrap();

    let later = slot + minutes(1);
    let next =
        Commit { subject: Some(Stored::Run(&r, 0)), consume: Some(&raw), slot: Some(("nightly", later)), ..empty() };
    assert_eq!(store.subjects.commit(&next).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.subjects.last_handled_slot("nightly").await.unwrap(), Some(later));
    assert_eq!(store.subjects.last_handled_slot("weekly").await.unwrap(), None, "marks are per routine");
    assert_eq!(store.timers.count().await.unwrap(), 0);
}

/// Timers come back due-first, only those due, at most `limit`.
async fn due_timers_ordering(store: Store) {
    for (id, offset) in [(1, 30), (2, 10), (3, 20)] {
        store.timers.set(&escalation(id, t0() + minutes(offset), 1)).await.unwrap();
    }
    let from_commit = [escalation(4, t0() + minutes(15), 1), escalation(5, t0() + minutes(90), 1)];
    assert_eq!(
        store.subjects.commit(&Commit { timers: &from_commit, ..empty() }).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(store.timers.count().await.unwrap(), 5);

    let due = |now, limit| {
        let store = store.clone();
        async move {
            let due = store.timers.due(now, limit).await.unwrap();
            due.into_iter().map(|(_, t)| (t.due - t0()).num_minutes()).collect::<Vec<_>>()
        }
    };
    assert_eq!(due(t0() + minutes(60), 10).await, [10, 15, 20, 30]);
    assert_eq!(due(t0() + minutes(60), 2).await, [10, 15]);
    assert_eq!(due(t0() + minutes(20), 10).await, [10, 15, 20], "due at exactly now counts");
    assert!(due(t0(), 10).await.is_empty());
    assert_eq!(store.timers.count().await.unwrap(), 5, "reading takes nothing");
}

/// A decision without state (a reminder, a note) commits only its effects
/// and timers.
async fn commit_without_subject(store: Store) {
    let effects = [note("one"), note("two")];
    let timers = [escalation(9, t0(), 1)];
    let change = Commit { effects: &effects, timers: &timers, ..empty() };
    assert_eq!(store.subjects.commit(&change).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.outbox.len().await.unwrap(), 2);
    assert_eq!(store.timers.count().await.unwrap(), 1);
    assert!(store.subjects.load_incident(IncidentId(0)).await.unwrap().is_none());
    assert!(store.subjects.open_incidents().await.unwrap().is_empty());
    assert!(store.subjects.incidents_declared_since(t0() - minutes(600)).await.unwrap().is_empty());

    store.outbox.prepare().await.unwrap();
    let read = store.outbox.read(People, "a", 10, None).await.unwrap();
    assert_eq!(texts(&read), ["one", "two"], "effects keep their order");
}

/// Timeline entries append in order, commit after commit.
async fn timeline(store: Store) {
    let inc = incident(1, t0());
    let first = [entry("U0ALICE", t0()), entry("U0BOB", t0() + minutes(1))];
    let change = Commit { subject: Some(Stored::Incident(&inc, 0)), timeline: &first, ..empty() };
    assert_eq!(store.subjects.commit(&change).await.unwrap(), CommitOutcome::Committed);
    let second = [entry("U0CAROL", t0() + minutes(2))];
    let change = Commit { subject: Some(Stored::Incident(&inc, 1)), timeline: &second, ..empty() };
    assert_eq!(store.subjects.commit(&change).await.unwrap(), CommitOutcome::Committed);
    let read = store.subjects.load_timeline(IncidentId(1)).await.unwrap();
    assert_eq!(read, [first[0].clone(), first[1].clone(), second[0].clone()]);
    assert!(store.subjects.load_timeline(IncidentId(2)).await.unwrap().is_empty());
}

/// Open incidents list newest (highest number) first, and leave the list
/// when resolved; a resolved incident still loads.
async fn open_index(store: Store) {
    for id in [1, 2, 3, 9, 10] {
        assert_eq!(save(&store, &incident(id, t0()), 0).await, CommitOutcome::Committed);
    }
    assert_eq!(ids(&store.subjects.open_incidents().await.unwrap()), [10, 9, 3, 2, 1]);

    let mut two = incident(2, t0());
    two.resolve("U0BOB", Some("fixed".into()), t0() + minutes(5)).unwrap();
    assert_eq!(save(&store, &two, 1).await, CommitOutcome::Committed);
    assert_eq!(ids(&store.subjects.open_incidents().await.unwrap()), [10, 9, 3, 1]);
    let loaded = store.subjects.load_incident(IncidentId(2)).await.unwrap().unwrap();
    assert!(!loaded.value.is_open());
    assert_eq!(loaded.value.summary.as_deref(), Some("fixed"));

    // Open runs keep an index of their own, apart from incidents.
    assert_eq!(save_run(&store, &run(4, "nightly", t0()), 0).await, CommitOutcome::Committed);
    assert_eq!(ids(&store.subjects.open_incidents().await.unwrap()), [10, 9, 3, 1]);
}

/// Incidents declared since a time, open or resolved, newest first.
async fn declared_since(store: Store) {
    for (id, offset) in [(1, 0), (2, 60), (3, 120), (4, 30)] {
        assert_eq!(save(&store, &incident(id, t0() + minutes(offset)), 0).await, CommitOutcome::Committed);
    }
    let mut three = incident(3, t0() + minutes(120));
    three.resolve("U0BOB", None, t0() + minutes(130)).unwrap();
    assert_eq!(save(&store, &three, 1).await, CommitOutcome::Committed);

    let since = |offset| {
        let store = store.clone();
        async move { ids(&store.subjects.incidents_declared_since(t0() + minutes(offset)).await.unwrap()) }
    };
    assert_eq!(since(60).await, [3, 2], "since is inclusive; resolved ones count");
    assert_eq!(since(-1).await, [3, 2, 4, 1]);
    assert!(since(121).await.is_empty());
}

/// A routine's runs, newest first, at most `limit`; a run loads with its
/// message locations.
async fn run_history(store: Store) {
    for (id, checklist, offset) in [(1, "nightly", 0), (2, "weekly", 10), (3, "nightly", 60), (4, "nightly", 30)] {
        assert_eq!(save_run(&store, &run(id, checklist, t0() + minutes(offset)), 0).await, CommitOutcome::Committed);
    }
    let history = |checklist: &'static str, limit| {
        let store = store.clone();
        async move { store.subjects.runs_of(checklist, limit).await.unwrap().iter().map(|r| r.id.0).collect::<Vec<_>>() }
    };
    assert_eq!(history("nightly", 10).await, [3, 4, 1]);
    assert_eq!(history("nightly", 2).await, [3, 4]);
    assert_eq!(history("weekly", 10).await, [2]);
    assert!(history("monthly", 10).await.is_empty());

    let mut finished = run(3, "nightly", t0() + minutes(60));
    finished.completed = Some(Stamp { user: "U0BOB".into(), at: t0() + minutes(90) });
    assert_eq!(save_run(&store, &finished, 1).await, CommitOutcome::Committed);
    assert_eq!(history("nightly", 10).await, [3, 4, 1], "finishing does not move a run");
    assert!(!store.subjects.runs_of("nightly", 1).await.unwrap()[0].is_open());

    let steps = Message::Run(RunId(3), RunMessage::Steps(part(0)));
    store
        .subjects
        .record_posted(&Message::Run(RunId(3), RunMessage::Header), &at("C0DEVOPS", "1.1"), None)
        .await
        .unwrap();
    store.subjects.record_posted(&steps, &at("C0DEVOPS", "1.2"), None).await.unwrap();
    let loaded = store.subjects.load_run(RunId(3)).await.unwrap().unwrap();
    assert_eq!(loaded.value.posted.anchor(), Some(&at("C0DEVOPS", "1.1")));
    assert_eq!(loaded.value.posted.get(&steps), Some(&at("C0DEVOPS", "1.2")));
    assert_eq!(loaded.version, 2);
}

/// Locations the outbox worker records land only on subjects that exist,
/// load with them, and survive later commits of the state.
async fn set_if_exists(store: Store) {
    let alert = |id| Message::Incident(IncidentId(id), IncidentMessage::Alert);
    let playbook =
        |id| Message::Incident(IncidentId(id), IncidentMessage::Checklist(IncidentChecklist::Playbook, part(0)));
    let incident_subject = |id| Subject::Incident(IncidentId(id));
    store.subjects.record_posted(&alert(42), &at("C0ALERTS", "9.9"), Some("#devops-alerts")).await.unwrap();
    store.subjects.record_anchor_failed(incident_subject(42), "channel_not_found").await.unwrap();
    store.subjects.record_posted(&playbook(42), &at("C0ALERTS", "9.8"), None).await.unwrap();
    store
        .subjects
        .record_posted(&Message::Run(RunId(42), RunMessage::Header), &at("C0DEVOPS", "9.7"), None)
        .await
        .unwrap();
    store
        .subjects
        .record_posted(&Message::Run(RunId(42), RunMessage::Steps(part(0))), &at("C0DEVOPS", "9.6"), None)
        .await
        .unwrap();
    assert!(store.subjects.load_incident(IncidentId(42)).await.unwrap().is_none());
    assert_eq!(store.subjects.anchor_failure(incident_subject(42)).await.unwrap(), None);
    assert!(store.subjects.load_run(RunId(42)).await.unwrap().is_none());
    // Nothing was planted: creating them now is still a creation.
    assert_eq!(save(&store, &incident(42, t0()), 0).await, CommitOutcome::Committed);
    assert_eq!(save_run(&store, &run(42, "nightly", t0()), 0).await, CommitOutcome::Committed);
    assert_eq!(store.subjects.load_incident(IncidentId(42)).await.unwrap().unwrap().value.alert(), None);

    let inc = incident(1, t0());
    assert_eq!(save(&store, &inc, 0).await, CommitOutcome::Committed);
    store.subjects.record_posted(&alert(1), &at("C0ALERTS", "1.0"), Some("#devops-alerts")).await.unwrap();
    store.subjects.record_posted(&playbook(1), &at("C0ALERTS", "1.1"), None).await.unwrap();
    assert_eq!(save(&store, &inc, 1).await, CommitOutcome::Committed);
    let loaded = store.subjects.load_incident(IncidentId(1)).await.unwrap().unwrap();
    assert_eq!(loaded.version, 2, "recording a location does not bump the version");
    assert_eq!(loaded.value.alert(), Some(&at("C0ALERTS", "1.0")));
    assert_eq!(loaded.value.posted.route.as_deref(), Some("#devops-alerts"));
    assert_eq!(loaded.value.posted.get(&playbook(1)), Some(&at("C0ALERTS", "1.1")));
    assert_eq!(store.subjects.open_incidents().await.unwrap()[1].alert(), Some(&at("C0ALERTS", "1.0")));
    let loaded = store.subjects.load(incident_subject(1)).await.unwrap().unwrap();
    assert_eq!(loaded.value.posted().anchor(), Some(&at("C0ALERTS", "1.0")), "loading by subject finds the same");

    assert_eq!(store.subjects.anchor_failure(incident_subject(1)).await.unwrap(), None);
    store.subjects.record_anchor_failed(incident_subject(1), "is_archived").await.unwrap();
    assert_eq!(store.subjects.anchor_failure(incident_subject(1)).await.unwrap().as_deref(), Some("is_archived"));
}

fn part(phase: usize) -> ChecklistPart {
    ChecklistPart { phase, part: 0 }
}

/// An event id counts as new once within its TTL, and again after it.
async fn event_dedupe(store: Store) {
    let ttl = Duration::from_secs(1);
    assert!(store.dedupe.first_sighting("Ev1", ttl).await.unwrap());
    assert!(!store.dedupe.first_sighting("Ev1", ttl).await.unwrap());
    assert!(store.dedupe.first_sighting("Ev2", ttl).await.unwrap());
    assert!(
        !store.dedupe.first_sighting("Ev1", Duration::from_millis(10)).await.unwrap(),
        "a retry keeps the first TTL"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(store.dedupe.first_sighting("Ev1", ttl).await.unwrap(), "seen again after the TTL");
    assert!(!store.dedupe.first_sighting("Ev1", ttl).await.unwrap());
}

/// A Socket Mode envelope is taken by one handler; until answered, others
/// are told it is busy; once answered, they get the answer; a released or
/// lapsed claim may be taken again.
async fn socket_envelope_claims(store: Store) {
    let claim = Duration::from_millis(300);
    let kept = Duration::from_secs(60);
    let d = &store.dedupe;
    assert_eq!(d.claim_envelope("env-1", claim).await.unwrap(), EnvelopeClaim::First);
    assert_eq!(d.claim_envelope("env-1", claim).await.unwrap(), EnvelopeClaim::Busy);
    assert_eq!(d.envelope_answer("env-1").await.unwrap(), None);
    d.answer_envelope("env-1", r#"{"text":"ok"}"#, kept).await.unwrap();
    assert_eq!(d.claim_envelope("env-1", claim).await.unwrap(), EnvelopeClaim::Answered(r#"{"text":"ok"}"#.into()));
    assert_eq!(d.envelope_answer("env-1").await.unwrap().as_deref(), Some(r#"{"text":"ok"}"#));

    assert_eq!(d.claim_envelope("env-2", claim).await.unwrap(), EnvelopeClaim::First);
    d.release_envelope("env-2").await.unwrap();
    assert_eq!(d.claim_envelope("env-2", claim).await.unwrap(), EnvelopeClaim::First, "released");

    assert_eq!(d.claim_envelope("env-3", claim).await.unwrap(), EnvelopeClaim::First);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(d.claim_envelope("env-3", claim).await.unwrap(), EnvelopeClaim::First, "the claim lapsed");
    assert_eq!(
        d.claim_envelope("env-1", claim).await.unwrap(),
        EnvelopeClaim::Answered(r#"{"text":"ok"}"#.into()),
        "an answer outlives the claim"
    );
}

/// Entries get stream ids that sort in the order they were added.
async fn outbox_ids_sort(store: Store) {
    store.outbox.prepare().await.unwrap();
    for n in 0..5 {
        store.outbox.enqueue(&[note(&n.to_string())]).await.unwrap();
        let change = Commit { effects: &[note(&format!("c{n}"))], ..empty() };
        store.subjects.commit(&change).await.unwrap();
    }
    assert_eq!(store.outbox.len().await.unwrap(), 10);
    let read = store.outbox.read(People, "a", 100, None).await.unwrap();
    assert_eq!(texts(&read), ["0", "c0", "1", "c1", "2", "c2", "3", "c3", "4", "c4"]);
    let order: Vec<_> = read.iter().map(|e| stream_order(&e.id)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "ids ascend: {order:?}");
    assert_eq!(store.outbox.len().await.unwrap(), 10, "read is not delivered");
}

/// With two consumers reading, each entry goes to one of them, once.
async fn outbox_delivered_once(store: Store) {
    store.outbox.prepare().await.unwrap();
    let effects: Vec<Effect> = (0..6).map(|n| note(&n.to_string())).collect();
    store.outbox.enqueue(&effects[..3]).await.unwrap();
    let (a, b) = tokio::join!(store.outbox.read(People, "a", 2, None), store.outbox.read(People, "b", 2, None));
    let (mut a, mut b) = (texts(&a.unwrap()), texts(&b.unwrap()));
    store.outbox.enqueue(&effects[3..]).await.unwrap();
    a.extend(texts(&store.outbox.read(People, "a", 10, None).await.unwrap()));
    b.extend(texts(&store.outbox.read(People, "b", 10, None).await.unwrap()));
    let all: BTreeSet<_> = a.iter().chain(&b).cloned().collect();
    assert_eq!(a.len() + b.len(), 6, "each once: a {a:?}, b {b:?}");
    assert_eq!(all.len(), 6);
}

/// A blocked read returns as soon as an entry arrives, and empty after
/// waiting about OUTBOX_BLOCK when none does.
async fn outbox_read_waits(store: Store) {
    store.outbox.prepare().await.unwrap();
    let started = Instant::now();
    assert!(store.outbox.read(People, "a", 10, None).await.unwrap().is_empty());
    assert!(started.elapsed() >= OUTBOX_BLOCK - Duration::from_millis(50), "waited {:?}", started.elapsed());

    let writer = store.clone();
    let write = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let change = Commit { effects: &[note("woken")], ..empty() };
        writer.subjects.commit(&change).await.unwrap();
    };
    let started = Instant::now();
    let (read, ()) = tokio::join!(store.outbox.read(People, "a", 10, None), write);
    assert_eq!(texts(&read.unwrap()), ["woken"]);
    assert!(started.elapsed() < OUTBOX_BLOCK - Duration::from_millis(300), "woke after {:?}", started.elapsed());
}

/// A consumer that restarts reads its own unfinished entries back, after
/// a given id, and no one else's.
async fn outbox_own_pending(store: Store) {
    store.outbox.prepare().await.unwrap();
    let effects: Vec<Effect> = (0..4).map(|n| note(&n.to_string())).collect();
    store.outbox.enqueue(&effects).await.unwrap();
    let given = store.outbox.read(People, "a", 3, None).await.unwrap();
    assert_eq!(texts(&given), ["0", "1", "2"]);
    assert_eq!(texts(&store.outbox.read(People, "b", 3, None).await.unwrap()), ["3"]);
    store.outbox.done(People, &given[1].id).await.unwrap();

    // "a" restarts: a new handle, the same consumer name.
    let restarted = store.clone();
    let mine = restarted.outbox.read(People, "a", 10, Some("0")).await.unwrap();
    assert_eq!(texts(&mine), ["0", "2"]);
    assert_eq!(mine[0].id, given[0].id);
    assert_eq!(texts(&restarted.outbox.read(People, "a", 1, Some("0")).await.unwrap()), ["0"], "count applies");
    assert_eq!(texts(&restarted.outbox.read(People, "a", 10, Some(&given[0].id)).await.unwrap()), ["2"]);
    assert!(restarted.outbox.read(People, "a", 10, Some(&given[2].id)).await.unwrap().is_empty(), "caught up");
    assert_eq!(texts(&restarted.outbox.read(People, "b", 10, Some("0")).await.unwrap()), ["3"]);
    assert!(restarted.outbox.read(People, "c", 10, Some("0")).await.unwrap().is_empty());
    assert_eq!(store.outbox.len().await.unwrap(), 3);
}

/// Entries a consumer has held for `min_idle` are taken over by another;
/// fresher ones are not.
async fn outbox_claim_abandoned(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[note("0"), note("1")]).await.unwrap();
    assert_eq!(store.outbox.read(People, "a", 10, None).await.unwrap().len(), 2);
    let idle = Duration::from_millis(400);
    assert!(store.outbox.claim_abandoned(People, "b", idle, 10).await.unwrap().is_empty(), "not idle long enough");

    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    store.outbox.enqueue(&[note("2")]).await.unwrap();
    assert_eq!(texts(&store.outbox.read(People, "a", 10, None).await.unwrap()), ["2"]);
    let claimed = store.outbox.claim_abandoned(People, "b", idle, 10).await.unwrap();
    assert_eq!(texts(&claimed), ["0", "1"], "only the idle ones");
    assert_eq!(texts(&store.outbox.read(People, "b", 10, Some("0")).await.unwrap()), ["0", "1"], "now b's");
    assert_eq!(texts(&store.outbox.read(People, "a", 10, Some("0")).await.unwrap()), ["2"], "no longer a's");
    assert!(store.outbox.claim_abandoned(People, "c", idle, 10).await.unwrap().is_empty(), "claiming resets idle");

    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    assert_eq!(store.outbox.claim_abandoned(People, "c", idle, 1).await.unwrap().len(), 1, "count applies");
}

/// Keeping an entry resets its idle time, so no one takes it over while
/// its consumer is still retrying it.
async fn outbox_keep_resets_idle(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[note("slow")]).await.unwrap();
    let given = store.outbox.read(People, "a", 10, None).await.unwrap();
    let idle = Duration::from_millis(400);
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    assert!(store.outbox.keep(People, "a", &given[0].id).await.unwrap(), "a holds it");
    assert!(store.outbox.claim_abandoned(People, "b", idle, 10).await.unwrap().is_empty(), "kept");

    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    assert_eq!(texts(&store.outbox.claim_abandoned(People, "b", idle, 10).await.unwrap()), ["slow"]);
    store.outbox.done(People, &given[0].id).await.unwrap();
    assert!(!store.outbox.keep(People, "b", &given[0].id).await.unwrap(), "done: nobody holds it");
    assert!(
        store.outbox.read(People, "b", 10, Some("0")).await.unwrap().is_empty(),
        "keeping a done entry revives nothing"
    );
    assert_eq!(store.outbox.len().await.unwrap(), 0);
}

/// A replica keeps only what it holds: once another took an entry over (its
/// heartbeat lapsed, it seemed dead), keeping it says so and leaves it with
/// the one that took it, which may be delivering it.
async fn keeping_an_entry_another_replica_took_over_says_so_and_leaves_it(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[note("held")]).await.unwrap();
    let given = store.outbox.read(People, "a", 10, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let taken = store.outbox.claim_abandoned(People, "b", Duration::from_millis(10), 10).await.unwrap();
    assert_eq!(texts(&taken), ["held"]);

    assert!(!store.outbox.keep(People, "a", &given[0].id).await.unwrap(), "b holds it now");
    assert!(store.outbox.read(People, "a", 10, Some("0")).await.unwrap().is_empty(), "not taken back");
    assert!(store.outbox.keep(People, "b", &given[0].id).await.unwrap());
    assert_eq!(texts(&store.outbox.read(People, "b", 10, Some("0")).await.unwrap()), ["held"]);
}

/// One commit writes to several streams in the same millisecond, so their
/// entries' ids repeat: a dead letter names its stream, and retrying one
/// takes that letter, not its namesake from another stream.
async fn dead_letters_of_two_streams_are_told_apart(store: Store) {
    store.outbox.prepare().await.unwrap();
    let alert = Effect::Post(Message::Incident(IncidentId(1), IncidentMessage::Alert));
    let effects = [alert.clone(), note("page")];
    assert_eq!(
        store.subjects.commit(&Commit { effects: &effects, ..empty() }).await.unwrap(),
        CommitOutcome::Committed
    );
    let anchors = store.outbox.read(Anchors, "a", 10, None).await.unwrap();
    let people = store.outbox.read(People, "a", 10, None).await.unwrap();
    store.outbox.dead(&anchors[0], "channel_not_found", t0()).await.unwrap();
    store.outbox.dead(&people[0], "channel_not_found", t0()).await.unwrap();

    let letters = store.outbox.dead_letters().await.unwrap();
    assert_eq!(letters[1]["entry"], format!("anchors:{}", anchors[0].id));
    assert_eq!(letters[0]["entry"], people[0].id.as_str(), "people's keep their bare ids");
    let taken = store.outbox.take_dead_letter(&anchors[0].name()).await.unwrap().expect("the alert's letter");
    assert_eq!(serde_json::from_value::<Effect>(taken["effect"].clone()).unwrap(), alert);
    assert_eq!(store.outbox.dead_letters().await.unwrap().len(), 1);
}

/// Done entries leave the outbox; refused ones go to the dead letters
/// (newest first, the last 1000), with why.
async fn outbox_done_and_dead(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[note("ok"), note("refused")]).await.unwrap();
    let given = store.outbox.read(People, "a", 10, None).await.unwrap();
    assert_eq!(store.outbox.len().await.unwrap(), 2);
    store.outbox.done(People, &given[0].id).await.unwrap();
    assert_eq!(store.outbox.len().await.unwrap(), 1);
    store.outbox.dead(&given[1], "channel_not_found", t0()).await.unwrap();
    assert_eq!(store.outbox.len().await.unwrap(), 0);
    assert!(store.outbox.read(People, "a", 10, Some("0")).await.unwrap().is_empty());

    let letters = store.outbox.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["entry"], given[1].id.as_str());
    assert_eq!(letters[0]["error"], "channel_not_found");
    assert_eq!(serde_json::from_value::<Effect>(letters[0]["effect"].clone()).unwrap(), note("refused"));
    assert_eq!(serde_json::from_value::<DateTime<Utc>>(letters[0]["at"].clone()).unwrap(), t0());

    for n in 0..1005u64 {
        let entry = OutboxEntry { stream: People, id: format!("{}-0", n + 1), effect: note(&n.to_string()) };
        store.outbox.dead(&entry, "refused", t0()).await.unwrap();
    }
    let letters = store.outbox.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1000);
    assert_eq!(letters[0]["entry"], "1005-0", "newest first");
    assert_eq!(letters[999]["entry"], "6-0");
}

/// Settling records where messages landed (on subjects that exist, the
/// later place of one message winning) and takes the delivered entries of
/// every stream out, in one step; places alone may be written too.
async fn settling_records_where_messages_landed_and_takes_the_entries_out(store: Store) {
    store.outbox.prepare().await.unwrap();
    let inc = incident(1, t0());
    assert_eq!(save(&store, &inc, 0).await, CommitOutcome::Committed);
    let anchor = Message::Incident(IncidentId(1), IncidentMessage::Alert);
    let effects = [note("alert"), note("kept"), alert_note(3, "storm"), note("page"), Effect::Post(anchor)];
    store.outbox.enqueue(&effects).await.unwrap();
    let people = store.outbox.read(People, "a", 10, None).await.unwrap();
    let alerts = store.outbox.read(Alerts, "a", 10, None).await.unwrap();
    let anchors = store.outbox.read(Anchors, "a", 10, None).await.unwrap();
    assert_eq!((people.len(), alerts.len(), anchors.len()), (3, 1, 1));

    let playbook = Message::Incident(IncidentId(1), IncidentMessage::Checklist(IncidentChecklist::Playbook, part(0)));
    let landed = [
        Landed::Posted { message: anchor, at: at("C0ALERTS", "1.0"), route: Some("#devops-alerts".into()) },
        Landed::Posted { message: playbook, at: at("C0ALERTS", "1.1"), route: None },
        Landed::Posted { message: playbook, at: at("C0ALERTS", "1.2"), route: None },
        // A subject that does not exist gets nothing planted.
        Landed::Posted {
            message: Message::Incident(IncidentId(9), IncidentMessage::Alert),
            at: at("C0ALERTS", "9.0"),
            route: Some("#devops-alerts".into()),
        },
    ];
    let done = [
        (People, people[0].id.clone()),
        (Anchors, anchors[0].id.clone()),
        (People, people[2].id.clone()),
        (Alerts, alerts[0].id.clone()),
    ];
    store.outbox.settle(&landed, &done).await.unwrap();

    let loaded = store.subjects.load_incident(IncidentId(1)).await.unwrap().unwrap();
    assert_eq!(loaded.version, 1, "recording places does not bump the version");
    assert_eq!(loaded.value.alert(), Some(&at("C0ALERTS", "1.0")));
    assert_eq!(loaded.value.posted.route.as_deref(), Some("#devops-alerts"));
    assert_eq!(loaded.value.posted.get(&playbook), Some(&at("C0ALERTS", "1.2")), "the later place wins");
    assert!(store.subjects.load_incident(IncidentId(9)).await.unwrap().is_none());
    assert_eq!(save(&store, &incident(9, t0()), 0).await, CommitOutcome::Committed, "still a creation");

    assert_eq!(store.outbox.len().await.unwrap(), 1, "only the entry not settled is left");
    assert_eq!(texts(&store.outbox.read(People, "a", 10, Some("0")).await.unwrap()), ["kept"]);
    assert!(store.outbox.read(Alerts, "a", 10, Some("0")).await.unwrap().is_empty());
    assert!(store.outbox.read(Anchors, "a", 10, Some("0")).await.unwrap().is_empty());

    // Places alone, before an entry is done (a retry's attempt landed one).
    let digest = Landed::Digested {
        message: Message::Incident(IncidentId(9), IncidentMessage::Alert),
        digest: at("C0DEVOPS", "5.0"),
        route: "#devops".into(),
    };
    store.outbox.settle(std::slice::from_ref(&digest), &[]).await.unwrap();
    let loaded = store.subjects.load_incident(IncidentId(9)).await.unwrap().unwrap();
    assert_eq!((loaded.value.alert(), loaded.value.posted.digested), (Some(&at("C0DEVOPS", "5.0")), true));
    assert_eq!(store.outbox.len().await.unwrap(), 1);
    store.outbox.settle(&[], &[]).await.unwrap();
}

/// An operator takes a dead letter out to retry it (its effect goes back
/// in the outbox) or drop it; a letter is taken once.
async fn dead_letters_retried_or_dropped(store: Store) {
    store.outbox.prepare().await.unwrap();
    for (id, text) in [("1-0", "first"), ("2-0", "second")] {
        let entry = OutboxEntry { stream: People, id: id.into(), effect: note(text) };
        store.outbox.dead(&entry, "channel_not_found", t0()).await.unwrap();
    }
    let letter = store.outbox.take_dead_letter("1-0").await.unwrap().expect("there");
    assert!(store.outbox.take_dead_letter("1-0").await.unwrap().is_none(), "taken once");
    assert_eq!(store.outbox.retry_dead_letter(&letter).await.unwrap(), Ok(()));
    let again = store.outbox.read(People, "a", 10, None).await.unwrap();
    assert_eq!(again.iter().map(|e| e.effect.clone()).collect::<Vec<_>>(), vec![note("first")]);
    assert!(store.outbox.take_dead_letter("2-0").await.unwrap().is_some(), "dropped");
    assert!(store.outbox.dead_letters().await.unwrap().is_empty());
    // What cannot be read is put back, not lost.
    let unreadable = serde_json::json!({"entry": "3-0", "error": "unreadable: no effect field"});
    assert!(store.outbox.retry_dead_letter(&unreadable).await.unwrap().is_err());
    store.outbox.bury(unreadable).await.unwrap();
    assert_eq!(store.outbox.dead_letters().await.unwrap()[0]["entry"], "3-0");
}

// --- The inbox -----------------------------------------------------------------

/// GitHub lets people redeliver for 3 days.
const DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

async fn github(store: &Store, dedupe: &str, body: &[u8]) -> Accepted {
    store.inbox.accept(HookSource::Github, "workflow_run", Some(dedupe), body, DELIVERY_TTL).await.unwrap()
}

fn hooks(entries: &[InboxEntry]) -> Vec<Hook> {
    entries.iter().map(|e| e.hook.clone().expect("readable")).collect()
}

fn bodies(entries: &[InboxEntry]) -> Vec<String> {
    hooks(entries).into_iter().map(|h| String::from_utf8_lossy(&h.body).into_owned()).collect()
}

/// A delivery id is stored once; the same id from another hook, and
/// deliveries without an id, are stored every time.
async fn inbox_accept_then_duplicate(store: Store) {
    store.inbox.prepare().await.unwrap();
    assert_eq!(github(&store, "7:72d3162e", b"{}").await, Accepted::Stored);
    assert_eq!(github(&store, "7:72d3162e", b"{}").await, Accepted::Duplicate);
    assert_eq!(github(&store, "8:72d3162e", b"{}").await, Accepted::Stored, "another hook, the same delivery");
    for _ in 0..2 {
        let accepted = store.inbox.accept(HookSource::Alertmanager, "", None, b"{}", DELIVERY_TTL).await.unwrap();
        assert_eq!(accepted, Accepted::Stored);
    }
    assert_eq!(store.inbox.len().await.unwrap(), 4);
}

/// What was accepted is read back as it came, byte for byte, in order;
/// done entries leave the stream.
async fn inbox_read_and_done(store: Store) {
    store.inbox.prepare().await.unwrap();
    let binary = [0u8, 159, 146, 150, b'{', b'}'];
    github(&store, "1:a", b"first").await;
    store.inbox.accept(HookSource::Alertmanager, "", None, &binary, DELIVERY_TTL).await.unwrap();
    let read = store.inbox.read("a", 10, None).await.unwrap();
    assert_eq!(
        hooks(&read),
        [
            Hook { source: HookSource::Github, event: "workflow_run".into(), body: b"first".to_vec() },
            Hook { source: HookSource::Alertmanager, event: String::new(), body: binary.to_vec() },
        ]
    );
    assert!(stream_order(&read[0].id) < stream_order(&read[1].id));
    assert_eq!(store.inbox.len().await.unwrap(), 2, "read is not done");
    assert!(store.inbox.read("b", 10, None).await.unwrap().is_empty(), "each entry goes to one consumer");

    store.inbox.done(&read[0].id).await.unwrap();
    assert_eq!(store.inbox.len().await.unwrap(), 1);
    let mine = store.inbox.read("a", 10, Some("0")).await.unwrap();
    assert_eq!(mine.len(), 1, "the unfinished one is read back after a restart");
    assert_eq!(mine[0].id, read[1].id);
    store.inbox.done(&read[1].id).await.unwrap();
    assert_eq!(store.inbox.len().await.unwrap(), 0);
    assert!(store.inbox.read("a", 10, Some("0")).await.unwrap().is_empty());
}

/// The entries of a consumer that stopped are taken over once they have
/// been idle for `min_idle`; keeping an entry resets its idle time.
async fn inbox_claim_abandoned(store: Store) {
    store.inbox.prepare().await.unwrap();
    github(&store, "1:a", b"0").await;
    github(&store, "1:b", b"1").await;
    let given = store.inbox.read("stopped", 10, None).await.unwrap();
    assert_eq!(bodies(&given), ["0", "1"]);
    let idle = Duration::from_millis(400);
    assert!(store.inbox.claim_abandoned("b", idle, 10).await.unwrap().is_empty(), "not idle long enough");

    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    store.inbox.keep("stopped", &given[1].id).await.unwrap();
    let claimed = store.inbox.claim_abandoned("b", idle, 10).await.unwrap();
    assert_eq!(bodies(&claimed), ["0"], "only the idle one");
    assert_eq!(bodies(&store.inbox.read("b", 10, Some("0")).await.unwrap()), ["0"], "now b's");
    assert_eq!(bodies(&store.inbox.read("stopped", 10, Some("0")).await.unwrap()), ["1"]);
}

/// A redelivery after the first was decided and done stores nothing, for
/// as long as the mark lasts; after it, the id counts as new.
async fn inbox_duplicate_not_stored(store: Store) {
    store.inbox.prepare().await.unwrap();
    let ttl = Duration::from_secs(1);
    let accept = |body: &'static [u8]| {
        let store = store.clone();
        async move { store.inbox.accept(HookSource::Github, "workflow_run", Some("9:guid"), body, ttl).await.unwrap() }
    };
    assert_eq!(accept(b"first").await, Accepted::Stored);
    let read = store.inbox.read("a", 10, None).await.unwrap();
    store.inbox.done(&read[0].id).await.unwrap();

    assert_eq!(accept(b"again").await, Accepted::Duplicate);
    assert_eq!(store.inbox.len().await.unwrap(), 0);
    assert!(store.inbox.read("a", 10, None).await.unwrap().is_empty(), "nothing new to read");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(accept(b"later").await, Accepted::Stored, "new again after the TTL");
    assert_eq!(bodies(&store.inbox.read("a", 10, None).await.unwrap()), ["later"]);
}

// --- Replicas' heartbeats -------------------------------------------------------

/// A heartbeat lasts as long as it said; leaving ends it at once; a replica
/// that never beat is neither alive nor dead.
async fn replica_heartbeats(store: Store) {
    assert_eq!(store.replicas.is_alive("a").await.unwrap(), None, "never beat");
    store.replicas.beat("a", Duration::from_secs(60)).await.unwrap();
    store.replicas.beat("b", Duration::from_millis(300)).await.unwrap();
    assert_eq!(store.replicas.is_alive("a").await.unwrap(), Some(true));
    assert_eq!(store.replicas.is_alive("b").await.unwrap(), Some(true));

    store.replicas.leave("a").await.unwrap();
    assert_eq!(store.replicas.is_alive("a").await.unwrap(), Some(false), "left");
    // Another replica's beat sweeps out replicas gone for a day, not one
    // that just left: what it held must still be taken over at once.
    store.replicas.beat("c", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.replicas.is_alive("a").await.unwrap(), Some(false), "still known to have left");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.replicas.is_alive("b").await.unwrap(), Some(false), "its heartbeat lapsed");
    store.replicas.beat("a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.replicas.is_alive("a").await.unwrap(), Some(true), "back under its name");
}

/// What a replica that left holds, in either outbox stream, is taken over
/// at once and in stream order, however recently it was touched; a live
/// replica's entries, and those of one that never beat (an older version),
/// are not.
async fn outbox_entries_of_a_departed_replica_are_claimed_at_once(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.replicas.beat("a", Duration::from_secs(60)).await.unwrap();
    store.replicas.beat("b", Duration::from_secs(60)).await.unwrap();
    store.outbox.enqueue(&[note("0"), alert_note(1, "alert"), note("1")]).await.unwrap();
    assert_eq!(store.outbox.read(People, "a", 1, None).await.unwrap().len(), 1);
    store.outbox.enqueue(&[note("old")]).await.unwrap();
    assert_eq!(texts(&store.outbox.read(People, "never-beat", 1, None).await.unwrap()), ["1"]);
    assert_eq!(texts(&store.outbox.read(People, "a", 1, None).await.unwrap()), ["old"]);
    assert_eq!(store.outbox.read(Alerts, "a", 10, None).await.unwrap().len(), 1);
    assert!(store.outbox.claim_departed(People, "b", 10).await.unwrap().is_empty(), "a is alive");

    store.replicas.leave("a").await.unwrap();
    let claimed = store.outbox.claim_departed(People, "b", 10).await.unwrap();
    assert_eq!(texts(&claimed), ["0", "old"], "a's, in order, and not never-beat's");
    assert_eq!(texts(&store.outbox.read(People, "b", 10, Some("0")).await.unwrap()), ["0", "old"], "now b's");
    assert!(store.outbox.read(People, "a", 10, Some("0")).await.unwrap().is_empty(), "no longer a's");
    assert_eq!(texts(&store.outbox.claim_departed(Alerts, "b", 10).await.unwrap()), ["alert"]);
    assert!(store.outbox.claim_departed(People, "c", 10).await.unwrap().is_empty(), "b is alive");
    assert!(store.outbox.claim_departed(People, "b", 10).await.unwrap().is_empty(), "nothing left");
    assert_eq!(texts(&store.outbox.read(People, "never-beat", 10, Some("0")).await.unwrap()), ["1"]);
}

/// A replica whose heartbeat lapsed loses what it holds, `count` at a
/// time; one that beats again in time keeps it.
async fn outbox_entries_of_a_silent_replica_are_claimed(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[note("0"), note("1"), note("2")]).await.unwrap();
    store.replicas.beat("slow", Duration::from_millis(300)).await.unwrap();
    store.replicas.beat("silent", Duration::from_millis(300)).await.unwrap();
    assert_eq!(store.outbox.read(People, "slow", 1, None).await.unwrap().len(), 1);
    assert_eq!(store.outbox.read(People, "silent", 2, None).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.replicas.beat("slow", Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(texts(&store.outbox.claim_departed(People, "b", 1).await.unwrap()), ["1"], "count applies");
    assert_eq!(texts(&store.outbox.claim_departed(People, "b", 10).await.unwrap()), ["2"]);
    assert_eq!(texts(&store.outbox.read(People, "slow", 10, Some("0")).await.unwrap()), ["0"], "slow keeps its own");
}

/// Webhook deliveries a replica held when it left are taken over at once.
async fn inbox_entries_of_a_departed_replica_are_claimed_at_once(store: Store) {
    store.inbox.prepare().await.unwrap();
    github(&store, "1:a", b"0").await;
    github(&store, "1:b", b"1").await;
    store.replicas.beat("a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(bodies(&store.inbox.read("a", 10, None).await.unwrap()), ["0", "1"]);
    assert!(store.inbox.claim_departed("b", 10).await.unwrap().is_empty(), "a is alive");
    store.replicas.leave("a").await.unwrap();
    assert_eq!(bodies(&store.inbox.claim_departed("b", 10).await.unwrap()), ["0", "1"]);
    assert_eq!(bodies(&store.inbox.read("b", 10, Some("0")).await.unwrap()), ["0", "1"], "now b's");
}

// --- The alerts' outbox stream -----------------------------------------------

/// An alert group's effects go to a stream of their own, in the same commit
/// as the rest, and so does each incident's alert (an anchor, read ahead of
/// the rest): people's reader never reads them, and they keep their order;
/// a refused commit writes to no stream.
async fn alerts_and_anchors_wait_in_streams_of_their_own(store: Store) {
    store.outbox.prepare().await.unwrap();
    let group = Message::Alert(AlertId(1), AlertMessage::Group);
    let effects = [
        Effect::Post(group),
        note("people's"),
        alert_note(1, "a failure"),
        Effect::Post(Message::Incident(IncidentId(1), IncidentMessage::Alert)),
        Effect::Refresh(group),
    ];
    let change = Commit { effects: &effects, ..empty() };
    assert_eq!(store.subjects.commit(&change).await.unwrap(), CommitOutcome::Committed);
    store.outbox.enqueue(&[alert_note(2, "enqueued"), note("also people's")]).await.unwrap();
    assert_eq!(store.outbox.len_of(People).await.unwrap(), 2);
    assert_eq!(store.outbox.len_of(Anchors).await.unwrap(), 1, "an incident's alert is an anchor");
    assert_eq!(store.outbox.len_of(Alerts).await.unwrap(), 4, "an alert group's message is not");
    assert_eq!(store.outbox.len().await.unwrap(), 7, "every stream counts");

    let people = store.outbox.read(People, "a", 100, None).await.unwrap();
    let effects_of = |entries: &[OutboxEntry]| entries.iter().map(|e| e.effect.clone()).collect::<Vec<_>>();
    assert_eq!(effects_of(&people), [effects[1].clone(), note("also people's")]);
    assert!(people.iter().all(|e| e.stream == People));
    let anchors = store.outbox.read(Anchors, "a", 100, None).await.unwrap();
    assert_eq!(effects_of(&anchors), [effects[3].clone()]);
    assert_eq!(anchors[0].stream, Anchors);
    let alerts = store.outbox.read(Alerts, "a", 100, None).await.unwrap();
    assert_eq!(
        effects_of(&alerts),
        [effects[0].clone(), effects[2].clone(), effects[4].clone(), alert_note(2, "enqueued")],
        "in the order they were committed"
    );
    assert!(alerts.iter().all(|e| e.stream == Alerts));

    // Each entry leaves its own stream only.
    store.outbox.done(Alerts, &alerts[0].id).await.unwrap();
    store.outbox.dead(&alerts[1], "channel_not_found", t0()).await.unwrap();
    assert_eq!(store.outbox.len_of(Alerts).await.unwrap(), 2);
    assert_eq!(store.outbox.len_of(People).await.unwrap(), 2);
    assert_eq!(store.outbox.dead_letters().await.unwrap()[0]["effect"], serde_json::to_value(&effects[2]).unwrap());
    store.outbox.done(People, &people[0].id).await.unwrap();
    assert_eq!(store.outbox.len_of(People).await.unwrap(), 1);
    assert_eq!(store.outbox.len_of(Alerts).await.unwrap(), 2);
    store.outbox.done(Anchors, &anchors[0].id).await.unwrap();
    assert_eq!(store.outbox.len_of(Anchors).await.unwrap(), 0);

    // Refused, the commit writes to neither.
    let inc = incident(1, t0());
    assert_eq!(save(&store, &inc, 0).await, CommitOutcome::Committed);
    let stale = Commit { subject: Some(Stored::Incident(&inc, 0)), effects: &effects, ..empty() };
    assert_eq!(store.subjects.commit(&stale).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(store.outbox.len().await.unwrap(), 3);
}

/// A blocked read of the alerts' stream wakes for an alert, not for
/// people's entries, and the other way round.
async fn each_stream_wakes_its_own_reader(store: Store) {
    store.outbox.prepare().await.unwrap();
    let writer = store.clone();
    let write = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.subjects.commit(&Commit { effects: &[note("people's")], ..empty() }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer.subjects.commit(&Commit { effects: &[alert_note(1, "alert")], ..empty() }).await.unwrap();
    };
    let started = Instant::now();
    let (alerts, ()) = tokio::join!(store.outbox.read(Alerts, "a", 10, None), write);
    assert_eq!(texts(&alerts.unwrap()), ["alert"]);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "woken by people's entry after {waited:?}");
    assert!(waited < OUTBOX_BLOCK - Duration::from_millis(200), "woke after {waited:?}");
    assert_eq!(texts(&store.outbox.read(People, "a", 10, None).await.unwrap()), ["people's"]);
}

/// A stopped replica's alert entries are taken over from the alerts'
/// stream, kept, read back after a restart and settled there, as people's
/// are from theirs.
async fn alert_entries_of_a_stopped_replica_are_taken_over(store: Store) {
    store.outbox.prepare().await.unwrap();
    store.outbox.enqueue(&[alert_note(1, "0"), alert_note(2, "1"), note("people's")]).await.unwrap();
    assert_eq!(store.outbox.read(Alerts, "a", 10, None).await.unwrap().len(), 2);
    assert_eq!(store.outbox.read(People, "a", 10, None).await.unwrap().len(), 1);
    let idle = Duration::from_millis(400);
    tokio::time::sleep(idle + Duration::from_millis(100)).await;

    let claimed = store.outbox.claim_abandoned(Alerts, "b", idle, 10).await.unwrap();
    assert_eq!(texts(&claimed), ["0", "1"]);
    assert!(claimed.iter().all(|e| e.stream == Alerts));
    assert_eq!(texts(&store.outbox.read(Alerts, "b", 10, Some("0")).await.unwrap()), ["0", "1"], "now b's");
    assert!(store.outbox.read(Alerts, "a", 10, Some("0")).await.unwrap().is_empty(), "no longer a's");
    assert_eq!(
        texts(&store.outbox.read(People, "a", 10, Some("0")).await.unwrap()),
        ["people's"],
        "people's stream is apart"
    );

    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    store.outbox.keep(Alerts, "b", &claimed[0].id).await.unwrap();
    let taken = store.outbox.claim_abandoned(Alerts, "c", idle, 10).await.unwrap();
    assert_eq!(texts(&taken), ["1"], "the kept one stays b's");
    store.outbox.done(Alerts, &claimed[0].id).await.unwrap();
    store.outbox.done(Alerts, &taken[0].id).await.unwrap();
    assert_eq!(store.outbox.len_of(Alerts).await.unwrap(), 0);
    assert_eq!(store.outbox.len_of(People).await.unwrap(), 1);
}

fn deployment(id: u64, at: DateTime<Utc>) -> opsbot_handlers::deploy::Deployment {
    opsbot_handlers::deploy::Deployment {
        id: opsbot_handlers::subject::DeployId(id),
        action: opsbot_handlers::deploy::Action::Deploy,
        environment: "production".into(),
        repo: "octo-org/shop".into(),
        git_ref: "v1.4.2".into(),
        workflow: "deploy.yml".into(),
        by: "U0ALICE".into(),
        at,
        channel: "#devops".into(),
        reason: None,
        state: opsbot_handlers::deploy::DeployState::Requested,
        dispatched: None,
        runs_page: None,
        run: None,
        posted: Default::default(),
    }
}

/// Deployments are numbered apart from the other subjects, committed at
/// their version like them, and loaded with where their message is.
async fn deployments(store: Store) {
    use opsbot_handlers::subject::{DeployId, DeploymentMessage};
    assert_eq!(store.subjects.next_deployment_id().await.unwrap(), DeployId(1));
    assert_eq!(store.subjects.next_incident_id().await.unwrap(), IncidentId(1));
    assert_eq!(store.subjects.next_deployment_id().await.unwrap(), DeployId(2));
    assert!(store.subjects.load_deployment(DeployId(1)).await.unwrap().is_none());

    let mut d = deployment(1, t0());
    let save = |d: &opsbot_handlers::deploy::Deployment, v| {
        let d = d.clone();
        let store = store.clone();
        async move { store.subjects.commit(&Commit { subject: Some(Stored::Deployment(&d, v)), ..empty() }).await.unwrap() }
    };
    assert_eq!(save(&d, 0).await, CommitOutcome::Committed);
    assert_eq!(save(&d, 0).await, CommitOutcome::Conflict, "a new deployment must not exist yet");
    d.state = opsbot_handlers::deploy::DeployState::Succeeded;
    assert_eq!(save(&d, 1).await, CommitOutcome::Committed);
    assert_eq!(save(&d, 1).await, CommitOutcome::Conflict, "a stale version is refused");

    let message = Message::Deployment(DeployId(1), DeploymentMessage::Announcement);
    store.subjects.record_posted(&message, &at("C0DEVOPS", "1.5"), Some("#devops")).await.unwrap();
    let loaded = store.subjects.load_deployment(DeployId(1)).await.unwrap().expect("saved");
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.value.state, opsbot_handlers::deploy::DeployState::Succeeded);
    assert_eq!(loaded.value.posted.anchor(), Some(&at("C0DEVOPS", "1.5")));
    let via_subject = store.subjects.load(Subject::Deployment(DeployId(1))).await.unwrap().expect("saved");
    assert_eq!(via_subject.value.subject(), Subject::Deployment(DeployId(1)));
}

/// Handoffs are numbered apart from the other subjects, committed at their
/// version, and loaded with where both their messages are (the channel's
/// and the DM).
async fn handoffs(store: Store) {
    use opsbot_handlers::oncall::handoff::Handoff;
    use opsbot_handlers::subject::{HandoffId, HandoffMessage};
    assert_eq!(store.subjects.next_handoff_id().await.unwrap(), HandoffId(1));
    assert_eq!(store.subjects.next_deployment_id().await.unwrap(), opsbot_handlers::subject::DeployId(1));
    assert_eq!(store.subjects.next_handoff_id().await.unwrap(), HandoffId(2));
    assert!(store.subjects.load_handoff(HandoffId(1)).await.unwrap().is_none());

    let mut h = Handoff {
        id: HandoffId(1),
        role: "on-call-engineer".into(),
        role_name: "On-call engineer".into(),
        shift: 3,
        outgoing: "U0ALICE".into(),
        incoming: "U0BOB".into(),
        starts: t0(),
        ends: t0() + chrono::TimeDelta::days(7),
        at: t0(),
        channel: "#devops".into(),
        open: "No open incidents.".into(),
        acknowledge_by: Some(t0() + chrono::TimeDelta::minutes(15)),
        acknowledged: None,
        reminded: false,
        posted: Default::default(),
    };
    let save = |h: &Handoff, v| {
        let h = h.clone();
        let store = store.clone();
        async move { store.subjects.commit(&Commit { subject: Some(Stored::Handoff(&h, v)), ..empty() }).await.unwrap() }
    };
    assert_eq!(save(&h, 0).await, CommitOutcome::Committed);
    assert_eq!(save(&h, 0).await, CommitOutcome::Conflict, "a new handoff must not exist yet");
    h.acknowledged = Some(opsbot_handlers::subject::Stamp { user: "U0BOB".into(), at: t0() });
    assert_eq!(save(&h, 1).await, CommitOutcome::Committed);
    assert_eq!(save(&h, 1).await, CommitOutcome::Conflict, "a stale version is refused");

    let anchor = Message::Handoff(HandoffId(1), HandoffMessage::Announcement);
    let direct = Message::Handoff(HandoffId(1), HandoffMessage::Direct);
    store.subjects.record_posted(&anchor, &at("C0DEVOPS", "1.5"), Some("#devops")).await.unwrap();
    store.subjects.record_posted(&direct, &at("D0BOB", "2.5"), None).await.unwrap();
    let loaded = store.subjects.load_handoff(HandoffId(1)).await.unwrap().expect("saved");
    assert_eq!(loaded.version, 2);
    assert!(!loaded.value.is_open());
    assert_eq!(loaded.value.posted.anchor(), Some(&at("C0DEVOPS", "1.5")));
    assert_eq!(loaded.value.posted.get(&direct), Some(&at("D0BOB", "2.5")));
    let via_subject = store.subjects.load(Subject::Handoff(HandoffId(1))).await.unwrap().expect("saved");
    assert_eq!(via_subject.value.subject(), Subject::Handoff(HandoffId(1)));
}

/// Overrides are listed while open, oldest first, and leave the list when
/// cancelled or over: what each replica reloads to page the right person.
async fn overrides(store: Store) {
    use opsbot_handlers::oncall::overrides::Override;
    use opsbot_handlers::subject::{OverrideId, Stamp};
    let cover = |id: u64| Override {
        id: OverrideId(id),
        role: "on-call-engineer".into(),
        role_name: "On-call engineer".into(),
        member: "U0CAROL".into(),
        covers: "U0BOB".into(),
        starts: t0(),
        ends: t0() + chrono::TimeDelta::hours(4),
        by: Stamp { user: "U0BOB".into(), at: t0() },
        channel: "#devops".into(),
        cancelled: None,
        ended: false,
        swap: None,
        posted: Default::default(),
    };
    let save = |o: Override, v| {
        let store = store.clone();
        async move { store.subjects.commit(&Commit { subject: Some(Stored::Override(&o, v)), ..empty() }).await.unwrap() }
    };
    assert!(store.subjects.open_overrides().await.unwrap().is_empty());
    for _ in 0..3 {
        let id = store.subjects.next_override_id().await.unwrap();
        assert_eq!(save(cover(id.0), 0).await, CommitOutcome::Committed);
    }
    let open: Vec<u64> = store.subjects.open_overrides().await.unwrap().iter().map(|o| o.id.0).collect();
    assert_eq!(open, [1, 2, 3], "oldest first");

    let mut cancelled = cover(2);
    cancelled.cancelled = Some(Stamp { user: "U0ALICE".into(), at: t0() });
    assert_eq!(save(cancelled, 1).await, CommitOutcome::Committed);
    let mut over = cover(1);
    over.ended = true;
    assert_eq!(save(over.clone(), 1).await, CommitOutcome::Committed);
    assert_eq!(save(over, 1).await, CommitOutcome::Conflict, "a stale version is refused");
    let open: Vec<u64> = store.subjects.open_overrides().await.unwrap().iter().map(|o| o.id.0).collect();
    assert_eq!(open, [3]);
    let loaded = store.subjects.load_override(OverrideId(2)).await.unwrap().expect("kept");
    assert!(loaded.value.cancelled.is_some() && loaded.version == 2);
}

/// A rotation's plan is replaced only from what the replacer read, so of
/// two replicas comparing it with a new runbook one wins.
async fn rotation_plans(store: Store) {
    let plans = &store.subjects;
    assert_eq!(plans.rotation_plan("on-call").await.unwrap(), None);
    assert!(plans.replace_rotation_plan("on-call", None, "[1]").await.unwrap());
    assert!(!plans.replace_rotation_plan("on-call", None, "[2]").await.unwrap(), "someone stored one meanwhile");
    assert!(plans.replace_rotation_plan("on-call", Some("[1]"), "[2]").await.unwrap());
    assert!(!plans.replace_rotation_plan("on-call", Some("[1]"), "[3]").await.unwrap(), "a stale read loses");
    assert_eq!(plans.rotation_plan("on-call").await.unwrap().as_deref(), Some("[2]"));
    assert_eq!(plans.rotation_plan("lead").await.unwrap(), None, "one plan per rotation");
}

/// A person's re-run is stored by GitHub's run id, committed at its
/// version with its effects like a subject's state, and loaded back (so it
/// survives a restart on Redis).
async fn reruns(store: Store) {
    use opsbot_handlers::pipeline::rerun::{RerunRequest, RerunState};
    let run_id = 9_000_000_001;
    assert!(store.subjects.load_rerun(run_id).await.unwrap().is_none());
    let mut request = RerunRequest {
        run_id,
        repo: "octo-org/shop".into(),
        run_number: 12,
        attempt: 1,
        by: "U0BOB".into(),
        at: t0(),
        state: RerunState::Asked,
    };
    let dm = || vec![Effect::Say { channel: "U0BOB".into(), thread_ts: None, text: "done".into() }];
    let save = |r: &RerunRequest, v, effects: Vec<Effect>| {
        let r = r.clone();
        let store = store.clone();
        async move {
            let commit = Commit { subject: Some(Stored::Rerun(&r, v)), effects: &effects, ..empty() };
            store.subjects.commit(&commit).await.unwrap()
        }
    };
    assert_eq!(save(&request, 0, vec![]).await, CommitOutcome::Committed);
    assert_eq!(save(&request, 0, vec![]).await, CommitOutcome::Conflict, "asked once");
    let queued = store.outbox.len().await.unwrap();
    request.state = RerunState::Answered { attempt: 2, conclusion: "success".into() };
    assert_eq!(save(&request, 1, dm()).await, CommitOutcome::Committed);
    assert_eq!(store.outbox.len().await.unwrap(), queued + 1, "the DM is committed with the answer");
    assert_eq!(save(&request, 1, dm()).await, CommitOutcome::Conflict, "a redelivery's answer is refused");
    assert_eq!(store.outbox.len().await.unwrap(), queued + 1, "and sends nothing");

    let loaded = store.subjects.load_rerun(run_id).await.unwrap().expect("saved");
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.value, request);
    assert!(store.subjects.load_rerun(run_id + 1).await.unwrap().is_none(), "by the run's id");
    assert!(store.subjects.open_incidents().await.unwrap().is_empty(), "not an incident");
}

/// An accepted swap is written with its two overrides, all or nothing: a
/// second Accept (a stale version, or overrides already there) writes none
/// of them, so the trade happens once.
async fn swap_with_its_overrides(store: Store) {
    use opsbot_handlers::oncall::overrides::Override;
    use opsbot_handlers::oncall::swap::{Answer, Swap, SwappedShift};
    use opsbot_handlers::subject::{OverrideId, Stamp, SwapId};
    let week = |weeks: i64| SwappedShift {
        index: weeks,
        starts: t0() + TimeDelta::weeks(weeks),
        ends: t0() + TimeDelta::weeks(weeks + 1),
    };
    let id = store.subjects.next_swap_id().await.unwrap();
    assert_eq!(id, SwapId(1));
    let offer = Swap {
        id,
        role: "on-call-engineer".into(),
        role_name: "On-call engineer".into(),
        proposer: "U0ALICE".into(),
        gives: week(2),
        invitee: "U0BOB".into(),
        takes: week(1),
        at: t0(),
        channel: "#devops".into(),
        answer: None,
        expired: false,
        posted: Default::default(),
    };
    let offered = Commit { subject: Some(Stored::Swap(&offer, 0)), ..empty() };
    assert_eq!(store.subjects.commit(&offered).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.subjects.load_swap(id).await.unwrap().expect("stored").value, offer);
    assert_eq!(store.subjects.open_swaps().await.unwrap(), vec![offer.clone()], "waiting for an answer");

    let ids = [store.subjects.next_override_id().await.unwrap(), store.subjects.next_override_id().await.unwrap()];
    let half = |oid: OverrideId, member: &str, covers: &str, shift: &SwappedShift| Override {
        id: oid,
        role: offer.role.clone(),
        role_name: offer.role_name.clone(),
        member: member.into(),
        covers: covers.into(),
        starts: shift.starts,
        ends: shift.ends,
        by: Stamp { user: "U0BOB".into(), at: t0() },
        channel: "#devops".into(),
        cancelled: None,
        ended: false,
        swap: Some(id),
        posted: Default::default(),
    };
    let covers = [half(ids[0], "U0BOB", "U0ALICE", &offer.gives), half(ids[1], "U0ALICE", "U0BOB", &offer.takes)];
    let mut accepted = offer.clone();
    accepted.answer = Some(Answer::Accepted { at: t0(), overrides: ids });
    let also = [Stored::Override(&covers[0], 0), Stored::Override(&covers[1], 0)];
    let accept = Commit { subject: Some(Stored::Swap(&accepted, 1)), also: &also, ..empty() };
    assert_eq!(store.subjects.commit(&accept).await.unwrap(), CommitOutcome::Committed);
    let open: Vec<OverrideId> = store.subjects.open_overrides().await.unwrap().iter().map(|o| o.id).collect();
    assert_eq!(open, ids, "both halves are followed");
    assert!(store.subjects.open_swaps().await.unwrap().is_empty(), "answered");
    assert_eq!(store.subjects.load_override(ids[1]).await.unwrap().expect("stored").value, covers[1]);
    assert_eq!(store.subjects.load_swap(id).await.unwrap().expect("stored").version, 2);

    // The same Accept again, at the version it was loaded at: refused.
    assert_eq!(store.subjects.commit(&accept).await.unwrap(), CommitOutcome::Conflict);
    // Up to date on the swap, but the overrides are there already: refused
    // too, and the swap is left as it was.
    let retry = Commit { subject: Some(Stored::Swap(&accepted, 2)), also: &also, ..empty() };
    assert_eq!(store.subjects.commit(&retry).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(store.subjects.load_swap(id).await.unwrap().expect("stored").version, 2);
    assert_eq!(store.subjects.load_override(ids[0]).await.unwrap().expect("stored").version, 1);
}

/// A list's page: the newest open incidents, at most so many, and how many
/// are open in all; resolved ones are in neither.
async fn a_list_page_holds_the_newest_open_and_counts_them_all(store: Store) {
    assert_eq!(store.subjects.open_incidents_first(25).await.unwrap().1, 0);
    for id in 1..=6 {
        assert_eq!(save(&store, &incident(id, t0()), 0).await, CommitOutcome::Committed);
    }
    let mut four = incident(4, t0());
    four.resolve("U0BOB", None, t0() + minutes(5)).unwrap();
    assert_eq!(save(&store, &four, 1).await, CommitOutcome::Committed);
    let (first, total) = store.subjects.open_incidents_first(3).await.unwrap();
    assert_eq!((ids(&first), total), (vec![6, 5, 3], 5));
    let (all, total) = store.subjects.open_incidents_first(25).await.unwrap();
    assert_eq!((ids(&all), total), (vec![6, 5, 3, 2, 1], 5));
    assert_eq!(ids(&store.subjects.open_incidents_first(0).await.unwrap().0), Vec::<u64>::new());
}

/// The tallies `/incident stats` reads: a commit's increments land on its
/// day, add up, may take back (a severity moved), and are summed over the
/// days asked for; a refused commit adds nothing.
async fn tallies_add_up_per_day_and_are_written_only_by_a_commit_that_goes_through(store: Store) {
    let day = |n: i64| (t0() + TimeDelta::days(n)).date_naive();
    let tally = |n: i64, deltas: &[(&str, i64)]| Tally {
        day: day(n),
        deltas: deltas.iter().map(|(f, d)| (f.to_string(), *d)).collect(),
    };
    let first = tally(0, &[("P1:declared", 1)]);
    let one = incident(1, t0());
    let commit = Commit { subject: Some(Stored::Incident(&one, 0)), tally: Some(&first), ..empty() };
    assert_eq!(store.subjects.commit(&commit).await.unwrap(), CommitOutcome::Committed);
    // The same commit again is refused (the incident exists): no count.
    assert_eq!(store.subjects.commit(&commit).await.unwrap(), CommitOutcome::Conflict);
    let moved = tally(0, &[("P0:declared", 1), ("P1:declared", -1)]);
    let commit = Commit { subject: Some(Stored::Incident(&one, 1)), tally: Some(&moved), ..empty() };
    assert_eq!(store.subjects.commit(&commit).await.unwrap(), CommitOutcome::Committed);
    let later = tally(2, &[("P0:declared", 1), ("P0:fix:600", 1)]);
    let two = incident(2, t0() + TimeDelta::days(2));
    let commit = Commit { subject: Some(Stored::Incident(&two, 0)), tally: Some(&later), ..empty() };
    assert_eq!(store.subjects.commit(&commit).await.unwrap(), CommitOutcome::Committed);

    let counts = |days: Vec<chrono::NaiveDate>| {
        let store = store.clone();
        async move {
            let summed = store.subjects.incident_tallies(&days).await.unwrap();
            summed.into_iter().filter(|(_, n)| *n != 0).collect::<Vec<_>>()
        }
    };
    assert_eq!(counts(vec![day(0)]).await, [("P0:declared".to_owned(), 1)]);
    assert_eq!(
        counts(vec![day(2), day(1), day(0)]).await,
        [("P0:declared".to_owned(), 2), ("P0:fix:600".to_owned(), 1)]
    );
    assert!(counts(vec![day(1), day(5)]).await.is_empty());
}

/// Commits `inc` as the engine does: with what it changes in its day's
/// tally since it was `before` (nothing: new).
async fn save_counted(store: &Store, inc: &Incident, version: u64, before: Option<&Incident>) -> CommitOutcome {
    let runbook = Runbook::seed();
    let before = before.map(|b| stats::counts(b, &runbook)).unwrap_or_default();
    let tally = stats::tally(&before, inc, &runbook);
    let commit = Commit { subject: Some(Stored::Incident(inc, version)), tally: tally.as_ref(), ..empty() };
    store.subjects.commit(&commit).await.unwrap()
}

/// A day's tally as `/incident stats` reads it, without the fields that
/// count nothing.
async fn tally_of(store: &Store, day: chrono::NaiveDate) -> Vec<(String, i64)> {
    let summed = store.subjects.incident_tallies(&[day]).await.unwrap();
    summed.into_iter().filter(|(_, n)| *n != 0).collect()
}

fn fields(counts: &[(&str, i64)]) -> Vec<(String, i64)> {
    counts.iter().map(|(field, n)| (field.to_string(), *n)).collect()
}

/// Incidents stored before tallies existed, and a tally that counts what
/// is not there: a rebuild makes each day's tally what the commits of its
/// incidents would have left, each incident on the UTC day it was
/// declared, and later commits add to it as to any.
async fn rebuilt_tallies_are_what_the_commits_would_have_left(store: Store) {
    let runbook = Runbook::seed();
    let day = |n: i64| (t0() + TimeDelta::days(n)).date_naive();
    let mut counted = incident(1, t0());
    assert_eq!(save_counted(&store, &counted, 0, None).await, CommitOutcome::Committed);
    let before = counted.clone();
    counted.acknowledge("U0BOB", t0() + minutes(4)).unwrap();
    assert_eq!(save_counted(&store, &counted, 1, Some(&before)).await, CommitOutcome::Committed);
    let before = counted.clone();
    counted.resolve("U0BOB", None, t0() + minutes(50)).unwrap();
    assert_eq!(save_counted(&store, &counted, 2, Some(&before)).await, CommitOutcome::Committed);
    // Stored before the upgrade: in no tally. The last millisecond of day 0
    // and the first of day 1 (t0 is 03:00 UTC).
    let mut uncounted = incident(2, t0() + minutes(30));
    uncounted.severity = Severity::P0;
    assert_eq!(save(&store, &uncounted, 0).await, CommitOutcome::Committed);
    let midnight = t0() + TimeDelta::hours(21);
    let late = incident(3, midnight - TimeDelta::milliseconds(1));
    assert_eq!(save(&store, &late, 0).await, CommitOutcome::Committed);
    assert_eq!(save(&store, &incident(4, midnight), 0).await, CommitOutcome::Committed);
    // Day 2 declared nothing, but its tally says otherwise.
    let wrong = Tally { day: day(2), deltas: vec![("P3:declared".into(), 5)] };
    assert_eq!(
        store.subjects.commit(&Commit { tally: Some(&wrong), ..empty() }).await.unwrap(),
        CommitOutcome::Committed
    );
    let counted_only = fields(&[("P1:ack:240", 1), ("P1:declared", 1), ("P1:fix:3000", 1), ("P1:resolved", 1)]);
    assert_eq!(tally_of(&store, day(0)).await, counted_only);
    assert!(tally_of(&store, day(1)).await.is_empty());
    assert_eq!(tally_of(&store, day(2)).await, fields(&[("P3:declared", 5)]));

    let read = store.subjects.incidents_declared_on(day(0)).await.unwrap();
    assert_eq!(read.versions, [(IncidentId(1), 3), (IncidentId(2), 1), (IncidentId(3), 1)]);
    assert_eq!(ids(&read.incidents), [1, 2, 3]);
    for (n, incidents) in [(0, 3), (1, 1), (2, 0), (3, 0)] {
        let rebuilt = store.subjects.rebuild_incident_tally(day(n), &runbook).await.unwrap();
        assert_eq!(rebuilt, TallyRebuild::Rebuilt { incidents }, "day {n}");
    }
    let all = [("P0:declared", 1), ("P1:ack:240", 1), ("P1:declared", 2), ("P1:fix:3000", 1), ("P1:resolved", 1)];
    assert_eq!(tally_of(&store, day(0)).await, fields(&all));
    assert_eq!(tally_of(&store, day(1)).await, fields(&[("P1:declared", 1)]));
    assert!(tally_of(&store, day(2)).await.is_empty(), "a tally without incidents is emptied");
    // Again: the same tallies, not twice.
    store.subjects.rebuild_incident_tally(day(0), &runbook).await.unwrap();
    assert_eq!(tally_of(&store, day(0)).await, fields(&all));

    let before = uncounted.clone();
    uncounted.acknowledge("U0BOB", t0() + minutes(32)).unwrap();
    assert_eq!(save_counted(&store, &uncounted, 1, Some(&before)).await, CommitOutcome::Committed);
    let acknowledged = [("P0:ack:120", 1), ("P0:declared", 1)];
    assert_eq!(tally_of(&store, day(0)).await[..2], fields(&acknowledged));
}

/// A rebuild and the bots' commits at once: a commit to one of the day's
/// incidents, or a new incident that day, between the rebuild's read and
/// its write refuses the write (the commit's increment stays), and the
/// rebuild reads again; a commit to another day's incident does not.
async fn a_tally_rebuild_racing_commits_loses_no_increment_and_reads_again(store: Store) {
    let runbook = Runbook::seed();
    let day = t0().date_naive();
    let mut one = incident(1, t0());
    assert_eq!(save(&store, &one, 0).await, CommitOutcome::Committed);
    let mut other_day = incident(9, t0() - TimeDelta::days(1));
    assert_eq!(save_counted(&store, &other_day, 0, None).await, CommitOutcome::Committed);

    let read = store.subjects.incidents_declared_on(day).await.unwrap();
    let stale = stats::day_tally(&read.incidents, &runbook);
    let before = one.clone();
    one.acknowledge("U0BOB", t0() + minutes(4)).unwrap();
    assert_eq!(save_counted(&store, &one, 1, Some(&before)).await, CommitOutcome::Committed);
    assert_eq!(store.subjects.replace_incident_tally(&read, &stale).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(tally_of(&store, day).await, fields(&[("P1:ack:240", 1)]), "the commit's increment stays");

    let read = store.subjects.incidents_declared_on(day).await.unwrap();
    let stale = stats::day_tally(&read.incidents, &runbook);
    let two = incident(2, t0() + minutes(10));
    assert_eq!(save_counted(&store, &two, 0, None).await, CommitOutcome::Committed);
    assert_eq!(store.subjects.replace_incident_tally(&read, &stale).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(tally_of(&store, day).await, fields(&[("P1:ack:240", 1), ("P1:declared", 1)]));

    let read = store.subjects.incidents_declared_on(day).await.unwrap();
    let fresh = stats::day_tally(&read.incidents, &runbook);
    let before = other_day.clone();
    other_day.resolve("U0BOB", None, t0()).unwrap();
    assert_eq!(save_counted(&store, &other_day, 1, Some(&before)).await, CommitOutcome::Committed);
    assert_eq!(store.subjects.replace_incident_tally(&read, &fresh).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(tally_of(&store, day).await, fields(&[("P1:ack:240", 1), ("P1:declared", 2)]));
    let yesterday = fields(&[("P1:declared", 1), ("P1:fix:86400", 1), ("P1:resolved", 1)]);
    assert_eq!(tally_of(&store, day - TimeDelta::days(1)).await, yesterday);

    // After a refused write, the whole rebuild reads again and gets there.
    let read = store.subjects.incidents_declared_on(day).await.unwrap();
    let before = one.clone();
    one.resolve("U0BOB", None, t0() + minutes(20)).unwrap();
    assert_eq!(save_counted(&store, &one, 2, Some(&before)).await, CommitOutcome::Committed);
    let stale = stats::day_tally(&read.incidents, &runbook);
    assert_eq!(store.subjects.replace_incident_tally(&read, &stale).await.unwrap(), CommitOutcome::Conflict);
    let rebuilt = store.subjects.rebuild_incident_tally(day, &runbook).await.unwrap();
    assert_eq!(rebuilt, TallyRebuild::Rebuilt { incidents: 2 });
    let all = [("P1:ack:240", 1), ("P1:declared", 2), ("P1:fix:1200", 1), ("P1:resolved", 1)];
    assert_eq!(tally_of(&store, day).await, fields(&all));
}

macro_rules! contracts {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(opsbot::store::Store::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = super::RedisServer::start();
                    super::$name(server.store(stringify!($name))).await;
                }
            )*
        }
        /// The same contracts on Redis Cluster's terms: each passes only if
        /// every key one command, transaction or script touches hashes to
        /// the same slot.
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = super::RedisServer::start_cluster();
                    super::$name(server.store(stringify!($name))).await;
                }
            )*
        }
    };
}

contracts!(
    numbering,
    version_conflict,
    new_must_not_exist,
    timer_consumed_once,
    slot_mark_monotonic,
    due_timers_ordering,
    commit_without_subject,
    timeline,
    open_index,
    declared_since,
    run_history,
    set_if_exists,
    event_dedupe,
    socket_envelope_claims,
    outbox_ids_sort,
    outbox_delivered_once,
    outbox_read_waits,
    outbox_own_pending,
    outbox_claim_abandoned,
    outbox_keep_resets_idle,
    keeping_an_entry_another_replica_took_over_says_so_and_leaves_it,
    outbox_done_and_dead,
    dead_letters_of_two_streams_are_told_apart,
    settling_records_where_messages_landed_and_takes_the_entries_out,
    dead_letters_retried_or_dropped,
    alerts_and_anchors_wait_in_streams_of_their_own,
    each_stream_wakes_its_own_reader,
    alert_entries_of_a_stopped_replica_are_taken_over,
    replica_heartbeats,
    outbox_entries_of_a_departed_replica_are_claimed_at_once,
    outbox_entries_of_a_silent_replica_are_claimed,
    inbox_entries_of_a_departed_replica_are_claimed_at_once,
    inbox_accept_then_duplicate,
    inbox_read_and_done,
    inbox_claim_abandoned,
    inbox_duplicate_not_stored,
    deployments,
    handoffs,
    overrides,
    rotation_plans,
    reruns,
    swap_with_its_overrides,
    a_list_page_holds_the_newest_open_and_counts_them_all,
    tallies_add_up_per_day_and_are_written_only_by_a_commit_that_goes_through,
    rebuilt_tallies_are_what_the_commits_would_have_left,
    a_tally_rebuild_racing_commits_loses_no_increment_and_reads_again,
);

/// The one thing the backends are meant to differ in.
#[tokio::test]
async fn only_redis_persists() {
    assert!(!Store::memory().is_persistent());
    let server = RedisServer::start();
    assert!(server.store("persists").is_persistent());
}
