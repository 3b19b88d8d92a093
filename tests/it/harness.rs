//! Starts the real `rewind` binary on ephemeral ports against a data directory, and talks to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rewind_agent_proto::{ExportTraceServiceRequest, ExportTraceServiceResponse, TraceServiceClient};
use rewind_workload::send::PreEncoded;
use tonic::transport::Channel;

pub struct Server {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub query: SocketAddr,
    pub log: PathBuf,
}

fn parse_addr(line: &str, key: &str) -> SocketAddr {
    let v = line.split_whitespace().find_map(|w| w.strip_prefix(key)).expect("address in line");
    v.parse().expect("socket address")
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_env(data_dir, extra, &[])
    }

    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let log = data_dir.with_extension(format!("log{}", std::process::id()));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--query-listen", "127.0.0.1:0"])
            .args(extra)
            .env("REWIND_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn rewind");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("rewind listening") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("rewind did not start; its log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        };
        Server {
            grpc: parse_addr(&line, "grpc="),
            http: parse_addr(&line, "http="),
            query: parse_addr(&line, "query="),
            child,
            log,
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// Waits for the process to exit by itself.
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        self.child.wait().expect("wait")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn grpc_endpoint(&self) -> String {
        self.grpc.to_string()
    }

    pub fn http_endpoint(&self) -> String {
        self.http.to_string()
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{}", self.query, path)
    }

    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::get(self.query_url(path)).await.expect("query request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn trace(&self, trace_id: &str) -> serde_json::Value {
        let (status, body) = self.get_json(&format!("/api/traces/{trace_id}")).await;
        assert_eq!(status, 200, "trace {trace_id}: {body}\nserver log:\n{}", self.log());
        body
    }

    pub async fn grpc_client(&self) -> TraceServiceClient<Channel> {
        TraceServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("connect gRPC")
            .max_encoding_message_size(64 << 20)
    }

    /// Sends raw bytes as the Export message: for malformed protobuf.
    pub async fn grpc_raw(&self, body: Vec<u8>) -> Result<ExportTraceServiceResponse, tonic::Status> {
        let req = tonic::Request::new(body.into());
        self.grpc_unary(rewind_agent_proto::OTLP_TRACE_EXPORT_PATH, req).await
    }

    /// Sends raw bytes, with the request's metadata, to any export method; only the status
    /// matters to the caller (both exports answer a partial-success message of the same shape).
    pub async fn grpc_raw_status(&self, path: &'static str, req: tonic::Request<Vec<u8>>) -> tonic::Code {
        let (metadata, extensions, body) = req.into_parts();
        match self.grpc_unary(path, tonic::Request::from_parts(metadata, extensions, body.into())).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    }

    async fn grpc_unary(
        &self,
        path: &'static str,
        req: tonic::Request<bytes::Bytes>,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await.expect("connect");
        let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
        grpc.ready().await.expect("ready");
        let path = http::uri::PathAndQuery::from_static(path);
        grpc.unary(req, path, PreEncoded).await.map(tonic::Response::into_inner)
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.query_url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The server's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.proc_status_bytes("VmHWM:")
    }

    /// The server's resident memory now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.proc_status_bytes("VmRSS:")
    }

    fn proc_status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect(field);
        kb * 1024
    }

    /// Starts the server's peak resident memory (`VmHWM`) again from its present size.
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").expect("clear_refs");
    }

    /// Waits until every acknowledged span is sealed into column chunks.
    pub async fn wait_sealed(&self) {
        for _ in 0..200 {
            if self.metric("rewind_storage_sealed_spans_total").await > 0.0
                && self.metric("rewind_storage_memtable_spans").await == 0.0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("spans were not sealed in time");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn export_grpc(server: &Server, req: ExportTraceServiceRequest) -> ExportTraceServiceResponse {
    server.grpc_client().await.export(req).await.expect("gRPC export").into_inner()
}
