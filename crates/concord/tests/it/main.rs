#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `concord` binary as a process: killed at random points while it
//! ingests (the crash harness, short form), stopped with SIGTERM (serving and while
//! it starts), refusing the development key off loopback. Needs the model from
//! `models/install.sh`.

mod bulk;
mod console;
mod crash;
mod distributed;
mod exposure;
mod feeds;
mod fit;
mod postgres;
mod shutdown;
mod startup;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use concord_crashtest::Launch;

/// This crate's binary, as cargo built it for the tests.
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_concord"))
}

/// The service runs from the workspace root, where `config/default.toml`'s model paths resolve.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn launch(data_dir: &Path, env: &[(&str, &str)]) -> Launch {
    Launch {
        binary: binary(),
        workdir: workspace_root(),
        data_dir: data_dir.to_path_buf(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Generous: start-up loads the model, on a loaded machine.
const READY: Duration = Duration::from_secs(120);
/// Longer than `server.shutdown_deadline_secs`: the service must give up first.
const EXIT: Duration = Duration::from_secs(90);

/// Waits (up to two minutes) until the service's clusters hold `n` articles in all.
fn wait_clustered(api: &concord_crashtest::Api, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let clustered: u64 = api.all_clusters().unwrap().iter().map(|c| c.size).sum();
        if clustered == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{clustered} of {n} articles clustered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `concord ARGS` (a CLI command, not the service) from the workspace root with
/// `env` set and RUST_LOG unset, and returns its output.
fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .current_dir(workspace_root())
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}
