//! Nothing is lost when the bot restarts, Slack is away, or Redis goes down
//! for a while.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_restart_keeps_open_incidents_and_delivers_what_was_not_yet_posted() {
    let mut t = spawn_app().await;
    t.incident("p2 Before the restart").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;

    // Slack is away: the next alert waits in the outbox.
    t.slack.set_unavailable(true);
    t.incident("p0 During the outage").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);

    t.start_again().await;
    t.wait_for_alert(ALERTS, "INC-2").await;
    let list = reply_text(&t.incident("list").await);
    assert!(list.contains("INC-1") && list.contains("INC-2"), "{list}");
    let alerts: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(alerts.len(), 1, "posted once after the restart");
    // Numbering continues where it stopped.
    assert!(reply_text(&t.incident("p3 After").await).contains("INC-3"));
}

#[tokio::test]
async fn a_second_replica_takes_over_what_a_dead_one_left() {
    let mut t = spawn_app().await;
    t.slack.set_unavailable(true);
    t.incident("p1 Orphaned").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);
    // Another replica (another consumer name) on the same Redis.
    t.config.replica = "other-replica".into();
    t.start_again().await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    let alerts: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(alerts.len(), 1);
}

#[tokio::test]
async fn redis_down_makes_readyz_503_and_commands_answer_clearly_then_recovers() {
    let mut t = spawn_app().await;
    t.incident("p3 Before").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;
    t.redis.stop();

    let http = reqwest::Client::new();
    let started = Instant::now();
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_ne!(body["redis"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3), "readyz answered in {:?}", started.elapsed());

    let started = Instant::now();
    let reply = reply_text(&t.incident("p0 During the Redis outage").await);
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert!(reply.contains("cannot reach its database") && reply.contains("nothing was changed"), "{reply}");

    t.redis.restart();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = reply_text(&t.incident("p0 After Redis returned").await);
        if reply.contains("declared") {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
    // The append-only Redis came back with INC-1 ("Before"), so this one
    // numbers on from it; what matters is that it reaches Slack.
    t.slack
        .wait_for(PATIENCE, |s| s.messages(ALERTS).into_iter().find(|m| m.text.contains("After Redis returned")))
        .await
        .expect("the alert after recovery is posted");
}

#[tokio::test]
async fn slack_unreachable_makes_readyz_503() {
    let t = spawn_app().await;
    t.slack.set_unavailable(true);
    let http = reqwest::Client::new();
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "ok");
    assert_ne!(body["slack"], "ok");
}

#[tokio::test]
async fn a_long_slack_outage_with_two_replicas_delivers_each_message_once() {
    let t = spawn_app().await;
    let second = t.spawn_replica("replica-2").await;
    t.slack.set_unavailable(true);
    t.incident("p0 During a long Slack outage").await;
    // Longer than the replicas' reclaim_after (2 s in tests): entries a live
    // replica holds must not look abandoned to the other.
    tokio::time::sleep(Duration::from_secs(5)).await;
    t.slack.set_unavailable(false);
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.wait_for_page(&alert).await;
    // Give a duplicate every chance to appear.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pages = t.slack.thread(ALERTS, &alert.ts).iter().filter(|m| m.text.contains("Paging the")).count();
    let alerts = t.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count();
    assert_eq!((alerts, pages), (1, 1), "{:#?}", t.slack.messages(ALERTS));
    second.stop().await;
}

#[tokio::test]
async fn a_running_replica_takes_over_what_a_stopped_one_left_without_a_restart() {
    let mut t = spawn_app().await;
    let survivor = t.spawn_replica("replica-2").await;
    t.slack.set_unavailable(true);
    t.incident("p1 Left behind").await;
    // Let the first replica take the entries, then stop it mid-retry.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);
    // The survivor keeps running; after reclaim_after (2 s in tests) the
    // stopped replica's entries look abandoned and it delivers them.
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.wait_for_page(&alert).await;
    assert_eq!(t.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count(), 1);
    survivor.stop().await;
}

/// Empties the test's Redis, as a Redis restarted without persistence (or
/// flushed by mistake) comes back.
async fn flush(redis: &opsbot_test_redis::RedisServer) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn redis_that_comes_back_empty_numbers_nothing_says_so_and_takes_up_again_once_adopted() {
    let mut t = spawn_app().await;
    t.incident("p2 Builds are slow").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;
    flush(&t.redis).await;

    // The next number is refused at once, before any watcher tick.
    let refused = reply_text(&t.incident("p2 Disk full").await);
    assert!(refused.contains("lost its data") && refused.contains("nothing was recorded"), "{refused}");
    let http = reqwest::Client::new();
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body["redis"].as_str().is_some_and(|r| r.contains("opsbot redis adopt")), "{body}");
    t.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.text.contains("opsbot's Redis lost its data"))
        })
        .await
        .expect("the team channel is told");
    // A replica started now does not take the empty Redis for a first start.
    let late = t.spawn_replica("late-replica").await;
    let own = std::mem::replace(&mut t.addr, late.addr);
    let from_late = reply_text(&t.incident("p2 Disk full").await);
    t.addr = own;
    assert!(from_late.contains("lost its data"), "{from_late}");

    let adopted = opsbot::store::Store::connect(&t.redis.url(), &t.config.redis_prefix)
        .unwrap()
        .adopt(&[("INC".to_owned(), 2)])
        .await
        .unwrap();
    assert_eq!(adopted[0], "INC: the next is INC-2");
    let deadline = Instant::now() + PATIENCE;
    let declared = loop {
        let reply = reply_text(&t.incident("p2 Disk full").await);
        if !reply.contains("lost its data") {
            break reply;
        }
        assert!(Instant::now() < deadline, "never took up again: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(declared.contains("INC-2"), "numbering goes on from the adopted number: {declared}");
    assert_eq!(http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
    let told = t.slack.messages(DEVOPS).iter().filter(|m| m.text.contains("opsbot's Redis lost its data")).count();
    assert_eq!(told, 1, "one replica tells");
    late.stop().await;
}

/// Waits until `replica` has synced with its primary.
async fn synced(replica: &opsbot_test_redis::RedisServer) {
    let client = redis::Client::open(replica.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never synced: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `opsbot_redis_unreplicated_commits` as `/metrics` shows it.
async fn unreplicated(t: &TestApp) -> u64 {
    let text = reqwest::get(t.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("opsbot_redis_unreplicated_commits ")).expect("the gauge is there");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn commits_wait_for_a_redis_replica_and_one_that_is_gone_is_counted_but_stops_nothing() {
    let mut t = spawn_app().await;
    let mut replica = opsbot_test_redis::RedisServer::start_replica_of(&t.redis);
    t.stop().await;
    t.config.redis_wait = Some((1, Duration::from_millis(200)));
    t.start_again().await;
    synced(&replica).await;

    let declared = reply_text(&t.incident("p2 Replicated").await);
    assert!(declared.contains("INC-1"), "{declared}");
    assert_eq!(unreplicated(&t).await, 0, "the replica has it");

    replica.stop();
    let started = Instant::now();
    let declared = reply_text(&t.incident("p2 Only on the primary").await);
    assert!(declared.contains("INC-2"), "the commit stands: {declared}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert_eq!(unreplicated(&t).await, 1, "and is counted");
}

#[tokio::test]
async fn a_redis_over_tls_signed_by_a_private_authority_is_used_once_its_authority_is_given() {
    let tls = opsbot_test_redis::RedisServer::start_tls();
    let url = tls.tls_url().expect("a TLS port");
    let ca = tls.ca_pem().unwrap();
    let t = spawn_app_with(|config| {
        config.redis_url = Some(opsbot::config::Secret::new(url.clone()));
        config.redis_ca = Some(ca);
    })
    .await;
    let declared = reply_text(&t.incident("p2 Over TLS").await);
    assert!(declared.contains("INC-1"), "{declared}");
    t.wait_for_alert(DEVOPS, "INC-1").await;
    assert_eq!(reqwest::get(t.url("/readyz")).await.unwrap().status(), 200);

    // Checked against the public roots only, the private certificate is
    // refused: not ready, and nothing is written.
    let untrusted = spawn_app_with(|config| config.redis_url = Some(opsbot::config::Secret::new(url))).await;
    let refused = reply_text(&untrusted.incident("p2 Over TLS, untrusted").await);
    assert!(refused.contains("cannot reach its database"), "{refused}");
    let ready = reqwest::get(untrusted.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn on_redis_cluster_a_prefix_that_is_not_a_hash_tag_is_refused_by_name_and_a_hash_tag_works() {
    let cluster = opsbot_test_redis::RedisServer::start_cluster();
    let untagged = spawn_app_with(|config| {
        config.redis_url = Some(opsbot::config::Secret::new(cluster.url()));
        config.redis_prefix = "opsbot".into();
    })
    .await;
    let ready = reqwest::get(untagged.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(why.contains("cluster mode") && why.contains("OPSBOT_REDIS_PREFIX"), "{why}");
    let refused = reply_text(&untagged.incident("p2 On a cluster, untagged").await);
    assert!(refused.contains("cannot reach its database"), "{refused}");

    let tagged = spawn_app_with(|config| {
        config.redis_url = Some(opsbot::config::Secret::new(cluster.url()));
        config.redis_prefix = "{opsbot}".into();
    })
    .await;
    let declared = reply_text(&tagged.incident("p2 On a cluster").await);
    assert!(declared.contains("INC-1"), "{declared}");
    tagged.wait_for_alert(DEVOPS, "INC-1").await;
    assert_eq!(reqwest::get(tagged.url("/readyz")).await.unwrap().status(), 200);
}

/// Sends one command to the Redis (or Sentinel) at `url`.
async fn ask<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> T {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

/// Declares `title` until it is declared (not refused for a Redis that is
/// away), and returns the answer.
async fn declared_eventually(t: &TestApp, title: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = reply_text(&t.incident(&format!("p2 {title}")).await);
        if reply.contains("INC-") {
            return reply;
        }
        assert!(Instant::now() < deadline, "never declared: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Redis primary with a replica in sync, and three Sentinels watching it
/// as `opsbot`, two of which must agree, as production runs them.
struct SentinelSet {
    primary: opsbot_test_redis::RedisServer,
    replica: opsbot_test_redis::RedisServer,
    sentinels: Vec<opsbot_test_redis::RedisSentinel>,
}

impl SentinelSet {
    async fn start() -> SentinelSet {
        use opsbot_test_redis::{Persistence, RedisSentinel, RedisServer};
        let primary = RedisServer::start(Persistence::AppendOnly);
        let replica = RedisServer::start_replica_of(&primary);
        synced(&replica).await;
        let sentinels = (0..3).map(|_| RedisSentinel::start("opsbot", &primary, 2)).collect();
        SentinelSet { primary, replica, sentinels }
    }

    /// The bot's `REDIS_URL` for it.
    fn url(&self) -> opsbot::config::Secret {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port())).collect();
        opsbot::config::Secret::new(format!("redis+sentinel://{}/opsbot", hosts.join(",")))
    }

    /// Starts a failover to the replica, once Sentinel has learnt of it
    /// from the primary; it runs on after this returns.
    async fn start_failover(&self) {
        let sentinel = format!("redis://127.0.0.1:{}/", self.sentinels[0].port());
        let deadline = Instant::now() + PATIENCE;
        loop {
            let replicas: Vec<redis::Value> = ask(&sentinel, &["SENTINEL", "REPLICAS", "opsbot"]).await;
            if !replicas.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "Sentinel never saw the replica");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let () = ask(&sentinel, &["SENTINEL", "FAILOVER", "opsbot"]).await;
    }

    /// Whether the replica leads and the old primary follows it. A server
    /// that does not answer (loading what it syncs) is not there yet.
    async fn failed_over(&self) -> bool {
        let role = |url: String| async move {
            let client = redis::Client::open(url).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("INFO").arg("replication").query_async::<String>(&mut conn).await.ok()
        };
        let promoted = role(self.replica.url()).await.unwrap_or_default();
        let demoted = role(self.primary.url()).await.unwrap_or_default();
        promoted.contains("role:master") && demoted.contains("role:slave")
    }
}

#[tokio::test]
async fn through_sentinel_the_bot_follows_a_failover_to_the_new_primary() {
    let set = SentinelSet::start().await;
    let t = spawn_app_with(|config| config.redis_url = Some(set.url())).await;
    let first = declared_eventually(&t, "Before the failover").await;
    assert!(first.contains("INC-1"), "{first}");
    t.wait_for_alert(DEVOPS, "INC-1").await;

    set.start_failover().await;
    let deadline = Instant::now() + PATIENCE;
    while !set.failed_over().await {
        assert!(Instant::now() < deadline, "the failover never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second = declared_eventually(&t, "After the failover").await;
    assert!(second.contains("INC-2"), "numbering goes on where the old primary left it: {second}");
    let on_new: Option<u64> = ask(&set.replica.url(), &["GET", "opsbot-test:incidents:seq"]).await;
    assert_eq!(on_new, Some(2), "the new primary holds it");
    t.wait_for_alert(DEVOPS, "INC-2").await;
}

#[tokio::test]
async fn every_declare_answered_while_sentinel_fails_over_is_kept_by_the_new_primary() {
    let set = SentinelSet::start().await;
    let t = spawn_app_with(|config| config.redis_url = Some(set.url())).await;
    declared_eventually(&t, "Before the failover").await;

    // Declares back to back from the start of the failover until a second
    // after it is done. The old primary takes writes until Sentinel demotes
    // it, and the new one never sees them: the bot must not write there.
    set.start_failover().await;
    let (mut answered, mut refused) = (Vec::new(), 0);
    let deadline = Instant::now() + PATIENCE;
    let mut done: Option<Instant> = None;
    while done.is_none_or(|at| at.elapsed() < Duration::from_secs(1)) {
        assert!(Instant::now() < deadline, "the failover never finished");
        let reply = reply_text(&t.incident(&format!("p3 During the failover {}", answered.len())).await);
        match reply.split("INC-").nth(1) {
            Some(rest) => answered.push(rest.chars().take_while(char::is_ascii_digit).collect::<String>()),
            None => {
                assert!(reply.contains("nothing was changed") || reply.contains("cannot reach"), "{reply}");
                refused += 1;
            }
        }
        if done.is_none() && set.failed_over().await {
            done = Some(Instant::now());
        }
    }
    assert!(!answered.is_empty(), "the bot writes again after the failover ({refused} refused)");
    for number in &answered {
        let kept: bool = ask(&set.replica.url(), &["EXISTS", &format!("opsbot-test:incident:{number}")]).await;
        assert!(kept, "INC-{number} was answered, so the new primary must hold it ({refused} refused)");
    }
}

#[tokio::test]
async fn a_flood_is_turned_away_at_once_with_retry_after_and_health_stays_answered() {
    let mut t = spawn_app().await;
    t.stop().await;
    let app = start_admitting(&t.config, &t.clock, opsbot::admission::Admission::new(1, Duration::from_secs(10))).await;
    t.addr = app.addr;
    // Redis paused: the one request allowed in flight waits on it.
    let () = ask(&t.redis.url(), &["CLIENT", "PAUSE", "3000", "ALL"]).await;
    let post = |title: &'static str| {
        let form = TestApp::slash_form("/incident", title, ALICE);
        t.post_signed("/slack/commands", "application/x-www-form-urlencoded", form)
    };
    let (one, other) = tokio::join!(post("p2 One"), post("p2 Other"));
    let (held, turned_away) = if one.status() == 503 { (other, one) } else { (one, other) };
    assert_eq!(turned_away.status(), 503, "the second is turned away");
    assert_eq!(turned_away.headers()["retry-after"], "1");
    assert_eq!(held.status(), 200, "the one let in is answered");
    let held: serde_json::Value = held.json().await.unwrap();
    assert!(reply_text(&held).contains("cannot reach its database"), "{held}");
    let health = reqwest::get(t.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "health is outside the limit");
    app.stop().await;
}
