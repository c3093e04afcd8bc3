//! Alertmanager webhook notifications (format version 4) read into an
//! [`AlertmanagerGroup`].

use super::brief;
use super::signal::{AlertmanagerAlert, AlertmanagerGroup};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Why a notification's body could not be read. It never quotes the body:
/// at most one misplaced value, and only a short one, as serde_json names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("Alertmanager payload of the wrong shape: {0}")]
    WrongShape(String),
    #[error("Alertmanager payload without `{0}`")]
    Missing(&'static str),
    #[error("Alertmanager payload with an unreadable `alerts[{index}].{field}`: {reason}")]
    BadTime { index: usize, field: &'static str, reason: String },
}

/// Reads a notification. Any `version` is accepted as long as the fields
/// read here fit: a newer Alertmanager that adds fields should not go unheard.
pub fn parse(body: &[u8]) -> Result<AlertmanagerGroup, PayloadError> {
    let notification: Notification = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PayloadError::WrongShape(brief(&e)),
        _ => PayloadError::NotJson(brief(&e)),
    })?;
    // The group key is what ties notifications about one group together;
    // without it there is no group to update.
    let group_key = notification.group_key.filter(|k| !k.is_empty()).ok_or(PayloadError::Missing("groupKey"))?;
    let status = notification.status.ok_or(PayloadError::Missing("status"))?;
    let alerts = notification
        .alerts
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, alert)| {
            let labels = alert.labels.unwrap_or_default();
            Ok(AlertmanagerAlert {
                fingerprint: match alert.fingerprint.filter(|f| !f.is_empty()) {
                    Some(given) => given,
                    None => fingerprint(&labels),
                },
                // Older Alertmanagers send no status per alert; the group's
                // then stands for each of them.
                firing: alert.status.as_deref().unwrap_or(&status) == "firing",
                labels,
                annotations: alert.annotations.unwrap_or_default(),
                starts_at: time(alert.starts_at, index, "startsAt")?,
                ends_at: time(alert.ends_at, index, "endsAt")?,
                generator_url: alert.generator_url.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, PayloadError>>()?;

    Ok(AlertmanagerGroup {
        group_key,
        firing: status == "firing",
        receiver: notification.receiver.unwrap_or_default(),
        group_labels: notification.group_labels.unwrap_or_default(),
        common_labels: notification.common_labels.unwrap_or_default(),
        common_annotations: notification.common_annotations.unwrap_or_default(),
        external_url: notification.external_url.unwrap_or_default(),
        alerts,
    })
}

/// The fingerprint of an alert that arrives without Alertmanager's own:
/// FNV-1a (64 bits) of its labels, sorted by name, as `name=value` pairs
/// joined by U+001F, in 16 hex digits.
///
/// It depends on the labels alone, so it is the same across restarts and
/// opsbot versions, and an alert keeps it from one notification to the next.
/// It is not Alertmanager's own algorithm: the same alert fingerprinted by
/// Alertmanager has a different value. (A label value that itself contains
/// U+001F could make two label sets collide; Prometheus labels do not.)
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let joined = labels.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("\u{1f}");
    let hash = joined.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

/// An RFC 3339 time in UTC; `None` for Go's zero time (year 1), which
/// Alertmanager sends for an `endsAt` it does not know yet.
fn time(raw: Option<String>, index: usize, field: &'static str) -> Result<Option<DateTime<Utc>>, PayloadError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(None) };
    let at = DateTime::parse_from_rfc3339(&raw)
        .map_err(|e| PayloadError::BadTime { index, field, reason: e.to_string() })?
        .with_timezone(&Utc);
    Ok((at.year() > 1).then_some(at))
}

// The notification, as far as it is read. Every field is optional so that a
// missing one is reported by name, or given its empty value, rather than
// refused as serde's "missing field"; maps are optional because Go sends
// `null` for an empty one.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    group_key: Option<String>,
    status: Option<String>,
    receiver: Option<String>,
    group_labels: Option<BTreeMap<String, String>>,
    common_labels: Option<BTreeMap<String, String>>,
    common_annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "externalURL")]
    external_url: Option<String>,
    alerts: Option<Vec<Alert>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
    fingerprint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const TWO_ALERTS: &str = include_str!("../../tests/fixtures/alertmanager/firing.two_alerts.json");
    const SINGLE_ALERT: &str = include_str!("../../tests/fixtures/alertmanager/firing.single_alert.json");

    /// The fixture with `edit` applied to its JSON.
    fn edited(fixture: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut value: Value = serde_json::from_str(fixture).unwrap();
        edit(&mut value);
        serde_json::to_vec(&value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_firing_group_of_two_alerts_parses_with_computed_fingerprints_and_no_end() {
        let group = parse(TWO_ALERTS.as_bytes()).unwrap();
        assert_eq!(group.group_key, "{}:{alertname=\"high_memory_load\"}");
        assert!(group.firing);
        assert_eq!(group.receiver, "teams_proxy");
        assert_eq!(group.group_labels, labels(&[("alertname", "high_memory_load")]));
        assert_eq!(
            group.common_labels,
            labels(&[("alertname", "high_memory_load"), ("monitor", "master"), ("severity", "warning")])
        );
        assert_eq!(group.common_annotations, labels(&[("summary", "Server High Memory usage")]));
        assert_eq!(group.external_url, "http://docker.for.mac.host.internal:9093");
        assert_eq!(group.alerts.len(), 2);
        let [first, second] = &group.alerts[..] else { unreachable!() };
        assert_eq!(
            *first,
            AlertmanagerAlert {
                fingerprint: "bfda81bb70e743fa".into(),
                firing: true,
                labels: labels(&[("alertname", "high_memory_load")]),
                annotations: labels(&[
                    ("description", "10.80.40.11 reported high memory usage with 23.28%."),
                    ("summary", "Server High Memory usage"),
                ]),
                starts_at: Some(at("2018-03-07T11:33:21.873077559Z")),
                ends_at: None,
                generator_url: String::new(),
            }
        );
        assert_eq!(second.fingerprint, "e78e3980d8f82cd8");
        assert!(second.firing);
    }

    #[test]
    fn a_single_alert_parses_with_its_time_in_utc_to_the_nanosecond() {
        let group = parse(SINGLE_ALERT.as_bytes()).unwrap();
        assert!(group.firing);
        assert_eq!(group.common_annotations["runbook"], "https://github.com/bzon/prometheus-msteams");
        let [alert] = &group.alerts[..] else { panic!("expected one alert, got {:?}", group.alerts) };
        assert_eq!(alert.labels.len(), 5);
        assert_eq!(alert.labels["instance"], "instance-with-hyphen_and_underscore");
        assert_eq!(alert.fingerprint, "4e251ceb1640c25f");
        assert_eq!(alert.starts_at.unwrap().timestamp_nanos_opt(), Some(1_520_422_401_873_077_559));
        assert_eq!(alert.ends_at, None);
    }

    #[test]
    fn a_resolved_group_parses_with_its_alerts_resolved_and_ended() {
        let body = edited(TWO_ALERTS, |v| {
            v["status"] = json!("resolved");
            for alert in v["alerts"].as_array_mut().unwrap() {
                alert["status"] = json!("resolved");
                alert["endsAt"] = json!("2018-03-07T06:48:21.5-05:00");
            }
        });
        let group = parse(&body).unwrap();
        assert!(!group.firing);
        for alert in &group.alerts {
            assert!(!alert.firing);
            assert_eq!(alert.ends_at, Some(at("2018-03-07T11:48:21.5Z")));
        }
    }

    #[test]
    fn an_alert_with_its_own_status_keeps_it_in_a_group_that_says_otherwise() {
        let body = edited(TWO_ALERTS, |v| {
            v["alerts"][1]["status"] = json!("resolved");
            v["alerts"][1]["endsAt"] = json!("2018-03-07T11:40:00Z");
        });
        let group = parse(&body).unwrap();
        assert!(group.firing);
        assert!(group.alerts[0].firing);
        assert!(!group.alerts[1].firing);
        assert_eq!(group.alerts[1].ends_at, Some(at("2018-03-07T11:40:00Z")));
    }

    #[test]
    fn an_alert_with_alertmanagers_fingerprint_keeps_it() {
        let body = edited(SINGLE_ALERT, |v| {
            v["alerts"][0]["fingerprint"] = json!("0f4c7b5bd7d9c3b1");
            v["alerts"][0]["generatorURL"] = json!("http://prometheus:9090/graph?g0.expr=up");
        });
        let alert = &parse(&body).unwrap().alerts[0];
        assert_eq!(alert.fingerprint, "0f4c7b5bd7d9c3b1");
        assert_eq!(alert.generator_url, "http://prometheus:9090/graph?g0.expr=up");
    }

    #[test]
    fn unknown_fields_and_other_versions_are_accepted() {
        let body = edited(TWO_ALERTS, |v| {
            v["version"] = json!("5");
            v["truncatedAlerts"] = json!(3);
            v["notification_reason"] = json!("new alerts");
            v["somethingNew"] = json!({"nested": [1, 2, 3]});
            v["alerts"][0]["silencedBy"] = json!(["abc"]);
        });
        assert_eq!(parse(&body).unwrap(), parse(TWO_ALERTS.as_bytes()).unwrap());
    }

    #[test]
    fn null_and_missing_maps_are_empty() {
        let body = br#"{"groupKey": "g", "status": "firing", "commonLabels": null,
            "alerts": [{"labels": null, "startsAt": "", "endsAt": null}]}"#;
        let group = parse(body).unwrap();
        assert!(group.common_labels.is_empty() && group.group_labels.is_empty());
        let alert = &group.alerts[0];
        assert!(alert.labels.is_empty() && alert.annotations.is_empty());
        assert_eq!((alert.starts_at, alert.ends_at), (None, None));
        assert_eq!(alert.fingerprint, "cbf29ce484222325");
    }

    #[test]
    fn computed_fingerprints_are_stable_and_distinct_for_different_labels() {
        // No labels: nothing hashed, so FNV-1a's offset basis.
        assert_eq!(fingerprint(&labels(&[])), "cbf29ce484222325");
        let a = labels(&[("alertname", "HighLatency"), ("job", "api"), ("instance", "10.0.0.1:9100")]);
        let reordered = labels(&[("instance", "10.0.0.1:9100"), ("job", "api"), ("alertname", "HighLatency")]);
        assert_eq!(fingerprint(&a), fingerprint(&reordered));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_eq!(fingerprint(&labels(&[("alertname", "high_memory_load")])), "bfda81bb70e743fa");

        let others = [
            labels(&[("alertname", "HighLatency"), ("job", "api"), ("instance", "10.0.0.2:9100")]),
            labels(&[("alertname", "HighLatency"), ("job", "api")]),
            labels(&[("alertname", "HighLatency"), ("job", "api=instance")]),
            labels(&[("alertname", "HighLatencyjob"), ("api", "")]),
        ];
        let mut all: Vec<String> = others.iter().map(fingerprint).collect();
        all.push(fingerprint(&a));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), others.len() + 1, "{all:?}");
        assert!(all.iter().all(|f| f.len() == 16 && f.chars().all(|c| c.is_ascii_hexdigit())));
    }

    #[test]
    fn a_notification_without_a_group_key_is_refused() {
        for body in [
            edited(TWO_ALERTS, |v| {
                v.as_object_mut().unwrap().remove("groupKey");
            }),
            edited(TWO_ALERTS, |v| v["groupKey"] = json!("")),
            edited(TWO_ALERTS, |v| v["groupKey"] = Value::Null),
        ] {
            assert_eq!(parse(&body), Err(PayloadError::Missing("groupKey")));
        }
        assert_eq!(PayloadError::Missing("groupKey").to_string(), "Alertmanager payload without `groupKey`");
    }

    #[test]
    fn a_notification_without_a_status_is_refused_rather_than_taken_as_resolved() {
        let body = edited(TWO_ALERTS, |v| {
            v.as_object_mut().unwrap().remove("status");
        });
        assert_eq!(parse(&body), Err(PayloadError::Missing("status")));
    }

    #[test]
    fn an_unreadable_time_is_refused_naming_the_alert_and_field() {
        let body = edited(TWO_ALERTS, |v| v["alerts"][1]["startsAt"] = json!("March 7th"));
        let error = parse(&body).unwrap_err();
        assert!(matches!(error, PayloadError::BadTime { index: 1, field: "startsAt", .. }), "{error:?}");
        assert!(error.to_string().starts_with("Alertmanager payload with an unreadable `alerts[1].startsAt`: "));
    }

    #[test]
    fn garbage_and_json_of_the_wrong_shape_are_errors() {
        for body in [&b""[..], b"\x00\xff\xfe", b"<html></html>", b"{\"groupKey\": "] {
            let error = parse(body).unwrap_err();
            assert!(matches!(error, PayloadError::NotJson(_)), "{body:?}: {error:?}");
        }
        for body in [
            &b"\"firing\""[..],
            b"{\"groupKey\": 4}",
            b"{\"groupKey\": \"g\", \"status\": \"firing\", \"alerts\": {}}",
            b"{\"groupKey\": \"g\", \"status\": \"firing\", \"alerts\": [{\"labels\": {\"a\": 1}}]}",
        ] {
            let error = parse(body).unwrap_err();
            assert!(matches!(error, PayloadError::WrongShape(_)), "{}: {error:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn every_truncation_of_a_notification_is_an_error_not_a_panic() {
        for fixture in [TWO_ALERTS, SINGLE_ALERT] {
            let bytes = fixture.trim_end().as_bytes();
            for end in 0..bytes.len() {
                assert!(parse(&bytes[..end]).is_err(), "cut at {end}");
            }
        }
    }
}
