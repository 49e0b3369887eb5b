//! One `concord serve` child process: start, wait until ready, SIGKILL or SIGTERM.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{Api, Error, logs::StartupLog};

/// How to start the service.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `concord` binary.
    pub binary: PathBuf,
    /// Working directory: the config's relative paths (the model) resolve from here.
    pub workdir: PathBuf,
    pub data_dir: PathBuf,
    /// Extra `CONCORD_<SECTION>__<KEY>` settings.
    pub env: Vec<(String, String)>,
}

/// A running (or exited) service; killed on drop if still running.
#[derive(Debug)]
pub struct Server {
    child: Child,
    api: Api,
    log: PathBuf,
    spawned: Instant,
    exited: Option<ExitStatus>,
}

/// A port free at the time of asking, on 127.0.0.1.
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("127.0.0.1:0", e))?
        .port();
    Ok(port)
}

/// What a process that exited early said last: from its panic or error line when it has
/// one (a backtrace would otherwise fill the tail), else its last lines.
fn why_exited(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    match lines
        .iter()
        .position(|l| l.contains("panicked at") || l.starts_with("Error: "))
    {
        Some(at) => lines[at..lines.len().min(at + 12)].join("\n"),
        None => tail(log, 20),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Server {
    /// Starts `concord serve` on a free port of 127.0.0.1, logging JSON to `log`.
    pub fn spawn(launch: &Launch, log: &Path) -> Result<Self, Error> {
        Self::spawn_on(launch, log, Ipv4Addr::LOCALHOST.into())
    }

    /// [`Server::spawn`] listening on `ip` (`0.0.0.0`: every interface); the client
    /// still talks to it through 127.0.0.1.
    pub fn spawn_on(launch: &Launch, log: &Path, ip: IpAddr) -> Result<Self, Error> {
        let port = free_port()?;
        let file = File::create(log).map_err(|e| Error::io(log, e))?;
        let err = file.try_clone().map_err(|e| Error::io(log, e))?;
        let child = Command::new(&launch.binary)
            .arg("serve")
            .arg("--listen")
            .arg(SocketAddr::new(ip, port).to_string())
            .arg("--data-dir")
            .arg(&launch.data_dir)
            .current_dir(&launch.workdir)
            // the harness reads the log: JSON, at the level that has the start-up facts
            .env_remove("RUST_LOG")
            .env("CONCORD_LOG__FORMAT", "json")
            .env("CONCORD_LOG__FILTER", "info,hnsw_rs=warn")
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: launch.binary.clone(),
                source,
            })?;
        Ok(Self {
            child,
            api: Api::new(format!("http://127.0.0.1:{port}"), crate::DEV_KEY)?,
            log: log.to_path_buf(),
            spawned: Instant::now(),
            exited: None,
        })
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since the process was started.
    pub fn age(&self) -> Duration {
        self.spawned.elapsed()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn startup_log(&self) -> StartupLog {
        StartupLog::parse(&self.log())
    }

    /// Polls `/readyz` until it answers; returns the time from spawn to ready.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Err(Error::ExitedEarly {
                    status,
                    log: why_exited(&self.log()),
                });
            }
            if self.api.ready().is_ok() {
                return Ok(self.spawned.elapsed());
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    secs: timeout.as_secs(),
                    log: tail(&self.log(), 20),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn signal(&self, signal: Signal) -> Result<(), Error> {
        let pid = i32::try_from(self.child.id()).map_err(|_| nix::Error::ESRCH)?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            return Ok(status);
        }
        self.signal(Signal::SIGKILL)?;
        let status = self.child.wait().map_err(|e| Error::io(&self.log, e))?;
        self.exited = Some(status);
        Ok(status)
    }

    /// Waits up to `timeout` for the process to exit on its own (no signal); `None` if it
    /// is still running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited {
                return Ok(Some(status));
            }
            match self.child.try_wait() {
                Ok(Some(status)) => self.exited = Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25))
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(Error::io(&self.log, e)),
            }
        }
    }

    /// SIGTERM, then wait up to `timeout` for the exit (SIGKILL after that, and an error).
    pub fn terminate(mut self, timeout: Duration) -> Result<(ExitStatus, String), Error> {
        self.signal(Signal::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return Ok((status, self.log()));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Ok(None) => {
                    let log = tail(&self.log(), 20);
                    let _ = self.signal(Signal::SIGKILL);
                    let _ = self.child.wait();
                    return Err(Error::NoExit {
                        secs: timeout.as_secs(),
                        log,
                    });
                }
                Err(e) => return Err(Error::io(&self.log, e)),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
