//! The simulator's receipt log (`SECFLOW_SIM_RECEIPT_LOG`, one `<unix ms>\t<event id>` line per
//! accepted event), read incrementally while the run goes on.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::gen;

/// First receipt time per event of one run, duplicates and foreign ids counted.
#[derive(Debug)]
pub struct Receipts {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    prefix: String,
    /// First receipt (epoch ms) by sequence number; 0 = not received.
    first_ms: Vec<i64>,
    /// Distinct events of this run received.
    pub unique: u64,
    /// Receipts of an event received before (at-least-once re-sends).
    pub duplicates: u64,
    /// Receipts of ids that are not this run's.
    pub foreign: u64,
}

impl Receipts {
    /// Tracks `path` for events of `run`.
    pub fn new(path: PathBuf, run: &str) -> Receipts {
        Receipts {
            path,
            offset: 0,
            partial: Vec::new(),
            prefix: gen::id_prefix(run),
            first_ms: Vec::new(),
            unique: 0,
            duplicates: 0,
            foreign: 0,
        }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&mut self) -> std::io::Result<()> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        let n = f.read_to_end(&mut buf)?;
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|b| *b == b'\n') {
            if !line.is_empty() {
                self.line(&String::from_utf8_lossy(line));
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &str) {
        let Some((ms, id)) = line.split_once('\t') else {
            self.foreign += 1;
            return;
        };
        let (Ok(ms), Some(seq)) = (ms.parse::<i64>(), gen::seq_of(&self.prefix, id)) else {
            self.foreign += 1;
            return;
        };
        let i = seq as usize;
        if i >= self.first_ms.len() {
            self.first_ms.resize(i + 1, 0);
        }
        if self.first_ms[i] == 0 {
            self.first_ms[i] = ms;
            self.unique += 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// First receipt time of event `seq`.
    pub fn first(&self, seq: u64) -> Option<i64> {
        self.first_ms
            .get(seq as usize)
            .copied()
            .filter(|ms| *ms > 0)
    }

    /// Every first receipt time (any order).
    pub fn times(&self) -> Vec<i64> {
        self.first_ms.iter().copied().filter(|ms| *ms > 0).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn incremental_reads_with_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut r = Receipts::new(path.clone(), "abc");
        r.poll().unwrap();
        let mut f = std::fs::File::create(&path).unwrap();
        write!(f, "100\tlt-abc-0\n101\tlt-abc-2\n102\tlt-ab").unwrap();
        f.flush().unwrap();
        r.poll().unwrap();
        assert_eq!((r.unique, r.duplicates, r.foreign), (2, 0, 0));
        write!(f, "c-0\n103\tother\n104\t-\n105\tlt-abc-10\n").unwrap();
        f.flush().unwrap();
        r.poll().unwrap();
        assert_eq!((r.unique, r.duplicates, r.foreign), (3, 1, 2));
        assert_eq!(r.first(0), Some(100));
        assert_eq!(r.first(1), None);
        assert_eq!(r.first(10), Some(105));
        let mut t = r.times();
        t.sort();
        assert_eq!(t, vec![100, 101, 105]);
    }
}
