//! The run: lives of the service ended by SIGKILL at random points, index
//! damage between some of them, then clean restarts and the checks.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    Api, Damage, Error, Launch, Round, Server,
    check::{settle, verify},
    client::{Accepted, BatchAnswer, BatchItem},
    corpus::{Article, corpus},
    logs::{StartupLog, messages},
    rng::Rng,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `concord` binary under test.
    pub binary: PathBuf,
    /// Its working directory (the config's model paths resolve from here).
    pub workdir: PathBuf,
    /// Where the data directory and the logs go.
    pub work_dir: PathBuf,
    /// SIGKILLs before the clean restarts.
    pub kills: usize,
    pub seed: u64,
    /// Articles per second sent (retries included).
    pub rate: f64,
    /// Distinct articles in the stream.
    pub articles: usize,
    /// Concurrent client threads.
    pub writers: usize,
    /// `index.dump_every_inserts` for the service: small, so kills land during and
    /// between dumps and later starts load stale dumps.
    pub dump_every: u64,
    /// Chance of damaging the index dump before a restart (at least once when kills >= 2).
    pub damage_chance: f64,
    /// Chance that a kill lands during start-up instead of while ingesting (at least
    /// one does when kills >= 3).
    pub startup_kill_chance: f64,
    pub ready_timeout: Duration,
    pub settle_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Progress lines on stderr.
    pub verbose: bool,
}

impl Options {
    pub fn new(binary: PathBuf, workdir: PathBuf, work_dir: PathBuf) -> Self {
        Self {
            binary,
            workdir,
            work_dir,
            kills: 25,
            seed: 1,
            rate: 20.0,
            articles: 400,
            writers: 3,
            dump_every: 10,
            damage_chance: 0.25,
            startup_kill_chance: 0.15,
            ready_timeout: Duration::from_secs(120),
            settle_timeout: Duration::from_secs(180),
            shutdown_timeout: Duration::from_secs(60),
            verbose: false,
        }
    }
}

/// One start of the service.
#[derive(Debug, Clone)]
pub struct Startup {
    pub life: usize,
    /// Spawn to `/readyz` answering; `None` when killed before.
    pub ready: Option<Duration>,
    pub log: StartupLog,
    /// What was done to the index dump just before this start.
    pub damage: Option<Damage>,
    /// How it ended: `sigkill`, `sigkill-in-startup` or `sigterm`.
    pub end: &'static str,
    /// Acknowledged articles when this life ended.
    pub acknowledged_after: usize,
}

/// Everything a run found. [`Report::passed`] is the verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub kills: usize,
    pub restarts: usize,
    pub articles: usize,
    pub acknowledged: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub unresolved_cluster_ids: usize,
    pub unclustered: usize,
    pub not_indexed: usize,
    pub inconsistent: usize,
    /// Acknowledged articles a client could not read back during the run.
    pub missing_during_run: usize,
    /// Clean stops that did not exit 0, did not dump the index, or left work to recover.
    pub graceful_failures: usize,
    /// Answers the harness cannot explain (a 4xx to a valid article, a malformed body).
    pub unexpected: Vec<String>,
    pub cluster_ids_given: usize,
    pub resent: usize,
    pub damaged: Vec<Damage>,
    pub startups: Vec<Startup>,
    pub rounds: Vec<Round>,
    pub notes: Vec<String>,
    pub wall: Duration,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.unresolved_cluster_ids == 0
            && self.unclustered == 0
            && self.not_indexed == 0
            && self.inconsistent == 0
            && self.missing_during_run == 0
            && self.graceful_failures == 0
            && self.unexpected.is_empty()
            && self.acknowledged == self.articles
            && self.rounds.iter().all(Round::clean)
    }

    /// `min/median/max` ms of spawn-to-ready for starts that took `path`.
    fn ready_stats(&self, path: crate::IndexPath) -> String {
        let mut ms: Vec<u128> = self
            .startups
            .iter()
            .filter(|s| s.log.index == path)
            .filter_map(|s| s.ready.map(|d| d.as_millis()))
            .collect();
        if ms.is_empty() {
            return "-".into();
        }
        ms.sort_unstable();
        format!(
            "{}/{}/{}(n={})",
            ms[0],
            ms[ms.len() / 2],
            ms[ms.len() - 1],
            ms.len()
        )
    }

    /// The one-line summary.
    pub fn summary_line(&self) -> String {
        format!(
            "kills={} acknowledged={} lost={} duplicates={} unresolved_cluster_ids={} restarts={} \
             unclustered={} not_indexed={} inconsistent={} graceful_failures={} index_damaged={} \
             resent={} cluster_ids_given={} startup_ms_min/med/max: dump_loaded={} rebuilt={} \
             wall_s={:.1}",
            self.kills,
            self.acknowledged,
            self.lost,
            self.duplicates,
            self.unresolved_cluster_ids,
            self.restarts,
            self.unclustered,
            self.not_indexed,
            self.inconsistent,
            self.graceful_failures,
            self.damaged.len(),
            self.resent,
            self.cluster_ids_given,
            self.ready_stats(crate::IndexPath::Loaded),
            self.ready_stats(crate::IndexPath::Rebuilt),
            self.wall.as_secs_f64(),
        )
    }

    /// One line per start and per check, for people.
    pub fn details(&self) -> String {
        let mut out = String::new();
        for s in &self.startups {
            out.push_str(&format!(
                "start {:>2}: ready {:>6} index {:<7} dump_entries {:>5} articles {:>5} repaired {:>5} state_ms {:>5} requeued {:>4} damage {:<15} end {:<18} acked {}\n",
                s.life,
                s.ready.map_or("-".into(), |d| format!("{}ms", d.as_millis())),
                s.log.index.as_str(),
                s.log.dump_entries.map_or("-".into(), |n| n.to_string()),
                s.log.articles.map_or("-".into(), |n| n.to_string()),
                s.log.index_repaired.map_or("-".into(), |n| n.to_string()),
                s.log.state_ms.map_or("-".into(), |n| n.to_string()),
                s.log.requeued,
                s.damage.map_or("-", Damage::as_str),
                s.end,
                s.acknowledged_after,
            ));
        }
        for r in &self.rounds {
            out.push_str(&format!(
                "check {:<14} acknowledged {} clusters {} lost {} unclustered {} duplicates {} inconsistent {} unacknowledged_members {} indexed {} not_indexed {} stale_index {} cluster_ids {} unresolved {}\n",
                r.name,
                r.acknowledged,
                r.clusters,
                r.lost,
                r.unclustered,
                r.duplicates,
                r.inconsistent,
                r.unacknowledged_members,
                r.indexed_articles,
                r.not_indexed,
                r.stale_index,
                r.cluster_ids_checked,
                r.unresolved_cluster_ids,
            ));
            for n in &r.notes {
                out.push_str(&format!("  {n}\n"));
            }
        }
        for n in self.notes.iter().chain(&self.unexpected) {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}

/// What the clients learned, shared by the writer threads.
#[derive(Debug, Default)]
struct Ledger {
    /// Corpus positions to send, retries first.
    queue: VecDeque<usize>,
    /// Corpus position -> article id, once answered 2xx.
    acked: HashMap<usize, String>,
    /// The same external id answered with two article ids.
    conflicts: usize,
    cluster_ids: BTreeSet<String>,
    unexpected: Vec<String>,
    missing_during_run: usize,
    resent: usize,
    in_flight: usize,
    sent: HashMap<usize, u32>,
}

#[derive(Debug)]
struct Shared {
    corpus: Vec<Article>,
    ledger: Mutex<Ledger>,
    /// When the next send may start (the steady rate).
    pace: Mutex<Instant>,
    rate: f64,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // a writer that panicked leaves a usable ledger: every update is one statement
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acknowledge(&self, position: usize, accepted: &Accepted) {
        let mut ledger = self.ledger();
        let article = &self.corpus[position];
        if accepted.external_id != article.external_id {
            ledger.unexpected.push(format!(
                "{} answered for {}",
                accepted.external_id, article.external_id
            ));
            return;
        }
        if !matches!(
            accepted.status.as_str(),
            "queued" | "unchanged" | "clustered"
        ) {
            ledger.unexpected.push(format!(
                "{} answered status {:?}",
                article.external_id, accepted.status
            ));
        }
        if let Some(c) = &accepted.cluster {
            ledger.cluster_ids.insert(c.clone());
        }
        if let Some(previous) = ledger.acked.insert(position, accepted.id.clone())
            && previous != accepted.id
        {
            ledger.conflicts += 1;
            ledger.unexpected.push(format!(
                "{} answered as {previous}, then as {}",
                article.external_id, accepted.id
            ));
        }
    }

    /// Not acknowledged (refused for now, or no answer): send again later, first.
    fn retry(&self, positions: &[usize]) {
        let mut ledger = self.ledger();
        for &p in positions.iter().rev() {
            ledger.queue.push_front(p);
        }
    }

    fn done_sending(&self, n: usize) {
        let mut ledger = self.ledger();
        ledger.in_flight = ledger.in_flight.saturating_sub(n);
    }

    /// Waits for the next send slot for `n` articles; `false` when stopped meanwhile.
    fn pace(&self, n: usize, stop: &AtomicBool) -> bool {
        let at = {
            let mut next = self.pace.lock().unwrap_or_else(|p| p.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + Duration::from_secs_f64(n as f64 / self.rate);
            at
        };
        while Instant::now() < at {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((at - Instant::now()).min(Duration::from_millis(20)));
        }
        !stop.load(Ordering::Relaxed)
    }
}

/// A problem status the service may answer while healthy (busy, shutting down, an
/// internal error on a dying store): not acknowledged, so the client sends again.
fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

fn writer(shared: &Shared, api: &Api, stop: &AtomicBool, mut rng: Rng) {
    while !stop.load(Ordering::Relaxed) {
        let size = if rng.chance(0.35) {
            2 + rng.below(7)
        } else {
            1
        };
        let taken: Vec<usize> = {
            let mut ledger = shared.ledger();
            let n = size.min(ledger.queue.len());
            let taken: Vec<usize> = ledger.queue.drain(..n).collect();
            ledger.in_flight += taken.len();
            for p in &taken {
                let sent = ledger.sent.entry(*p).or_default();
                *sent += 1;
                if *sent > 1 {
                    ledger.resent += 1;
                }
            }
            taken
        };
        if taken.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            read_back(shared, api, &mut rng);
            continue;
        }
        if !shared.pace(taken.len(), stop) {
            shared.retry(&taken);
            shared.done_sending(taken.len());
            break;
        }
        let failed = if let [one] = taken[..] {
            send_one(shared, api, one, rng.chance(0.3))
        } else {
            send_batch(shared, api, &taken)
        };
        if !failed.is_empty() {
            shared.retry(&failed);
            // the service is down or busy: do not spin
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.done_sending(taken.len());
        if rng.chance(0.3) {
            read_back(shared, api, &mut rng);
        }
    }
}

/// Sends one article; returns it when it was not acknowledged.
fn send_one(shared: &Shared, api: &Api, position: usize, wait: bool) -> Vec<usize> {
    let article = &shared.corpus[position];
    let path = if wait {
        "/v1/articles?wait=true"
    } else {
        "/v1/articles"
    };
    match api.post(path, &article.to_json()) {
        Ok(answer) if answer.ok() => match answer.json::<Accepted>(path) {
            Ok(accepted) => {
                shared.acknowledge(position, &accepted);
                Vec::new()
            }
            Err(e) => {
                shared.ledger().unexpected.push(e.to_string());
                Vec::new()
            }
        },
        Ok(answer) if retryable(answer.status) => vec![position],
        Ok(answer) => {
            shared.ledger().unexpected.push(format!(
                "POST {path} {}: {} {}",
                article.external_id,
                answer.status,
                answer.text()
            ));
            Vec::new()
        }
        // no answer: stored or not, it is not acknowledged
        Err(_) => vec![position],
    }
}

fn send_batch(shared: &Shared, api: &Api, positions: &[usize]) -> Vec<usize> {
    let body = serde_json::json!({
        "articles": positions.iter().map(|&p| shared.corpus[p].to_json()).collect::<Vec<_>>()
    });
    let path = "/v1/articles/batch";
    match api.post(path, &body) {
        Ok(answer) if answer.ok() => {
            let results = match answer.json::<BatchAnswer>(path) {
                Ok(b) if b.results.len() == positions.len() => b.results,
                Ok(b) => {
                    shared.ledger().unexpected.push(format!(
                        "batch of {} answered {} results",
                        positions.len(),
                        b.results.len()
                    ));
                    return Vec::new();
                }
                Err(e) => {
                    shared.ledger().unexpected.push(e.to_string());
                    return Vec::new();
                }
            };
            let mut failed = Vec::new();
            for (&p, item) in positions.iter().zip(results) {
                match item {
                    BatchItem::Accepted(accepted) => shared.acknowledge(p, &accepted),
                    BatchItem::Refused { problem } if retryable(problem.status) => failed.push(p),
                    BatchItem::Refused { problem } => shared.ledger().unexpected.push(format!(
                        "batch item {} refused: {} {} {}",
                        shared.corpus[p].external_id, problem.status, problem.code, problem.detail
                    )),
                }
            }
            failed
        }
        Ok(answer) if retryable(answer.status) => positions.to_vec(),
        Ok(answer) => {
            shared.ledger().unexpected.push(format!(
                "POST {path}: {} {}",
                answer.status,
                answer.text()
            ));
            Vec::new()
        }
        Err(_) => positions.to_vec(),
    }
}

/// Reads an acknowledged article back as a client would, keeping its cluster id.
fn read_back(shared: &Shared, api: &Api, rng: &mut Rng) {
    let picked = {
        let ledger = shared.ledger();
        if ledger.acked.is_empty() {
            return;
        }
        let mut positions: Vec<&usize> = ledger.acked.keys().collect();
        positions.sort_unstable();
        let p = *positions[rng.below(positions.len())];
        ledger.acked.get(&p).cloned().map(|id| (p, id))
    };
    let Some((position, id)) = picked else {
        return;
    };
    match api.article(&id) {
        Ok(Some(a)) => {
            if let Some(c) = a.cluster {
                shared.ledger().cluster_ids.insert(c);
            }
        }
        Ok(None) => {
            let mut ledger = shared.ledger();
            ledger.missing_during_run += 1;
            let external_id = shared.corpus[position].external_id.clone();
            ledger.unexpected.push(format!(
                "acknowledged {id} ({external_id}) read back as 404"
            ));
        }
        // the service may be dying: say nothing
        Err(_) => {}
    }
}

struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    fn start(shared: &Arc<Shared>, api: &Api, n: usize, rng: &mut Rng) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        *shared.pace.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let threads = (0..n.max(1))
            .map(|i| {
                let (shared, api, stop) = (Arc::clone(shared), api.clone(), Arc::clone(&stop));
                let rng = rng.fork(i as u64);
                std::thread::spawn(move || writer(&shared, &api, &stop, rng))
            })
            .collect();
        Self { stop, threads }
    }

    fn stop(self) {
        drop(self);
    }
}

/// Stopped on every way out, an early error included.
impl Drop for Writers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Run<'a> {
    opts: &'a Options,
    launch: Launch,
    shared: Arc<Shared>,
    rng: Rng,
    report: Report,
    logs: PathBuf,
    data: PathBuf,
}

impl Run<'_> {
    fn say(&self, line: impl AsRef<str>) {
        if self.opts.verbose {
            eprintln!("crashtest: {}", line.as_ref());
        }
    }

    fn spawn(&mut self) -> Result<Server, Error> {
        let n = self.report.startups.len();
        let log = self.logs.join(format!("start-{n:03}.log"));
        if n > 0 {
            self.report.restarts += 1;
        }
        Server::spawn(&self.launch, &log)
    }

    fn acknowledged(&self) -> usize {
        self.shared.ledger().acked.len()
    }

    fn damage(&mut self, forced: bool) -> Result<Option<Damage>, Error> {
        if !forced && !self.rng.chance(self.opts.damage_chance) {
            return Ok(None);
        }
        let damage = *self.rng.pick(&Damage::ALL);
        if damage.apply(&self.data, &mut self.rng)? {
            self.report.damaged.push(damage);
            Ok(Some(damage))
        } else {
            Ok(None)
        }
    }

    /// One life ended by SIGKILL: during start-up, or while the writers send.
    fn killed_life(&mut self, life: usize, typical_start: Duration) -> Result<Duration, Error> {
        let forced = self.opts.kills >= 2 && life == self.opts.kills / 2;
        let damage = if life > 0 { self.damage(forced)? } else { None };
        let mut server = self.spawn()?;
        // at least one kill lands in start-up when there are a few
        let in_startup = life > 0
            && ((self.opts.kills >= 3 && life == self.opts.kills / 3)
                || self.rng.chance(self.opts.startup_kill_chance));
        if in_startup {
            // model load, store open, index load or rebuild, recovery
            let at = self.rng.between(0.0, typical_start.as_secs_f64() * 1.2);
            std::thread::sleep(Duration::from_secs_f64(at));
            let ready = server.api().ready().is_ok().then(|| server.age());
            let log = server.startup_log();
            server.kill()?;
            self.report.kills += 1;
            self.record_with(log, ready, damage, "sigkill-in-startup");
            return Ok(typical_start);
        }
        let ready = server.wait_ready(self.opts.ready_timeout)?;
        let writers = Writers::start(&self.shared, server.api(), self.opts.writers, &mut self.rng);
        let mean = self.opts.articles as f64 / self.opts.rate / (self.opts.kills + 1) as f64;
        let life_secs = mean * self.rng.between(0.3, 1.7);
        std::thread::sleep(Duration::from_secs_f64(life_secs));
        let log = server.startup_log();
        // the writers are mid-request: their answers are lost with the process
        server.kill()?;
        self.report.kills += 1;
        writers.stop();
        self.record_with(log, Some(ready), damage, "sigkill");
        Ok(ready)
    }

    fn record_with(
        &mut self,
        log: StartupLog,
        ready: Option<Duration>,
        damage: Option<Damage>,
        end: &'static str,
    ) {
        let startup = Startup {
            life: self.report.startups.len(),
            ready,
            log,
            damage,
            end,
            acknowledged_after: self.acknowledged(),
        };
        self.say(format!(
            "start {}: ready {:?} index {} requeued {} damage {} end {} acknowledged {}/{}",
            startup.life,
            ready.map(|d| d.as_millis()),
            startup.log.index.as_str(),
            startup.log.requeued,
            damage.map_or("-", Damage::as_str),
            end,
            startup.acknowledged_after,
            self.opts.articles,
        ));
        self.report.startups.push(startup);
    }

    /// SIGTERM: exit 0, the index dumped, no deadline passed.
    fn stop_gracefully(&mut self, server: Server) -> Result<(), Error> {
        let (status, log) = server.terminate(self.opts.shutdown_timeout)?;
        let said = messages(&log);
        let dumped = said.iter().any(|m| m == "index dumped");
        let late = said
            .iter()
            .any(|m| m.starts_with("shutdown deadline passed"));
        let shared = said.iter().any(|m| m.starts_with("pipeline still shared"));
        if !status.success() || !dumped || late || shared {
            self.report.graceful_failures += 1;
            self.report.notes.push(format!(
                "SIGTERM: exit {status}, index dumped: {dumped}, deadline passed: {late}, still shared: {shared}"
            ));
        }
        Ok(())
    }

    fn snapshot(&self) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let ledger = self.shared.ledger();
        let acked = ledger
            .acked
            .iter()
            .map(|(&p, id)| (self.shared.corpus[p].external_id.clone(), id.clone()))
            .collect();
        (acked, ledger.cluster_ids.clone())
    }

    fn check(&mut self, name: &'static str, api: &Api) -> Result<(), Error> {
        let (acked, cluster_ids) = self.snapshot();
        let round = verify(name, api, &acked, &cluster_ids)?;
        self.say(format!(
            "check {name}: clean {} ({} acknowledged, {} clusters, {} cluster ids)",
            round.clean(),
            round.acknowledged,
            round.clusters,
            round.cluster_ids_checked
        ));
        self.report.rounds.push(round);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        // 1. a clean start after the last kill: the clients send what is left
        //    (retries included), then everything is waited for and checked
        let damage = if self.opts.kills > 0 {
            self.damage(false)?
        } else {
            None
        };
        let mut server = self.spawn()?;
        let ready = server.wait_ready(self.opts.ready_timeout)?;
        let writers = Writers::start(&self.shared, server.api(), self.opts.writers, &mut self.rng);
        let deadline = Instant::now() + self.opts.settle_timeout;
        loop {
            let (left, in_flight) = {
                let l = self.shared.ledger();
                (l.queue.len(), l.in_flight)
            };
            if left == 0 && in_flight == 0 {
                break;
            }
            if Instant::now() >= deadline {
                writers.stop();
                return Err(Error::NeverAcknowledged(left + in_flight));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        writers.stop();
        let (acked, _) = self.snapshot();
        settle(server.api(), acked.values(), self.opts.settle_timeout)?;
        let api = server.api().clone();
        self.check("after-kills", &api)?;
        let log = server.startup_log();
        self.stop_gracefully(server)?;
        self.record_with(log, Some(ready), damage, "sigterm");

        // 2. after a clean stop: the fresh dump loads, nothing is left to recover,
        //    everything is clustered at once
        let mut server = self.spawn()?;
        let ready = server.wait_ready(self.opts.ready_timeout)?;
        let api = server.api().clone();
        self.check("after-sigterm", &api)?;
        let log = server.startup_log();
        if log.requeued != 0 || log.index != crate::IndexPath::Loaded {
            self.report.graceful_failures += 1;
            self.report.notes.push(format!(
                "start after SIGTERM: index {}, {} articles re-queued",
                log.index.as_str(),
                log.requeued
            ));
        }
        self.stop_gracefully(server)?;
        self.record_with(log, Some(ready), None, "sigterm");

        // 3. the fresh dump damaged: rebuilt or repaired from the store, same answers
        let damage = self.damage(true)?;
        let mut server = self.spawn()?;
        let ready = server.wait_ready(self.opts.ready_timeout)?;
        let api = server.api().clone();
        self.check("after-damage", &api)?;
        let log = server.startup_log();
        self.stop_gracefully(server)?;
        self.record_with(log, Some(ready), damage, "sigterm");
        Ok(())
    }
}

/// Runs the whole harness. An `Err` means the run could not be carried out; a
/// broken invariant is counted in the [`Report`] (see [`Report::passed`]).
pub fn run(opts: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let data = opts.work_dir.join("data");
    let logs = opts.work_dir.join("logs");
    for dir in [&data, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let corpus = corpus(opts.seed, opts.articles);
    let ledger = Ledger {
        queue: (0..corpus.len()).collect(),
        ..Ledger::default()
    };
    let shared = Arc::new(Shared {
        corpus,
        ledger: Mutex::new(ledger),
        pace: Mutex::new(Instant::now()),
        rate: opts.rate.max(0.1),
    });
    let mut run = Run {
        opts,
        launch: Launch {
            binary: opts.binary.clone(),
            workdir: opts.workdir.clone(),
            data_dir: data.clone(),
            env: vec![(
                "CONCORD_INDEX__DUMP_EVERY_INSERTS".into(),
                opts.dump_every.to_string(),
            )],
        },
        shared,
        rng: Rng::new(opts.seed ^ 0x00C0_FFEE),
        report: Report {
            kills: 0,
            restarts: 0,
            articles: opts.articles,
            acknowledged: 0,
            lost: 0,
            duplicates: 0,
            unresolved_cluster_ids: 0,
            unclustered: 0,
            not_indexed: 0,
            inconsistent: 0,
            missing_during_run: 0,
            graceful_failures: 0,
            unexpected: Vec::new(),
            cluster_ids_given: 0,
            resent: 0,
            damaged: Vec::new(),
            startups: Vec::new(),
            rounds: Vec::new(),
            notes: Vec::new(),
            wall: Duration::ZERO,
        },
        logs,
        data,
    };
    run.say(format!(
        "{} articles at {}/s, {} kills, seed {}, work dir {}",
        opts.articles,
        opts.rate,
        opts.kills,
        opts.seed,
        opts.work_dir.display()
    ));
    let mut typical_start = Duration::from_secs(3);
    for life in 0..opts.kills {
        typical_start = run.killed_life(life, typical_start)?;
    }
    run.finish()?;

    let mut report = run.report;
    {
        let ledger = run.shared.ledger();
        report.acknowledged = ledger.acked.len();
        report.duplicates += ledger.conflicts;
        report.missing_during_run = ledger.missing_during_run;
        report.unexpected = ledger.unexpected.clone();
        report.cluster_ids_given = ledger.cluster_ids.len();
        report.resent = ledger.resent;
    }
    // each round re-checks the same store: the worst round is the count
    let worst = |f: &dyn Fn(&Round) -> usize| report.rounds.iter().map(f).max().unwrap_or(0);
    let lost = worst(&|r| r.lost);
    let duplicates = worst(&|r| r.duplicates);
    let unresolved = worst(&|r| r.unresolved_cluster_ids);
    let unclustered = worst(&|r| r.unclustered);
    let not_indexed =
        worst(&|r| r.not_indexed + r.stale_index + r.acknowledged.abs_diff(r.indexed_articles));
    let inconsistent = worst(&|r| r.inconsistent + r.unacknowledged_members);
    report.lost = lost;
    report.duplicates += duplicates;
    report.unresolved_cluster_ids = unresolved;
    report.unclustered = unclustered;
    report.not_indexed = not_indexed;
    report.inconsistent = inconsistent;
    report.wall = started.elapsed();
    Ok(report)
}
