//! Standard Webhooks verification on arbitrary secrets, headers and bodies: never a
//! panic, and a message signed with `sign` always verifies (with its own secret only).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use concord_webhooks::{Secret, VerifyError, sign, verify, verify_headers};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret_text: &'a str,
    key: [u8; 32],
    other_key: [u8; 24],
    id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signature: Option<&'a str>,
    raw_headers: [Option<&'a [u8]>; 3],
    body: &'a [u8],
    now: i64,
    tolerance: u64,
}

fuzz_target!(|input: Input<'_>| {
    let _ = Secret::parse(input.secret_text);
    let (Ok(secret), Ok(other)) = (
        Secret::from_bytes(input.key.to_vec()),
        Secret::from_bytes(input.other_key.to_vec()),
    ) else {
        panic!("secrets of 32 and 24 bytes are valid");
    };
    let now = Timestamp::from_second(
        input
            .now
            .clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second()),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH);
    let tolerance = Duration::from_secs(input.tolerance);
    let secrets = [secret.clone()];

    // Arbitrary headers, as strings and as raw header bytes.
    let _ = verify(
        &secrets,
        input.id,
        input.timestamp,
        input.signature,
        input.body,
        now,
        tolerance,
    );
    let mut headers = http::HeaderMap::new();
    for (name, raw) in ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .zip(input.raw_headers)
    {
        if let Some(value) = raw.and_then(|r| http::HeaderValue::from_bytes(r).ok()) {
            headers.insert(name, value);
        }
    }
    let _ = verify_headers(&secrets, &headers, input.body, now, tolerance);

    // Sign, then verify: accepted with the signing secret, refused with another.
    let id = input.id.unwrap_or("msg_1");
    let sig = sign(&secret, id, now, input.body);
    let ts = now.as_second().to_string();
    let check = |secrets: &[Secret], sig: &str| {
        verify(
            secrets,
            Some(id),
            Some(&ts),
            Some(sig),
            input.body,
            now,
            tolerance,
        )
    };
    if id.is_empty() || id.contains('.') {
        assert_eq!(
            check(&secrets, &sig),
            Err(VerifyError::MalformedHeader("webhook-id"))
        );
        return;
    }
    assert_eq!(check(&secrets, &sig), Ok(()));
    assert_eq!(
        check(
            &[other.clone(), secret.clone()],
            &format!("v2,x v1,AAAA {sig}")
        ),
        Ok(())
    );
    if input.key[..24] != input.other_key || input.key[24..] != [0; 8] {
        assert_eq!(check(&[other], &sig), Err(VerifyError::SignatureMismatch));
    }
    // The same through a header map, when the id is a valid header value.
    if let Ok(id_value) = http::HeaderValue::from_str(id) {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id_value);
        if let (Ok(t), Ok(s)) = (
            http::HeaderValue::from_str(&ts),
            http::HeaderValue::from_str(&sig),
        ) {
            headers.insert("webhook-timestamp", t);
            headers.insert("webhook-signature", s);
            let got = verify_headers(&secrets, &headers, input.body, now, tolerance);
            // Header values must be visible ASCII to be read as text.
            if id.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
                assert_eq!(got, Ok(()));
            } else {
                assert_eq!(got, Err(VerifyError::MalformedHeader("webhook-id")));
            }
        }
    }
});
