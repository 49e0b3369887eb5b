//! A throwaway PostgreSQL server for tests: found, initialised in a temporary directory,
//! started on a free loopback port the first time a test asks for a database, and
//! stopped (its directory removed) when the test process exits, however it exits.
//!
//! One server per test binary, one fresh database per [`database`] call, so tests run in
//! parallel without seeing each other. The server binaries come from `CONCORD_PG_BINDIR`,
//! `pg_config --bindir` or `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package);
//! without them every caller gets an error that says how to install them: a test that
//! needs PostgreSQL fails, it never skips. PostgreSQL refuses to run as root: as root, the
//! server runs as the `postgres` user (`runuser`), which the Debian package creates.
//!
//! Must not: be used outside tests (no TLS, trust authentication, `fsync` off).

use std::{
    fs,
    io::Read,
    net::TcpListener,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How to get the server binaries, said by every error that lacks them.
const INSTALL: &str = "install PostgreSQL's server (Debian/Ubuntu: apt-get install postgresql) \
     or set CONCORD_PG_BINDIR to the folder holding initdb and postgres";

/// A running server, kept for the life of the test process.
struct Server {
    port: u16,
    /// Closing it (at process exit) tells the supervisor to stop the server.
    _supervisor: ChildStdin,
    _child: Child,
    admin: Mutex<postgres::Client>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The URL (`postgres://...`) of a new, empty database on this process's server, which
/// is started on the first call. `hint` goes into the database's name, for reading the
/// server's log.
pub fn database(hint: &str) -> Result<String, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let hint: String = hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!("t{n}_{hint}");
    let mut admin = server
        .admin
        .lock()
        .map_err(|_| "the test server's admin connection was poisoned".to_owned())?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .map_err(|e| format!("create test database {name}: {e}"))?;
    Ok(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        server.port
    ))
}

/// The URL of the server's `postgres` database (for statements that need no database of
/// their own, such as `CREATE DATABASE`).
pub fn admin_url() -> Result<String, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    Ok(format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        server.port
    ))
}

fn start() -> Result<Server, String> {
    let began = Instant::now();
    let bindir = bindir()?;
    let as_postgres = running_as_root()?;
    // As root the server runs as `postgres`, which must reach the directory: /tmp is
    // open to every user, a root's TMPDIR (under /root, say) may not be.
    let parent = match as_postgres {
        Some(_) => PathBuf::from("/tmp"),
        None => std::env::temp_dir(),
    };
    let dir = parent.join(format!(
        "concord-testpg-{}-{}",
        std::process::id(),
        began.elapsed().as_nanos()
    ));
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if let Some((uid, gid)) = as_postgres {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("give {} to the postgres user: {e}", dir.display()))?;
    }
    let data = dir.join("data");
    let run = |program: &str| -> Command {
        let exe = bindir.join(program);
        match as_postgres {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    };
    let out = run("initdb")
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--locale=C", "--no-sync", "--no-instructions", "-D"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run initdb ({}): {e}", bindir.display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let port = free_port()?;
    let log = dir.join("server.log");
    // The supervisor: starts the server, waits for its own stdin to close (this process
    // exited, whatever the way), then stops the server and removes the directory.
    let script = r#"
        "$@" >"$LOG" 2>&1 &
        server=$!
        read -r _ || true
        # Gone while the server was still starting: wait for its pid file (or its end).
        for _ in $(seq 100); do
            [ -s "$DATA/postmaster.pid" ] && break
            kill -0 "$server" 2>/dev/null || break
            sleep 0.1
        done
        pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then
            kill -INT "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        wait
        rm -rf "$DIR"
    "#;
    let server = run("postgres");
    let mut supervisor = Command::new("sh");
    supervisor
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(server.get_program())
        .args(server.get_args())
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        // A scratch server: durability is not what these tests check.
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=300"])
        .env("LOG", &log)
        .env("DATA", &data)
        .env("DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = supervisor
        .spawn()
        .map_err(|e| format!("start the test server's supervisor (sh): {e}"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| "the supervisor has no stdin".to_owned())?;
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    let admin = loop {
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(client) => break client,
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "the test server did not accept connections on port {port} ({e}); its log: {}",
                    read_log(&log)
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    eprintln!(
        "concord-testpg: PostgreSQL ({}) up on 127.0.0.1:{port} in {} ms",
        bindir.display(),
        began.elapsed().as_millis()
    );
    Ok(Server {
        port,
        _supervisor: stdin,
        _child: child,
        admin: Mutex::new(admin),
    })
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    match fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text)) {
        Ok(_) => text.trim().to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    }
}

/// The folder holding `initdb` and `postgres`.
fn bindir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("CONCORD_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "CONCORD_PG_BINDIR={} holds no initdb and postgres: {INSTALL}",
                dir.display()
            ))
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    // Debian installs each major version beside the others: take the newest.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| format!("no PostgreSQL server binaries (initdb, postgres) found: {INSTALL}"))
}

/// As root, the `postgres` user's uid and gid (the server is run as it).
fn running_as_root() -> Result<Option<(u32, u32)>, String> {
    // The owner of /proc/self is this process's effective user.
    let me = fs::metadata("/proc/self")
        .map_err(|e| format!("read /proc/self: {e}"))?
        .uid();
    if me != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .map(Some)
        .ok_or_else(|| {
            format!(
                "running as root, which PostgreSQL refuses, and there is no postgres user to \
                 run the test server as: {INSTALL} (its package creates the user)"
            )
        })
}

/// A loopback port nobody listens on now.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("find a free port: {e}"))
}
