//! Who may post to the webhook routes: GitHub signs each delivery
//! (`X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body with
//! the webhook's secret); Alertmanager sends a bearer token. Both are
//! compared in constant time, so the time an answer takes says nothing
//! about how close a guess was.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a request was refused; the text names no secret and no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no credentials")]
    Missing,
    #[error("malformed credentials")]
    Malformed,
    #[error("credentials do not match")]
    Mismatch,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The `X-Hub-Signature-256` value GitHub would send; for tests and anyone
/// playing GitHub.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a delivery's `X-Hub-Signature-256` header against its raw body.
pub fn github(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let hex_digest = header.trim().strip_prefix("sha256=").ok_or(Refused::Malformed)?;
    let digest = hex::decode(hex_digest).map_err(|_| Refused::Malformed)?;
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&digest).map_err(|_| Refused::Mismatch)
}

/// Checks an `Authorization: Bearer <token>` header against `expected`.
/// Both tokens are put through the same keyed hash and the digests
/// compared in constant time, so neither the token's bytes nor its length
/// show in the timing.
pub fn bearer(expected: &str, header: Option<&str>) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(Refused::Malformed)?;
    // The scheme is case-insensitive (RFC 9110, 11.1).
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refused::Malformed);
    }
    let token = token.trim();
    const KEY: &[u8] = b"opsbot bearer token";
    let mut presented = mac(KEY);
    presented.update(token.as_bytes());
    let mut wanted = mac(KEY);
    wanted.update(expected.as_bytes());
    presented.verify_slice(&wanted.finalize().into_bytes()).map_err(|_| Refused::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example (fixtures/github/signature_test_vector.json).
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_test_vector_verifies() {
        assert_eq!(github(SECRET, Some(SIGNATURE), PAYLOAD), Ok(()));
        assert_eq!(github_signature(SECRET, PAYLOAD), SIGNATURE);
        assert_eq!(github(SECRET, Some(&SIGNATURE.to_uppercase().replace("SHA256=", "sha256=")), PAYLOAD), Ok(()));
    }

    #[test]
    fn a_wrong_github_signature_is_refused() {
        assert_eq!(github(b"another secret", Some(SIGNATURE), PAYLOAD), Err(Refused::Mismatch));
        assert_eq!(github(SECRET, Some(SIGNATURE), b"Hello, World?"), Err(Refused::Mismatch));
        let flipped = SIGNATURE.replace("7571", "7570");
        assert_eq!(github(SECRET, Some(&flipped), PAYLOAD), Err(Refused::Mismatch));
        assert_eq!(github(SECRET, Some("sha256=abcd"), PAYLOAD), Err(Refused::Mismatch), "too short");
    }

    #[test]
    fn missing_and_malformed_github_signatures_are_refused() {
        assert_eq!(github(SECRET, None, PAYLOAD), Err(Refused::Missing));
        assert_eq!(github(SECRET, Some(""), PAYLOAD), Err(Refused::Malformed));
        // The SHA-1 header GitHub also sends is not accepted in its place.
        let sha1 = "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6";
        assert_eq!(github(SECRET, Some(sha1), PAYLOAD), Err(Refused::Malformed));
        assert_eq!(github(SECRET, Some("sha256=zz"), PAYLOAD), Err(Refused::Malformed));
        assert_eq!(github(SECRET, Some(&SIGNATURE[7..]), PAYLOAD), Err(Refused::Malformed), "no sha256= prefix");
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let token = "s3cr3t-token";
        assert_eq!(bearer(token, Some("Bearer s3cr3t-token")), Ok(()));
        assert_eq!(bearer(token, Some("bearer s3cr3t-token")), Ok(()), "the scheme is case-insensitive");
        assert_eq!(bearer(token, Some("Bearer s3cr3t-tokem")), Err(Refused::Mismatch));
        assert_eq!(bearer(token, Some("Bearer s3cr3t-token2")), Err(Refused::Mismatch));
        assert_eq!(bearer(token, Some("Bearer s3cr3t")), Err(Refused::Mismatch));
        assert_eq!(bearer(token, Some("Bearer S3CR3T-TOKEN")), Err(Refused::Mismatch), "the token is not");
        assert_eq!(bearer(token, None), Err(Refused::Missing));
        assert_eq!(bearer(token, Some("Bearer ")), Err(Refused::Malformed));
        assert_eq!(bearer(token, Some("Bearer  ")), Err(Refused::Malformed));
        assert_eq!(bearer(token, Some("Basic czNjcjN0LXRva2Vu")), Err(Refused::Malformed));
        assert_eq!(bearer(token, Some("s3cr3t-token")), Err(Refused::Malformed));
    }
}
