//! A real `nats-server` with JetStream for tests (the article log's, the distributed
//! roles' process tests): started on a free loopback port with its store in a temporary
//! directory, stopped (gracefully or killed) and started again on the same port and store,
//! and stopped when dropped or when the test process exits.
//!
//! Without the `nats-server` binary the test fails, saying how to install it; it never
//! skips. The binary: `CONCORD_NATS_SERVER`, else `nats-server` on PATH, else Debian's
//! `/usr/sbin/nats-server`.
//!
//! Must not: be used outside tests (it panics on failure, as a test helper should).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    io::Write,
    net::TcpListener,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

const INSTALL: &str = "nats-server not found: the article log's tests need a real server \
     (Debian/Ubuntu: apt-get install nats-server; scripts/test.sh installs it), or set \
     CONCORD_NATS_SERVER to its path";

/// The supervisor between the test and the server: when its stdin gives a signal name (or
/// closes, because the test process is gone however it ended), it signals the server and
/// waits for it.
const SUPERVISOR: &str = r#"
"$@" >"$LOG" 2>&1 &
server=$!
sig=TERM
read -r sig || sig=TERM
kill -"${sig:-TERM}" "$server" 2>/dev/null
wait "$server"
"#;

#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    starts: u32,
    running: Option<(Child, ChildStdin)>,
}

impl NatsServer {
    /// Starts a fresh server; panics (the test fails) if it cannot.
    pub fn start() -> Self {
        let binary = find_binary().unwrap_or_else(|| panic!("{INSTALL}"));
        let port = free_port();
        let store = tempfile::tempdir().expect("temporary store directory");
        let mut server = Self {
            binary,
            port,
            store,
            starts: 0,
            running: None,
        };
        server.up();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server with SIGTERM (JetStream flushes its store and exits).
    pub fn stop(&mut self) {
        self.down("TERM");
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.down("KILL");
    }

    /// Starts it again on the same port and store directory.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "restart a stopped server");
        self.up();
    }

    fn up(&mut self) {
        self.starts += 1;
        let log = self
            .store
            .path()
            .join(format!("server-{}.log", self.starts));
        let store = self.store.path().join("js");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&store)
            .env("LOG", &log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the nats-server supervisor (sh)");
        let stdin = child.stdin.take().expect("supervisor stdin");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Server is ready") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nats-server exited ({status}) at start; its log:\n{text}");
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server not ready on port {} in 20 s; its log:\n{text}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running = Some((child, stdin));
    }

    fn down(&mut self, signal: &str) {
        if let Some((mut child, mut stdin)) = self.running.take() {
            let _ = writeln!(stdin, "{signal}");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.down("KILL");
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CONCORD_NATS_SERVER") {
        // Set but wrong is missing too: no silent fallback to another binary.
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
