//! Herald's own status webhooks to tenant systems, signed the Standard Webhooks way: headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `id.timestamp.body`, with a `whsec_`-prefixed base64 secret. Receivers verify with any
//! Standard Webhooks library; `verify` here is the same check, used by Herald's own tests.
//! Deliveries are retried on a fixed schedule with jitter that honours `Retry-After`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
/// Signatures older or newer than this are refused (replays).
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// Waits before each retry; after the last one the delivery has failed for good.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret is not a whsec_ base64 secret")]
    BadSecret,
    #[error("the timestamp is missing, malformed or outside the tolerance")]
    Timestamp,
    #[error("no signature matches")]
    Mismatch,
}

/// A new endpoint secret: 24 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill(&mut bytes);
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

fn key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    B64.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| SignatureError::BadSecret)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value for a delivery.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let mac = mac(&key(secret)?, id, timestamp, body)?;
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Checks a delivery as a receiver would: timestamp within [`TOLERANCE`] of `now`, and one of
/// the space-separated `v1` signatures matching (compared in constant time).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Timestamp)?;
    if now.abs_diff(ts) > TOLERANCE.as_secs() {
        return Err(SignatureError::Timestamp);
    }
    let key = key(secret)?;
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = B64.decode(encoded) else {
            continue;
        };
        if mac(&key, id, ts, body)?.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// How long to wait before retry number `attempt` (1-based) of a failed delivery: the schedule
/// with ±20% jitter, never less than the receiver's `Retry-After`. `None` once the schedule is
/// spent.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    retry_delay_in(&SCHEDULE, attempt, retry_after)
}

/// [`retry_delay`] on another schedule (the worker's `STATUS_WEBHOOK_RETRY_SCHEDULE`).
pub fn retry_delay_in(
    schedule: &[Duration],
    attempt: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(attempt.checked_sub(1)?).ok()?)?;
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Some(base.mul_f64(jitter).max(retry_after.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn matches_the_specifications_vector() {
        assert_eq!(
            sign(SECRET, ID, TS, BODY).as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn verification_refuses_altered_stale_and_foreign_deliveries() {
        let sig = sign(SECRET, ID, TS, BODY).expect("signs");
        assert_eq!(
            verify(SECRET, ID, &TS.to_string(), &sig, BODY, TS + 10),
            Ok(())
        );
        assert_eq!(
            verify(
                SECRET,
                ID,
                &TS.to_string(),
                &format!("v1,bm9wZQ== {sig}"),
                BODY,
                TS
            ),
            Ok(()),
            "rotated secrets: any match"
        );
        assert_eq!(
            verify(
                SECRET,
                ID,
                &TS.to_string(),
                &sig,
                br#"{"test": 2432232315}"#,
                TS
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, "msg_other", &TS.to_string(), &sig, BODY, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, ID, &TS.to_string(), &sig, BODY, TS + 301),
            Err(SignatureError::Timestamp)
        );
        assert_eq!(
            verify(&new_secret(), ID, &TS.to_string(), &sig, BODY, TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn retries_follow_the_schedule_and_honour_retry_after() {
        let first = retry_delay(1, None).expect("a first retry");
        assert!((4..=6).contains(&first.as_secs()), "{first:?}");
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(120))).map(|d| d.as_secs() >= 120),
            Some(true)
        );
        assert!(retry_delay(7, None).is_some());
        assert_eq!(retry_delay(8, None), None, "the schedule is spent");
        assert_eq!(retry_delay(0, None), None);
    }
}
