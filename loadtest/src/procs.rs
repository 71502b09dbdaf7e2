//! Child processes (the `secflow run` stages, the sink simulator, the baseline copy), their
//! resident set and CPU time from `/proc`, and a sampler that records RSS over time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A process this run started; terminated on drop if still running.
#[derive(Debug)]
pub struct Child {
    /// Short name in the report (`enrich`, `transform`, `sink`, `simulator`, `copy`).
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// stdout + stderr.
    pub log: PathBuf,
    /// Its metrics base URL (`secflow run` only).
    pub metrics: Option<String>,
    child: std::process::Child,
    stdout: Option<PathBuf>,
}

impl Child {
    /// Starts `cmd` with stdout to `<dir>/<name>.out` and stderr to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<Child> {
        let log = dir.join(format!("{name}.log"));
        let out_path = dir.join(format!("{name}.out"));
        let err = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let out =
            std::fs::File::create(&out_path).with_context(|| out_path.display().to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Child {
            name: name.to_string(),
            pid: child.id(),
            log,
            metrics: None,
            child,
            stdout: Some(out_path),
        })
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Exit status if it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for it to end by itself, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// SIGTERM (a stage drains and prints its summary), then SIGKILL after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exited() {
            return Some(s);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if let Some(s) = self.wait(grace).await {
            return Some(s);
        }
        tracing::warn!(name = %self.name, pid = self.pid, "did not stop after SIGTERM, killing");
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident set of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&text)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User + system CPU time of `pid` in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&text)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux).
pub fn ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Machine-wide CPU counters of `/proc/stat`: (busy, total) ticks over all cores.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().filter_map(|x| x.parse().ok());
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// `(seconds since start, MiB)` samples per process name.
pub type RssSeries = BTreeMap<String, Vec<(f64, f64)>>;

/// RSS samples of named processes: `(seconds since start, MiB)` per name, plus marks.
#[derive(Debug, Default)]
pub struct Samples {
    /// Per process name.
    pub rss: BTreeMap<String, Vec<(f64, f64)>>,
    /// Named moments (`outage start`, `heal`…), seconds since start.
    pub marks: Vec<(String, f64)>,
}

/// Samples RSS of the watched processes every `every` in a background task.
#[derive(Debug, Clone)]
pub struct Sampler {
    start: Instant,
    watched: Arc<Mutex<Vec<(String, u32)>>>,
    samples: Arc<Mutex<Samples>>,
}

impl Sampler {
    /// Starts sampling (nothing is watched yet).
    pub fn start(every: Duration) -> Sampler {
        let s = Sampler {
            start: Instant::now(),
            watched: Arc::new(Mutex::new(Vec::new())),
            samples: Arc::new(Mutex::new(Samples::default())),
        };
        let me = s.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                // Stop when the last handle but this task's is gone.
                if Arc::strong_count(&me.samples) <= 1 {
                    break;
                }
                me.sample_now();
            }
        });
        s
    }

    /// Seconds since the sampler started.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Adds a process to watch.
    pub fn watch(&self, name: &str, pid: u32) {
        lock(&self.watched).push((name.to_string(), pid));
    }

    /// Records a named moment.
    pub fn mark(&self, what: &str) {
        let t = self.now_s();
        lock(&self.samples).marks.push((what.to_string(), t));
    }

    /// Takes one sample of every watched process.
    pub fn sample_now(&self) {
        let t = self.now_s();
        let watched = lock(&self.watched).clone();
        let mut s = lock(&self.samples);
        for (name, pid) in watched {
            if let Some(kb) = rss_kb(pid) {
                s.rss.entry(name).or_default().push((t, kb as f64 / 1024.0));
            }
        }
    }

    /// A copy of what was sampled.
    pub fn snapshot(&self) -> (RssSeries, Vec<(String, f64)>) {
        let s = lock(&self.samples);
        (s.rss.clone(), s.marks.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t  123456 kB\n"),
            Some(123_456)
        );
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 100 10";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
