//! Running the real `rewind` binary for whole-system benchmarks, and watching its resources.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub grpc: SocketAddr,
    pub query: SocketAddr,
}

/// The `rewind` binary built beside this benchmark (same profile, same target directory).
pub fn rewind_binary() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let bin = me.with_file_name("rewind");
    assert!(bin.exists(), "{} is missing: build it first (cargo build --release --bin rewind)", bin.display());
    bin
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(rewind_binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--query-listen", "127.0.0.1:0"])
            .args(extra)
            .env("REWIND_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rewind");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("listening line");
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace().find_map(|w| w.strip_prefix(key)).expect("address").trim().parse().expect("addr")
        };
        Self { grpc: addr("grpc="), query: addr("query="), child }
    }

    /// User + system CPU seconds the server has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    /// Peak resident set size in bytes (VmHWM).
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
}
