//! Integration tests on the real model installed by `models/install.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod headline;
mod model;
mod worker;

use std::path::{Path, PathBuf};

use concord_core::Config;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The embedded defaults with model paths anchored at the workspace root.
pub fn config() -> Config {
    let mut config = Config::embedded_default().expect("default config");
    let root = workspace_root();
    config.model.dir = root.join(&config.model.dir);
    config.model.ort_dylib = root.join(&config.model.ort_dylib);
    config.headline_model.dir = root.join(&config.headline_model.dir);
    config
}

pub fn seeds_dir() -> PathBuf {
    workspace_root().join("../shared/data/seeds")
}
