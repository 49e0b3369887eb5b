//! `POST /v1/articles` as the API reads it: arbitrary bytes through the same JSON parsing
//! and validation. Every outcome is an article or a problem with a status the API
//! documents (400 malformed JSON, 422 with the offending field); never a panic.
#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

/// A fixed clock, so that a crash reproduces whatever the day.
const NOW: Timestamp = Timestamp::constant(1_767_225_600, 0); // 2026-01-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    match concord_server::parse_article(data, NOW) {
        Ok(article) => {
            assert!(article.published_at.as_second() >= -2_208_988_800);
            assert!(article.published_at <= NOW + jiff::SignedDuration::from_hours(24));
            assert!(!article.external_id.is_empty());
            assert_eq!(article.external_id.trim(), article.external_id);
            assert!(article.external_id.chars().count() <= 256);
        }
        Err(problem) => {
            let p = problem.body();
            match p.status {
                400 => assert_eq!(p.code, "malformed_json", "{p:?}"),
                422 => assert!(
                    p.field.as_deref().is_some_and(|f| !f.is_empty()),
                    "a 422 without a field: {p:?}"
                ),
                other => panic!("unexpected status {other}: {p:?}"),
            }
        }
    }
});
