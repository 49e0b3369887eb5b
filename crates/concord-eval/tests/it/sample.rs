//! Seeded samples against Python's `random` (counts from CPython 3.11).

use concord_eval::{Dataset, EvalError, og2021, sample::Sample};

fn kept(fraction: f64, seed: u64, n: usize) -> Vec<usize> {
    Sample { fraction, seed }.apply((0..n).collect())
}

/// `r = random.Random(seed); [i for i in range(n) if r.random() < fraction]`.
#[test]
fn kept_rows_match_python() {
    let one = kept(0.1, 1, 10_000);
    assert_eq!(one.len(), 1041);
    assert_eq!(one[..12], [8, 9, 13, 19, 20, 26, 35, 56, 71, 72, 91, 100]);
    assert_eq!(kept(0.1, 2, 10_000).len(), 1009);
    assert_eq!(kept(0.1, 3, 10_000).len(), 979);
    assert_eq!(kept(0.25, 2, 10_000).len(), 2493);
    assert_eq!(kept(1.0, 7, 50).len(), 50);
    assert!(kept(0.0, 7, 50).is_empty());
}

const HEADER: &str = "id,uri,lang,published_at,cluster_id,orig_cluster_id,er_event_uri,title\n";

/// 30 rows, the later in the file the earlier in time: file order is not replay order.
fn csv(bad_row: Option<usize>) -> String {
    let mut text = HEADER.to_owned();
    for i in 0..30 {
        let lang = if Some(i) == bad_row { "xx" } else { "eng" };
        text.push_str(&format!(
            "{i},u{i},{lang},2021-07-{:02} 12:00:00,g{},x,,Title {i}\n",
            30 - i,
            i % 4
        ));
    }
    text
}

fn sampled(text: &str, sample: &Sample) -> Result<Dataset, EvalError> {
    og2021::from_reader_sampled(text.as_bytes(), "t.csv".as_ref(), Some(sample))
}

#[test]
fn og2021_sample_is_drawn_in_file_order() {
    let sample = Sample {
        fraction: 0.5,
        seed: 12345,
    };
    let data = sampled(&csv(None), &sample).unwrap();
    // Python: r = random.Random(12345); [i for i in range(30) if r.random() < 0.5]
    let mut want = vec![
        0, 1, 3, 4, 5, 7, 8, 9, 11, 13, 15, 17, 19, 21, 22, 23, 24, 28,
    ];
    // Replay order is by time, the reverse of the file here.
    want.reverse();
    let keys: Vec<String> = data.items.iter().map(|i| i.key.clone()).collect();
    let want: Vec<String> = want.iter().map(|i| format!("u{i}")).collect();
    assert_eq!(keys, want);
    let all = og2021::from_reader(csv(None).as_bytes(), "t.csv".as_ref()).unwrap();
    assert_eq!(all.len(), 30);
}

#[test]
fn og2021_sample_still_checks_every_row() {
    let sample = Sample {
        fraction: 0.5,
        seed: 12345,
    };
    // Row 2 (file line 4) is not in the sample, and is still an error.
    match sampled(&csv(Some(2)), &sample) {
        Err(EvalError::Malformed { line, .. }) => assert_eq!(line, 4),
        other => panic!("expected a malformed row, got {other:?}"),
    }
}
