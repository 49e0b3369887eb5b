//! A stop asked for while the service starts (model, store, index) is honoured there:
//! exit 0 at once, never listening. Without a handler installed first, SIGTERM would
//! kill the process (or, as PID 1 in a container, be ignored until SIGKILL).

use std::{path::Path, process::Command, time::Instant};

use concord_crashtest::{Server, messages};

/// The index dump's `CURRENT` as a FIFO nobody writes: opening it blocks, so start-up
/// hangs in the index load after the model, like a rebuild of a very large store. A
/// stop is then the only way out, whenever it lands.
fn stuck_index(data: &Path) {
    let index = data.join("index");
    std::fs::create_dir_all(&index).unwrap();
    let status = Command::new("mkfifo")
        .arg(index.join("CURRENT"))
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo failed: {status}");
}

/// Polls the log until `message` is in it.
fn wait_for(server: &Server, message: &str) {
    let start = Instant::now();
    while !messages(&server.log()).iter().any(|m| m == message) {
        assert!(
            start.elapsed() < super::READY,
            "no {message:?}; log:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// SIGTERM once `after` is logged: exit 0 within the bound, stopped in start-up.
fn sigterm_after(after: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    stuck_index(&data);
    let server = Server::spawn(&super::launch(&data, &[]), &dir.path().join("log")).unwrap();
    wait_for(&server, after);

    let (status, log) = server.terminate(super::EXIT).unwrap();
    assert!(status.success(), "exit {status}; log:\n{log}");
    let said = messages(&log);
    assert!(
        said.iter().any(|m| m == "shutdown requested"),
        "log:\n{log}"
    );
    assert!(
        said.iter().any(|m| m == "stopped during start-up"),
        "log:\n{log}"
    );
    assert!(
        !said
            .iter()
            .any(|m| m == "listening" || m == "pipeline ready"),
        "finished starting; log:\n{log}"
    );
}

#[test]
fn sigterm_while_the_model_loads_exits_0_without_serving() {
    // lands in the model load, or in the stuck index load right after it
    sigterm_after("loading the model");
}

#[test]
fn sigterm_while_the_index_loads_exits_0_without_serving() {
    sigterm_after("model loaded");
}
