//! On-call rotations, from the runbook's `oncall` section: members take a
//! role in turn, one shift each, and the arithmetic that says who has it at
//! any instant. Shifts counted in days or weeks change hands at the same
//! local time whatever daylight saving does; shifts counted in hours are
//! exact hours (a 12-hour follow-the-sun rotation).
//!
//! A rotation may stack layers on its members' turns: each layer is a
//! rotation of its own, on only at some hours of the week (`only:`), and
//! where several are on the last one listed wins. A layered rotation's
//! shifts are the stretches in which the same person is on call, whichever
//! layer puts them there.

use super::hours::BusinessHours;
use super::{Mention, Role};
use chrono::{DateTime, Days, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Every rotation the runbook defines (a role has at most one), and the
/// overrides people set on them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnCall {
    pub rotations: Vec<Rotation>,
    /// Not runbook data: the overrides in force or planned, which the shell
    /// keeps in step with the store (see `oncall::overrides`), oldest first.
    pub covers: Vec<Cover>,
}

/// Someone on call for a role instead of the rotation's member, for a
/// while: an override, as the rotation arithmetic sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    pub role: String,
    pub member: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// The override's number, to name it.
    pub id: u64,
}

impl Cover {
    pub fn covers(&self, role: &str, at: DateTime<Utc>) -> bool {
        self.role == role && self.starts <= at && at < self.ends
    }
}

/// Who is on call for a role at an instant, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCallNow {
    pub member: String,
    /// Until when this person is on call without a break (the end of the
    /// override or shift, or the start of an override that takes over).
    pub until: DateTime<Utc>,
    /// The override that puts them there, if one does.
    pub cover: Option<Cover>,
    /// The rotation's own member at that instant (the one covered for).
    pub scheduled: String,
}

impl OnCall {
    pub fn rotation(&self, role: &str) -> Option<&Rotation> {
        self.rotations.iter().find(|r| r.role == role)
    }

    /// Who has `role` at `at`: the latest override that covers the
    /// instant, else the rotation's member; `None` without a rotation.
    pub fn on_call(&self, role: &str, zone: Tz, at: DateTime<Utc>) -> Option<OnCallNow> {
        let rotation = self.rotation(role)?;
        let shift = rotation.shift_at(zone, at);
        let cover = self.covers.iter().rev().find(|c| c.covers(role, at)).cloned();
        let (member, ends) = match &cover {
            Some(c) => (c.member.clone(), c.ends),
            None => (shift.member.clone(), shift.ends),
        };
        // A later override that starts before this stint ends cuts it short.
        let cut = self
            .covers
            .iter()
            .filter(|c| c.role == role && c.starts > at && c.starts < ends && c.member != member)
            .map(|c| c.starts)
            .min();
        Some(OnCallNow { member, until: cut.unwrap_or(ends), cover, scheduled: shift.member })
    }

    /// The overrides of `role` that have not ended by `at`, soonest first.
    pub fn covers_of(&self, role: &str, at: DateTime<Utc>) -> Vec<&Cover> {
        let mut found: Vec<&Cover> = self.covers.iter().filter(|c| c.role == role && c.ends > at).collect();
        found.sort_by_key(|c| c.starts);
        found
    }
}

/// A role's rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The role it fills (an id of `roles`).
    pub role: String,
    /// Slack user ids, in turn; the first has the shift that starts at
    /// `handoff`.
    pub members: Vec<String>,
    pub shift: ShiftLength,
    /// The first shift's start, in the runbook's time zone; shifts before
    /// it count backwards in the same order.
    pub handoff: NaiveDateTime,
    /// How long whoever takes over has to press *I have it* before the
    /// outgoing person and [`Rotation::escalate_to`] are reminded; `None`
    /// (`acknowledge_within: off`): handoffs ask for no acknowledgement.
    pub acknowledge_within: Option<TimeDelta>,
    /// A DM to each member this long before their shift starts; `None`
    /// (`remind_before: off`): no reminder.
    pub remind_before: Option<TimeDelta>,
    /// The role reminded, beside the outgoing person, of a handoff nobody
    /// acknowledged. `None`: the role after this one in the first
    /// escalation matrix that lists it (see `Runbook::handoff_escalation`).
    pub escalate_to: Option<String>,
    /// A Slack user group (`S…`) kept in step with whoever is on call, so
    /// people can mention it themselves.
    pub usergroup: Option<String>,
    /// Layers over the members' turns above, lowest first: where a layer
    /// is on, it decides who is on call, and a later layer over an earlier
    /// one. The turns above are always on, so someone always is.
    pub layers: Vec<Layer>,
}

/// A layer of a rotation: its own members, in turn, with their own shift
/// and first handoff, on only at the hours of `only`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// What the team calls it (`weeknights`), shown beside its shifts.
    pub name: String,
    pub members: Vec<String>,
    pub shift: ShiftLength,
    pub handoff: NaiveDateTime,
    /// When the layer is on, read as business hours are (per weekday, in
    /// the runbook's time zone); `None`: always, so nothing below it
    /// shows through.
    pub only: Option<BusinessHours>,
}

/// Turns of members at a fixed shift length from a first handoff: the
/// arithmetic a rotation's own members and each of its layers share.
#[derive(Copy, Clone)]
struct Turns<'a> {
    members: &'a [String],
    shift: ShiftLength,
    handoff: NaiveDateTime,
}

/// Without `acknowledge_within`: a quarter of an hour to say "I have it".
pub const ACKNOWLEDGE_WITHIN: TimeDelta = TimeDelta::minutes(15);
/// Without `remind_before`: an hour's notice before a shift.
pub const REMIND_BEFORE: TimeDelta = TimeDelta::hours(1);

/// How long each shift lasts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShiftLength {
    /// Exact hours (`12h`): a day in which the clocks change still has two
    /// 12-hour shifts, so the local handoff time moves by the hour gained
    /// or lost.
    Hours(u32),
    /// Calendar days (`1d`, `1w` = 7 days): the handoff stays at the same
    /// local time, so a shift across a change is an hour longer or shorter.
    Days(u32),
}

impl ShiftLength {
    /// `12h`, `1d`, `3d`, `1w`, `2w`: a positive whole number and a unit.
    /// At most 8 weeks: a longer "shift" is not a rotation.
    pub fn parse(text: &str) -> Result<ShiftLength, String> {
        let text = text.trim();
        let unit = text.chars().last().ok_or("empty")?;
        let number: u32 = text[..text.len() - unit.len_utf8()]
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a shift length like `12h`, `1d` or `1w`"))?;
        let length = match unit {
            'h' => ShiftLength::Hours(number),
            'd' => ShiftLength::Days(number),
            'w' => ShiftLength::Days(number.saturating_mul(7)),
            _ => return Err(format!("`{text}`: the unit is `h` (hours), `d` (days) or `w` (weeks)")),
        };
        match length {
            ShiftLength::Hours(0) | ShiftLength::Days(0) => Err(format!("`{text}`: a shift cannot be empty")),
            ShiftLength::Hours(h) if h > 56 * 24 => Err(format!("`{text}` is longer than 8 weeks")),
            ShiftLength::Days(d) if d > 56 => Err(format!("`{text}` is longer than 8 weeks")),
            ok => Ok(ok),
        }
    }

    /// About how long, for the first guess of which shift an instant is in.
    fn approximately(self) -> TimeDelta {
        match self {
            ShiftLength::Hours(h) => TimeDelta::hours(i64::from(h)),
            ShiftLength::Days(d) => TimeDelta::days(i64::from(d)),
        }
    }
}

/// One shift of a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    /// What names it, the same on every replica: for a rotation without
    /// layers its number (0 starts at the rotation's `handoff`, negative
    /// before); for a layered one, whose stretches have no natural count,
    /// the Unix second it starts.
    pub index: i64,
    /// Who has it (a Slack user id).
    pub member: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// The layer that puts `member` on call when it starts; `None`: the
    /// rotation's own turns.
    pub layer: Option<String>,
}

/// How many candidate instants a layered shift's bounds are searched over
/// at most. The rotation's own turns bound every search (at most 8 weeks),
/// so this only keeps an absurd runbook (hour-long turns under a layer of
/// many windows) from searching for long.
const BOUNDS_SEARCHED: usize = 4000;

impl Rotation {
    /// A rotation with the default acknowledgement, reminder and
    /// escalation (what the runbook gets when it names none).
    pub fn new(role: &str, members: Vec<String>, shift: ShiftLength, handoff: NaiveDateTime) -> Rotation {
        Rotation {
            role: role.to_owned(),
            members,
            shift,
            handoff,
            acknowledge_within: Some(ACKNOWLEDGE_WITHIN),
            remind_before: Some(REMIND_BEFORE),
            escalate_to: None,
            usergroup: None,
            layers: Vec::new(),
        }
    }

    /// Every Slack user the rotation can put on call: its members, then
    /// its layers' members, each once.
    pub fn everyone(&self) -> Vec<&str> {
        let mut all: Vec<&str> = Vec::new();
        for member in self.members.iter().chain(self.layers.iter().flat_map(|l| &l.members)) {
            if !all.contains(&member.as_str()) {
                all.push(member);
            }
        }
        all
    }

    fn turns(&self) -> Turns<'_> {
        Turns { members: &self.members, shift: self.shift, handoff: self.handoff }
    }

    /// The shift `at` falls in.
    pub fn shift_at(&self, zone: Tz, at: DateTime<Utc>) -> Shift {
        if self.layers.is_empty() {
            return self.turns().shift_at(zone, at);
        }
        let (member, layer) = self.layered(zone, at);
        let starts = self.bound(zone, at, &member, Direction::Back);
        let ends = self.bound(zone, at, &member, Direction::Forth);
        Shift { index: starts.timestamp(), member, starts, ends, layer }
    }

    /// The shift `at` falls in and the `count - 1` after it.
    pub fn shifts_from(&self, zone: Tz, at: DateTime<Utc>, count: usize) -> Vec<Shift> {
        self.shifts(zone, at).take(count).collect()
    }

    /// The shift `at` falls in and every one after it, in order.
    pub fn shifts(&self, zone: Tz, at: DateTime<Utc>) -> impl Iterator<Item = Shift> + '_ {
        std::iter::successors(Some(self.shift_at(zone, at)), move |shift| Some(self.after(zone, shift)))
    }

    /// The shift named `index` (see [`Shift::index`]).
    pub fn shift(&self, zone: Tz, index: i64) -> Shift {
        if self.layers.is_empty() {
            return self.turns().shift(zone, index);
        }
        let at = DateTime::from_timestamp(index, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.shift_at(zone, at)
    }

    /// The shift after `shift`.
    pub fn after(&self, zone: Tz, shift: &Shift) -> Shift {
        if self.layers.is_empty() {
            return self.turns().shift(zone, shift.index + 1);
        }
        self.shift_at(zone, shift.ends)
    }

    /// The shift before `shift`.
    pub fn before(&self, zone: Tz, shift: &Shift) -> Shift {
        if self.layers.is_empty() {
            return self.turns().shift(zone, shift.index - 1);
        }
        self.shift_at(zone, shift.starts - TimeDelta::seconds(1))
    }

    /// Who the layers put on call at `at`, and by which layer: the last
    /// layer that is on, else the rotation's own turns.
    fn layered(&self, zone: Tz, at: DateTime<Utc>) -> (String, Option<String>) {
        self.layers
            .iter()
            .rev()
            .find(|layer| layer.only.as_ref().is_none_or(|hours| hours.is_open(zone, at)))
            .map(|layer| (layer.turns().shift_at(zone, at).member, Some(layer.name.clone())))
            .unwrap_or_else(|| (self.turns().shift_at(zone, at).member, None))
    }

    /// Where the stretch in which `member` is on call around `at` starts
    /// (going back) or ends (going forth): where someone else takes over,
    /// or the rotation's own turn changes. Who is on call can only change
    /// where some layer's shift changes or some layer comes on or goes
    /// off, so those instants are the candidates, nearest first.
    fn bound(&self, zone: Tz, at: DateTime<Utc>, member: &str, direction: Direction) -> DateTime<Utc> {
        let all = std::iter::once(self.turns()).chain(self.layers.iter().map(Layer::turns));
        let windows: Vec<&BusinessHours> = self.layers.iter().filter_map(|l| l.only.as_ref()).collect();
        let turns: Vec<Turns> = all.collect();
        let mut edge = at;
        // Going back, the instant the next candidate is at or before.
        let mut probe = at;
        for _ in 0..BOUNDS_SEARCHED {
            edge = match direction {
                Direction::Back => {
                    let shifts = turns.iter().map(|t| t.shift_at(zone, probe).starts);
                    let hours = windows.iter().map(|w| w.edges_around(zone, probe).0);
                    shifts.chain(hours).max().unwrap_or(probe)
                }
                Direction::Forth => {
                    let shifts = turns.iter().map(|t| t.shift_at(zone, edge).ends);
                    let hours = windows.iter().map(|w| w.edges_around(zone, edge).1);
                    shifts.chain(hours).min().unwrap_or(edge)
                }
            };
            let other_side = match direction {
                Direction::Back => edge - TimeDelta::seconds(1),
                Direction::Forth => edge,
            };
            // The rotation's own turns end a stretch even where the same
            // person goes on, so that a layer that never changes hands
            // still hands over (to itself) as a plain rotation does.
            let turn_starts = self.turns().shift_at(zone, edge).starts == edge;
            if turn_starts || self.layered(zone, other_side).0 != member {
                return edge;
            }
            probe = edge - TimeDelta::seconds(1);
        }
        edge
    }
}

#[derive(Copy, Clone)]
enum Direction {
    Back,
    Forth,
}

impl Layer {
    fn turns(&self) -> Turns<'_> {
        Turns { members: &self.members, shift: self.shift, handoff: self.handoff }
    }
}

impl Turns<'_> {
    /// The turn `at` falls in.
    fn shift_at(self, zone: Tz, at: DateTime<Utc>) -> Shift {
        let first = self.start_of(zone, 0);
        let guess = (at - first).num_seconds().div_euclid(self.shift.approximately().num_seconds().max(1));
        // Daylight saving moves a calendar shift's bounds by an hour at
        // most, so the guess is off by one at most: step until it fits.
        let mut index = guess;
        while self.start_of(zone, index) > at {
            index -= 1;
        }
        while self.start_of(zone, index + 1) <= at {
            index += 1;
        }
        self.shift(zone, index)
    }

    /// Turn number `index`.
    fn shift(self, zone: Tz, index: i64) -> Shift {
        let turns = self.members.len().max(1) as i64;
        Shift {
            index,
            member: self.members.get(index.rem_euclid(turns) as usize).cloned().unwrap_or_default(),
            starts: self.start_of(zone, index),
            ends: self.start_of(zone, index + 1),
            layer: None,
        }
    }

    /// When shift `index` starts.
    fn start_of(&self, zone: Tz, index: i64) -> DateTime<Utc> {
        match self.shift {
            ShiftLength::Hours(h) => local(zone, self.handoff) + TimeDelta::hours(i64::from(h) * index),
            ShiftLength::Days(d) => {
                let days = i64::from(d) * index;
                let date = if days >= 0 {
                    self.handoff.date().checked_add_days(Days::new(days as u64))
                } else {
                    self.handoff.date().checked_sub_days(Days::new(days.unsigned_abs()))
                };
                // Out of chrono's range only for absurd instants; the
                // exact-hours step is then as good an answer as any.
                match date {
                    Some(date) => local(zone, date.and_time(self.handoff.time())),
                    None => local(zone, self.handoff) + TimeDelta::days(days),
                }
            }
        }
    }
}

/// A local time in `zone` as an instant. A time the clocks skip (02:30 on
/// the night they spring forward) is read as the hour after; a time that
/// happens twice, as its first.
pub fn local(zone: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    zone.from_local_datetime(&at)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(at + TimeDelta::hours(1))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&at))
}

/// Who to page for `role` at `at`: whoever is on call when the role has a
/// rotation (an override's member, else the shift's), else the role's
/// `people`.
pub fn paged(role: &Role, oncall: &OnCall, zone: Tz, at: DateTime<Utc>) -> Vec<Mention> {
    match oncall.on_call(&role.id, zone, at) {
        Some(now) => vec![Mention::User(now.member)],
        None => role.people.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn rotation(shift: &str, handoff: &str) -> Rotation {
        Rotation::new(
            "on-call-engineer",
            vec!["U0ALICE".into(), "U0BOB".into(), "U0CAROL".into()],
            ShiftLength::parse(shift).unwrap(),
            naive(handoff),
        )
    }

    #[test]
    fn a_weekly_rotation_goes_round_its_members_and_backwards_before_its_start() {
        let r = rotation("1w", "2026-11-30 09:00");
        let zone = Tz::UTC;
        assert_eq!(r.shift_at(zone, utc("2026-11-30T09:00:00Z")).member, "U0ALICE");
        assert_eq!(r.shift_at(zone, utc("2026-12-07T08:59:59Z")).member, "U0ALICE");
        assert_eq!(r.shift_at(zone, utc("2026-12-07T09:00:00Z")).member, "U0BOB");
        assert_eq!(r.shift_at(zone, utc("2026-12-21T10:00:00Z")).member, "U0ALICE", "round again");
        let before = r.shift_at(zone, utc("2026-11-29T12:00:00Z"));
        assert_eq!((before.index, before.member.as_str()), (-1, "U0CAROL"));
        assert_eq!(before.ends, utc("2026-11-30T09:00:00Z"));
    }

    #[test]
    fn calendar_shifts_hand_over_at_the_same_local_time_across_daylight_saving() {
        // Europe/Berlin goes from CEST to CET on 2026-10-25.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = rotation("1d", "2026-10-20 09:00");
        let before = r.shift_at(berlin, utc("2026-10-24T12:00:00Z"));
        assert_eq!(before.starts, utc("2026-10-24T07:00:00Z"), "09:00 CEST");
        let after = r.shift_at(berlin, utc("2026-10-26T12:00:00Z"));
        assert_eq!(after.starts, utc("2026-10-26T08:00:00Z"), "09:00 CET");
        let across = r.shift_at(berlin, utc("2026-10-25T03:00:00Z"));
        assert_eq!(across.ends - across.starts, TimeDelta::hours(25), "the night the clocks go back");
        // New York springs forward on 2026-03-08; Sydney on 2026-10-04.
        for (zone, change) in [("America/New_York", "2026-03-08"), ("Australia/Sydney", "2026-10-04")] {
            let zone: Tz = zone.parse().unwrap();
            let r = rotation("1w", "2026-02-02 09:00");
            for shift in r.shifts_from(zone, utc(&format!("{change}T00:00:00Z")) - TimeDelta::days(14), 6) {
                let local = shift.starts.with_timezone(&zone);
                assert_eq!(local.format("%a %H:%M").to_string(), "Mon 09:00", "{zone}: {shift:?}");
            }
        }
    }

    #[test]
    fn hour_shifts_are_exact_hours_even_when_the_clocks_change() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = rotation("12h", "2026-10-24 08:00");
        let shifts = r.shifts_from(berlin, utc("2026-10-24T06:00:00Z"), 4);
        for pair in shifts.windows(2) {
            assert_eq!(pair[0].ends, pair[1].starts);
            assert_eq!(pair[0].ends - pair[0].starts, TimeDelta::hours(12));
        }
        let names: Vec<&str> = shifts.iter().map(|s| s.member.as_str()).collect();
        assert_eq!(names, ["U0ALICE", "U0BOB", "U0CAROL", "U0ALICE"]);
    }

    #[test]
    fn shifts_that_do_not_divide_a_week_still_tile_time() {
        let r = rotation("3d", "2026-01-01 18:30");
        let zone: Tz = "America/New_York".parse().unwrap();
        let mut at = utc("2026-02-20T00:00:00Z");
        for _ in 0..200 {
            let shift = r.shift_at(zone, at);
            assert!(shift.starts <= at && at < shift.ends, "{at}: {shift:?}");
            at += TimeDelta::hours(7);
        }
    }

    #[test]
    fn a_skipped_local_handoff_time_is_read_as_the_hour_after() {
        // 02:30 does not happen in Berlin on 2026-03-29.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = rotation("1d", "2026-03-01 02:30");
        let shift = r.shift_at(berlin, utc("2026-03-29T12:00:00Z"));
        assert_eq!(shift.starts, utc("2026-03-29T01:30:00Z"), "03:30 CEST");
    }

    #[test]
    fn shift_lengths_are_read_with_their_units() {
        assert_eq!(ShiftLength::parse("12h"), Ok(ShiftLength::Hours(12)));
        assert_eq!(ShiftLength::parse("2w"), Ok(ShiftLength::Days(14)));
        assert!(ShiftLength::parse("0d").is_err());
        assert!(ShiftLength::parse("1 fortnight").is_err());
        assert!(ShiftLength::parse("9w").is_err());
        assert!(ShiftLength::parse("").is_err());
    }

    /// Alice and Bob take the week from Monday 09:00; Carol and Dave take
    /// the weeknights in turn (17:00 to 09:00 the next morning, Monday to
    /// Friday), over them.
    fn with_weeknights() -> Rotation {
        use crate::runbook::hours::Interval;
        let mut r = Rotation::new(
            "on-call-engineer",
            vec!["U0ALICE".into(), "U0BOB".into()],
            ShiftLength::Days(7),
            naive("2026-11-30 09:00"),
        );
        let mut week: [Vec<Interval>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            *day = vec![Interval::parse("00:00-09:00").unwrap(), Interval::parse("17:00-24:00").unwrap()];
        }
        // Monday 00:00-09:00 is Sunday night's end: no one starts it on
        // Sunday, so it belongs to the week.
        week[0] = vec![Interval::parse("17:00-24:00").unwrap()];
        week[5] = vec![Interval::parse("00:00-09:00").unwrap()];
        r.layers.push(Layer {
            name: "weeknights".into(),
            members: vec!["U0CAROL".into(), "U0DAVE".into()],
            shift: ShiftLength::Days(1),
            handoff: naive("2026-11-30 17:00"),
            only: Some(BusinessHours::new(week, Vec::new()).unwrap()),
        });
        r
    }

    #[test]
    fn a_weeknight_layer_takes_the_evenings_and_the_week_shows_through_by_day() {
        let r = with_weeknights();
        let zone = Tz::UTC;
        let day = r.shift_at(zone, utc("2026-12-01T12:00:00Z"));
        assert_eq!((day.member.as_str(), day.layer), ("U0ALICE", None));
        assert_eq!((day.starts, day.ends), (utc("2026-12-01T09:00:00Z"), utc("2026-12-01T17:00:00Z")));
        let night = r.shift_at(zone, utc("2026-12-01T23:00:00Z"));
        assert_eq!((night.member.as_str(), night.layer.as_deref()), ("U0DAVE", Some("weeknights")));
        assert_eq!((night.starts, night.ends), (utc("2026-12-01T17:00:00Z"), utc("2026-12-02T09:00:00Z")));
        // Friday night ends on Saturday morning; the weekend is Alice's.
        let friday = r.shift_at(zone, utc("2026-12-04T20:00:00Z"));
        assert_eq!((friday.member.as_str(), friday.ends), ("U0CAROL", utc("2026-12-05T09:00:00Z")));
        let weekend = r.shift_at(zone, utc("2026-12-06T12:00:00Z"));
        assert_eq!((weekend.member.as_str(), weekend.starts), ("U0ALICE", utc("2026-12-05T09:00:00Z")));
        assert_eq!(weekend.ends, utc("2026-12-07T09:00:00Z"), "Bob's week starts Monday 09:00");
        // The layer's turns go on daily through the weekend it is off.
        let monday = r.shift_at(zone, utc("2026-12-07T18:00:00Z"));
        assert_eq!((monday.member.as_str(), monday.starts), ("U0DAVE", utc("2026-12-07T17:00:00Z")));
    }

    #[test]
    fn a_layered_rotations_shifts_tile_time_change_hands_and_are_found_by_their_index() {
        let r = with_weeknights();
        for zone in ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"] {
            let zone: Tz = zone.parse().unwrap();
            let shifts = r.shifts_from(zone, utc("2026-10-20T00:00:00Z"), 120);
            for pair in shifts.windows(2) {
                assert_eq!(pair[0].ends, pair[1].starts, "{zone}: {pair:?}");
                assert_ne!(pair[0].member, pair[1].member, "{zone}: a shift hands over to someone else");
                assert_eq!(r.shift(zone, pair[1].index), pair[1], "{zone}: found by index");
                assert_eq!(r.before(zone, &pair[1]), pair[0], "{zone}");
            }
            let mut at = utc("2026-10-20T00:00:00Z");
            while at < shifts[119].starts {
                let shift = r.shift_at(zone, at);
                assert!(shift.starts <= at && at < shift.ends, "{zone} {at}: {shift:?}");
                at += TimeDelta::minutes(97);
            }
        }
    }

    #[test]
    fn a_layers_hours_stay_at_the_same_local_time_across_daylight_saving() {
        // Berlin goes from CEST to CET on 2026-10-25, a Sunday.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = with_weeknights();
        let before = r.shift_at(berlin, utc("2026-10-22T20:00:00Z"));
        assert_eq!((before.starts, before.ends), (utc("2026-10-22T15:00:00Z"), utc("2026-10-23T07:00:00Z")));
        let after = r.shift_at(berlin, utc("2026-10-27T20:00:00Z"));
        assert_eq!((after.starts, after.ends), (utc("2026-10-27T16:00:00Z"), utc("2026-10-28T08:00:00Z")));
        assert_eq!(after.layer.as_deref(), Some("weeknights"));
    }

    #[test]
    fn the_last_layer_that_is_on_wins() {
        let mut r = with_weeknights();
        r.layers.push(Layer {
            name: "holiday cover".into(),
            members: vec!["U0ERIN".into()],
            shift: ShiftLength::Days(7),
            handoff: naive("2026-11-30 09:00"),
            only: None,
        });
        let zone = Tz::UTC;
        for at in ["2026-12-01T12:00:00Z", "2026-12-01T23:00:00Z", "2026-12-06T12:00:00Z"] {
            assert_eq!(r.shift_at(zone, utc(at)).member, "U0ERIN", "{at}");
        }
        // Erin always on: her stretches are the rotation's own weeks, as a
        // rotation of one would be.
        let erin = r.shift_at(zone, utc("2026-12-01T12:00:00Z"));
        assert_eq!((erin.starts, erin.ends), (utc("2026-11-30T09:00:00Z"), utc("2026-12-07T09:00:00Z")));
        assert_eq!(r.after(zone, &erin).member, "U0ERIN");
    }

    #[test]
    fn an_override_beats_every_layer_and_a_layered_stretch_is_cut_short_by_it() {
        let mut oncall = OnCall { rotations: vec![with_weeknights()], covers: Vec::new() };
        oncall.covers.push(cover(1, "U0ERIN", "2026-12-01T20:00:00Z", "2026-12-01T22:00:00Z"));
        let zone = Tz::UTC;
        let dave = oncall.on_call("on-call-engineer", zone, utc("2026-12-01T18:00:00Z")).unwrap();
        assert_eq!((dave.member.as_str(), dave.until), ("U0DAVE", utc("2026-12-01T20:00:00Z")));
        let erin = oncall.on_call("on-call-engineer", zone, utc("2026-12-01T21:00:00Z")).unwrap();
        assert_eq!((erin.member.as_str(), erin.scheduled.as_str()), ("U0ERIN", "U0DAVE"));
        let back = oncall.on_call("on-call-engineer", zone, utc("2026-12-01T22:00:00Z")).unwrap();
        assert_eq!((back.member.as_str(), back.until), ("U0DAVE", utc("2026-12-02T09:00:00Z")));
    }

    fn cover(id: u64, member: &str, starts: &str, ends: &str) -> Cover {
        Cover { role: "on-call-engineer".into(), member: member.into(), starts: utc(starts), ends: utc(ends), id }
    }

    #[test]
    fn an_override_puts_its_member_on_call_for_its_span_and_the_latest_one_wins() {
        let mut oncall = OnCall { rotations: vec![rotation("1w", "2026-11-30 09:00")], covers: Vec::new() };
        let zone = Tz::UTC;
        // Bob's week is 2026-12-07 09:00 to 2026-12-14 09:00.
        oncall.covers.push(cover(1, "U0CAROL", "2026-12-08T18:00:00Z", "2026-12-09T09:00:00Z"));
        let before = oncall.on_call("on-call-engineer", zone, utc("2026-12-08T12:00:00Z")).unwrap();
        assert_eq!((before.member.as_str(), before.until), ("U0BOB", utc("2026-12-08T18:00:00Z")), "cut short");
        let during = oncall.on_call("on-call-engineer", zone, utc("2026-12-08T18:00:00Z")).unwrap();
        assert_eq!((during.member.as_str(), during.scheduled.as_str()), ("U0CAROL", "U0BOB"));
        assert_eq!(during.until, utc("2026-12-09T09:00:00Z"));
        assert_eq!(during.cover.as_ref().map(|c| c.id), Some(1));
        let after = oncall.on_call("on-call-engineer", zone, utc("2026-12-09T09:00:00Z")).unwrap();
        assert_eq!((after.member.as_str(), after.cover), ("U0BOB", None), "ends by itself");

        // A later override inside the first wins while it lasts.
        oncall.covers.push(cover(2, "U0ALICE", "2026-12-08T20:00:00Z", "2026-12-08T22:00:00Z"));
        assert_eq!(oncall.on_call("on-call-engineer", zone, utc("2026-12-08T21:00:00Z")).unwrap().member, "U0ALICE");
        assert_eq!(oncall.on_call("on-call-engineer", zone, utc("2026-12-08T22:00:00Z")).unwrap().member, "U0CAROL");
        assert_eq!(
            oncall.on_call("on-call-engineer", zone, utc("2026-12-08T19:00:00Z")).unwrap().until,
            utc("2026-12-08T20:00:00Z")
        );
        // Other roles and the end instant are not covered.
        assert!(oncall.on_call("devops-team-lead", zone, utc("2026-12-08T21:00:00Z")).is_none());
        assert_eq!(oncall.covers_of("on-call-engineer", utc("2026-12-08T21:00:00Z")).len(), 2);
        assert!(oncall.covers_of("on-call-engineer", utc("2026-12-09T09:00:00Z")).is_empty());
    }

    #[test]
    fn a_role_with_a_rotation_pages_whoever_is_on_call_and_others_their_people() {
        let oncall = OnCall { rotations: vec![rotation("1w", "2026-11-30 09:00")], covers: Vec::new() };
        let engineer =
            Role { id: "on-call-engineer".into(), name: "On-call engineer".into(), people: vec![Mention::Here] };
        let lead = Role { id: "devops-team-lead".into(), name: "DevOps team lead".into(), people: vec![Mention::Here] };
        let at = utc("2026-12-08T03:00:00Z");
        assert_eq!(paged(&engineer, &oncall, Tz::UTC, at), vec![Mention::User("U0BOB".into())]);
        assert_eq!(paged(&lead, &oncall, Tz::UTC, at), vec![Mention::Here]);
        let mut covered = oncall.clone();
        covered.covers.push(cover(1, "U0CAROL", "2026-12-08T00:00:00Z", "2026-12-08T06:00:00Z"));
        assert_eq!(paged(&engineer, &covered, Tz::UTC, at), vec![Mention::User("U0CAROL".into())]);
    }
}
