//! `loadgen`: sends signed Conversations webhooks exactly as Twilio would and measures the
//! answers. Closed loop (`--connections N`, as fast as each connection can go) or open loop
//! (`--rate R`: requests are due at fixed times and latency counts from the time each was due,
//! so queueing is not hidden). Latencies go into an HDR histogram; the result is a table, JSON
//! (`--json`) or a Markdown row (`--row LABEL`). With `--runs K` the median run (by throughput)
//! is reported. Beside the target, a probe thread measures the host: how late a 0.5 ms sleep
//! wakes, a floor under any latency measured on it.
//!
//! ```text
//! loadgen --target 127.0.0.1:8080 --kind pre --connections 64 --duration 5 --warmup 2 --runs 3
//! loadgen --target 127.0.0.1:8080 --kind post --rate 2000 --duration 5
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use frontline_tests::http::{WEBHOOK_PATH, form_encode};
use frontline_tests::twilio::{self, Params};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// Which traffic to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// onConversationAdd (known and unknown customers) and onMessageAdd: answered by resolvers.
    Pre,
    /// onParticipantAdded and onMessageAdded: stored in JetStream.
    Post,
}

/// Load generator for the webhook route.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// host:port of the ingress (or of a `minimal` yardstick).
    #[arg(long)]
    target: SocketAddr,
    /// The traffic.
    #[arg(long, value_enum, default_value_t = Kind::Pre)]
    kind: Kind,
    /// The origin the ingress is configured with (signatures are computed for it).
    #[arg(long, default_value = twilio::PUBLIC_URL)]
    public_url: String,
    /// The auth token to sign with.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = twilio::AUTH_TOKEN, hide_env_values = true)]
    token: String,
    /// Connections (closed loop), or connection pool size (open loop).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open loop: requests per second. Without it, closed loop.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured warm-up before the runs.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Runs; the median by throughput is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print one Markdown table row with this label.
    #[arg(long)]
    row: Option<String>,
}

/// One prepared request: a signed form body.
struct Prepared {
    body: Bytes,
    signature: String,
}

/// What one connection measured: latencies of the 200s, and the other outcomes by label.
type WorkerResult = (Histogram<u64>, BTreeMap<String, u64>);

/// What one run measured.
struct Run {
    histogram: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    elapsed: Duration,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.histogram.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Varied, realistic webhooks: several customers (known and unknown), conversations and
/// participants, so nothing is trivially cached or de-duplicated.
fn prepare(args: &Args) -> Vec<Prepared> {
    let url = format!("{}{WEBHOOK_PATH}", args.public_url.trim_end_matches('/'));
    let addresses = [
        "+14155550101",
        "+14155550102",
        "whatsapp:+442071838750",
        "+447700900123",
        "+19995550000",
        "+19995550001",
    ];
    (0..1024)
        .map(|i| {
            let conversation = format!("CH{i:032x}");
            let params: Params = match (args.kind, i % 2) {
                (Kind::Pre, 0) => twilio::conversation_add(addresses[i % addresses.len()]),
                (Kind::Pre, _) => twilio::event(
                    "onMessageAdd",
                    &[
                        ("ConversationSid", &conversation),
                        ("Body", "Is my order on its way?"),
                        ("Author", addresses[i % 6]),
                        ("Attributes", "{}"),
                    ],
                ),
                (Kind::Post, 0) => twilio::participant_added(
                    &conversation,
                    &format!("MB{i:032x}"),
                    addresses[i % addresses.len()],
                ),
                (Kind::Post, _) => {
                    twilio::message_added(&conversation, i as u32, "Thanks, that helps!")
                }
            };
            Prepared {
                signature: twilio::sign(&args.token, &url, &params),
                body: Bytes::from(form_encode(&params)),
            }
        })
        .collect()
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(target: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(target)
        .await
        .expect("connect to the target");
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    sender
}

/// Sends one request (a fresh idempotency token each time); the status, or an error label.
async fn send(
    sender: &mut Sender,
    target: SocketAddr,
    prepared: &Prepared,
    token: u64,
) -> Result<u16, String> {
    if sender.ready().await.is_err() {
        *sender = connect(target).await;
    }
    let request = http::Request::post(WEBHOOK_PATH)
        .header(http::header::HOST, target.to_string())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header("X-Twilio-Signature", &prepared.signature)
        .header("I-Twilio-Idempotency-Token", format!("lg-{token}"))
        .body(Full::new(prepared.body.clone()))
        .expect("a valid request");
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("transport: {err}"))?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

fn record(
    histogram: &mut Histogram<u64>,
    errors: &mut BTreeMap<String, u64>,
    started: Instant,
    result: Result<u16, String>,
) {
    match result {
        Ok(200) => {
            let _ = histogram.record(started.elapsed().as_micros().max(1) as u64);
        }
        Ok(status) => *errors.entry(status.to_string()).or_default() += 1,
        Err(err) => *errors.entry(err).or_default() += 1,
    }
}

/// Closed loop: every connection sends its next request as soon as the last is answered.
async fn closed_loop(
    args: &Args,
    requests: Arc<Vec<Prepared>>,
    duration: Duration,
    tokens: Arc<AtomicU64>,
) -> Run {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.connections {
        let (requests, tokens, target) = (requests.clone(), tokens.clone(), args.target);
        workers.push(tokio::spawn(async move {
            let mut sender = connect(target).await;
            let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
            let mut errors = BTreeMap::new();
            let mut i = worker * 17;
            while started.elapsed() < duration {
                let token = tokens.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let result = send(&mut sender, target, &requests[i % requests.len()], token).await;
                record(&mut histogram, &mut errors, sent, result);
                i += 1;
            }
            (histogram, errors)
        }));
    }
    merge(workers, started).await
}

/// Open loop: request k is due at `k / rate`. A request that waited for a busy connection is
/// timed from when it was due, so queueing is never hidden; a connection that was idle and woke
/// for it is timed from its wake-up, so the timer's millisecond granularity (the generator's own
/// lateness, not the server's) is not counted either.
async fn open_loop(
    args: &Args,
    rate: u64,
    requests: Arc<Vec<Prepared>>,
    duration: Duration,
    tokens: Arc<AtomicU64>,
) -> Run {
    let started = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (requests, tokens, next, target) =
            (requests.clone(), tokens.clone(), next.clone(), args.target);
        workers.push(tokio::spawn(async move {
            let mut sender = connect(target).await;
            let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
            let mut errors = BTreeMap::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let due = started + interval * k as u32;
                let from = if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    due
                };
                let token = tokens.fetch_add(1, Ordering::Relaxed);
                let result = send(
                    &mut sender,
                    target,
                    &requests[k as usize % requests.len()],
                    token,
                )
                .await;
                record(&mut histogram, &mut errors, from, result);
            }
            (histogram, errors)
        }));
    }
    merge(workers, started).await
}

async fn merge(workers: Vec<tokio::task::JoinHandle<WorkerResult>>, started: Instant) -> Run {
    let total = Mutex::new((
        Histogram::<u64>::new(3).expect("a histogram"),
        BTreeMap::<String, u64>::new(),
    ));
    for worker in workers {
        let (histogram, errors) = worker.await.expect("a worker");
        let mut total = total.lock().await;
        let _ = total.0.add(&histogram);
        for (label, count) in errors {
            *total.1.entry(label).or_default() += count;
        }
    }
    let (histogram, errors) = total.into_inner();
    Run {
        histogram,
        errors,
        elapsed: started.elapsed(),
    }
}

/// Measures the host rather than the target: a thread that sleeps 0.5 ms at a time and records
/// how late it wakes, in microseconds. A request's latency is no better than the wake-ups along
/// its way (load generator, server, broker), so the probe's tail is a floor under the run's tail
/// on this host.
struct WakeProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Wakes>,
}

/// What the probe saw.
struct Wakes {
    /// Lateness of each wake-up, in microseconds.
    lateness: Histogram<u64>,
    /// The share of the time a request arriving at a random moment would have waited more than
    /// 1 ms for the stalled thread to run again: the sum over wake-ups of (lateness - 1 ms),
    /// over the time probed. Above 1 %, no p99 on this host can be under 1 ms.
    over_1ms_share: f64,
}

impl WakeProbe {
    const NAP: Duration = Duration::from_micros(500);

    fn start() -> WakeProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut lateness = Histogram::<u64>::new(3).expect("a histogram");
            let mut over = Duration::ZERO;
            let started = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let slept = Instant::now();
                std::thread::sleep(Self::NAP);
                let late = slept.elapsed().saturating_sub(Self::NAP);
                over += late.saturating_sub(Duration::from_millis(1));
                let _ = lateness.record(late.as_micros() as u64);
            }
            Wakes {
                lateness,
                over_1ms_share: over.as_secs_f64() / started.elapsed().as_secs_f64(),
            }
        });
        WakeProbe { stop, thread }
    }

    fn finish(self) -> Wakes {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the probe thread")
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1_000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let requests = Arc::new(prepare(&args));
    let tokens = Arc::new(AtomicU64::new(std::process::id() as u64 * 1_000_000_000));
    let measure = |duration: Duration| {
        let (requests, tokens) = (requests.clone(), tokens.clone());
        let args = &args;
        async move {
            match args.rate {
                Some(rate) => open_loop(args, rate, requests, duration, tokens).await,
                None => closed_loop(args, requests, duration, tokens).await,
            }
        }
    };
    if args.warmup > 0.0 {
        measure(Duration::from_secs_f64(args.warmup)).await;
    }
    let probe = WakeProbe::start();
    let mut runs = Vec::new();
    for _ in 0..args.runs.max(1) {
        runs.push(measure(Duration::from_secs_f64(args.duration)).await);
    }
    let wake = probe.finish();
    runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let run = &runs[runs.len() / 2];
    let h = &run.histogram;
    let errors: u64 = run.errors.values().sum();
    let mode = args.rate.map_or(
        format!("closed loop, {} connections", args.connections),
        |r| format!("open loop, {r} req/s"),
    );
    if let Some(label) = &args.row {
        println!(
            "| {label} | {mode} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {errors} |",
            run.throughput(),
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            ms(h, 0.999),
            h.max() as f64 / 1_000.0
        );
    } else if args.json {
        let errors_json: serde_json::Map<String, serde_json::Value> = run
            .errors
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "kind": format!("{:?}", args.kind).to_lowercase(), "mode": mode,
                "requests": h.len(), "seconds": run.elapsed.as_secs_f64(), "throughput": run.throughput(),
                "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9), "p99_ms": ms(h, 0.99), "p999_ms": ms(h, 0.999),
                "max_ms": h.max() as f64 / 1_000.0, "errors": errors_json,
                "wake_p50_ms": ms(&wake.lateness, 0.5), "wake_p99_ms": ms(&wake.lateness, 0.99),
                "wake_max_ms": wake.lateness.max() as f64 / 1_000.0,
                "wake_over_1ms_share": wake.over_1ms_share,
            })
        );
    } else {
        println!(
            "{:?} traffic, {mode}, median of {} run(s)",
            args.kind,
            runs.len()
        );
        println!(
            "  requests   {:>10}   ({:.0} req/s)",
            h.len(),
            run.throughput()
        );
        for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            println!("  {label:<8} {:>10.3} ms", ms(h, q));
        }
        println!("  max      {:>10.3} ms", h.max() as f64 / 1_000.0);
        println!(
            "  host     {:>10.3} ms   p99 lateness of a 0.5 ms sleep (max {:.3} ms; {:.2} % of the time over 1 ms late)",
            ms(&wake.lateness, 0.99),
            wake.lateness.max() as f64 / 1_000.0,
            wake.over_1ms_share * 100.0
        );
        for (label, count) in &run.errors {
            println!("  error    {count:>10}   {label}");
        }
    }
}
