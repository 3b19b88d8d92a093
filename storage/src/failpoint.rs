//! Failure injection at named places of the write, seal and thread paths, so that tests can make
//! a healthy disk fail or a background thread die, and check what the rest of Rewind does about
//! it. Off unless configured: `StoreConfig::failpoints`, which the `rewind` binary fills from
//! `REWIND_FAILPOINTS` only when built with its `failpoints` feature (the tests' build).
//!
//! The spec is a comma-separated list of `site=action[*count]`, where action is `error` (the site
//! returns an I/O error), `panic`, or `delayN` (the site takes N more milliseconds: a slow disk),
//! and `count` limits how many times it fires: `wal-write=error*3,seal-helper=panic,chunk-fetch=delay20`.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::StorageError;

/// Every site, so a misspelt spec is refused rather than silently never firing.
pub const SITES: &[&str] = &[
    // Store::append's durable write.
    "wal-write",
    // Store::seal's write of chunks and metas.
    "seal-write",
    // The group-commit writer thread, before it writes a group.
    "writer-thread",
    // The maintenance thread, at the top of its loop.
    "maintenance-thread",
    // The seal helper thread, before it runs a job.
    "seal-helper",
    // Every read of stored chunks (each scan's unit of work), before it reaches RocksDB.
    "chunk-fetch",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Error,
    Panic,
    Delay(std::time::Duration),
}

#[derive(Debug)]
struct Site {
    name: String,
    action: Action,
    remaining: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Failpoints(Option<Arc<Mutex<Vec<Site>>>>);

impl Failpoints {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut sites = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rest) =
                part.split_once('=').ok_or_else(|| format!("failpoint {part:?}: expected site=action"))?;
            if !SITES.contains(&name) {
                return Err(format!("unknown failpoint site {name:?} (known: {})", SITES.join(", ")));
            }
            let (action, count) = match rest.split_once('*') {
                Some((a, n)) => (a, Some(n.parse::<u64>().map_err(|_| format!("failpoint {part:?}: bad count"))?)),
                None => (rest, None),
            };
            let action = match action {
                "error" => Action::Error,
                "panic" => Action::Panic,
                other => match other.strip_prefix("delay").and_then(|ms| ms.parse::<u64>().ok()) {
                    Some(ms) => Action::Delay(std::time::Duration::from_millis(ms)),
                    None => return Err(format!("failpoint {part:?}: unknown action {other:?} (error, panic, delayN)")),
                },
            };
            sites.push(Site { name: name.to_owned(), action, remaining: count });
        }
        Ok(if sites.is_empty() { Self::default() } else { Self(Some(Arc::new(Mutex::new(sites)))) })
    }

    /// Fires the site if it is armed: an injected I/O error, or a panic.
    pub fn hit(&self, site: &'static str) -> Result<(), StorageError> {
        let Some(sites) = &self.0 else { return Ok(()) };
        let action = {
            let mut sites = sites.lock();
            let Some(s) = sites.iter_mut().find(|s| s.name == site && s.remaining != Some(0)) else {
                return Ok(());
            };
            if let Some(n) = &mut s.remaining {
                *n -= 1;
            }
            s.action
        };
        match action {
            Action::Error => Err(StorageError::Injected(site)),
            Action::Panic => panic!("failpoint {site}: injected panic"),
            Action::Delay(d) => {
                std::thread::sleep(d);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_fire_as_often_as_asked() {
        let f = Failpoints::parse("wal-write=error*2, seal-write=error").unwrap();
        assert!(f.hit("wal-write").is_err());
        assert!(f.hit("wal-write").is_err());
        assert!(f.hit("wal-write").is_ok());
        assert!(f.hit("seal-write").is_err());
        assert!(f.hit("writer-thread").is_ok());
        assert!(Failpoints::parse("").unwrap().hit("wal-write").is_ok());
        assert!(Failpoints::parse("wal-wirte=error").is_err());
        assert!(Failpoints::parse("wal-write=explode").is_err());
        assert!(Failpoints::parse("wal-write").is_err());
        let slow = Failpoints::parse("chunk-fetch=delay30*1").unwrap();
        let t = std::time::Instant::now();
        assert!(slow.hit("chunk-fetch").is_ok() && slow.hit("chunk-fetch").is_ok());
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(30) && t.elapsed() < std::time::Duration::from_millis(60)
        );
    }
}
