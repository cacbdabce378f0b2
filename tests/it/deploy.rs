//! The deploy files, checked with the tools of their own worlds (no container engine, init
//! system or cluster runs here): hadolint on the Dockerfile, `docker-compose config` on the
//! compose stack, `systemd-analyze` on the units, `kubectl kustomize` and kubernetes-validate on
//! the manifests; then what those tools cannot know, read against the binaries themselves: every
//! variable a file sets is one the binary reads (`--help`), ports, probes, grace periods, and
//! the copies that must stay equal (alert rules, NATS permissions, the pinned NATS release).
//!
//! A tool that `deploy/test.sh` could not install is reported and its check skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use frontline_shared::subject;
use frontline_tests::stack::binary;
use serde::Deserialize;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A validator on `PATH` or in `.tools/bin` (where `deploy/test.sh` installs them); `None`, with
/// the reason printed, when it is not installed.
fn tool(name: &str) -> Option<PathBuf> {
    let local = repo().join(".tools/bin").join(name);
    if local.exists() {
        return Some(local);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if on_path.is_none() {
        eprintln!("SKIPPED: {name} is not installed (deploy/test.sh installs it where it can)");
    }
    on_path
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the tool runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every YAML document in `text`, as JSON values.
fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

/// What a binary's `--help` says it reads: each variable with its default, if any (read once
/// per binary and test process).
fn variables(name: &str) -> BTreeMap<String, Option<String>> {
    static READ: std::sync::Mutex<BTreeMap<String, BTreeMap<String, Option<String>>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut read = READ.lock().unwrap();
    read.entry(name.to_owned())
        .or_insert_with(|| help_variables(name))
        .clone()
}

fn help_variables(name: &str) -> BTreeMap<String, Option<String>> {
    let output = run(Command::new(binary(name)).arg("--help").env_clear());
    let help = String::from_utf8(output.stdout).unwrap();
    let mut variables = BTreeMap::new();
    let mut lines = help.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("[env: ") else {
            continue;
        };
        let variable = rest
            .split(['=', ']'])
            .next()
            .expect("a variable name")
            .to_owned();
        let default = lines
            .peek()
            .and_then(|next| next.strip_prefix("[default: "))
            .map(|value| value.trim_end_matches(']').to_owned());
        variables.insert(variable, default);
    }
    assert!(variables.len() > 10, "no variables in {name} --help");
    variables
}

/// Panics naming every variable in `named` that the binary does not read.
fn assert_known(binary_name: &str, named: impl IntoIterator<Item = String>, file: &str) {
    let known = variables(binary_name);
    let unknown: BTreeSet<String> = named
        .into_iter()
        .filter(|name| !known.contains_key(name))
        .collect();
    assert!(
        unknown.is_empty(),
        "{file} sets variables the {binary_name} does not read: {unknown:?}"
    );
}

fn port_of(listen: &str) -> u16 {
    listen
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {listen}"))
}

/// The default of `variable` in a binary's `--help`.
fn default_of(binary_name: &str, variable: &str) -> String {
    variables(binary_name)
        .remove(variable)
        .flatten()
        .unwrap_or_else(|| panic!("{binary_name} has no default for {variable}"))
}

/// The nats-server release the tests run on and the deploy files pin (deploy/common.sh).
fn pinned_nats_version() -> String {
    read("deploy/common.sh")
        .lines()
        .find_map(|line| line.strip_prefix("NATS_CURRENT_VERSION="))
        .expect("NATS_CURRENT_VERSION in deploy/common.sh")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The container image.

/// The Dockerfile's final stage: its instructions, continuation lines joined.
fn final_stage() -> Vec<(String, String)> {
    let text = read("deploy/container/Dockerfile").replace("\\\n", " ");
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
            (keyword.to_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("a FROM");
    instructions[last_from..].to_vec()
}

#[test]
fn hadolint_passes_the_dockerfile() {
    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    run(Command::new(hadolint)
        .args(["--failure-threshold", "info"])
        .arg(repo().join("deploy/container/Dockerfile")));
}

#[test]
fn the_image_holds_both_binaries_runs_as_non_root_without_a_shell_and_exposes_the_spec_ports() {
    let stage = final_stage();
    let all = |keyword: &str| -> Vec<String> {
        stage
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.clone())
            .collect()
    };
    // A base without a shell (distroless, not its :debug variant).
    let base = &stage[0].1;
    assert!(
        base.contains("distroless") && !base.contains("debug"),
        "{base}"
    );
    // Both binaries, under the names their crates build.
    let copied: BTreeSet<String> = all("COPY")
        .iter()
        .filter(|rest| rest.contains("--from=build") && rest.ends_with("/usr/local/bin/"))
        .flat_map(|rest| {
            rest.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|word| word.starts_with("/out/"))
        .map(|word| word.trim_start_matches("/out/").to_owned())
        .collect();
    for crate_dir in ["ingress", "resolver"] {
        let manifest = read(&format!("{crate_dir}/Cargo.toml"));
        let name = manifest
            .split("[[bin]]")
            .nth(1)
            .and_then(|bin| bin.lines().find_map(|line| line.strip_prefix("name = ")))
            .expect("a [[bin]] name")
            .trim_matches('"');
        assert!(
            copied.contains(name),
            "{name} is not in the image: {copied:?}"
        );
    }
    assert_eq!(copied.len(), 2, "{copied:?}");
    assert_eq!(all("ENTRYPOINT"), vec![r#"["/usr/local/bin/ingress"]"#]);
    // A numeric, non-root user, so runAsNonRoot can check it.
    let user = all("USER").pop().expect("a USER");
    let uid: u32 = user.split(':').next().unwrap().parse().expect("numeric");
    assert_ne!(uid, 0);
    // Every variable set is one a binary reads; the listeners open to the pod network on the
    // ports of SPEC.md (the binaries' defaults), and those are the ports declared.
    let env: BTreeMap<String, String> = all("ENV")
        .iter()
        .flat_map(|rest| {
            rest.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let (ingress, resolver) = (variables("ingress"), variables("resolver"));
    for name in env.keys() {
        assert!(
            ingress.contains_key(name) || resolver.contains_key(name),
            "the image sets {name}, which no binary reads"
        );
    }
    let mut listeners = BTreeSet::new();
    for (binary_name, variable) in [
        ("ingress", "INGRESS_LISTEN"),
        ("ingress", "INGRESS_ADMIN_LISTEN"),
        ("resolver", "RESOLVER_ADMIN_LISTEN"),
    ] {
        let set = &env[variable];
        assert!(set.starts_with("0.0.0.0:"), "{variable}={set}");
        assert_eq!(
            port_of(set),
            port_of(&default_of(binary_name, variable)),
            "{variable}"
        );
        listeners.insert(port_of(set));
    }
    let exposed: BTreeSet<u16> = all("EXPOSE")
        .iter()
        .flat_map(|rest| {
            rest.split_whitespace()
                .map(|port| port.parse::<u16>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(exposed, listeners);
    assert_eq!(listeners, BTreeSet::from([8080, 9090, 9091]));
    // The example directory and templates the variables name are in the image.
    for variable in ["CUSTOMER_DIRECTORY", "TEMPLATES"] {
        let path = env[variable].strip_prefix("file:").expect("a file: source");
        assert!(
            all("COPY").iter().any(|rest| rest.ends_with(path)),
            "{variable}={path} is not copied into the image"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The compose stack.

#[test]
fn the_compose_stack_is_valid_and_sets_only_variables_the_binaries_read() {
    let Some(compose) = tool("docker-compose") else {
        return;
    };
    let file = repo().join("deploy/compose.yaml");
    let config = |env: &[(&str, &str)]| {
        Command::new(&compose)
            .arg("-f")
            .arg(&file)
            .arg("config")
            .env_remove("PUBLIC_URL")
            .env_remove("TWILIO_ACCOUNT_SID")
            .env_remove("TWILIO_AUTH_TOKEN")
            .envs(env.iter().copied())
            .output()
            .expect("docker-compose runs")
    };
    // The secrets are never defaulted: without them the stack refuses to start.
    let missing = config(&[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("TWILIO_AUTH_TOKEN"));

    let output = config(&[
        ("PUBLIC_URL", "https://hooks.example.com"),
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        ("TWILIO_AUTH_TOKEN", "token"),
    ]);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = yaml_documents(&String::from_utf8(output.stdout).unwrap()).remove(0);
    let services = rendered["services"].as_object().unwrap();
    let ours: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, service)| service["image"] == "frontline:local")
        .collect();
    let binaries: Vec<&str> = ours
        .iter()
        .map(|(_, service)| {
            if service["entrypoint"] == json!(["/usr/local/bin/resolver"]) {
                "resolver"
            } else {
                "ingress"
            }
        })
        .collect();
    assert_eq!(binaries, ["ingress", "resolver", "resolver"]);
    for ((name, service), binary_name) in ours.iter().zip(binaries) {
        let named = service["environment"].as_object().unwrap().keys().cloned();
        assert_known(binary_name, named, &format!("compose service {name}"));
        assert_eq!(service["read_only"], true, "{name}");
        assert_eq!(service["cap_drop"], json!(["ALL"]), "{name}");
    }
    // NATS is the release the tests run on; Prometheus scrapes the services that exist, on the
    // admin ports the image sets.
    assert_eq!(
        services["nats"]["image"],
        format!("nats:{}", pinned_nats_version())
    );
    let scrape = yaml_documents(&read("deploy/prometheus/compose.yml")).remove(0);
    for job in scrape["scrape_configs"].as_array().unwrap() {
        for target in job["static_configs"][0]["targets"].as_array().unwrap() {
            let (host, port) = target.as_str().unwrap().split_once(':').unwrap();
            assert!(services.contains_key(host), "{target} names no service");
            let expected = if host == "ingress" { "9090" } else { "9091" };
            assert_eq!(port, expected, "{target}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// systemd.

const UNITS: [(&str, &str); 2] = [
    ("frontline-ingress.service", "ingress"),
    ("frontline-resolver@.service", "resolver"),
];

/// `KEY=value` settings of a unit or an environment file, in order.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn systemd_units_verify_cleanly_and_expose_at_most_2() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    // verify checks the command exists: point ExecStart at the binaries just built, in a copy.
    let dir = tempfile::tempdir().unwrap();
    let mut copies = Vec::new();
    for (unit, binary_name) in UNITS {
        let text = read(&format!("deploy/systemd/{unit}"));
        let installed = format!("/usr/local/bin/{binary_name}");
        assert!(text.contains(&format!("ExecStart={installed}\n")), "{unit}");
        let copy = dir.path().join(unit.replace("@.", "@1."));
        let built = binary(binary_name).display().to_string();
        std::fs::write(&copy, text.replace(&installed, &built)).unwrap();
        copies.push(copy);
    }
    let output = run(Command::new(&analyze)
        .args(["verify", "--man=no"])
        .args(&copies));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");

    for (unit, _) in UNITS {
        let output = run(Command::new(&analyze)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(repo().join("deploy/systemd").join(unit)));
        let report = String::from_utf8_lossy(&output.stdout);
        let exposure: f64 = report
            .lines()
            .find_map(|line| line.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in: {report}"));
        assert!(exposure <= 2.0, "{unit}: exposure {exposure}");
    }
}

#[test]
fn systemd_units_notify_stop_in_grace_and_their_env_files_set_only_known_variables() {
    let grace: u64 = default_of("ingress", "SHUTDOWN_GRACE_SECS")
        .parse()
        .unwrap();
    for (unit, binary_name) in UNITS {
        let unit_settings = settings(&read(&format!("deploy/systemd/{unit}")));
        let value = |key: &str| -> Vec<&str> {
            unit_settings
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(value("Type"), ["notify"], "{unit}");
        assert_eq!(value("KillSignal"), ["SIGTERM"], "{unit}");
        assert_eq!(value("RestartPreventExitStatus"), ["64"], "{unit}");
        // Stop: the grace, then at most 5 s of draining NATS, before systemd kills.
        let stop: u64 = value("TimeoutStopSec")[0]
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(stop > grace + 5, "{unit}: TimeoutStopSec={stop}");
        for setting in ["DynamicUser", "NoNewPrivileges", "PrivateTmp"] {
            assert_eq!(value(setting), ["yes"], "{unit}: {setting}");
        }
        assert_eq!(value("ProtectSystem"), ["strict"], "{unit}");
        assert!(!value("SystemCallFilter").is_empty(), "{unit}");

        // Every environment file is shipped (as an example), and names only known variables.
        for path in value("EnvironmentFile") {
            let file = path
                .trim_start_matches('-')
                .strip_prefix("/etc/frontline/")
                .expect("under /etc/frontline")
                .replace("%i", "1");
            let text = read(&format!("deploy/systemd/{file}"));
            let named = settings(&text).into_iter().map(|(k, _)| k);
            assert_known(binary_name, named, &file);
        }
    }
    // Replicas on one host each get their own admin port.
    let first = settings(&read("deploy/systemd/resolver@1.env"));
    assert_eq!(
        first,
        [(
            "RESOLVER_ADMIN_LISTEN".to_owned(),
            default_of("resolver", "RESOLVER_ADMIN_LISTEN")
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

/// `kubectl kustomize` of a folder under deploy/kubernetes: its objects.
fn kustomize(kubectl: &Path, folder: &str) -> (String, Vec<Value>) {
    let output = run(Command::new(kubectl)
        .arg("kustomize")
        .arg(repo().join("deploy/kubernetes").join(folder)));
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = yaml_documents(&text);
    (text, objects)
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn kustomize_renders_and_every_core_object_matches_the_kubernetes_schemas() {
    let Some(kubectl) = tool("kubectl") else {
        return;
    };
    let validate = tool("kubernetes-validate");
    for folder in ["", "overlays/example"] {
        let (text, objects) = kustomize(&kubectl, folder);
        assert!(objects.len() >= 10, "{folder}: {} objects", objects.len());
        let Some(validate) = &validate else {
            continue;
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        // 1.30: the oldest Kubernetes with the preStop sleep action on by default.
        let output = run(Command::new(validate)
            .args(["--strict", "--quiet", "--kubernetes-version", "1.30.0"])
            .arg(file.path()));
        let report = String::from_utf8_lossy(&output.stdout);
        // The custom resources (KEDA, Prometheus Operator) have no schema there; the next
        // test reads them.
        for line in report.lines().filter(|line| !line.trim().is_empty()) {
            assert!(
                line.contains("Couldn't find schema for kind ScaledObject")
                    || line.contains("Couldn't find schema for kind PodMonitor")
                    || line.contains("Couldn't find schema for kind PrometheusRule"),
                "{folder}: {line}"
            );
        }
    }
}

#[test]
fn kubernetes_deployments_probe_the_admin_port_outlast_the_grace_and_set_known_variables() {
    let Some(kubectl) = tool("kubectl") else {
        return;
    };
    for folder in ["", "overlays/example"] {
        let (_, objects) = kustomize(&kubectl, folder);
        let config_maps: BTreeMap<String, &Value> = of_kind(&objects, "ConfigMap")
            .into_iter()
            .map(|map| (map["metadata"]["name"].as_str().unwrap().to_owned(), map))
            .collect();
        let deployments = of_kind(&objects, "Deployment");
        assert_eq!(deployments.len(), 2, "{folder}");
        let mut admin_ports = Vec::new();
        for deployment in deployments {
            let name = deployment["metadata"]["name"].as_str().unwrap();
            let pod = &deployment["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let command = container["command"][0].as_str().unwrap();
            let binary_name = command.rsplit('/').next().unwrap();
            // The environment: the ConfigMaps it loads whole, then its own entries.
            let mut env: BTreeMap<String, String> = BTreeMap::new();
            for source in container["envFrom"].as_array().unwrap() {
                let map = source["configMapRef"]["name"].as_str().unwrap();
                for (k, v) in config_maps[map]["data"].as_object().unwrap() {
                    env.insert(k.clone(), v.as_str().unwrap().to_owned());
                }
            }
            for entry in container["env"].as_array().unwrap() {
                let value = entry["value"].as_str().unwrap_or("(from a Secret)");
                env.insert(entry["name"].as_str().unwrap().to_owned(), value.to_owned());
            }
            assert_known(binary_name, env.keys().cloned(), name);
            for (variable, key) in [("TWILIO_AUTH_TOKEN", "auth-token"), ("NATS_PASSWORD", "")] {
                let entry = container["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == variable)
                    .unwrap_or_else(|| panic!("{name}: no {variable}"));
                assert!(entry.get("value").is_none(), "{name}: {variable} in clear");
                if !key.is_empty() {
                    assert_eq!(entry["valueFrom"]["secretKeyRef"]["key"], key);
                }
            }
            // Probes on the admin port, on the address the binary listens on.
            let admin_variable = if binary_name == "ingress" {
                "INGRESS_ADMIN_LISTEN"
            } else {
                "RESOLVER_ADMIN_LISTEN"
            };
            let admin_port = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|port| port["name"] == "admin")
                .expect("an admin port")["containerPort"]
                .as_u64()
                .unwrap();
            assert_eq!(
                u64::from(port_of(&env[admin_variable])),
                admin_port,
                "{name}"
            );
            assert!(env[admin_variable].starts_with("0.0.0.0:"), "{name}");
            admin_ports.push(admin_port);
            for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
                assert_eq!(container[probe]["httpGet"]["path"], path, "{name}");
                assert_eq!(container[probe]["httpGet"]["port"], "admin", "{name}");
            }
            if binary_name == "ingress" {
                let http = container["ports"][0]["containerPort"].as_u64().unwrap();
                assert_eq!(u64::from(port_of(&env["INGRESS_LISTEN"])), http);
            }
            // Killed only after the grace (and the preStop delay, and draining NATS).
            let grace: u64 = env["SHUTDOWN_GRACE_SECS"].parse().unwrap();
            let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap_or(0);
            let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
            assert!(
                termination > pre_stop + grace + 5,
                "{name}: {termination} s"
            );
            if binary_name == "ingress" {
                assert!(pre_stop > 0, "the ingress needs a preStop delay");
            }
            // Least privilege.
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");
            assert!(
                container["resources"]["requests"]["cpu"].is_string(),
                "{name}"
            );
            // A stream with one replica per NATS node of nats-values.yaml.
            assert_eq!(env["STREAM_REPLICAS"], "3", "{name}");
            // A disruption budget.
            assert!(
                of_kind(&objects, "PodDisruptionBudget")
                    .iter()
                    .any(|pdb| pdb["spec"]["selector"]["matchLabels"]
                        == deployment["spec"]["selector"]["matchLabels"]),
                "{name}: no PodDisruptionBudget"
            );
        }
        // The PodMonitor scrapes the admin port of both, with the job names the alerts use.
        let monitor = of_kind(&objects, "PodMonitor")[0];
        assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "admin");
        assert_eq!(
            monitor["spec"]["podMetricsEndpoints"][0]["path"],
            "/metrics"
        );
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap();
        let job_label = monitor["spec"]["jobLabel"].as_str().unwrap();
        let mut jobs = BTreeSet::new();
        for deployment in of_kind(&objects, "Deployment") {
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            for (k, v) in selector {
                assert_eq!(&labels[k], v, "the PodMonitor misses a pod");
            }
            jobs.insert(labels[job_label].as_str().unwrap().to_owned());
        }
        assert_eq!(
            jobs,
            BTreeSet::from(["frontline-ingress".into(), "frontline-resolver".into()])
        );
        assert_eq!(admin_ports.len(), 2);

        // Autoscaling: the ingress on CPU; the resolvers on CPU, and with KEDA (the example)
        // on CPU and the consumer's lag in one ScaledObject, never two autoscalers at once.
        let autoscalers = of_kind(&objects, "HorizontalPodAutoscaler");
        let scaled = of_kind(&objects, "ScaledObject");
        let scaled_targets: BTreeSet<&str> = scaled
            .iter()
            .map(|s| s["spec"]["scaleTargetRef"]["name"].as_str().unwrap())
            .collect();
        for hpa in &autoscalers {
            let target = hpa["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
            assert!(
                !scaled_targets.contains(target),
                "{folder}: two autoscalers on {target}"
            );
            assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        }
        let hpa_targets: BTreeSet<&str> = autoscalers
            .iter()
            .map(|h| h["spec"]["scaleTargetRef"]["name"].as_str().unwrap())
            .collect();
        assert!(hpa_targets.contains("frontline-ingress"));
        assert!(
            hpa_targets.contains("frontline-resolver")
                || scaled_targets.contains("frontline-resolver"),
            "{folder}: the resolvers do not scale"
        );
        for object in scaled {
            let triggers = object["spec"]["triggers"].as_array().unwrap();
            assert!(triggers.iter().any(|t| t["type"] == "cpu"));
            let lag = triggers
                .iter()
                .find(|t| t["type"] == "nats-jetstream")
                .expect("a nats-jetstream trigger");
            assert_eq!(lag["metadata"]["consumer"], subject::RESOLVER_CONSUMER);
            assert_eq!(lag["metadata"]["stream"], subject::DEFAULT_STREAM);
            let values = yaml_documents(&read("deploy/kubernetes/nats-values.yaml")).remove(0);
            let accounts = values["config"]["merge"]["accounts"].as_object().unwrap();
            let account = lag["metadata"]["account"].as_str().unwrap();
            assert!(
                accounts.contains_key(account),
                "KEDA reads account {account}"
            );
            let monitor_port = values["config"]["monitor"]["port"].as_u64().unwrap();
            let endpoint = lag["metadata"]["natsServerMonitoringEndpoint"]
                .as_str()
                .unwrap();
            assert_eq!(u64::from(port_of(endpoint)), monitor_port);
        }
    }
}

#[test]
fn the_prometheus_rule_is_alerts_yml() {
    let alerts = yaml_documents(&read("deploy/prometheus/alerts.yml")).remove(0);
    let rule = yaml_documents(&read("deploy/kubernetes/base/prometheus-rule.yaml")).remove(0);
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);
    let kustomization =
        yaml_documents(&read("deploy/kubernetes/base/kustomization.yaml")).remove(0);
    assert!(
        kustomization["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("prometheus-rule.yaml"))
    );
}

#[test]
fn the_kubernetes_directory_and_templates_are_the_examples() {
    for (copy, example) in [
        (
            "deploy/kubernetes/base/customers.json",
            "deploy/customers.example.json",
        ),
        (
            "deploy/kubernetes/base/templates.json",
            "deploy/templates.example.json",
        ),
    ] {
        assert_eq!(read(copy), read(example), "{copy} differs from {example}");
    }
}

/// The quoted subjects of one user's permissions in deploy/nats/accounts.conf, as
/// (publish, subscribe).
fn shipped_permissions(user: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let conf = read("deploy/nats/accounts.conf");
    let start = conf.find(&format!("user: {user}")).expect("the user");
    let block = &conf[start..];
    let end = block[1..].find("user: ").map_or(block.len(), |i| i + 1);
    let block = &block[..end];
    let quoted = |text: &str| -> BTreeSet<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let subscribe_at = block.find("subscribe:").expect("subscribe");
    (
        quoted(&block[..subscribe_at]),
        quoted(&block[subscribe_at..]),
    )
}

#[test]
fn nats_helm_values_run_three_jetstream_nodes_of_the_pinned_release_with_the_shipped_users() {
    let values = yaml_documents(&read("deploy/kubernetes/nats-values.yaml")).remove(0);
    let config = &values["config"];
    assert_eq!(config["cluster"]["enabled"], true);
    assert_eq!(config["cluster"]["replicas"], 3);
    assert_eq!(config["jetstream"]["enabled"], true);
    assert_eq!(config["jetstream"]["fileStore"]["enabled"], true);
    assert_eq!(config["monitor"]["enabled"], true);
    let tag = values["container"]["image"]["tag"].as_str().unwrap();
    assert!(
        tag.starts_with(&format!("{}-", pinned_nats_version())),
        "{tag}"
    );
    let users = values["config"]["merge"]["accounts"]["FRONTLINE"]["users"]
        .as_array()
        .unwrap();
    assert_eq!(users.len(), 2);
    for user in users {
        let name = user["user"].as_str().unwrap();
        let (publish, subscribe) = shipped_permissions(name);
        let set = |list: &Value| -> BTreeSet<String> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            set(&user["permissions"]["publish"]["allow"]),
            publish,
            "{name}"
        );
        assert_eq!(
            set(&user["permissions"]["subscribe"]["allow"]),
            subscribe,
            "{name}"
        );
        // The password is the server's environment variable, filled from a Secret.
        let password = user["password"].as_str().unwrap();
        let variable = password
            .strip_prefix("<< $")
            .and_then(|rest| rest.strip_suffix(" >>"))
            .unwrap_or_else(|| panic!("{name}: a password in clear"));
        assert!(
            values["container"]["env"][variable]["valueFrom"]["secretKeyRef"].is_object(),
            "{variable} is not from a Secret"
        );
    }
}
