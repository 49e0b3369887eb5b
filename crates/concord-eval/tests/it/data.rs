//! Paths to the shared evaluation data, which lives outside the repository.

use std::{path::PathBuf, sync::OnceLock};

use concord_eval::Dataset;

pub fn shared_data(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    assert!(
        path.exists(),
        "evaluation data missing: {} (it lives in ../shared next to the repository)",
        path.display()
    );
    path
}

/// OG2021, read once for all tests.
pub fn og2021() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        concord_eval::og2021::read(shared_data("og2021/og2021_titles_clusters.csv"))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}
