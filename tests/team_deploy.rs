//! The deployment as a platform engineer gets it (issue #26): `deploy/kubernetes/` checked
//! offline against the Kubernetes API schemas (`kubernetes-validate`, installed into
//! tests/deploy/.venv by scripts/test.sh), its files checked against each other, the
//! Dockerfile and the binary, and the binary run exactly as the image and the Deployment
//! run it. No container runtime can pull base images here, so the image itself is not
//! built; its command line, environment and read-only file system are what is tested.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use protogate::gateway::{LIVEZ, READYZ};
use protogate::secrets::{env_var_name, ACCESS_TOKEN_ACCOUNT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// A program of the test venv; scripts/test.sh makes it.
fn venv(program: &str) -> PathBuf {
    let path = repo().join("tests/deploy/.venv/bin").join(program);
    assert!(
        path.exists(),
        "{} is missing: run the tests through scripts/test.sh, which installs \
         tests/deploy/requirements.txt",
        path.display()
    );
    path
}

/// The YAML documents of `files`, by file name.
fn documents(files: &[PathBuf]) -> BTreeMap<String, Vec<Value>> {
    let out = std::process::Command::new(venv("python"))
        .arg(repo().join("tests/deploy/manifests.py"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every resource the kustomization deploys, and the kustomization itself.
struct Deploy {
    kustomization: Value,
    files: Vec<PathBuf>,
    resources: Vec<Value>,
}

impl Deploy {
    fn load() -> Self {
        let kustomization = documents(&[manifests_dir().join("kustomization.yaml")])
            .into_values()
            .next()
            .unwrap()
            .remove(0);
        let files: Vec<PathBuf> = kustomization["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| manifests_dir().join(f.as_str().unwrap()))
            .collect();
        let resources = documents(&files).into_values().flatten().collect();
        Deploy {
            kustomization,
            files,
            resources,
        }
    }

    fn find(&self, kind: &str, name: &str) -> &Value {
        self.resources
            .iter()
            .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
    }

    fn gateway(&self) -> &Value {
        self.find("Deployment", "protogate")
    }

    fn container(&self) -> &Value {
        &self.gateway()["spec"]["template"]["spec"]["containers"][0]
    }

    fn env(&self, name: &str) -> String {
        let env = self.container()["env"].as_array().unwrap();
        let var = env.iter().find(|e| e["name"] == name);
        let value = var.unwrap_or_else(|| panic!("the Deployment sets no {name}"));
        value["value"].as_str().unwrap().to_string()
    }

    fn mount_of(&self, volume: &str) -> &Value {
        let mounts = self.container()["volumeMounts"].as_array().unwrap();
        mounts.iter().find(|m| m["name"] == volume).unwrap()
    }

    fn volume(&self, name: &str) -> &Value {
        let volumes = self.gateway()["spec"]["template"]["spec"]["volumes"].as_array();
        volumes.unwrap().iter().find(|v| v["name"] == name).unwrap()
    }

    /// The ConfigMap's settings file, and its text.
    fn settings(&self) -> (String, String) {
        let map = self.volume("settings")["configMap"]["name"]
            .as_str()
            .unwrap();
        let data = self.find("ConfigMap", map)["data"].as_object().unwrap();
        let config = self.env("PROTOGATE_CONFIG");
        let key = config.rsplit('/').next().unwrap();
        let text = data
            .get(key)
            .unwrap_or_else(|| panic!("{map} has no {key}"));
        (key.to_string(), text.as_str().unwrap().to_string())
    }

    /// The Secret's variables, as written.
    fn secret(&self) -> BTreeMap<String, String> {
        let from = &self.container()["envFrom"][0]["secretRef"]["name"];
        let secret = self.find("Secret", from.as_str().unwrap());
        serde_json::from_value(secret["stringData"].clone()).unwrap()
    }
}

/// The runtime stage of the Dockerfile, as (instruction, arguments), continuations joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let lines: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(i, rest)| (i.to_string(), rest.trim().to_string()))
        .collect();
    let last_from = lines.iter().rposition(|(i, _)| i == "FROM").unwrap();
    lines[last_from..].to_vec()
}

fn instruction<'a>(lines: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|(i, _)| i == name)
        .map(|(_, rest)| rest.as_str())
        .collect()
}

/// The image's environment (`ENV K=V ...`).
fn image_env(lines: &[(String, String)]) -> BTreeMap<String, String> {
    instruction(lines, "ENV")
        .iter()
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_offline() {
    let deploy = Deploy::load();
    // The oldest Kubernetes they are written for (the shell-less preStop sleep) and the
    // newest the validator knows.
    for version in ["1.30.0", "1.37.0"] {
        let out = std::process::Command::new(venv("kubernetes-validate"))
            .args(["--strict", "--quiet", "-k", version])
            .args(&deploy.files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // It does check: a misspelt field is refused.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(manifests_dir().join("deployment.yaml")).unwrap();
    let bad = dir.path().join("deployment.yaml");
    std::fs::write(
        &bad,
        text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .unwrap();
    let out = std::process::Command::new(venv("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt field passed the schemas");
    assert!(String::from_utf8_lossy(&out.stdout).contains("readOnlyRootFileSystem"));
}

#[test]
fn the_manifests_agree_with_each_other_the_dockerfile_and_the_binary() {
    let deploy = Deploy::load();
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    on_disk.sort();
    let mut listed = deploy.files.clone();
    listed.sort();
    assert_eq!(listed, on_disk, "kustomization.yaml lists every manifest");
    let namespace = &deploy.kustomization["namespace"];
    for r in deploy.resources.iter().filter(|r| r["kind"] != "Namespace") {
        assert_eq!(&r["metadata"]["namespace"], namespace, "{}", r["metadata"]);
    }

    // The settings: valid, on all interfaces with the token, at the mounted path.
    let (key, text) = deploy.settings();
    let config = protogate::config::parse(&text, "the ConfigMap").expect("valid settings");
    assert!(config.host.is_unspecified() && config.require_access_token);
    assert_eq!(config.https_port, None);
    let mount = deploy.mount_of("settings");
    assert!(
        mount.get("subPath").is_none(),
        "a subPath never sees updates"
    );
    let path = format!("{}/{key}", mount["mountPath"].as_str().unwrap());
    assert_eq!(deploy.env("PROTOGATE_CONFIG"), path);
    let data = deploy.mount_of("data")["mountPath"].as_str().unwrap();
    assert_eq!(deploy.env("XDG_DATA_HOME"), data);
    assert!(deploy.volume("data").get("emptyDir").is_some());

    // Ports and probes: the settings' port, the routes the binary answers.
    let container = deploy.container();
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], json!(config.port));
    assert_eq!(container["startupProbe"]["httpGet"]["path"], LIVEZ);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], LIVEZ);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], READYZ);
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port["name"]);
    }
    let service = deploy.find("Service", "protogate");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);

    // Everything that selects the gateway's pods selects them.
    let labels = &deploy.gateway()["spec"]["template"]["metadata"]["labels"];
    let selects = |selector: &Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| &labels[k] == v)
    };
    assert!(selects(&service["spec"]["selector"]));
    let pdb = deploy.find("PodDisruptionBudget", "protogate");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"]));
    let policy = deploy.find("NetworkPolicy", "protogate");
    assert!(selects(&policy["spec"]["podSelector"]["matchLabels"]));
    let hpa = deploy.find("HorizontalPodAutoscaler", "protogate");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "protogate");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
    assert!(deploy.gateway()["spec"]["replicas"].as_u64().unwrap() >= 2);

    // The ingress reaches the service under a name the gateway's Host check allows.
    let ingress = deploy.find("Ingress", "protogate");
    let rule = &ingress["spec"]["rules"][0];
    let backend = &rule["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "protogate");
    assert_eq!(backend["port"]["name"], service["spec"]["ports"][0]["name"]);
    let host = rule["host"].as_str().unwrap();
    assert!(config.hosts.allows(host), "allowed_hosts must name {host}");
    assert_eq!(ingress["spec"]["tls"][0]["hosts"][0], host);

    // Locked down as the restricted Pod Security level asks.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");

    // The grace period fits in the pod's termination grace, after the preStop sleep.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--grace-period").unwrap();
    let grace: u64 = args[at + 1].trim_end_matches('s').parse().unwrap();
    let sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let termination = deploy.gateway()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        sleep + grace < termination,
        "{sleep} + {grace} >= {termination}"
    );

    // The Secret: a variable for the token and each provider that takes a key, all empty.
    let secret = deploy.secret();
    assert!(
        secret.values().all(String::is_empty),
        "no value is ever committed"
    );
    assert!(secret.contains_key(&env_var_name(ACCESS_TOKEN_ACCOUNT)));
    for p in config
        .providers
        .iter()
        .filter(|p| p.key == protogate::config::KeyUse::Required)
    {
        assert!(
            secret.contains_key(&env_var_name(&p.id)),
            "no key for {}",
            p.id
        );
    }

    // The image runs `protogate serve` with the same paths and port.
    let image = dockerfile();
    let env = image_env(&image);
    assert_eq!(env["PROTOGATE_CONFIG"], deploy.env("PROTOGATE_CONFIG"));
    assert_eq!(env["XDG_DATA_HOME"], data);
    let entrypoint: Vec<String> =
        serde_json::from_str(instruction(&image, "ENTRYPOINT")[0]).unwrap();
    assert_eq!(entrypoint[1..], ["serve", "--no-https"]);
    assert_eq!(instruction(&image, "EXPOSE"), [config.port.to_string()]);
    assert!(instruction(&image, "USER")[0].starts_with("65532"));
    let copied = instruction(&image, "COPY");
    let default = format!("deploy/container-settings.json {}", env["PROTOGATE_CONFIG"]);
    assert!(copied.contains(&default.as_str()), "{copied:?}");
    let own = std::fs::read_to_string(repo().join("deploy/container-settings.json")).unwrap();
    let own = protogate::config::parse(&own, "the image's settings").unwrap();
    assert!(own.host.is_unspecified() && own.require_access_token);
}

/// A path of the image (`/etc/protogate/...`) inside `root`, standing for its file system.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs the image's entrypoint with the Deployment's arguments and environment, the
/// ConfigMap's settings at the mounted path (on a free port here), and `secret` as the
/// Secret's variables; nothing else from this machine's environment, and a home in which
/// nothing can be written (a path under a file: not even root can). Returns the process,
/// its URL and what the root holds.
async fn run_as_the_image(
    secret: &BTreeMap<String, String>,
) -> (tokio::process::Child, String, tempfile::TempDir) {
    let deploy = Deploy::load();
    let image = dockerfile();
    let root = tempfile::tempdir().unwrap();
    let (_, text) = deploy.settings();
    let mut settings: Value = serde_json::from_str(&text).unwrap();
    settings["port"] = json!(0);
    let config = inside(root.path(), &deploy.env("PROTOGATE_CONFIG"));
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, settings.to_string()).unwrap();
    let data = inside(root.path(), &deploy.env("XDG_DATA_HOME"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(root.path().join("not-a-dir"), "").unwrap();

    let entrypoint: Vec<String> =
        serde_json::from_str(instruction(&image, "ENTRYPOINT")[0]).unwrap();
    let args = deploy.container()["args"].as_array().unwrap().clone();
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(&entrypoint[1..])
        .args(args.iter().map(|a| a.as_str().unwrap()))
        .env_clear()
        .env("HOME", root.path().join("not-a-dir/home"))
        .env("PROTOGATE_CONFIG", &config)
        .env("XDG_DATA_HOME", &data)
        .envs(secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("it starts")
        .unwrap()
        .unwrap_or_else(|| panic!("no URL line; the image's command failed"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    (child, url, root)
}

async fn readyz(url: &str) -> (u16, Value) {
    let res = reqwest::get(format!("{url}{READYZ}")).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// A prototype on the team's site, through the ingress (its Host), asking the demo.
async fn chat(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/api/ai-gateway/stream"))
        .header("host", "protogate.example.com")
        .header("origin", "https://prototypes.example.com")
        .json(&json!({"message": "hi", "provider": "demo"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_image_command_serves_from_a_read_only_home_with_keys_from_the_environment() {
    // The Secret as shipped, values empty: up, but never ready, and refusing everyone.
    let shipped = Deploy::load().secret();
    let (mut child, url, _root) = run_as_the_image(&shipped).await;
    let (status, body) = readyz(&url).await;
    assert_eq!(status, 503, "{body}");
    let why = body["reason"].as_str().unwrap();
    assert!(
        why.contains("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN"),
        "{why}"
    );
    assert_eq!(
        reqwest::get(format!("{url}{LIVEZ}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(chat(&url, None).await.status(), 401);
    let _ = child.kill().await;

    let token = "pg-team-deploy-token-0123456789";
    let key = "sk-deploy-0123456789-SECRET-do-not-leak";
    let filled: BTreeMap<String, String> = shipped
        .keys()
        .map(|k| {
            let value = if k.ends_with("ACCESS_TOKEN") {
                token
            } else {
                key
            };
            (k.clone(), value.to_string())
        })
        .collect();
    let (mut child, url, root) = run_as_the_image(&filled).await;
    assert_eq!(readyz(&url).await, (200, json!({"status": "ready"})));
    let answer = chat(&url, Some(token)).await;
    assert_eq!(answer.status(), 200);
    let text = common::seed_text(&answer.text().await.unwrap());
    assert!(text.starts_with("[Protogate demo]"), "{text}");
    assert_eq!(chat(&url, Some("a-wrong-token")).await.status(), 401);

    // As `docker stop` or Kubernetes stops it: the log is flushed, the exit clean.
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    pipe.read_to_string(&mut stderr).await.unwrap();
    let written = common::walk(root.path());
    assert!(
        written
            .iter()
            .any(|f| f.to_string_lossy().contains("/logs/")),
        "the request log is in the data volume: {written:?}"
    );
    let mut files = String::new();
    for file in &written {
        files.push_str(&String::from_utf8_lossy(&std::fs::read(file).unwrap()));
    }
    assert!(files.contains("/api/ai-gateway/stream"), "the log was read");
    for (what, text) in [("stderr", &stderr), ("written files", &files)] {
        assert!(
            !text.contains(token) && !text.contains(key),
            "a secret in {what}"
        );
    }
}
