//! The Redis backend: incidents, their timelines, the open-incident index,
//! the outbox streams (people's and alerts'), the inbox stream and event
//! de-duplication, all under one key prefix.
//!
//! Every decision commits in one Lua script (state, timeline, index, outbox),
//! guarded by the version the handler saw, so concurrent clicks never
//! overwrite each other: a conflict is retried from a fresh load.

use super::inbox::{decode_hook, hook_fields, Accepted, HookSource, InboxEntry, INBOX_BLOCK};
use super::outbox::{
    dead_letter, decode_effect, unreadable_letter, Landed, OutboxEntry, OutboxStream, DEAD_LETTERS_KEPT, OUTBOX_BLOCK,
};
use super::primary::{self, Links, Primary, SentinelUrl, Timeouts};
use super::subjects::{
    alert_from_fields, deployment_from_fields, digested_fields, handoff_from_fields, incident_from_fields,
    listed_anchor, listed_incident, override_from_fields, posted_fields, rerun_from_fields, run_from_fields,
    sample_trim, swap_from_fields, Commit, CommitOutcome, Stored, ANCHOR_ERROR, ANCHOR_ERROR_FIELDS, LISTED_FIELDS,
};
use super::{from_json, to_json, EnvelopeClaim, StoreError, StoreResult, Versioned};
use opsbot_handlers::alert::{AlertGroup, RunSample};
use opsbot_handlers::deploy::Deployment;
use opsbot_handlers::oncall::handoff::Handoff;
use opsbot_handlers::oncall::overrides::Override;
use opsbot_handlers::oncall::swap::Swap;
use opsbot_handlers::pipeline::rerun::RerunRequest;
use opsbot_handlers::run::{Run, RunId};
use opsbot_handlers::subject::{AlertId, DeployId, HandoffId, OverrideId, SwapId};
use opsbot_handlers::{Effect, Incident, IncidentId, Message, MessageRef, TimelineEntry, Timer};
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long one store operation may take before the caller gets an answer;
/// well inside Slack's 3 seconds.
impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> StoreError {
        StoreError::Unavailable(format!("Redis is unavailable: {e}"))
    }
}

const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const OUTBOX_GROUP: &str = "delivery";
const INBOX_GROUP: &str = "intake";

#[derive(Clone)]
pub struct RedisStore {
    /// The connections to the primary (see `primary::Links`): a shared,
    /// multiplexed one for every request's commands, and one per blocking
    /// reader, which would otherwise stall it.
    primary: Primary,
    keys: Keys,
    commit: Script,
    set_if_exists: Script,
    post_slot: Script,
    accept_hook: Script,
    replace_if: Script,
    next_number: Script,
    replace_tally: Script,
    sum_tallies: Script,
    settle: Script,
    keep: Script,
    /// `OPSBOT_REDIS_WAIT_REPLICAS`: how many replicas each commit waits
    /// for, and what it found; `None`: commits do not wait.
    replica_wait: Option<std::sync::Arc<ReplicaWait>>,
    /// The epoch marker this replica found (or wrote) in Redis, and whether
    /// Redis has lost it since: see [`Epoch`].
    epoch: std::sync::Arc<Epoch>,
    beat: Script,
    alive: Script,
    leave: Script,
    claim_departed: Script,
}

/// Whether Redis still holds what this replica saw in it. At first start
/// opsbot writes a random marker (`epoch`); each replica remembers the one
/// it found, and checks it before every new number and every few seconds.
/// A Redis that came back empty (no AOF), a flushed one or another
/// database lacks it, and then nothing is numbered or committed: numbering
/// would start again at INC-1 and post a second INC-1. The first replica to
/// notice writes the marker it knew under `epoch:lost`, so a replica that
/// starts afterwards refuses too, and `opsbot redis adopt` can put it back.
#[derive(Default)]
pub struct Epoch {
    held: std::sync::Mutex<Option<String>>,
    lost: std::sync::atomic::AtomicBool,
    /// This replica noticed first, and the team is yet to be told.
    untold: std::sync::atomic::AtomicBool,
}

impl Epoch {
    fn held(&self) -> Option<String> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn hold(&self, marker: String) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(marker);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_lost(&self, lost: bool) {
        self.lost.store(lost, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the team is yet to be told, as of now no longer.
    fn take_untold(&self) -> bool {
        self.untold.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Commits waiting for Redis replicas (`WAIT`), and how that went.
pub struct ReplicaWait {
    replicas: u32,
    timeout: Duration,
    unreplicated: std::sync::atomic::AtomicU64,
    /// After a shortfall, commits do not wait until then.
    skip_until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ReplicaWait {
    /// How long commits stop waiting after one was not replicated in time.
    const BACK_OFF: Duration = Duration::from_secs(10);
}

/// What a check of the epoch marker found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochCheck {
    /// Redis holds the marker this replica knows.
    Kept,
    /// It does not: Redis lost its data. `first` when this replica is the
    /// one that noticed first (and says so in Slack).
    Lost { first: bool },
    /// It holds it again: an operator adopted the new Redis.
    Recovered,
}

/// KEYS: epoch marker, sequence. ARGV: the marker this replica holds.
/// A number only while Redis still holds the marker.
const NEXT_NUMBER_LUA: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('OPSBOT_EPOCH the epoch marker is not the one this replica knows')
end
return redis.call('INCR', KEYS[2])
"#;

#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn incident(&self, id: IncidentId) -> String {
        format!("{}:incident:{}", self.prefix, id.0)
    }
    /// The random marker written at first start (see [`Epoch`]).
    fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
    /// The marker Redis lost, as the first replica to notice knew it.
    fn epoch_lost(&self) -> String {
        format!("{}:epoch:lost", self.prefix)
    }
    fn timeline(&self, id: IncidentId) -> String {
        format!("{}:incident:{}:timeline", self.prefix, id.0)
    }
    fn open(&self) -> String {
        format!("{}:incidents:open", self.prefix)
    }
    fn sequence(&self) -> String {
        format!("{}:incidents:seq", self.prefix)
    }
    fn outbox(&self, stream: OutboxStream) -> String {
        match stream {
            OutboxStream::Anchors => format!("{}:outbox:anchors", self.prefix),
            OutboxStream::People => format!("{}:outbox", self.prefix),
            OutboxStream::Alerts => format!("{}:outbox:alerts", self.prefix),
        }
    }
    fn replicas(&self) -> String {
        format!("{}:replicas", self.prefix)
    }
    fn dead_letters(&self) -> String {
        format!("{}:outbox:dead", self.prefix)
    }
    fn run(&self, id: RunId) -> String {
        format!("{}:run:{}", self.prefix, id.0)
    }
    fn run_sequence(&self) -> String {
        format!("{}:runs:seq", self.prefix)
    }
    fn open_runs(&self) -> String {
        format!("{}:runs:open", self.prefix)
    }
    // Checklist runs were once called routines; the key names stay, so
    // stored histories and slot marks keep counting.
    fn checklist_runs(&self, checklist: &str) -> String {
        format!("{}:routine:{checklist}:runs", self.prefix)
    }
    fn checklist_last_slot(&self, checklist: &str) -> String {
        format!("{}:routine:{checklist}:last-slot", self.prefix)
    }
    fn declared(&self) -> String {
        format!("{}:incidents:declared", self.prefix)
    }
    /// What the incidents declared on `day` (UTC) count for (`/incident stats`).
    fn tally(&self, day: chrono::NaiveDate) -> String {
        format!("{}:incidents:tally:{}", self.prefix, day.format("%Y-%m-%d"))
    }
    fn timers(&self) -> String {
        format!("{}:timers", self.prefix)
    }
    fn alert(&self, id: AlertId) -> String {
        format!("{}:alert:{}", self.prefix, id.0)
    }
    fn alert_sequence(&self) -> String {
        format!("{}:alerts:seq", self.prefix)
    }
    fn open_alerts(&self) -> String {
        format!("{}:alerts:open", self.prefix)
    }
    fn alerts_opened(&self) -> String {
        format!("{}:alerts:opened", self.prefix)
    }
    fn deployment(&self, id: DeployId) -> String {
        format!("{}:deployment:{}", self.prefix, id.0)
    }
    fn deployment_sequence(&self) -> String {
        format!("{}:deployments:seq", self.prefix)
    }
    /// Deployments waiting for their run.
    fn open_deployments(&self) -> String {
        format!("{}:deployments:open", self.prefix)
    }
    /// Every deployment, by when it was asked for.
    fn deployments_requested(&self) -> String {
        format!("{}:deployments:requested", self.prefix)
    }
    fn handoff(&self, id: HandoffId) -> String {
        format!("{}:handoff:{}", self.prefix, id.0)
    }
    fn handoff_sequence(&self) -> String {
        format!("{}:handoffs:seq", self.prefix)
    }
    /// Handoffs waiting for "I have it".
    fn open_handoffs(&self) -> String {
        format!("{}:handoffs:open", self.prefix)
    }
    /// Every handoff, by when it was posted.
    fn handoffs_posted(&self) -> String {
        format!("{}:handoffs:posted", self.prefix)
    }
    fn cover(&self, id: OverrideId) -> String {
        format!("{}:override:{}", self.prefix, id.0)
    }
    fn override_sequence(&self) -> String {
        format!("{}:overrides:seq", self.prefix)
    }
    /// Overrides in force or to come.
    fn open_overrides(&self) -> String {
        format!("{}:overrides:open", self.prefix)
    }
    /// Every override, by when it starts.
    fn overrides_starting(&self) -> String {
        format!("{}:overrides:starting", self.prefix)
    }
    /// A rotation's shifts of the next weeks, as last planned.
    fn rotation_plan(&self, role: &str) -> String {
        format!("{}:oncall:plan:{role}", self.prefix)
    }
    /// A person's re-run, by GitHub's run id.
    fn rerun(&self, run_id: u64) -> String {
        format!("{}:rerun:{run_id}", self.prefix)
    }
    /// Re-runs waiting for GitHub's answer.
    fn open_reruns(&self) -> String {
        format!("{}:reruns:open", self.prefix)
    }
    /// Every re-run, by when it was asked for.
    fn reruns_asked(&self) -> String {
        format!("{}:reruns:asked", self.prefix)
    }
    fn swap(&self, id: SwapId) -> String {
        format!("{}:swap:{}", self.prefix, id.0)
    }
    fn swap_sequence(&self) -> String {
        format!("{}:swaps:seq", self.prefix)
    }
    /// Swap offers waiting for an answer.
    fn open_swaps(&self) -> String {
        format!("{}:swaps:open", self.prefix)
    }
    /// Every swap offer, by when it was made.
    fn swaps_offered(&self) -> String {
        format!("{}:swaps:offered", self.prefix)
    }
    /// Source key → the id of its current group.
    fn current_alerts(&self) -> String {
        format!("{}:alerts:current", self.prefix)
    }
    /// Finished workflow runs, scored by when they finished.
    fn run_samples(&self) -> String {
        format!("{}:kpi:runs", self.prefix)
    }
    fn slack_event(&self, event_id: &str) -> String {
        format!("{}:slack-event:{}", self.prefix, event_id)
    }
    fn socket_envelope(&self, envelope_id: &str) -> String {
        format!("{}:socket-envelope:{}", self.prefix, envelope_id)
    }
    fn hooks(&self) -> String {
        format!("{}:hooks", self.prefix)
    }
    fn hook_delivery(&self, dedupe: &str) -> String {
        format!("{}:hook-delivery:{}", self.prefix, dedupe)
    }
}

/// KEYS: state hash, open index, timeline, people's outbox, timers, created
/// index, checklist's last handled slot, alert groups' current index, KPI
/// runs, alerts' outbox, then (state hash, open index, created index) of
/// each further subject, the day's tally, anchors' outbox.
/// ARGV: expected version ('-': no state change), state JSON, open ("1"/"0"),
/// number, timer to consume ('' for none), timeline count, effect count,
/// created at (ms), slot handled (ms, '' for none), source key of an
/// opening alert group ('' for none), the group it replaces ('' for none),
/// KPI run sample ('' for none), its score (ms), drop samples before (ms),
/// samples kept, further subjects' count, then (expected version, state
/// JSON, open, number, created at) of each further subject…, timeline
/// entries…, (stream, effect) pairs ('a': the alerts' outbox, 'n': the
/// anchors', else people's)…, (due ms, timer) pairs.
/// Every check comes before the first write, so a refusal writes nothing.
/// A subject exists when its hash has a version or a state (every write of
/// one writes both, and nothing else is written to a hash without a state),
/// so one HMGET answers both questions. Timers go in one ZADD and timeline
/// entries in one RPUSH: each command a script runs counts, in Redis's CPU
/// and in its command statistics, as much as one sent from outside.
/// A subject's keys and state in a commit.
struct Placed {
    hash: String,
    open: String,
    timeline: String,
    created_index: String,
    number: u64,
    /// Expected version, state JSON, open, created at.
    state: (u64, String, bool, chrono::DateTime<chrono::Utc>),
}

const COMMIT_LUA: &str = r#"
local function version(key, expected)
  local got = redis.call('HMGET', key, 'v', 'state')
  local v = tonumber(got[1] or '0')
  if v ~= tonumber(expected) or (v == 0 and got[2]) then return nil end
  return v
end
local has_state = ARGV[1] ~= '-'
local v = 0
if has_state then
  v = version(KEYS[1], ARGV[1])
  if not v then return -1 end
end
local na = tonumber(ARGV[16])
local av = {}
for j = 1, na do
  local k, a = 8 + 3 * j, 12 + 5 * j
  av[j] = version(KEYS[k], ARGV[a])
  if not av[j] then return -1 end
end
if ARGV[9] ~= '' and tonumber(redis.call('GET', KEYS[7]) or '0') >= tonumber(ARGV[9]) then
  if ARGV[5] ~= '' then redis.call('ZREM', KEYS[5], ARGV[5]) end
  return -2
end
if ARGV[10] ~= '' and (redis.call('HGET', KEYS[8], ARGV[10]) or '') ~= ARGV[11] then return -1 end
if ARGV[5] ~= '' and redis.call('ZREM', KEYS[5], ARGV[5]) == 0 then return -2 end
if ARGV[9] ~= '' then redis.call('SET', KEYS[7], ARGV[9]) end
if has_state then
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'v', v + 1)
  if v == 0 then redis.call('ZADD', KEYS[6], ARGV[8], ARGV[4]) end
  if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[4])
  else
    redis.call('ZREM', KEYS[2], ARGV[4])
  end
end
for j = 1, na do
  local k, a = 8 + 3 * j, 12 + 5 * j
  redis.call('HSET', KEYS[k], 'state', ARGV[a + 1], 'v', av[j] + 1)
  if av[j] == 0 then redis.call('ZADD', KEYS[k + 2], ARGV[a + 4], ARGV[a + 3]) end
  if ARGV[a + 2] == '1' then
    redis.call('ZADD', KEYS[k + 1], ARGV[a + 3], ARGV[a + 3])
  else
    redis.call('ZREM', KEYS[k + 1], ARGV[a + 3])
  end
end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[8], ARGV[10], ARGV[4]) end
local i = 17 + 5 * na
for _ = 1, tonumber(ARGV[i]) do
  redis.call('HINCRBY', KEYS[11 + 3 * na], ARGV[i + 1], ARGV[i + 2]); i = i + 2
end
i = i + 1
if ARGV[12] ~= '' then
  redis.call('ZADD', KEYS[9], ARGV[13], ARGV[12])
  redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. ARGV[14])
  local extra = redis.call('ZCARD', KEYS[9]) - tonumber(ARGV[15])
  if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[9], 0, extra - 1) end
end
local nt, ne = tonumber(ARGV[6]), tonumber(ARGV[7])
-- In chunks: Lua's unpack takes a few thousand values at most.
local function chunked(command, key, from, to)
  while from <= to do
    local last = math.min(to, from + 999)
    redis.call(command, key, unpack(ARGV, from, last))
    from = last + 1
  end
end
chunked('RPUSH', KEYS[3], i, i + nt - 1)
i = i + nt
for _ = 1, ne do
  local stream = KEYS[4]
  if ARGV[i] == 'a' then stream = KEYS[10] elseif ARGV[i] == 'n' then stream = KEYS[12 + 3 * na] end
  redis.call('XADD', stream, '*', 'effect', ARGV[i + 1]); i = i + 2
end
chunked('ZADD', KEYS[5], i, #ARGV)
return v + 1
"#;

/// Whether every key under `prefix` hashes to one Redis Cluster slot: the
/// prefix holds a hash tag, a `{…}` with something inside, which Cluster
/// hashes instead of the whole key.
fn pins_one_slot(prefix: &str) -> bool {
    prefix.find('{').and_then(|open| prefix[open + 1..].find('}')).is_some_and(|len| len > 0)
}

/// KEYS: days' tallies. Their fields summed, as a flat list of field and
/// count: a month of tallies holds thousands of fields, most of them the
/// same few hundred every day, so summing here sends the bot only those.
const SUM_TALLIES_LUA: &str = r#"
local sum, order = {}, {}
for _, key in ipairs(KEYS) do
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local f = fields[i]
    if sum[f] == nil then sum[f] = 0; order[#order + 1] = f end
    sum[f] = sum[f] + tonumber(fields[i + 1])
  end
end
local out = {}
for _, f in ipairs(order) do out[#out + 1] = f; out[#out + 1] = sum[f] end
return out
"#;

/// KEYS: the declared index, a day's tally, then the hash of each incident
/// read for it. ARGV: the day's first and the next day's first ms, the
/// number of incidents read, their (number, version) pairs, then the new
/// tally's (field, count) pairs. Replaces the tally (DEL, HSET) only if the
/// index holds exactly those numbers for the day and each is still at its
/// version (a missing hash at 0): 1 replaced, 0 not. A commit to any of
/// them, or a new one declared that day, would have changed the tally
/// since it was read, and its increment would be lost.
const REPLACE_TALLY_LUA: &str = r#"
local n = tonumber(ARGV[3])
local declared = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '(' .. ARGV[2])
if #declared ~= n then return 0 end
local read = {}
for j = 1, n do read[ARGV[2 + 2 * j]] = true end
for _, number in ipairs(declared) do
  if not read[number] then return 0 end
end
for j = 1, n do
  if tonumber(redis.call('HGET', KEYS[2 + j], 'v') or '0') ~= tonumber(ARGV[3 + 2 * j]) then return 0 end
end
redis.call('DEL', KEYS[2])
-- In chunks of whole pairs: Lua's unpack takes a few thousand values at most.
local i = 4 + 2 * n
while i <= #ARGV do
  local last = math.min(#ARGV, i + 999)
  redis.call('HSET', KEYS[2], unpack(ARGV, i, last))
  i = last + 1
end
return 1
"#;

/// GCRA on KEYS[1], a channel's theoretical arrival time (ms): ARGV now
/// (ms), interval between posts (ms), burst. Returns 0 when a post may go
/// now (and counts it), else the ms until one may.
const POST_SLOT_LUA: &str = r#"
local now, every, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local wait = tat - now - (burst - 1) * every
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + every, 'PX', burst * every + every)
return 0
"#;

/// HSET on KEYS[1] only if the incident's state is there.
const SET_IF_EXISTS_LUA: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'state') == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"#;

/// KEYS: a value. ARGV: what it is expected to hold (empty: nothing), the
/// new value. Replaces it only if it still holds the expected: 1 replaced.
const REPLACE_IF_LUA: &str = r#"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: the inbox stream, then the delivery's mark when it has an id.
/// ARGV: source, event, body, the mark's TTL (s). Marks the delivery seen
/// and stores it, or does neither: 1 stored, 0 seen before.
const ACCEPT_HOOK_LUA: &str = r#"
if KEYS[2] and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'source', ARGV[1], 'event', ARGV[2], 'body', ARGV[3])
return 1
"#;

/// KEYS: the outbox streams, then each subject hash a delivered message is
/// recorded in. ARGV: the group, how many streams, how many entries of
/// each are done, their ids (stream by stream), then for each subject hash
/// its field count and (field, value) pairs. Fields land only on a hash
/// that holds a state (as SET_IF_EXISTS_LUA), before the entries leave
/// their streams (XACK and XDEL), in one step.
const SETTLE_LUA: &str = r#"
local ns = tonumber(ARGV[2])
local i = 3 + ns
for s = 1, ns do i = i + tonumber(ARGV[2 + s]) end
for k = ns + 1, #KEYS do
  local n = tonumber(ARGV[i])
  if redis.call('HEXISTS', KEYS[k], 'state') == 1 then
    redis.call('HSET', KEYS[k], unpack(ARGV, i + 1, i + 2 * n))
  end
  i = i + 1 + 2 * n
end
local from = 3 + ns
for s = 1, ns do
  local n = tonumber(ARGV[2 + s])
  if n > 0 then
    redis.call('XACK', KEYS[s], ARGV[1], unpack(ARGV, from, from + n - 1))
    redis.call('XDEL', KEYS[s], unpack(ARGV, from, from + n - 1))
  end
  from = from + n
end
return 1
"#;

/// KEYS: a stream. ARGV: the group, the consumer, an entry id. Resets the
/// entry's idle time if the consumer holds it (1); 0 when another consumer
/// took it over or it is no longer pending. Never takes it back: a replica
/// whose heartbeat lapsed must not reclaim what another replica took over
/// and may be delivering.
const KEEP_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"#;

/// Redis's own clock in ms, as the liveness scripts start.
const NOW_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#;

/// KEYS: the replicas' heartbeats (hash: name → alive until, ms). ARGV: the
/// replica, how long it is alive for (ms). Forgets replicas gone for a day:
/// by then anything they held is past the idle window anyway.
const BEAT_LUA: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < now - 86400000 then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
"#;

/// KEYS: the replicas' heartbeats. ARGV: the replica. Its heartbeat runs
/// out now: a time, not 0, so the next beat's sweep of replicas gone for a
/// day does not forget it before what it held is taken over.
const LEAVE_LUA: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], now)
return 1
"#;

/// KEYS: the replicas' heartbeats. ARGV: the replica. -1 never beat, 1
/// alive, 0 not.
const ALIVE_LUA: &str = r#"
local until_ms = redis.call('HGET', KEYS[1], ARGV[1])
if not until_ms then return -1 end
if tonumber(until_ms) > now then return 1 end
return 0
"#;

/// KEYS: a stream, the replicas' heartbeats. ARGV: the group, the claiming
/// consumer, how many. Moves to the claimer the pending entries of every
/// other consumer whose heartbeat has run out (a leaving replica sets it
/// to now), and returns them as XCLAIM does. One script, so two replicas
/// claiming at once never both get an entry, and a replica that beats
/// again (restarted under its name) keeps what it had.
const CLAIM_DEPARTED_LUA: &str = r#"
local holders = redis.call('XPENDING', KEYS[1], ARGV[1])[4]
if not holders then return {} end
local budget = tonumber(ARGV[3])
local claimed = {}
for _, holder in ipairs(holders) do
  if budget <= 0 then break end
  local name = holder[1]
  local until_ms = redis.call('HGET', KEYS[2], name)
  if name ~= ARGV[2] and until_ms and tonumber(until_ms) <= now then
    local ids = {}
    for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', budget, name)) do
      ids[#ids + 1] = p[1]
    end
    if #ids > 0 then
      budget = budget - #ids
      for _, e in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))) do
        if e then claimed[#claimed + 1] = e end
      end
    end
  end
end
return claimed
"#;

/// A TTL as Redis's `PX` takes it: whole milliseconds, at least one.
fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

async fn timed<T>(fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> StoreResult<T> {
    match tokio::time::timeout(OPERATION_TIMEOUT, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout { backend: "Redis", after: OPERATION_TIMEOUT }),
    }
}

impl RedisStore {
    /// Connects lazily: the bot starts while Redis is down and `/readyz`
    /// says so until it is back.
    pub fn connect(url: &str, prefix: &str, ca: Option<&[u8]>) -> StoreResult<RedisStore> {
        // `rediss://` speaks TLS, checked against the public roots, or
        // against the operator's own certificate authority when given.
        let timeouts = Timeouts {
            operation: OPERATION_TIMEOUT,
            outbox: OUTBOX_BLOCK + OPERATION_TIMEOUT,
            inbox: INBOX_BLOCK + OPERATION_TIMEOUT,
        };
        let primary = match SentinelUrl::parse(url) {
            Some(sentinel) => primary::follow(&sentinel.map_err(StoreError::Unavailable)?, timeouts)?,
            None => {
                let client = match ca {
                    None => redis::Client::open(url)?,
                    Some(pem) => redis::Client::build_with_tls(
                        url,
                        redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) },
                    )?,
                };
                Primary::fixed(Links::to(client, &timeouts)?)
            }
        };
        Ok(RedisStore {
            primary,
            keys: Keys { prefix: prefix.to_owned() },
            commit: Script::new(COMMIT_LUA),
            set_if_exists: Script::new(SET_IF_EXISTS_LUA),
            post_slot: Script::new(POST_SLOT_LUA),
            accept_hook: Script::new(ACCEPT_HOOK_LUA),
            replace_if: Script::new(REPLACE_IF_LUA),
            next_number: Script::new(NEXT_NUMBER_LUA),
            replace_tally: Script::new(REPLACE_TALLY_LUA),
            sum_tallies: Script::new(SUM_TALLIES_LUA),
            settle: Script::new(SETTLE_LUA),
            keep: Script::new(KEEP_LUA),
            replica_wait: None,
            epoch: std::sync::Arc::default(),
            beat: Script::new(&format!("{NOW_LUA}{BEAT_LUA}")),
            alive: Script::new(&format!("{NOW_LUA}{ALIVE_LUA}")),
            leave: Script::new(&format!("{NOW_LUA}{LEAVE_LUA}")),
            claim_departed: Script::new(&format!("{NOW_LUA}{CLAIM_DEPARTED_LUA}")),
        })
    }

    /// Refuses to write while Sentinel fails the primary over: what the
    /// old primary took now would be lost (see `primary::Fence`).
    fn not_failing_over(&self) -> StoreResult<()> {
        match self.primary.failing_over() {
            true => Err(StoreError::Unavailable(
                "Redis is failing over (Sentinel): nothing is written until the new primary is followed".into(),
            )),
            false => Ok(()),
        }
    }

    /// The shared connection to the primary.
    fn conn(&self) -> ConnectionManager {
        self.primary.links().conn
    }

    /// The marker this replica holds, finding it first if need be: the one
    /// in Redis, else (a first start) a new one, unless a replica found
    /// Redis had lost its data (`epoch:lost`) and nobody adopted it since.
    async fn held_epoch(&self) -> StoreResult<String> {
        if let Some(marker) = self.epoch.held() {
            return Ok(marker);
        }
        let mut conn = self.conn();
        let cluster: String = timed(redis::cmd("INFO").arg("cluster").query_async(&mut conn)).await?;
        if cluster.lines().any(|l| l.trim() == "cluster_enabled:1") && !pins_one_slot(&self.keys.prefix) {
            return Err(StoreError::Unavailable(format!(
                "Redis runs in cluster mode, and the key prefix `{}` leaves opsbot's keys in many slots, which \
                 Cluster refuses in one script; set OPSBOT_REDIS_PREFIX to a hash tag, such as `{{opsbot}}`",
                self.keys.prefix
            )));
        }
        let (found, lost): (Option<String>, bool) =
            timed(redis::pipe().get(self.keys.epoch()).exists(self.keys.epoch_lost()).query_async(&mut conn)).await?;
        let marker = match found {
            Some(marker) => marker,
            None if lost => {
                self.epoch.set_lost(true);
                return Err(StoreError::Lost);
            }
            None => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
                let fresh = hex::encode(bytes);
                // Of replicas starting together, one marker wins; all hold it.
                let (marker,): (String,) = timed(
                    redis::pipe()
                        .cmd("SET")
                        .arg(self.keys.epoch())
                        .arg(&fresh)
                        .arg("NX")
                        .ignore()
                        .get(self.keys.epoch())
                        .query_async(&mut conn),
                )
                .await?;
                tracing::info!("a first start on this Redis: wrote its epoch marker");
                marker
            }
        };
        self.epoch.hold(marker.clone());
        Ok(marker)
    }

    /// Marks Redis as having lost its data, and records the marker this
    /// replica knew for `opsbot redis adopt`; true when no replica had.
    async fn mark_lost(&self, held: &str) -> StoreResult<bool> {
        self.epoch.set_lost(true);
        let mut conn = self.conn();
        let set: Option<String> =
            timed(redis::cmd("SET").arg(self.keys.epoch_lost()).arg(held).arg("NX").query_async(&mut conn)).await?;
        if set.is_some() {
            self.epoch.untold.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(set.is_some())
    }

    /// Takes on a Redis that lost opsbot's data, as the operator says: each
    /// sequence in `next` (`INC`, `RUN`, `ALR`, `DEP`, `HND`, `OVR`, `SWP`)
    /// continues from the number given (never backwards), and the epoch
    /// marker goes back to what the replicas knew, so running replicas take
    /// up writing again by themselves. Returns what it did, in words.
    pub async fn adopt(&self, next: &[(String, u64)]) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut done = Vec::new();
        for (kind, number) in next {
            let key = match kind.as_str() {
                "INC" => self.keys.sequence(),
                "RUN" => self.keys.run_sequence(),
                "ALR" => self.keys.alert_sequence(),
                "DEP" => self.keys.deployment_sequence(),
                "HND" => self.keys.handoff_sequence(),
                "OVR" => self.keys.override_sequence(),
                "SWP" => self.keys.swap_sequence(),
                other => {
                    return Err(StoreError::Unavailable(format!(
                        "`{other}` is not one of opsbot's numberings (INC, RUN, ALR, DEP, HND, OVR, SWP)"
                    )))
                }
            };
            let current: Option<u64> = timed(conn.get(&key)).await?;
            let last = number.saturating_sub(1).max(current.unwrap_or(0));
            let () = timed(conn.set(&key, last)).await?;
            done.push(format!("{kind}: the next is {kind}-{}", last + 1));
        }
        let (found, lost): (Option<String>, Option<String>) =
            timed(redis::pipe().get(self.keys.epoch()).get(self.keys.epoch_lost()).query_async(&mut conn)).await?;
        let marker = match (lost, found) {
            (Some(lost), _) => lost,
            (None, Some(found)) => {
                done.push("the epoch marker was in place: nothing was lost".to_owned());
                found
            }
            (None, None) => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
                hex::encode(bytes)
            }
        };
        let () = timed(
            redis::pipe()
                .set(self.keys.epoch(), &marker)
                .ignore()
                .del(self.keys.epoch_lost())
                .ignore()
                .query_async(&mut conn),
        )
        .await?;
        done.push("the epoch marker is set: running replicas write again within seconds".to_owned());
        Ok(done)
    }

    /// Compares the marker in Redis with the one this replica holds.
    pub async fn check_epoch(&self) -> StoreResult<EpochCheck> {
        let held = match self.held_epoch().await {
            Ok(held) => held,
            Err(StoreError::Lost) => return Ok(EpochCheck::Lost { first: self.epoch.take_untold() }),
            Err(e) => return Err(e),
        };
        let mut conn = self.conn();
        let found: Option<String> = timed(conn.get(self.keys.epoch())).await?;
        if found.as_deref() == Some(held.as_str()) {
            if self.epoch.is_lost() {
                self.epoch.set_lost(false);
                return Ok(EpochCheck::Recovered);
            }
            return Ok(EpochCheck::Kept);
        }
        if !self.epoch.is_lost() {
            self.mark_lost(&held).await?;
        }
        Ok(EpochCheck::Lost { first: self.epoch.take_untold() })
    }

    /// The next number of `sequence`, while Redis holds this replica's
    /// epoch marker: a Redis that lost its data would hand out INC-1 again.
    async fn next_number(&self, sequence: String) -> StoreResult<u64> {
        if self.epoch.is_lost() {
            return Err(StoreError::Lost);
        }
        self.not_failing_over()?;
        let held = self.held_epoch().await?;
        let mut conn = self.conn();
        let mut invocation = self.next_number.key(self.keys.epoch());
        invocation.key(sequence).arg(&held);
        let answer = tokio::time::timeout(OPERATION_TIMEOUT, invocation.invoke_async::<u64>(&mut conn))
            .await
            .map_err(|_| StoreError::Timeout { backend: "Redis", after: OPERATION_TIMEOUT })?;
        match answer {
            Err(e) if e.code() == Some("OPSBOT_EPOCH") => {
                if self.mark_lost(&held).await? {
                    tracing::error!("Redis lost opsbot's data: its epoch marker is gone; nothing is numbered until `opsbot redis adopt`");
                }
                Err(StoreError::Lost)
            }
            other => Ok(other?),
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        if self.epoch.is_lost() {
            return Err(StoreError::Lost);
        }
        // Until the first contact succeeds, its answer is the readiness:
        // it is what says a Cluster's prefix is wrong.
        self.held_epoch().await?;
        let mut conn = self.conn();
        timed(redis::cmd("PING").query_async::<String>(&mut conn)).await.map(drop)
    }

    /// Numbers are never reused; a declare that fails after this leaves a gap.
    pub async fn next_incident_id(&self) -> StoreResult<IncidentId> {
        self.next_number(self.keys.sequence()).await.map(IncidentId)
    }

    pub async fn load_incident(&self, id: IncidentId) -> StoreResult<Option<Versioned<Incident>>> {
        let key = self.keys.incident(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        incident_from_fields(&key, fields)
    }

    pub async fn load_timeline(&self, id: IncidentId) -> StoreResult<Vec<TimelineEntry>> {
        let key = self.keys.timeline(id);
        let mut conn = self.conn();
        let raw: Vec<String> = timed(conn.lrange(&key, 0, -1)).await?;
        raw.iter().map(|json| from_json(&key, json)).collect()
    }

    /// Open incidents, newest first: one index read and one pipelined fetch,
    /// so the cost grows with open incidents, not with history.
    pub async fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        let mut conn = self.conn();
        let ids: Vec<u64> = timed(conn.zrevrange(self.keys.open(), 0, -1)).await?;
        self.incidents(&ids).await
    }

    /// The newest `limit` open incidents and how many are open: a range
    /// and a count in one round trip, then the page's fetch.
    pub async fn open_incidents_first(&self, limit: usize) -> StoreResult<(Vec<Incident>, usize)> {
        if limit == 0 {
            let mut conn = self.conn();
            return Ok((Vec::new(), timed(conn.zcard(self.keys.open())).await?));
        }
        let mut pipe = redis::pipe();
        pipe.zrevrange(self.keys.open(), 0, limit as isize - 1).zcard(self.keys.open());
        let mut conn = self.conn();
        let (ids, total): (Vec<u64>, usize) = timed(pipe.query_async(&mut conn)).await?;
        Ok((self.incidents(&ids).await?, total))
    }

    /// The tallies of `days`, one small hash each, summed by Redis.
    pub async fn incident_tallies(&self, days: &[chrono::NaiveDate]) -> StoreResult<BTreeMap<String, i64>> {
        if days.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut invocation = self.sum_tallies.prepare_invoke();
        for day in days {
            invocation.key(self.keys.tally(*day));
        }
        let mut conn = self.conn();
        let summed: Vec<(String, i64)> = timed(invocation.invoke_async(&mut conn)).await?;
        Ok(summed.into_iter().collect())
    }

    /// Incidents declared since `since`, open or resolved, newest first.
    pub async fn incidents_declared_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<Incident>> {
        let mut conn = self.conn();
        let ids: Vec<u64> =
            timed(conn.zrevrangebyscore(self.keys.declared(), "+inf", since.timestamp_millis())).await?;
        self.incidents(&ids).await
    }

    /// The incidents declared on `day`: the index's range, then each one's
    /// state and version in one pipelined fetch. Not one snapshot: what
    /// changes in between is caught by [`RedisStore::replace_incident_tally`].
    pub async fn incidents_declared_on(&self, day: chrono::NaiveDate) -> StoreResult<super::DeclaredOn> {
        use super::subjects::{declared_on, declared_on_millis};
        let (from, to) = declared_on_millis(day);
        let mut conn = self.conn();
        let numbers: Vec<u64> = timed(conn.zrangebyscore(self.keys.declared(), from, format!("({to}"))).await?;
        if numbers.is_empty() {
            return declared_on(day, []);
        }
        let mut pipe = redis::pipe();
        for number in &numbers {
            pipe.hmget(self.keys.incident(IncidentId(*number)), &["state", "v"]);
        }
        let rows: Vec<Vec<Option<String>>> = timed(pipe.query_async(&mut conn)).await?;
        declared_on(
            day,
            numbers.iter().zip(&rows).map(|(number, row)| {
                let field = |i: usize| row.get(i).and_then(|f| f.as_deref());
                (*number, self.keys.incident(IncidentId(*number)), field(0), field(1))
            }),
        )
    }

    /// REPLACE_TALLY_LUA: the day's tally replaced if nothing it counts
    /// changed since `read`.
    pub async fn replace_incident_tally(
        &self,
        read: &super::DeclaredOn,
        tally: &BTreeMap<String, i64>,
    ) -> StoreResult<CommitOutcome> {
        if self.epoch.is_lost() {
            return Err(StoreError::Lost);
        }
        self.not_failing_over()?;
        let (from, to) = super::subjects::declared_on_millis(read.day);
        let mut invocation = self.replace_tally.prepare_invoke();
        invocation.key(self.keys.declared()).key(self.keys.tally(read.day));
        invocation.arg(from).arg(to).arg(read.versions.len());
        for (id, version) in &read.versions {
            invocation.key(self.keys.incident(*id));
            invocation.arg(id.0).arg(*version);
        }
        for (field, count) in tally {
            invocation.arg(field).arg(*count);
        }
        let mut conn = self.conn();
        let replaced: i64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok(if replaced == 1 { CommitOutcome::Committed } else { CommitOutcome::Conflict })
    }

    async fn incidents(&self, ids: &[u64]) -> StoreResult<Vec<Incident>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hmget(self.keys.incident(IncidentId(*id)), LISTED_FIELDS);
        }
        let mut conn = self.conn();
        let rows: Vec<Vec<Option<String>>> = timed(pipe.query_async(&mut conn)).await?;
        let mut found = Vec::with_capacity(rows.len());
        for (id, row) in ids.iter().zip(rows) {
            let key = self.keys.incident(IncidentId(*id));
            // An index entry without its incident would be a bug; skip it
            // rather than fail the whole list.
            let Some(Some(state)) = row.first() else { continue };
            let field =
                |name: &str| LISTED_FIELDS.iter().position(|f| *f == name).and_then(|i| row.get(i).cloned().flatten());
            found.push(listed_incident(&key, state, listed_anchor(field))?);
        }
        Ok(found)
    }

    /// Where a subject's state goes, and what is written there.
    fn placed(&self, stored: Stored<'_>) -> Placed {
        match stored {
            Stored::Incident(inc, v) => Placed {
                hash: self.keys.incident(inc.id),
                open: self.keys.open(),
                timeline: self.keys.timeline(inc.id),
                created_index: self.keys.declared(),
                number: inc.id.0,
                state: (v, to_json(inc), inc.is_open(), inc.declared.at),
            },
            Stored::Run(run, v) => Placed {
                hash: self.keys.run(run.id),
                open: self.keys.open_runs(),
                timeline: format!("{}:timeline", self.keys.run(run.id)),
                created_index: self.keys.checklist_runs(&run.checklist),
                number: run.id.0,
                state: (v, to_json(run), run.is_open(), run.started.at),
            },
            Stored::Alert(group, v) => Placed {
                hash: self.keys.alert(group.id),
                open: self.keys.open_alerts(),
                timeline: format!("{}:timeline", self.keys.alert(group.id)),
                created_index: self.keys.alerts_opened(),
                number: group.id.0,
                state: (v, to_json(group), group.is_open(), group.opened),
            },
            Stored::Deployment(d, v) => Placed {
                hash: self.keys.deployment(d.id),
                open: self.keys.open_deployments(),
                timeline: format!("{}:timeline", self.keys.deployment(d.id)),
                created_index: self.keys.deployments_requested(),
                number: d.id.0,
                state: (v, to_json(d), d.is_open(), d.at),
            },
            Stored::Handoff(h, v) => Placed {
                hash: self.keys.handoff(h.id),
                open: self.keys.open_handoffs(),
                timeline: format!("{}:timeline", self.keys.handoff(h.id)),
                created_index: self.keys.handoffs_posted(),
                number: h.id.0,
                state: (v, to_json(h), h.is_open(), h.at),
            },
            Stored::Override(o, v) => Placed {
                hash: self.keys.cover(o.id),
                open: self.keys.open_overrides(),
                timeline: format!("{}:timeline", self.keys.cover(o.id)),
                created_index: self.keys.overrides_starting(),
                number: o.id.0,
                state: (v, to_json(o), o.is_open(), o.starts),
            },
            Stored::Swap(swap, v) => Placed {
                hash: self.keys.swap(swap.id),
                open: self.keys.open_swaps(),
                timeline: format!("{}:timeline", self.keys.swap(swap.id)),
                created_index: self.keys.swaps_offered(),
                number: swap.id.0,
                state: (v, to_json(swap), swap.is_open(), swap.at),
            },
            Stored::Rerun(r, v) => Placed {
                hash: self.keys.rerun(r.run_id),
                open: self.keys.open_reruns(),
                timeline: format!("{}:timeline", self.keys.rerun(r.run_id)),
                created_index: self.keys.reruns_asked(),
                number: r.run_id,
                state: (v, to_json(r), r.is_open(), r.at),
            },
        }
    }

    /// Commits a decision: the incident's new state, its timeline entries,
    /// its place in the open index, the outbox effects and timers, all or
    /// nothing, and only if the incident is still at the version it was
    /// loaded at and the consumed timer is still there.
    pub async fn commit(&self, change: &Commit<'_>) -> StoreResult<CommitOutcome> {
        if self.epoch.is_lost() {
            return Err(StoreError::Lost);
        }
        self.not_failing_over()?;
        // Keys and numbers of what the state is for; a decision without
        // state (a reminder, a note) names incident 0, whose keys it never
        // touches.
        let (hash, open, timeline, created_index, number, state) = match change.subject {
            Some(stored) => {
                let p = self.placed(stored);
                (p.hash, p.open, p.timeline, p.created_index, p.number, Some(p.state))
            }
            None => (
                self.keys.incident(IncidentId(0)),
                self.keys.open(),
                self.keys.timeline(IncidentId(0)),
                self.keys.declared(),
                0,
                None,
            ),
        };
        let mark_key = match change.slot {
            Some((checklist, _)) => self.keys.checklist_last_slot(checklist),
            None => format!("{}:unused", self.keys.prefix),
        };
        let mut invocation = self.commit.prepare_invoke();
        invocation
            .key(hash)
            .key(open)
            .key(timeline)
            .key(self.keys.outbox(OutboxStream::People))
            .key(self.keys.timers())
            .key(created_index)
            .key(mark_key)
            .key(self.keys.current_alerts())
            .key(self.keys.run_samples())
            .key(self.keys.outbox(OutboxStream::Alerts));
        let also: Vec<Placed> = change.also.iter().map(|stored| self.placed(*stored)).collect();
        for p in &also {
            invocation.key(&p.hash).key(&p.open).key(&p.created_index);
        }
        invocation.key(match change.tally {
            Some(tally) => self.keys.tally(tally.day),
            None => format!("{}:unused", self.keys.prefix),
        });
        invocation.key(self.keys.outbox(OutboxStream::Anchors));
        let created_ms = match &state {
            Some((version, json, is_open, created)) => {
                invocation.arg(*version).arg(json).arg(if *is_open { "1" } else { "0" });
                created.timestamp_millis()
            }
            None => {
                invocation.arg("-").arg("").arg("0");
                0
            }
        };
        invocation
            .arg(number)
            .arg(change.consume.unwrap_or(""))
            .arg(change.timeline.len())
            .arg(change.effects.len())
            .arg(created_ms)
            .arg(change.slot.map_or(String::new(), |(_, slot)| slot.timestamp_millis().to_string()));
        match change.opens {
            Some(opening) => {
                invocation.arg(opening.key).arg(opening.replaces.map_or(String::new(), |r| r.0.to_string()))
            }
            None => invocation.arg("").arg(""),
        };
        match change.sample {
            Some(sample) => {
                let (oldest, kept) = sample_trim(sample);
                invocation.arg(to_json(sample)).arg(sample.finished.timestamp_millis()).arg(oldest).arg(kept)
            }
            None => invocation.arg("").arg(0).arg(0).arg(0),
        };
        invocation.arg(also.len());
        for p in &also {
            let (version, json, is_open, created) = &p.state;
            invocation
                .arg(*version)
                .arg(json)
                .arg(if *is_open { "1" } else { "0" })
                .arg(p.number)
                .arg(created.timestamp_millis());
        }
        let deltas = change.tally.map_or(&[][..], |t| t.deltas.as_slice());
        invocation.arg(deltas.len());
        for (field, delta) in deltas {
            invocation.arg(field).arg(*delta);
        }
        for entry in change.timeline {
            invocation.arg(to_json(entry));
        }
        for effect in change.effects {
            let stream = match OutboxStream::of(effect) {
                OutboxStream::Alerts => "a",
                OutboxStream::Anchors => "n",
                OutboxStream::People => "p",
            };
            invocation.arg(stream).arg(to_json(effect));
        }
        for timer in change.timers {
            invocation.arg(timer.due.timestamp_millis()).arg(to_json(timer));
        }
        let mut conn = self.conn();
        let outcome: i64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok(match outcome {
            -1 => CommitOutcome::Conflict,
            -2 => CommitOutcome::TimerGone,
            _ => {
                self.wait_for_replicas().await;
                CommitOutcome::Committed
            }
        })
    }

    /// After a commit, when the operator asked for it: waits (`WAIT`, at
    /// most the timeout) until enough replicas have everything written so
    /// far, so a failover right after cannot lose what Slack is about to
    /// be told. Not met, the commit stands (the primary has it), and the
    /// shortfall is counted and logged; for a while after, commits do not
    /// wait, since `WAIT` holds up the shared connection's other commands
    /// and a replica that is down would slow every request by the timeout.
    async fn wait_for_replicas(&self) {
        let Some(wait) = &self.replica_wait else { return };
        let now = std::time::Instant::now();
        let skipping = wait.skip_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|until| now < until);
        if skipping {
            wait.unreplicated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let mut conn = self.conn();
        let millis = u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut asked = redis::cmd("WAIT");
        asked.arg(wait.replicas).arg(millis);
        let acked = timed(asked.query_async::<u32>(&mut conn)).await;
        if acked.as_ref().is_ok_and(|n| *n >= wait.replicas) {
            return;
        }
        wait.unreplicated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *wait.skip_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(now + ReplicaWait::BACK_OFF);
        match acked {
            Ok(n) => tracing::warn!(
                acked = n,
                wanted = wait.replicas,
                "a commit reached fewer Redis replicas than OPSBOT_REDIS_WAIT_REPLICAS within the timeout; \
                 commits do not wait for the next 10 s"
            ),
            Err(e) => tracing::warn!(error = %e, "could not wait for Redis replicas after a commit"),
        }
    }

    /// Waits for `replicas` Redis replicas after each commit, at most
    /// `timeout` (see `wait_for_replicas`).
    pub fn wait_for(&mut self, replicas: u32, timeout: Duration) {
        self.replica_wait = (replicas > 0).then(|| {
            std::sync::Arc::new(ReplicaWait {
                replicas,
                timeout,
                unreplicated: Default::default(),
                skip_until: Default::default(),
            })
        });
    }

    /// Commits not known to have reached the replicas asked for.
    pub fn unreplicated_commits(&self) -> u64 {
        self.replica_wait.as_ref().map_or(0, |w| w.unreplicated.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Timers due at `now`, oldest first, as stored (the raw member is what
    /// a commit consumes). Reading does not take them: the commit does.
    pub async fn due_timers(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Timer)>> {
        let mut conn = self.conn();
        let raw: Vec<String> =
            timed(conn.zrangebyscore_limit(self.keys.timers(), "-inf", now.timestamp_millis(), 0, limit as isize))
                .await?;
        let mut due = Vec::with_capacity(raw.len());
        for member in raw {
            match serde_json::from_str::<Timer>(&member) {
                Ok(timer) => due.push((member, timer)),
                Err(e) => {
                    tracing::error!(%member, error = %e, "unreadable timer dropped");
                    let _: StoreResult<i64> = timed(conn.zrem(self.keys.timers(), &member)).await;
                }
            }
        }
        Ok(due)
    }

    /// How many timers are set, for tests and metrics.
    pub async fn timer_count(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        timed(conn.zcard(self.keys.timers())).await
    }

    /// Effects that change no state (answers to mentions, notes to a user).
    pub async fn enqueue(&self, effects: &[Effect]) -> StoreResult<()> {
        if effects.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for effect in effects {
            pipe.xadd(self.keys.outbox(OutboxStream::of(effect)), "*", &[("effect", to_json(effect))]).ignore();
        }
        let mut conn = self.conn();
        timed(pipe.query_async::<()>(&mut conn)).await
    }

    /// Slack retries events it thinks we missed; true only the first time an
    /// event id is seen within `ttl`.
    pub async fn first_sighting(&self, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        let mut conn = self.conn();
        let set: Option<String> = timed(
            redis::cmd("SET")
                .arg(self.keys.slack_event(event_id))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async(&mut conn),
        )
        .await?;
        Ok(set.is_some())
    }

    /// An empty value while the envelope is being handled, its answer
    /// once it was: one key, so a claim and the answer cannot disagree.
    pub async fn claim_envelope(&self, envelope_id: &str, ttl: Duration) -> StoreResult<EnvelopeClaim> {
        let key = self.keys.socket_envelope(envelope_id);
        let mut conn = self.conn();
        let set: Option<String> =
            timed(redis::cmd("SET").arg(&key).arg("").arg("NX").arg("PX").arg(millis(ttl)).query_async(&mut conn))
                .await?;
        if set.is_some() {
            return Ok(EnvelopeClaim::First);
        }
        let answer: Option<String> = timed(conn.get(&key)).await?;
        Ok(match answer {
            Some(answer) if !answer.is_empty() => EnvelopeClaim::Answered(answer),
            // Empty: being handled; gone: the claim lapsed a moment ago.
            _ => EnvelopeClaim::Busy,
        })
    }

    pub async fn envelope_answer(&self, envelope_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        let answer: Option<String> = timed(conn.get(self.keys.socket_envelope(envelope_id))).await?;
        Ok(answer.filter(|a| !a.is_empty()))
    }

    pub async fn answer_envelope(&self, envelope_id: &str, answer: &str, ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn();
        timed(
            redis::cmd("SET")
                .arg(self.keys.socket_envelope(envelope_id))
                .arg(answer)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    pub async fn release_envelope(&self, envelope_id: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        timed(conn.del::<_, ()>(self.keys.socket_envelope(envelope_id))).await
    }

    // --- Where messages landed, written by the outbox worker ---------------

    fn subject_key(&self, subject: opsbot_handlers::Subject) -> String {
        match subject {
            opsbot_handlers::Subject::Incident(id) => self.keys.incident(id),
            opsbot_handlers::Subject::Run(id) => self.keys.run(id),
            opsbot_handlers::Subject::Alert(id) => self.keys.alert(id),
            opsbot_handlers::Subject::Deployment(id) => self.keys.deployment(id),
            opsbot_handlers::Subject::Handoff(id) => self.keys.handoff(id),
            opsbot_handlers::Subject::Override(id) => self.keys.cover(id),
            opsbot_handlers::Subject::Swap(id) => self.keys.swap(id),
        }
    }

    // --- Rotation plans --------------------------------------------------------

    pub async fn rotation_plan(&self, role: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        timed(conn.get(self.keys.rotation_plan(role))).await
    }

    pub async fn replace_rotation_plan(&self, role: &str, expected: Option<&str>, plan: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let mut invocation = self.replace_if.prepare_invoke();
        invocation.key(self.keys.rotation_plan(role)).arg(expected.unwrap_or("")).arg(plan);
        timed(invocation.invoke_async::<i64>(&mut conn)).await.map(|n| n == 1)
    }

    // --- On-call overrides ----------------------------------------------------

    pub async fn next_override_id(&self) -> StoreResult<OverrideId> {
        self.next_number(self.keys.override_sequence()).await.map(OverrideId)
    }

    pub async fn load_override(&self, id: OverrideId) -> StoreResult<Option<Versioned<Override>>> {
        let key = self.keys.cover(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        override_from_fields(&key, fields)
    }

    /// Swap offers nobody has answered yet, oldest first.
    pub async fn open_swaps(&self) -> StoreResult<Vec<Swap>> {
        let mut conn = self.conn();
        let ids: Vec<u64> = timed(conn.zrange(self.keys.open_swaps(), 0, -1)).await?;
        self.listed(&ids, |id| self.keys.swap(SwapId(id)), swap_from_fields).await
    }

    pub async fn open_overrides(&self) -> StoreResult<Vec<Override>> {
        let mut conn = self.conn();
        let ids: Vec<u64> = timed(conn.zrange(self.keys.open_overrides(), 0, -1)).await?;
        self.listed(&ids, |id| self.keys.cover(OverrideId(id)), override_from_fields).await
    }

    /// The subjects an index lists, read in one round trip, in its order;
    /// an index entry without its hash is skipped.
    async fn listed<T>(
        &self,
        ids: &[u64],
        key: impl Fn(u64) -> String,
        read: super::subjects::FromFields<T>,
    ) -> StoreResult<Vec<T>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(key(*id));
        }
        let rows: Vec<HashMap<String, String>> = timed(pipe.query_async(&mut conn)).await?;
        let mut found = Vec::with_capacity(rows.len());
        for (id, fields) in ids.iter().zip(rows) {
            if let Some(v) = read(&key(*id), fields)? {
                found.push(v.value);
            }
        }
        Ok(found)
    }

    // --- On-call swaps ---------------------------------------------------------

    pub async fn next_swap_id(&self) -> StoreResult<SwapId> {
        self.next_number(self.keys.swap_sequence()).await.map(SwapId)
    }

    pub async fn load_swap(&self, id: SwapId) -> StoreResult<Option<Versioned<Swap>>> {
        let key = self.keys.swap(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        swap_from_fields(&key, fields)
    }

    // --- Handoffs -------------------------------------------------------------

    pub async fn next_handoff_id(&self) -> StoreResult<HandoffId> {
        self.next_number(self.keys.handoff_sequence()).await.map(HandoffId)
    }

    pub async fn load_handoff(&self, id: HandoffId) -> StoreResult<Option<Versioned<Handoff>>> {
        let key = self.keys.handoff(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        handoff_from_fields(&key, fields)
    }

    // --- Deployments ---------------------------------------------------------

    pub async fn next_deployment_id(&self) -> StoreResult<DeployId> {
        self.next_number(self.keys.deployment_sequence()).await.map(DeployId)
    }

    pub async fn load_deployment(&self, id: DeployId) -> StoreResult<Option<Versioned<Deployment>>> {
        let key = self.keys.deployment(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        deployment_from_fields(&key, fields)
    }

    pub async fn load_rerun(&self, run_id: u64) -> StoreResult<Option<Versioned<RerunRequest>>> {
        let key = self.keys.rerun(run_id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        rerun_from_fields(&key, fields)
    }

    // --- Alert groups and the KPI window ------------------------------------

    pub async fn next_alert_id(&self) -> StoreResult<AlertId> {
        self.next_number(self.keys.alert_sequence()).await.map(AlertId)
    }

    pub async fn load_alert(&self, id: AlertId) -> StoreResult<Option<Versioned<AlertGroup>>> {
        let key = self.keys.alert(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        alert_from_fields(&key, fields)
    }

    pub async fn current_alert(&self, source: &str) -> StoreResult<Option<Versioned<AlertGroup>>> {
        let mut conn = self.conn();
        let id: Option<u64> = timed(conn.hget(self.keys.current_alerts(), source)).await?;
        match id {
            Some(id) => self.load_alert(AlertId(id)).await,
            None => Ok(None),
        }
    }

    /// One index read and one pipelined fetch: the cost grows with firing
    /// groups, not with history.
    pub async fn open_alerts(&self) -> StoreResult<Vec<AlertGroup>> {
        let mut conn = self.conn();
        let ids: Vec<u64> = timed(conn.zrevrange(self.keys.open_alerts(), 0, -1)).await?;
        self.listed(&ids, |id| self.keys.alert(AlertId(id)), alert_from_fields).await
    }

    pub async fn open_runs(&self) -> StoreResult<Vec<Run>> {
        let mut conn = self.conn();
        let ids: Vec<u64> = timed(conn.zrevrange(self.keys.open_runs(), 0, -1)).await?;
        self.listed(&ids, |id| self.keys.run(RunId(id)), run_from_fields).await
    }

    pub async fn run_samples_since(&self, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<RunSample>> {
        let key = self.keys.run_samples();
        let mut conn = self.conn();
        let raw: Vec<String> = timed(conn.zrangebyscore(&key, since.timestamp_millis(), "+inf")).await?;
        raw.iter().map(|json| from_json(&key, json)).collect()
    }

    /// Records where a message landed. Only on a subject that exists: a
    /// late write must not plant fields on a key that Redis lost meanwhile.
    pub async fn record_posted(&self, message: &Message, at: &MessageRef, route: Option<&str>) -> StoreResult<()> {
        let fields = posted_fields(message, at, route);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
        self.set_fields_if_exists(&self.subject_key(message.subject()), &fields).await
    }

    pub async fn record_digested(&self, message: &Message, digest: &MessageRef, route: &str) -> StoreResult<()> {
        let fields = digested_fields(message, digest, route);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
        self.set_fields_if_exists(&self.subject_key(message.subject()), &fields).await
    }

    pub async fn record_anchor_failed(&self, subject: opsbot_handlers::Subject, error: &str) -> StoreResult<()> {
        self.set_fields_if_exists(&self.subject_key(subject), &[(ANCHOR_ERROR, error)]).await
    }

    pub async fn anchor_failure(&self, subject: opsbot_handlers::Subject) -> StoreResult<Option<String>> {
        // Two fields, not the whole hash: a waiting thread reply asks this.
        let mut conn = self.conn();
        let values: Vec<Option<String>> = timed(conn.hmget(self.subject_key(subject), &ANCHOR_ERROR_FIELDS)).await?;
        Ok(values.into_iter().flatten().next())
    }

    async fn set_fields_if_exists(&self, key: &str, fields: &[(&str, &str)]) -> StoreResult<()> {
        let mut invocation = self.set_if_exists.prepare_invoke();
        invocation.key(key);
        for (field, value) in fields {
            invocation.arg(*field).arg(*value);
        }
        let mut conn = self.conn();
        timed(invocation.invoke_async::<i64>(&mut conn)).await.map(drop)
    }

    // --- Checklist runs -----------------------------------------------------

    pub async fn next_run_id(&self) -> StoreResult<RunId> {
        self.next_number(self.keys.run_sequence()).await.map(RunId)
    }

    pub async fn load_run(&self, id: RunId) -> StoreResult<Option<Versioned<Run>>> {
        let key = self.keys.run(id);
        let mut conn = self.conn();
        let fields: HashMap<String, String> = timed(conn.hgetall(&key)).await?;
        run_from_fields(&key, fields)
    }

    /// A checklist's last `limit` runs, newest first.
    pub async fn runs_of(&self, checklist: &str, limit: usize) -> StoreResult<Vec<Run>> {
        let mut conn = self.conn();
        let ids: Vec<u64> =
            timed(conn.zrevrange(self.keys.checklist_runs(checklist), 0, limit.saturating_sub(1) as isize)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.keys.run(RunId(*id)), "state");
        }
        let states: Vec<Option<String>> = timed(pipe.query_async(&mut conn)).await?;
        let mut runs = Vec::with_capacity(states.len());
        for (id, state) in ids.iter().zip(states) {
            if let Some(state) = state {
                runs.push(from_json(&self.keys.run(RunId(*id)), &state)?);
            }
        }
        Ok(runs)
    }

    /// The latest schedule slot of a checklist that was handled (run or
    /// skipped), if any.
    pub async fn last_handled_slot(&self, checklist: &str) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        let mut conn = self.conn();
        let ms: Option<i64> = timed(conn.get(self.keys.checklist_last_slot(checklist))).await?;
        Ok(ms.and_then(chrono::DateTime::from_timestamp_millis))
    }

    /// Sets a timer unless it is already set (the same timer from several
    /// replicas stays one).
    pub async fn set_timer(&self, timer: &Timer) -> StoreResult<()> {
        let mut conn = self.conn();
        timed(
            redis::cmd("ZADD")
                .arg(self.keys.timers())
                .arg("NX")
                .arg(timer.due.timestamp_millis())
                .arg(to_json(timer))
                .query_async::<i64>(&mut conn),
        )
        .await
        .map(drop)
    }

    // --- Streams read through a consumer group (the outbox, the inbox) ------

    /// Creates `group` on `stream` (and the stream) unless it exists.
    async fn create_group(&self, stream: String, group: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let created =
            tokio::time::timeout(OPERATION_TIMEOUT, conn.xgroup_create_mkstream::<_, _, _, ()>(stream, group, "0"))
                .await
                .map_err(|_| StoreError::Timeout { backend: "Redis", after: OPERATION_TIMEOUT })?;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// XREADGROUP on `conn`, a connection of the reader's own: its pending
    /// entries after `own_pending_after`, else new ones, waiting up to
    /// `block` for some.
    async fn read_group(
        mut conn: ConnectionManager,
        stream: String,
        group: &str,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
        block: Duration,
    ) -> StoreResult<Vec<StreamId>> {
        let mut options = StreamReadOptions::default().group(group, consumer).count(count);
        if own_pending_after.is_none() {
            options = options.block(block.as_millis() as usize);
        }
        let start = own_pending_after.unwrap_or(">");
        let reply: Option<StreamReadReply> =
            tokio::time::timeout(block + OPERATION_TIMEOUT, conn.xread_options(&[stream], &[start], &options))
                .await
                .map_err(|_| StoreError::Timeout { backend: "Redis", after: block + OPERATION_TIMEOUT })??;
        Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect())
    }

    /// XAUTOCLAIM from the start: entries idle at least `min_idle` become
    /// `consumer`'s.
    async fn claim_idle(
        &self,
        stream: String,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<StreamId>> {
        let mut conn = self.conn();
        let reply: StreamAutoClaimReply = timed(
            redis::cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(group)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg("0")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn),
        )
        .await?;
        Ok(reply.claimed)
    }

    /// XCLAIM min-idle 0 JUSTID: the entry, if pending, is `consumer`'s and
    /// idle from now.
    async fn keep_entry(&self, stream: String, group: &str, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let mut invocation = self.keep.prepare_invoke();
        invocation.key(stream).arg(group).arg(consumer).arg(entry_id);
        let kept: i64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok(kept == 1)
    }

    /// CLAIM_DEPARTED_LUA on `stream`, in stream order.
    async fn claim_from_departed(
        &self,
        stream: String,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> StoreResult<Vec<StreamId>> {
        let mut invocation = self.claim_departed.key(stream);
        invocation.key(self.keys.replicas()).arg(group).arg(consumer).arg(count.max(1));
        let mut conn = self.conn();
        let reply: redis::streams::StreamClaimReply = timed(invocation.invoke_async(&mut conn)).await?;
        let mut ids = reply.ids;
        // Several holders' entries come holder by holder; lanes want them
        // in the order they were written.
        ids.sort_by_key(|e| stream_order(&e.id));
        Ok(ids)
    }

    // --- Replicas ----------------------------------------------------------

    pub async fn replica_beat(&self, replica: &str, lasts: Duration) -> StoreResult<()> {
        let mut invocation = self.beat.key(self.keys.replicas());
        invocation.arg(replica).arg(lasts.as_millis() as u64);
        let mut conn = self.conn();
        timed(invocation.invoke_async::<i64>(&mut conn)).await.map(drop)
    }

    pub async fn replica_leave(&self, replica: &str) -> StoreResult<()> {
        let mut invocation = self.leave.key(self.keys.replicas());
        invocation.arg(replica);
        let mut conn = self.conn();
        timed(invocation.invoke_async::<i64>(&mut conn)).await.map(drop)
    }

    pub async fn replica_is_alive(&self, replica: &str) -> StoreResult<Option<bool>> {
        let mut invocation = self.alive.key(self.keys.replicas());
        invocation.arg(replica);
        let mut conn = self.conn();
        let alive: i64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok((alive >= 0).then_some(alive == 1))
    }

    /// XACK and XDEL, together.
    async fn settle_entry(&self, stream: String, group: &str, entry_id: &str) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic().xack(&stream, group, &[entry_id]).ignore().xdel(&stream, &[entry_id]).ignore();
        let mut conn = self.conn();
        timed(pipe.query_async::<()>(&mut conn)).await
    }

    // --- Outbox ------------------------------------------------------------

    /// Creates both streams' consumer groups (and the streams) unless they
    /// exist; needed at start and again after Redis lost its data.
    pub async fn outbox_prepare(&self) -> StoreResult<()> {
        for stream in OutboxStream::ALL {
            self.create_group(self.keys.outbox(stream), OUTBOX_GROUP).await?;
        }
        Ok(())
    }

    /// Reads entries of `stream` for `consumer`: with `own_pending_after`,
    /// the ones it was given before and never finished (after a restart),
    /// after that id; else new ones, waiting up to [`OUTBOX_BLOCK`] for some
    /// to arrive.
    pub async fn outbox_read(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let conn = match stream {
            OutboxStream::Anchors => self.primary.links().anchors_blocking,
            OutboxStream::People => self.primary.links().blocking,
            OutboxStream::Alerts => self.primary.links().alerts_blocking,
        };
        let key = self.keys.outbox(stream);
        let ids = Self::read_group(conn, key, OUTBOX_GROUP, consumer, count, own_pending_after, OUTBOX_BLOCK).await?;
        Ok(self.decode_entries(stream, ids.into_iter()).await)
    }

    /// Takes over entries of `stream` another consumer was given but has
    /// not finished for `min_idle`: that replica died.
    pub async fn outbox_claim_abandoned(
        &self,
        stream: OutboxStream,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let claimed = self.claim_idle(self.keys.outbox(stream), OUTBOX_GROUP, consumer, min_idle, count).await?;
        Ok(self.decode_entries(stream, claimed.into_iter()).await)
    }

    pub async fn outbox_claim_departed(
        &self,
        stream: OutboxStream,
        consumer: &str,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let claimed = self.claim_from_departed(self.keys.outbox(stream), OUTBOX_GROUP, consumer, count).await?;
        Ok(self.decode_entries(stream, claimed.into_iter()).await)
    }

    /// Resets an entry's idle time while we keep retrying it, so another
    /// replica does not think we died and deliver it twice.
    pub async fn outbox_keep(&self, stream: OutboxStream, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        self.keep_entry(self.keys.outbox(stream), OUTBOX_GROUP, consumer, entry_id).await
    }

    pub async fn outbox_done(&self, stream: OutboxStream, entry_id: &str) -> StoreResult<()> {
        self.settle_entry(self.keys.outbox(stream), OUTBOX_GROUP, entry_id).await
    }

    /// SETTLE_LUA, the records merged per subject hash (a later field
    /// value wins, as it would in successive HSETs), in chunks small enough
    /// for Lua's `unpack`.
    pub async fn outbox_settle(&self, landed: &[Landed], done: &[(OutboxStream, String)]) -> StoreResult<()> {
        const CHUNK: usize = 512;
        let mut hashes: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for record in landed {
            let key = self.subject_key(record.subject());
            let at = match hashes.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    hashes.push((key, Vec::new()));
                    hashes.len() - 1
                }
            };
            for (field, value) in record.fields() {
                let fields = &mut hashes[at].1;
                match fields.iter_mut().find(|(f, _)| *f == field) {
                    Some(existing) => existing.1 = value,
                    None => fields.push((field, value)),
                }
            }
        }
        let mut hashes = hashes.as_slice();
        let mut done = done;
        let mut conn = self.conn();
        while !hashes.is_empty() || !done.is_empty() {
            let (these, rest) = hashes.split_at(hashes.len().min(CHUNK / 8));
            let (ids, later) = done.split_at(done.len().min(CHUNK));
            (hashes, done) = (rest, later);
            let mut invocation = self.settle.prepare_invoke();
            invocation.arg(OUTBOX_GROUP).arg(OutboxStream::ALL.len());
            let of = |stream| ids.iter().filter(move |(s, _)| *s == stream).map(|(_, id)| id.as_str());
            let by_stream: Vec<Vec<&str>> = OutboxStream::ALL.iter().map(|&stream| of(stream).collect()).collect();
            for (stream, ids) in OutboxStream::ALL.iter().zip(&by_stream) {
                invocation.key(self.keys.outbox(*stream)).arg(ids.len());
            }
            for ids in &by_stream {
                invocation.arg(ids);
            }
            for (key, fields) in these {
                invocation.key(key).arg(fields.len());
                for (field, value) in fields {
                    invocation.arg(field).arg(value);
                }
            }
            timed(invocation.invoke_async::<i64>(&mut conn)).await?;
        }
        Ok(())
    }

    /// Moves an entry Slack refused for good to the dead letters, with why.
    pub async fn outbox_dead(
        &self,
        entry: &OutboxEntry,
        error: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let letter = dead_letter(entry, error, at);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(self.keys.dead_letters(), letter.to_string())
            .ignore()
            .ltrim(self.keys.dead_letters(), 0, DEAD_LETTERS_KEPT as isize - 1)
            .ignore()
            .xack(self.keys.outbox(entry.stream), OUTBOX_GROUP, &[&entry.id])
            .ignore()
            .xdel(self.keys.outbox(entry.stream), &[&entry.id])
            .ignore();
        let mut conn = self.conn();
        timed(pipe.query_async::<()>(&mut conn)).await
    }

    pub async fn dead_letters(&self) -> StoreResult<Vec<serde_json::Value>> {
        let mut conn = self.conn();
        let raw: Vec<String> = timed(conn.lrange(self.keys.dead_letters(), 0, -1)).await?;
        raw.iter().map(|json| from_json(&self.keys.dead_letters(), json)).collect()
    }

    /// Puts a dead letter (back) at the head of the list.
    pub async fn put_dead_letter(&self, letter: serde_json::Value) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(self.keys.dead_letters(), letter.to_string())
            .ignore()
            .ltrim(self.keys.dead_letters(), 0, DEAD_LETTERS_KEPT as isize - 1)
            .ignore();
        let mut conn = self.conn();
        timed(pipe.query_async::<()>(&mut conn)).await
    }

    /// Removes entry `entry`'s dead letter and returns it; `None` when
    /// there is none (or another operator took it a moment before).
    pub async fn take_dead_letter(&self, entry: &str) -> StoreResult<Option<serde_json::Value>> {
        let mut conn = self.conn();
        let raw: Vec<String> = timed(conn.lrange(self.keys.dead_letters(), 0, -1)).await?;
        for json in raw {
            let letter: serde_json::Value = from_json(&self.keys.dead_letters(), &json)?;
            if letter["entry"] == entry {
                let removed: i64 = timed(conn.lrem(self.keys.dead_letters(), 1, &json)).await?;
                return Ok((removed > 0).then_some(letter));
            }
        }
        Ok(None)
    }

    /// Entries of `stream` not yet delivered (pending or unread), for tests
    /// and metrics.
    pub async fn outbox_len(&self, stream: OutboxStream) -> StoreResult<u64> {
        let mut conn = self.conn();
        timed(conn.xlen(self.keys.outbox(stream))).await
    }

    /// One key per channel, shared by every replica, so the budget holds
    /// however many of them post. The time is ours, not Redis's: replicas'
    /// clocks agree to well under the interval.
    pub async fn take_post_slot(&self, channel: &str, every: Duration, burst: u32) -> StoreResult<Option<Duration>> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut invocation = self.post_slot.prepare_invoke();
        invocation
            .key(format!("{}:post-slots:{channel}", self.keys.prefix))
            .arg(now)
            .arg(every.as_millis() as u64)
            .arg(burst.max(1));
        let mut conn = self.conn();
        let wait: u64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    async fn decode_entries(
        &self,
        stream: OutboxStream,
        ids: impl Iterator<Item = redis::streams::StreamId>,
    ) -> Vec<OutboxEntry> {
        let mut entries = Vec::new();
        for raw in ids {
            let decoded = decode_effect(raw.get::<String>("effect"));
            match decoded {
                Ok(effect) => entries.push(OutboxEntry { stream, id: raw.id, effect }),
                Err(reason) => {
                    // Written by a newer or broken version: keep it for a
                    // human rather than retry it forever.
                    tracing::error!(entry = %raw.id, %reason, "outbox entry cannot be read; moved to dead letters");
                    let letter = unreadable_letter(stream, &raw.id, &reason);
                    let mut pipe = redis::pipe();
                    pipe.atomic()
                        .lpush(self.keys.dead_letters(), letter.to_string())
                        .ignore()
                        .xack(self.keys.outbox(stream), OUTBOX_GROUP, &[&raw.id])
                        .ignore()
                        .xdel(self.keys.outbox(stream), &[&raw.id])
                        .ignore();
                    let mut conn = self.conn();
                    let _ = timed(pipe.query_async::<()>(&mut conn)).await;
                }
            }
        }
        entries
    }
    // --- Inbox -------------------------------------------------------------

    /// Marks `dedupe` seen for `ttl` and stores the delivery, in one script:
    /// both or neither.
    pub async fn inbox_accept(
        &self,
        source: HookSource,
        event: &str,
        dedupe: Option<&str>,
        body: &[u8],
        ttl: Duration,
    ) -> StoreResult<Accepted> {
        let mut invocation = self.accept_hook.key(self.keys.hooks());
        if let Some(dedupe) = dedupe {
            invocation.key(self.keys.hook_delivery(dedupe));
        }
        for (_, value) in hook_fields(source, event, body) {
            invocation.arg(value);
        }
        invocation.arg(ttl.as_secs().max(1));
        let mut conn = self.conn();
        let stored: i64 = timed(invocation.invoke_async(&mut conn)).await?;
        Ok(if stored == 1 { Accepted::Stored } else { Accepted::Duplicate })
    }

    pub async fn inbox_prepare(&self) -> StoreResult<()> {
        self.create_group(self.keys.hooks(), INBOX_GROUP).await
    }

    pub async fn inbox_read(
        &self,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<InboxEntry>> {
        let (conn, stream) = (self.primary.links().inbox_blocking, self.keys.hooks());
        let ids = Self::read_group(conn, stream, INBOX_GROUP, consumer, count, own_pending_after, INBOX_BLOCK).await?;
        Ok(ids.iter().map(inbox_entry).collect())
    }

    pub async fn inbox_claim_abandoned(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<InboxEntry>> {
        let claimed = self.claim_idle(self.keys.hooks(), INBOX_GROUP, consumer, min_idle, count).await?;
        Ok(claimed.iter().map(inbox_entry).collect())
    }

    pub async fn inbox_claim_departed(&self, consumer: &str, count: usize) -> StoreResult<Vec<InboxEntry>> {
        let claimed = self.claim_from_departed(self.keys.hooks(), INBOX_GROUP, consumer, count).await?;
        Ok(claimed.iter().map(inbox_entry).collect())
    }

    pub async fn inbox_keep(&self, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        self.keep_entry(self.keys.hooks(), INBOX_GROUP, consumer, entry_id).await
    }

    pub async fn inbox_done(&self, entry_id: &str) -> StoreResult<()> {
        self.settle_entry(self.keys.hooks(), INBOX_GROUP, entry_id).await
    }

    pub async fn inbox_len(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        timed(conn.xlen(self.keys.hooks())).await
    }
}

fn inbox_entry(raw: &StreamId) -> InboxEntry {
    InboxEntry { id: raw.id.clone(), hook: decode_hook(raw.get("source"), raw.get("event"), raw.get("body")) }
}

/// A stream id's (ms, seq), to sort ids as Redis does; an id that is not
/// one sorts first.
fn stream_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
