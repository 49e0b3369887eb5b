//! The crash harness, short form: a few SIGKILLs while ingesting, index damage,
//! then every invariant checked through the API.

use std::time::Duration;

use concord_crashtest::{Options, run};

#[test]
fn nothing_acknowledged_is_lost_across_sigkills_and_a_damaged_index() {
    let work = tempfile::tempdir().unwrap();
    let mut opts = Options::new(
        super::binary(),
        super::workspace_root(),
        work.path().to_path_buf(),
    );
    opts.kills = 5;
    opts.articles = 150;
    opts.rate = 30.0;
    opts.seed = 6;
    opts.dump_every = 10;
    opts.ready_timeout = super::READY;
    opts.settle_timeout = Duration::from_secs(120);
    opts.shutdown_timeout = super::EXIT;
    let report = run(&opts).unwrap();
    eprint!("{}", report.details());
    eprintln!("{}", report.summary_line());

    assert_eq!(report.kills, 5);
    assert_eq!(
        report.acknowledged, 150,
        "every article eventually acknowledged"
    );
    assert_eq!(report.lost, 0, "acknowledged articles lost");
    assert_eq!(report.duplicates, 0, "articles in more than one cluster");
    assert_eq!(
        report.unresolved_cluster_ids, 0,
        "cluster ids that stopped resolving"
    );
    assert_eq!(report.unclustered, 0);
    assert_eq!(report.not_indexed, 0, "index out of step with the store");
    assert_eq!(report.inconsistent, 0);
    assert_eq!(report.graceful_failures, 0, "{:?}", report.notes);
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    // the last restart always runs on a damaged dump: the rebuild path is covered
    assert!(!report.damaged.is_empty());
    assert!(report.passed());
}
