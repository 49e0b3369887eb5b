//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), symmetric scheme:
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`,
//! keyed by the bytes of a `whsec_<base64>` secret.

use std::{fmt, str::FromStr, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use reqwest::header::HeaderMap;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the message id (the same on every retry).
pub const WEBHOOK_ID: &str = "webhook-id";
/// The header carrying the attempt's time, in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying space-separated `<version>,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1";

/// A symmetric signing secret. `Display` gives the `whsec_<base64>` form to hand to a
/// subscriber (or store); `Debug` never shows it.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    /// HMAC keyed with `key`, cloned for each message.
    keyed: HmacSha256,
}

/// Why a secret was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret must start with `whsec_`")]
    MissingPrefix,
    #[error("a webhook secret must be `whsec_` followed by standard base64")]
    NotBase64,
    #[error("a webhook secret must hold {min} to {max} bytes, not {len}")]
    Length { len: usize, min: usize, max: usize },
    #[error("cannot draw random bytes: {0}")]
    Random(String),
}

impl Secret {
    /// The spec's bounds: at least 192 bits, at most 512.
    pub const MIN_BYTES: usize = 24;
    pub const MAX_BYTES: usize = 64;
    /// What [`Secret::generate`] draws.
    pub const GENERATED_BYTES: usize = 32;

    /// Parses `whsec_<base64>`.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        Self::from_bytes(key)
    }

    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SecretError> {
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::Length {
                len: key.len(),
                min: Self::MIN_BYTES,
                max: Self::MAX_BYTES,
            });
        }
        let keyed = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Length {
            len: key.len(),
            min: Self::MIN_BYTES,
            max: Self::MAX_BYTES,
        })?;
        Ok(Self { key, keyed })
    }

    /// A new secret of [`Secret::GENERATED_BYTES`] from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; Self::GENERATED_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Self::from_bytes(key)
    }

    fn mac(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(&self.key))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The `webhook-signature` value for one message: `v1,<base64>`.
/// `timestamp` is sent (and signed) as whole Unix seconds.
pub fn sign(secret: &Secret, msg_id: &str, timestamp: Timestamp, body: &[u8]) -> String {
    let ts = timestamp.as_second().to_string();
    let tag = secret.mac(msg_id, &ts, body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

/// Why an inbound webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("webhook timestamp is older than the tolerance")]
    TimestampTooOld,
    #[error("webhook timestamp is further in the future than the tolerance")]
    TimestampTooNew,
    #[error("no webhook signature matches")]
    SignatureMismatch,
    #[error("no webhook secret is configured")]
    NoSecrets,
}

/// Checks an inbound webhook: the headers are present and well-formed, the timestamp is
/// within `tolerance` of `now` (either way), and one `v1` signature in the header matches
/// one of `secrets` over the raw `body` bytes. Signatures of other versions are skipped;
/// comparisons are constant-time.
pub fn verify(
    secrets: &[Secret],
    webhook_id: Option<&str>,
    webhook_timestamp: Option<&str>,
    webhook_signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = webhook_id.ok_or(VerifyError::MissingHeader(WEBHOOK_ID))?;
    // A `.` in the id would make the signed content ambiguous (the spec forbids it).
    if id.is_empty() || id.contains('.') {
        return Err(VerifyError::MalformedHeader(WEBHOOK_ID));
    }
    let ts_raw = webhook_timestamp.ok_or(VerifyError::MissingHeader(WEBHOOK_TIMESTAMP))?;
    let ts: i64 = ts_raw
        .parse()
        .map_err(|_| VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP))?;
    let header = webhook_signature.ok_or(VerifyError::MissingHeader(WEBHOOK_SIGNATURE))?;
    let mut signatures = Vec::new();
    for entry in header.split(' ').filter(|e| !e.is_empty()) {
        let (version, sig) = entry
            .split_once(',')
            .ok_or(VerifyError::MalformedHeader(WEBHOOK_SIGNATURE))?;
        if version == VERSION {
            // An undecodable v1 signature matches nothing; it does not hide the others.
            if let Ok(sig) = STANDARD.decode(sig) {
                signatures.push(sig);
            }
        }
    }
    if signatures.is_empty() && !header.split(' ').any(|e| !e.is_empty()) {
        return Err(VerifyError::MalformedHeader(WEBHOOK_SIGNATURE));
    }

    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let now = now.as_second();
    if ts < now.saturating_sub(tolerance) {
        return Err(VerifyError::TimestampTooOld);
    }
    if ts > now.saturating_add(tolerance) {
        return Err(VerifyError::TimestampTooNew);
    }

    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    for secret in secrets {
        let mac = secret.mac(id, ts_raw, body);
        for sig in &signatures {
            if mac.clone().verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::SignatureMismatch)
}

/// [`verify`] with the three headers taken from a request's header map (a header that
/// is not visible ASCII is malformed).
pub fn verify_headers(
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let get = |name: &'static str| -> Result<Option<&str>, VerifyError> {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| VerifyError::MalformedHeader(name)))
            .transpose()
    };
    verify(
        secrets,
        get(WEBHOOK_ID)?,
        get(WEBHOOK_TIMESTAMP)?,
        get(WEBHOOK_SIGNATURE)?,
        body,
        now,
        tolerance,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOLERANCE: Duration = Duration::from_secs(300);
    // The reference implementation's published test vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn check(
        secrets: &[Secret],
        id: &str,
        ts: &str,
        sig: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), VerifyError> {
        verify(secrets, Some(id), Some(ts), Some(sig), body, now, TOLERANCE)
    }

    #[test]
    fn signs_the_reference_test_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(
            sign(&secret, MSG_ID, at(1_649_367_553), BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_parse_display_and_never_debug() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(secret.to_string(), SECRET);
        assert!(!format!("{secret:?}").contains("C2FV"));
        assert_eq!(
            Secret::parse("C2FVsBQI").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            Secret::parse("whsec_!!").unwrap_err(),
            SecretError::NotBase64
        );
        assert!(matches!(
            Secret::parse("whsec_c2hvcnQ="),
            Err(SecretError::Length { len: 5, .. })
        ));
        let generated = Secret::generate().unwrap();
        let again: Secret = generated.to_string().parse().unwrap();
        assert_eq!(again.to_string(), generated.to_string());
        assert_ne!(
            generated.to_string(),
            Secret::generate().unwrap().to_string()
        );
    }

    #[test]
    fn several_signatures_and_secrets_allow_rotation() {
        let old = Secret::parse(SECRET).unwrap();
        let new = Secret::generate().unwrap();
        let now = at(1_700_000_000);
        let sig = sign(&new, MSG_ID, now, BODY);
        let header = format!("v1a,c29tZXRoaW5nIGVsc2U= v1,AAAA {sig}");
        assert_eq!(
            check(
                &[old.clone(), new],
                MSG_ID,
                "1700000000",
                &header,
                BODY,
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(&[old], MSG_ID, "1700000000", &header, BODY, now),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn headers_and_timestamps_fail_with_their_own_errors() {
        let secret = [Secret::parse(SECRET).unwrap()];
        let now = at(1_700_000_000);
        let sig = sign(&secret[0], MSG_ID, now, BODY);
        let ts = "1700000000";
        let v = |id, ts, sig| verify(&secret, id, ts, sig, BODY, now, TOLERANCE);
        assert_eq!(v(Some(MSG_ID), Some(ts), Some(&sig)), Ok(()));
        assert_eq!(
            v(None, Some(ts), Some(&sig)),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            v(Some(MSG_ID), None, Some(&sig)),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            v(Some(MSG_ID), Some(ts), None),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        assert_eq!(
            v(Some(MSG_ID), Some("soon"), Some(&sig)),
            Err(VerifyError::MalformedHeader("webhook-timestamp"))
        );
        assert_eq!(
            v(Some("msg.1"), Some(ts), Some(&sig)),
            Err(VerifyError::MalformedHeader("webhook-id"))
        );
        assert_eq!(
            v(Some(MSG_ID), Some(ts), Some("nocomma")),
            Err(VerifyError::MalformedHeader("webhook-signature"))
        );
        assert_eq!(
            v(Some(MSG_ID), Some(ts), Some("")),
            Err(VerifyError::MalformedHeader("webhook-signature"))
        );
        assert_eq!(
            v(Some(MSG_ID), Some(ts), Some("v2,AAAA")),
            Err(VerifyError::SignatureMismatch)
        );

        let old = at(1_700_000_000 - 301);
        let sig_old = sign(&secret[0], MSG_ID, old, BODY);
        assert_eq!(
            check(&secret, MSG_ID, "1699999699", &sig_old, BODY, now),
            Err(VerifyError::TimestampTooOld)
        );
        let new = at(1_700_000_000 + 301);
        let sig_new = sign(&secret[0], MSG_ID, new, BODY);
        assert_eq!(
            check(&secret, MSG_ID, "1700000301", &sig_new, BODY, now),
            Err(VerifyError::TimestampTooNew)
        );
        let edge = at(1_700_000_000 - 300);
        let sig_edge = sign(&secret[0], MSG_ID, edge, BODY);
        assert_eq!(
            check(&secret, MSG_ID, "1699999700", &sig_edge, BODY, now),
            Ok(())
        );
        assert_eq!(
            check(&[], MSG_ID, ts, &sig, BODY, now),
            Err(VerifyError::NoSecrets)
        );
    }

    #[test]
    fn header_maps_are_read_by_name() {
        let secret = [Secret::parse(SECRET).unwrap()];
        let now = at(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(WEBHOOK_ID, MSG_ID.parse().unwrap());
        headers.insert(WEBHOOK_TIMESTAMP, "1700000000".parse().unwrap());
        headers.insert(
            WEBHOOK_SIGNATURE,
            sign(&secret[0], MSG_ID, now, BODY).parse().unwrap(),
        );
        assert_eq!(
            verify_headers(&secret, &headers, BODY, now, TOLERANCE),
            Ok(())
        );
        headers.remove(WEBHOOK_TIMESTAMP);
        assert_eq!(
            verify_headers(&secret, &headers, BODY, now, TOLERANCE),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
    }

    fn flip(bytes: &[u8], index: usize, xor: u8) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let i = index % out.len();
        out[i] ^= xor;
        out
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            id in "msg_[A-Za-z0-9_]{1,30}",
            secs in 0i64..4_000_000_000,
        ) {
            let secret = Secret::generate().unwrap();
            let now = at(secs);
            let sig = sign(&secret, &id, now, &body);
            prop_assert_eq!(
                check(&[secret], &id, &secs.to_string(), &sig, &body, now),
                Ok(())
            );
        }

        #[test]
        fn any_single_byte_change_fails(
            body in proptest::collection::vec(any::<u8>(), 1..256),
            id in "msg_[A-Za-z0-9_]{1,30}",
            secs in 1_000_000_000i64..4_000_000_000,
            index in any::<usize>(),
            xor in 1u8..=255,
        ) {
            let secret = [Secret::generate().unwrap()];
            let now = at(secs);
            let ts = secs.to_string();
            let sig = sign(&secret[0], &id, now, &body);

            let body2 = flip(&body, index, xor);
            prop_assert_eq!(
                check(&secret, &id, &ts, &sig, &body2, now),
                Err(VerifyError::SignatureMismatch)
            );
            // Changed ids and timestamps are checked where they are still well-formed
            // (otherwise they fail earlier, as malformed, which is a failure too).
            let id2 = flip(id.as_bytes(), index, xor);
            let r = match std::str::from_utf8(&id2) {
                Ok(id2) => check(&secret, id2, &ts, &sig, &body, now),
                Err(_) => Err(VerifyError::MalformedHeader(WEBHOOK_ID)),
            };
            prop_assert!(r.is_err());
            let ts2 = flip(ts.as_bytes(), index, xor);
            let r = match std::str::from_utf8(&ts2) {
                Ok(ts2) => check(&secret, &id, ts2, &sig, &body, now),
                Err(_) => Err(VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP)),
            };
            prop_assert!(r.is_err());
        }
    }
}
