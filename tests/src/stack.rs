//! Spawners for the real ingress and resolver `run` functions on port 0, each stopped by a
//! oneshot (the same path as SIGTERM in the binaries), and readers of what the stream holds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use frontline_shared::Envelope;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::{WebhookClient, admin_get};
use crate::nats::NatsServer;
use crate::{WAIT, eventually, twilio};

/// A running ingress.
#[derive(Debug)]
pub struct Ingress {
    /// The public listener.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// A client for its webhook route.
    pub client: WebhookClient,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), frontline_ingress::RunError>>>,
}

/// The ingress configuration the tests start from: signatures checked against
/// [`twilio::PUBLIC_URL`] and [`twilio::AUTH_TOKEN`].
pub fn ingress_config(nats_url: &str) -> frontline_ingress::Config {
    frontline_ingress::Config::for_test(nats_url, twilio::PUBLIC_URL, twilio::AUTH_TOKEN)
}

/// Starts an ingress with `config` (listen addresses are replaced by port 0).
pub async fn spawn_ingress(config: frontline_ingress::Config) -> Ingress {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let admin = admin_listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(frontline_ingress::run(
        listener,
        admin_listener,
        config,
        async {
            let _ = stopped.await;
        },
    ));
    Ingress {
        addr,
        admin,
        client: WebhookClient::new(addr),
        stop: Some(stop),
        task: Some(task),
    }
}

impl Ingress {
    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        wait_ready(self.admin, "ingress").await;
    }

    /// Signals shutdown and waits for `run` to return.
    ///
    /// # Panics
    /// When `run` fails or does not return in time.
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the ingress stops in time")
            .expect("no panic")
            .expect("run returns Ok");
    }
}

/// A running resolver.
#[derive(Debug)]
pub struct Resolver {
    /// The admin listener.
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), frontline_resolver::RunError>>>,
}

/// The example customer directory shipped in `deploy/`.
pub fn example_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/customers.example.json")
}

/// The resolver configuration the tests start from: the example directory.
pub fn resolver_config(nats_url: &str) -> frontline_resolver::Config {
    let mut config = frontline_resolver::Config::for_test(nats_url, example_directory());
    config.templates = frontline_resolver::callbacks::TemplatesSource::File(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates.example.json"),
    );
    config.proxy_addresses = PROXY_ADDRESSES.parse().expect("proxy addresses parse");
    config
}

/// The resolvers' `PROXY_ADDRESSES` in the tests.
pub const PROXY_ADDRESSES: &str = "sms=+18005550100,whatsapp=whatsapp:+18005550100";

/// Starts a resolver with `config`.
pub async fn spawn_resolver(config: frontline_resolver::Config) -> Resolver {
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = admin_listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(frontline_resolver::run(admin_listener, config, async {
        let _ = stopped.await;
    }));
    Resolver {
        admin,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Resolver {
    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        wait_ready(self.admin, "resolver").await;
    }

    /// Signals shutdown and waits for `run` to return.
    ///
    /// # Panics
    /// When `run` fails or does not return in time.
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the resolver stops in time")
            .expect("no panic")
            .expect("run returns Ok");
    }
}

async fn wait_ready(admin: SocketAddr, what: &str) {
    eventually(WAIT, &format!("{what} /readyz"), || async move {
        (admin_get(admin, "/readyz").await.status == 200).then_some(())
    })
    .await;
}

/// A nats-server, one resolver and one ingress, all ready.
#[derive(Debug)]
pub struct Stack {
    /// The broker.
    pub nats: NatsServer,
    /// The resolver.
    pub resolver: Resolver,
    /// The ingress.
    pub ingress: Ingress,
}

impl Stack {
    /// Starts everything with the test defaults.
    pub async fn start() -> Stack {
        Stack::start_with(|_| {}).await
    }

    /// Starts everything, letting the test adjust the ingress configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut frontline_ingress::Config)) -> Stack {
        let nats = NatsServer::start();
        let resolver = spawn_resolver(resolver_config(&nats.url())).await;
        let mut config = ingress_config(&nats.url());
        adjust(&mut config);
        let ingress = spawn_ingress(config).await;
        resolver.wait_ready().await;
        ingress.wait_ready().await;
        Stack {
            nats,
            resolver,
            ingress,
        }
    }

    /// The webhook client.
    pub fn client(&self) -> &WebhookClient {
        &self.ingress.client
    }
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its subject.
    pub subject: String,
    /// Its headers.
    pub headers: async_nats::HeaderMap,
    /// Its decoded envelope.
    pub envelope: Envelope,
}

impl Stored {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_string())
    }
}

/// A client of the test's own nats-server (a comma-separated list for a cluster).
pub async fn connect(nats_url: &str) -> async_nats::Client {
    let urls: Vec<&str> = nats_url.split(',').collect();
    tokio::time::timeout(WAIT, async_nats::connect(urls))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Every message in `stream`, in order.
pub async fn stored(nats_url: &str, stream: &str) -> Vec<Stored> {
    stored_from(&connect(nats_url).await, stream).await
}

/// The `Body` parameter of every message in `stream`, in order (the tests tell their events
/// apart by it).
pub async fn stored_bodies(nats_url: &str, stream: &str) -> Vec<String> {
    stored(nats_url, stream)
        .await
        .iter()
        .map(|m| m.envelope.params.get("Body").unwrap_or("?").to_owned())
        .collect()
}

/// Every message in `stream`, in order, read through `client`.
pub async fn stored_from(client: &async_nats::Client, stream: &str) -> Vec<Stored> {
    let js = jetstream::new(client.clone());
    let mut handle = js.get_stream(stream).await.expect("the stream exists");
    let state = handle.info().await.expect("stream info").state.clone();
    let mut messages = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let message = handle
            .get_raw_message(sequence)
            .await
            .expect("a stored message");
        messages.push(Stored {
            subject: message.subject.to_string(),
            headers: message.headers.clone(),
            envelope: Envelope::from_slice(&message.payload).expect("an envelope"),
        });
    }
    messages
}

/// The resolvers' participant consumer as the server sees it now (pending acks, redeliveries).
pub async fn participant_consumer_info(nats_url: &str) -> async_nats::jetstream::consumer::Info {
    let js = jetstream::new(connect(nats_url).await);
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(
            frontline_shared::subject::RESOLVER_CONSUMER,
            frontline_shared::subject::DEFAULT_STREAM,
        )
        .await
        .expect("the participant consumer exists");
    consumer.info().await.expect("consumer info").clone()
}

/// The resolver configuration with Twilio REST calls going to `fake`, and a short ack wait so
/// redeliveries happen within a test.
pub fn resolver_config_with_twilio(
    nats_url: &str,
    fake: &crate::fake_twilio::FakeTwilio,
) -> frontline_resolver::Config {
    let mut config = resolver_config(nats_url);
    config.twilio_account_sid = Some(twilio::ACCOUNT_SID.to_owned());
    config.twilio_auth_tokens = Some(twilio::AUTH_TOKEN.parse().expect("tokens parse"));
    config.twilio_api_base = fake.base_url();
    config.twilio_timeout_ms = 2_000;
    config.ack_wait_secs = 2;
    config
}

/// A resolver on a runtime of its own, so that it can be killed like a process: every task and
/// socket it has vanishes at once, with no drain and no acknowledgement.
#[derive(Debug)]
pub struct IsolatedResolver {
    /// The admin listener.
    pub admin: SocketAddr,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a resolver on its own runtime and thread.
pub fn spawn_isolated_resolver(config: frontline_resolver::Config) -> IsolatedResolver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let admin = listener.local_addr().expect("addr");
    let (kill, killed) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("a tokio listener");
            frontline_resolver::run(listener, config, std::future::pending()).await
        });
        let _ = killed.recv();
        runtime.shutdown_background();
    });
    IsolatedResolver {
        admin,
        kill: Some(kill),
        thread: Some(thread),
    }
}

impl IsolatedResolver {
    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        wait_ready(self.admin, "isolated resolver").await;
    }

    /// Kills it: the runtime and every connection go away at once.
    pub fn kill(mut self) {
        let _ = self.kill.take().map(|kill| kill.send(()));
        let _ = self.thread.take().map(std::thread::JoinHandle::join);
    }
}

impl Drop for IsolatedResolver {
    fn drop(&mut self) {
        let _ = self.kill.take().map(|kill| kill.send(()));
    }
}

/// Runs `command` with its output captured; a command still running after `within` is killed
/// (and its output so far returned), so a hang fails the test instead of stalling it.
///
/// # Panics
/// When the command cannot be started.
pub fn run_bounded(mut command: std::process::Command, within: Duration) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the output")
}

/// The path of a workspace binary (`ingress`, `resolver`), built first if needed, so that
/// process-level tests (signals, SIGKILL) run the real executables.
///
/// # Panics
/// When the build fails.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // Tests run from target/<profile>/deps/; build the binaries for the same profile.
        let exe = std::env::current_exe().expect("the test executable");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>")
            .to_path_buf();
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "-p",
            "frontline-ingress",
            "-p",
            "frontline-resolver",
            "--bins",
        ]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        dir
    });
    dir.join(name)
}

/// A stand-in in the resolvers' queue group, for putting the ingress in front of a slow, broken
/// or scripted resolver: request `n` (from 1) is answered with `reply(n)` after `delay`, or not
/// at all when that is `None`. Returns how many requests it has seen.
pub async fn responder<F>(
    nats_url: &str,
    delay: Duration,
    reply: F,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize>
where
    F: Fn(usize) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    responder_on(nats_url, "frontline.pre.>", delay, reply).await
}

/// As [`responder`], for the requests on `subject` (the callbacks' `frontline.callback.>`, say).
pub async fn responder_on<F>(
    nats_url: &str,
    subject: &str,
    delay: Duration,
    reply: F,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize>
where
    F: Fn(usize) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = connect(nats_url).await;
    let mut subscriber = client
        .queue_subscribe(
            subject.to_owned(),
            frontline_shared::subject::QUEUE_GROUP.to_owned(),
        )
        .await
        .expect("subscribe");
    frontline_runtime::nats::round_trip(&client)
        .await
        .expect("the server has the subscription");
    let (counter, reply) = (seen.clone(), std::sync::Arc::new(reply));
    tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let answer = reply(counter.fetch_add(1, Ordering::SeqCst) + 1);
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let (Some(to), Some(answer)) = (message.reply, answer) {
                    let _ = client.publish(to, answer.into()).await;
                    let _ = client.flush().await;
                }
            });
        }
    });
    seen
}

/// Starts an ingress on `nats_url` with the test configuration adjusted by `adjust`, and waits
/// until it is ready.
pub async fn ready_ingress(
    nats_url: &str,
    adjust: impl FnOnce(&mut frontline_ingress::Config),
) -> Ingress {
    let mut config = ingress_config(nats_url);
    adjust(&mut config);
    let ingress = spawn_ingress(config).await;
    ingress.wait_ready().await;
    ingress
}
