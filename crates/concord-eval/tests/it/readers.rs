//! Reader behaviour on small, hand-written inputs, malformed ones included.

use std::{fs, path::PathBuf};

use concord_core::Lang;
use concord_eval::{Dataset, EvalError, og2021, seeds};
use jiff::civil::date;

const HEADER: &str = "id,uri,lang,published_at,cluster_id,orig_cluster_id,er_event_uri,title\n";

fn parse(body: &str) -> Result<Dataset, EvalError> {
    let text = format!("{HEADER}{body}");
    og2021::from_reader(text.as_bytes(), "test.csv".as_ref())
}

/// Asserts a malformed-input error on `line` whose reason mentions `needle`
/// (shared by the readers' tests).
#[track_caller]
pub(crate) fn assert_malformed<T: std::fmt::Debug>(
    result: Result<T, EvalError>,
    line: u64,
    needle: &str,
) {
    match result {
        Err(EvalError::Malformed {
            line: got, reason, ..
        }) => {
            assert_eq!(got, line, "{reason}");
            assert!(
                reason.contains(needle),
                "{reason:?} does not mention {needle:?}"
            );
        }
        other => panic!("expected a malformed-input error on line {line}, got {other:?}"),
    }
}

#[test]
fn og2021_rows_are_read_and_sorted_stably() {
    let data = parse(
        "0,u1,eng,2021-07-02 10:00:00,wn-1,x,eng-1,Later\n\
         1,u2,slv,2021-07-01 09:30:00,wn-2,x,,\"Earlier, quoted\"\n\
         2,u3,fra,2021-07-02 10:00:00,wn-1,x,fra-9,Tie keeps file order\n",
    )
    .unwrap();
    let keys: Vec<&str> = data.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["u2", "u1", "u3"]);
    let earlier = &data.items[0];
    assert_eq!(earlier.lang, Lang::SL);
    assert_eq!(earlier.title, "Earlier, quoted");
    assert_eq!(earlier.reference, None);
    assert_eq!(earlier.published_at.to_string(), "2021-07-01T09:30:00Z");
    assert_eq!(data.items[1].reference.as_deref(), Some("eng-1"));
    assert_eq!(data.gold_clusters(), 2);
}

#[test]
fn og2021_errors_name_the_line() {
    assert_malformed(
        parse("0,u1,eng,2021-07-01 10:00:00,wn-1,x,,ok\n1,u2,xx,2021-07-01 10:00:00,wn-1,x,,t\n"),
        3,
        "lang",
    );
    assert_malformed(
        parse("0,u1,eng,2021-07-01T10:00:00,wn-1,x,,t\n"),
        2,
        "published_at",
    );
    assert_malformed(parse("0,u1,eng,2021-07-01,wn-1,x,,t\n"), 2, "published_at");
    assert_malformed(
        parse("0,u1,eng,2021-07-01 10:00:00,,x,,t\n"),
        2,
        "cluster_id",
    );
    assert_malformed(parse("0,u1,eng,2021-07-01 10:00:00,wn-1,x,,\n"), 2, "title");
    assert_malformed(parse("0,u1,eng,2021-07-01 10:00:00,wn-1\n"), 2, "fields");
    assert_malformed(
        parse("0,u1,eng,2021-07-01 10:00:00,wn-1,x,,a\n1,u1,eng,2021-07-01 10:00:00,wn-1,x,,b\n"),
        3,
        "first on line 2",
    );
    let no_title = og2021::from_reader(
        "uri,lang,published_at,cluster_id,er_event_uri\n".as_bytes(),
        "t.csv".as_ref(),
    );
    assert_malformed(no_title, 1, "`title`");
    assert!(matches!(
        og2021::read("/nonexistent/og2021.csv"),
        Err(EvalError::Io { .. })
    ));
}

/// The items' keys, in replay order.
fn keys(d: &Dataset) -> Vec<String> {
    d.items.iter().map(|i| i.key.clone()).collect()
}

#[test]
fn date_filters_are_inclusive_from_exclusive_until() {
    let data = parse(
        "0,a,eng,2021-07-01 00:00:00,g,x,,t\n\
         1,b,eng,2021-07-01 23:59:59,g,x,,t\n\
         2,c,eng,2021-07-02 00:00:00,g,x,,t\n\
         3,d,eng,2021-07-04 12:00:00,g,x,,t\n",
    )
    .unwrap();
    assert_eq!(
        keys(&data.filter_dates(None, Some(date(2021, 7, 2)))),
        ["a", "b"]
    );
    assert_eq!(
        keys(&data.filter_dates(Some(date(2021, 7, 2)), None)),
        ["c", "d"]
    );
    assert_eq!(
        keys(&data.filter_dates(Some(date(2021, 7, 1)), Some(date(2021, 7, 1)))),
        Vec::<String>::new()
    );
    assert_eq!(keys(&data.filter_dates(None, None)).len(), 4);
    // 2021-07-01 .. 2021-07-04 spans 3 days: the midpoint rounds down to 2021-07-02.
    assert_eq!(data.split_date(), Some(date(2021, 7, 2)));
    assert_eq!(Dataset::default().split_date(), None);
}

#[test]
fn compressed_time_keeps_order_and_events_and_divides_gaps() {
    let data = parse(
        "0,a,eng,2021-07-01 00:00:00,g,x,,t\n\
         1,b,fra,2021-07-01 12:00:00,g,x,,t\n\
         2,c,eng,2021-07-03 00:00:00,h,x,,t\n",
    )
    .unwrap();
    let fast = data.compress_time(2.0);
    assert_eq!(keys(&fast), ["a", "b", "c"]);
    let gold = |d: &Dataset| d.items.iter().map(|i| i.gold.clone()).collect::<Vec<_>>();
    assert_eq!(gold(&fast), gold(&data));
    let secs = |d: &Dataset| {
        d.items
            .iter()
            .map(|i| i.published_at.as_second())
            .collect::<Vec<_>>()
    };
    let t0 = secs(&data)[0];
    assert_eq!(secs(&fast), [t0, t0 + 6 * 3600, t0 + 24 * 3600]);
    // A factor of 1 or less, or not a number, changes nothing.
    for factor in [1.0, 0.5, f64::NAN] {
        assert_eq!(data.compress_time(factor), data);
    }
    assert_eq!(Dataset::default().compress_time(3.0), Dataset::default());
}

#[test]
fn delayed_arrivals_reorder_by_arrival_and_keep_publication_times() {
    let data = parse(
        "0,a,eng,2021-07-01 00:00:00,g,x,,t\n\
         1,b,fra,2021-07-01 00:30:00,g,x,,t\n\
         2,c,eng,2021-07-01 01:00:00,h,x,,t\n\
         3,d,eng,2021-07-03 00:00:00,h,x,,t\n",
    )
    .unwrap();
    // random.Random(1).random() draws 0.134, 0.847, 0.764, 0.255: with delays up to
    // 2 h, a arrives at 00:16, b at 02:12, c at 02:32, d two days later. Up to 4 h,
    // a 00:32, b 03:53, c 04:03: unchanged. Seed 2 (0.956, 0.948, 0.057, ...) up to
    // 2 h: a 01:54, b 02:24, c 01:06, so c comes first.
    assert_eq!(keys(&data.delay_arrivals(2.0, 1)), ["a", "b", "c", "d"]);
    assert_eq!(keys(&data.delay_arrivals(4.0, 1)), ["a", "b", "c", "d"]);
    assert_eq!(keys(&data.delay_arrivals(2.0, 2)), ["c", "a", "b", "d"]);
    let late = data.delay_arrivals(2.0, 2);
    let by_key = |d: &Dataset, k: &str| d.items.iter().find(|i| i.key == k).cloned();
    for item in &data.items {
        // The same item, publication time and label untouched: only the order moves.
        assert_eq!(by_key(&late, &item.key).as_ref(), Some(item));
    }
    // The same seed draws the same order; no delay, or a meaningless one, changes nothing.
    assert_eq!(data.delay_arrivals(2.0, 2), late);
    for hours in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(data.delay_arrivals(hours, 1), data);
    }
    assert_eq!(
        Dataset::default().delay_arrivals(3.0, 1),
        Dataset::default()
    );
}

/// A fresh seeds directory under cargo's per-test temporary directory.
fn seeds_dir(name: &str, labels: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("seeds")
        .join(name);
    let write = || -> std::io::Result<()> {
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("labels.jsonl"), labels)?;
        for (file, text) in files {
            fs::write(dir.join(file), text)?;
        }
        Ok(())
    };
    write().unwrap_or_else(|e| panic!("cannot set up {}: {e}", dir.display()));
    dir
}

const LABEL_A: &str =
    r#"{"file":"000_a.txt","lang":"en","outlet":"x","published":"2020-09-08","event":"e1"}"#;
const LABEL_B: &str =
    r#"{"file":"001_b.txt","lang":"fr","outlet":"x","published":"2020-09-07","event":"e2"}"#;

#[test]
fn seeds_title_is_the_first_non_empty_line() {
    let labels = format!("{LABEL_A}\n\n{LABEL_B}\n");
    let dir = seeds_dir(
        "ok",
        &labels,
        &[
            ("000_a.txt", "\n\n  Title A  \n\nBody line 1\nBody line 2\n"),
            ("001_b.txt", "Titre B"),
        ],
    );
    let data = seeds::read(&dir).unwrap();
    let a = &data.items[1];
    assert_eq!(
        (a.title.as_str(), a.body.as_str()),
        ("Title A", "Body line 1\nBody line 2")
    );
    let b = &data.items[0];
    assert_eq!(
        (b.key.as_str(), b.title.as_str(), b.body.as_str()),
        ("001_b.txt", "Titre B", "")
    );
    assert_eq!(b.published_at.to_string(), "2020-09-07T00:00:00Z");
}

#[test]
fn seeds_errors_are_clear() {
    let dir = seeds_dir(
        "bad-json",
        &format!("{LABEL_A}\n{{\"file\":\n"),
        &[("000_a.txt", "T\nB")],
    );
    assert_malformed(seeds::read(&dir), 2, "EOF");

    let bad_date = LABEL_A.replace("2020-09-08", "8 Sep 2020");
    let dir = seeds_dir("bad-date", &bad_date, &[("000_a.txt", "T\nB")]);
    assert_malformed(seeds::read(&dir), 1, "published");

    let dir = seeds_dir(
        "twice",
        &format!("{LABEL_A}\n{LABEL_A}\n"),
        &[("000_a.txt", "T\nB")],
    );
    assert_malformed(seeds::read(&dir), 2, "labelled twice");

    let escape = LABEL_A.replace("000_a.txt", "../000_a.txt");
    let dir = seeds_dir("escape", &escape, &[("000_a.txt", "T\nB")]);
    assert_malformed(seeds::read(&dir), 1, "file");

    let dir = seeds_dir("missing-file", LABEL_A, &[]);
    assert!(matches!(seeds::read(&dir), Err(EvalError::Io { .. })));

    let dir = seeds_dir(
        "unlabelled",
        LABEL_A,
        &[("000_a.txt", "T\nB"), ("001_b.txt", "T\nB")],
    );
    let err = seeds::read(&dir).unwrap_err();
    assert!(
        matches!(err, EvalError::Invalid { .. }) && err.to_string().contains("001_b.txt"),
        "{err}"
    );

    let dir = seeds_dir("blank", LABEL_A, &[("000_a.txt", " \n\n")]);
    let err = seeds::read(&dir).unwrap_err();
    assert!(err.to_string().contains("no title"), "{err}");

    assert!(matches!(
        seeds::read("/nonexistent/seeds"),
        Err(EvalError::Io { .. })
    ));
}
