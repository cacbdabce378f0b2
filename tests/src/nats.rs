//! A real `nats-server` with JetStream for one test: started on a random loopback port with its
//! own temporary store, killed and cleaned up when the guard drops. It can be stopped and started
//! again on the same port and store, to test outages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running (or stopped) nats-server owned by one test.
#[derive(Debug)]
pub struct NatsServer {
    dir: TempDir,
    child: Option<Child>,
    port: u16,
}

impl NatsServer {
    /// Starts a server on a random port.
    ///
    /// # Panics
    /// When `nats-server` is not installed or does not start within ten seconds.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut server = NatsServer {
            dir,
            child: None,
            port: 0,
        };
        server.spawn();
        server
    }

    /// A guard for a server that is not running yet but will listen on `port` when started:
    /// for testing a service that starts before NATS.
    pub fn not_started(port: u16) -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        NatsServer {
            dir,
            child: None,
            port,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL); the store is kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("a ports directory");
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let log =
            std::fs::File::create(self.dir.path().join("nats-server.log")).expect("a log file");
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(self.dir.path().join("store"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (deploy/test.sh installs it)");
        self.child = Some(child);
        self.port = wait_for_port(&ports_dir, &self.dir.path().join("nats-server.log"));
        wait_for_jetstream(self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nats_server_binary() -> PathBuf {
    std::env::var_os("NATS_SERVER_BIN").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
}

fn wait_for_port(ports_dir: &Path, log: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ports = std::fs::read_dir(ports_dir)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let port = ports
            .as_ref()
            .and_then(|json| json["nats"][0].as_str())
            .and_then(|url| url.rsplit(':').next())
            .and_then(|port| port.parse().ok());
        if let Some(port) = port {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "nats-server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ports file is written once the listener is up; JetStream is ready right after. A TCP
/// connect confirms the listener answers before the test goes on.
fn wait_for_jetstream(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server port {port} does not answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
