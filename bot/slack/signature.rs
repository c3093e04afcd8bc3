//! Slack request signing (v0): HMAC-SHA256 of `v0:<timestamp>:<body>` with
//! the app's signing secret, compared in constant time, and a timestamp no
//! more than five minutes away so a captured request cannot be replayed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Slack's replay window.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    #[error("malformed signature or timestamp")]
    Malformed,
    #[error("timestamp outside the five-minute window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send; for the sandbox, tests
/// and benchmarks that play Slack.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, &timestamp.to_string(), body).finalize().into_bytes();
    format!("v0={}", hex::encode(digest))
}

/// Checks a request's signature headers against its raw body at `now_unix`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent_at: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Malformed)?;
    // A difference, not a subtraction: a forged timestamp near i64's ends
    // must be stale, not an overflow.
    if now_unix.abs_diff(sent_at) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let hex_digest = signature.strip_prefix("v0=").ok_or(SignatureError::Malformed)?;
    let digest = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    mac(secret, timestamp.trim(), body).verify_slice(&digest).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's documented example (fixtures/slack/commands/slash_command.signing_vector.json).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &[u8] = include_bytes!("../../tests/fixtures/slack/slash_command.form.txt");
    const NOW: i64 = 1531420618;

    #[test]
    fn slacks_documented_test_vector_verifies() {
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW), Ok(()));
        assert_eq!(sign(SECRET, NOW, BODY), SIGNATURE);
    }

    #[test]
    fn a_wrong_signature_is_refused() {
        let wrong = SIGNATURE.replace("a2114", "a2115");
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(&wrong), BODY, NOW), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(b"another-secret", Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = BODY.to_vec();
        tampered[0] ^= 1;
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), &tampered, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_stale_not_an_overflow() {
        for forged in ["-9223372036854775808", "9223372036854775807"] {
            assert_eq!(
                verify(SECRET, Some(forged), Some(SIGNATURE), BODY, NOW),
                Err(SignatureError::Stale),
                "{forged}"
            );
        }
        assert_eq!(verify(SECRET, Some("0"), Some(SIGNATURE), BODY, i64::MIN), Err(SignatureError::Stale));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW + 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW - 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW + 300), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        assert_eq!(verify(SECRET, None, Some(SIGNATURE), BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), None, BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some("soon"), Some(SIGNATURE), BODY, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some("v1=abc"), BODY, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some("v0=zz"), BODY, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some("v0=abcd"), BODY, NOW), Err(SignatureError::Mismatch));
    }
}
