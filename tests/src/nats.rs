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
    config: Option<PathBuf>,
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
            config: None,
        };
        server.spawn();
        server
    }

    /// Starts a server on a random port with a configuration file's `contents` (accounts,
    /// users, permissions); listen address, port and store still come from the harness.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_config(contents: &str) -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("nats.conf");
        std::fs::write(&path, contents).expect("a configuration file");
        let mut server = NatsServer {
            dir,
            child: None,
            port: 0,
            config: Some(path),
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
            config: None,
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

    /// Starts the server again on the same port with an empty store: a server that lost its
    /// disk (every stream, consumer and bucket gone).
    pub fn restart_without_store(&mut self) {
        self.stop();
        std::fs::remove_dir_all(self.dir.path().join("store")).expect("the store can be removed");
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered. Returns once
    /// every thread of it has stopped (a signal is delivered to each thread in its own time).
    ///
    /// # Panics
    /// When the server is not stopped within five seconds.
    pub fn pause(&self) {
        self.signal("-STOP");
        let pid = self.child.as_ref().expect("the server is running").id();
        let stopped = || {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        let state = stat.rsplit_once(") ")?.1.chars().next()?;
                        Some(state == 'T' || state == 't')
                    })
                    .unwrap_or(false)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !stopped() {
            assert!(Instant::now() < deadline, "nats-server did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
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
        let mut command = Command::new(nats_server_binary());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
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
        // A paused server must be woken to be killed cleanly.
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
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

/// `deploy/nats/accounts.conf` as shipped, with the passwords its environment variables would
/// give (`ingress-pw`, `resolver-pw`), and a `test` user that unauthenticated connections get
/// (`no_auth_user`), for the tests' own reads and set-up.
pub fn shipped_accounts() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/accounts.conf");
    let shipped = std::fs::read_to_string(path).expect("the shipped accounts");
    let config = shipped
        .replace("$FRONTLINE_INGRESS_NATS_PASSWORD", "\"ingress-pw\"")
        .replace("$FRONTLINE_RESOLVER_NATS_PASSWORD", "\"resolver-pw\"")
        .replacen(
            "users: [",
            "users: [\n      { user: test, password: test }",
            1,
        );
    format!("no_auth_user: test\n{config}")
}

/// A 3-node JetStream cluster on loopback, built from the shipped `deploy/nats/n{1,2,3}.conf`
/// and `accounts.conf` with their ports, store directories and certificate paths replaced by
/// free ports, temporary directories and a test CA's certificates: TLS and logins as shipped.
#[derive(Debug)]
pub struct NatsCluster {
    dir: TempDir,
    nodes: Vec<Option<Child>>,
    /// Client ports, by node.
    pub ports: Vec<u16>,
    ca_file: PathBuf,
}

impl NatsCluster {
    /// Starts the three nodes.
    ///
    /// # Panics
    /// When a config cannot be read or a node does not start.
    pub fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_file = crate::tls::TestCa::new().write_to(dir.path());
        std::fs::write(dir.path().join("accounts.conf"), shipped_accounts()).expect("accounts");
        let certificates = format!("{}/", dir.path().display());
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../deploy/nats/n{}.conf", i + 1));
            let mut config = std::fs::read_to_string(&shipped).expect("the shipped node config");
            for j in 0..3 {
                config = config.replace(
                    &format!("127.0.0.1:{}", 4222 + j),
                    &format!("127.0.0.1:{}", ports[j]),
                );
                config = config.replace(
                    &format!("127.0.0.1:{}", 6222 + j),
                    &format!("127.0.0.1:{}", routes[j]),
                );
            }
            config = config.replace("/etc/nats/tls/", &certificates);
            let store = dir.path().join(format!("n{}", i + 1));
            config = config.replace(
                &format!("\".data/nats-n{}\"", i + 1),
                &format!("{:?}", store.display().to_string()),
            );
            let path = dir.path().join(format!("n{}.conf", i + 1));
            std::fs::write(&path, config).expect("a node config");
            let log = std::fs::File::create(dir.path().join(format!("n{}.log", i + 1)))
                .expect("a log file");
            let child = Command::new(nats_server_binary())
                .arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("nats-server must be installed");
            nodes.push(Some(child));
        }
        for port in &ports {
            wait_for_jetstream(*port);
        }
        NatsCluster {
            dir,
            nodes,
            ports,
            ca_file,
        }
    }

    /// Every node's URL, comma-separated (the form `NATS_URL` takes): TLS.
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("tls://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA the nodes' certificates are signed by (`NATS_CA_FILE`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Connection settings for the cluster as the shipped user `user` (`ingress`, `resolver`).
    pub fn nats_args(&self, user: &str) -> frontline_runtime::nats::NatsArgs {
        let mut args = frontline_runtime::nats::NatsArgs::plain(self.urls());
        args.ca_file = Some(self.ca_file.clone());
        args.user = Some(user.to_owned());
        args.password = Some(frontline_runtime::secret::Secret::new(format!("{user}-pw")));
        args
    }

    /// A client for the test's own reads (the `test` user, over TLS).
    ///
    /// # Panics
    /// When no node can be reached within [`crate::WAIT`].
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<String> = self.urls().split(',').map(str::to_owned).collect();
        let connecting = async_nats::ConnectOptions::new()
            .add_root_certificates(self.ca_file.clone())
            .connect(urls);
        tokio::time::timeout(crate::WAIT, connecting)
            .await
            .expect("connect in time")
            .expect("connect")
    }

    /// Kills node `name` (`n1`, `n2`, `n3`) with SIGKILL.
    pub fn kill(&mut self, name: &str) {
        let index: usize = name
            .trim_start_matches('n')
            .parse::<usize>()
            .expect("a node name")
            - 1;
        if let Some(mut child) = self.nodes[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A node's log, for diagnostics.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
