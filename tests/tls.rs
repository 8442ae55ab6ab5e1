//! `https://localhost` for Safari: the gateway serves HTTPS with a leaf signed by a
//! per-install CA whose key is in the real Secret Service; a client that trusts only that
//! CA gets answers (with the same origin policy); the CA cannot vouch for any other name;
//! `protogate tls trust` makes a real Chromium accept the endpoint, and `untrust` undoes it.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use protogate::tls::LocalCa;
use secrecy::SecretString;
use serde_json::json;

/// The CA lives in the one test keychain: one test at a time may make or use it.
static KEYCHAIN_CA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serve(home: &Path) -> (tokio::process::Child, String, String) {
    serve_https(home, json!({})).await
}

fn ca_secret() -> String {
    let out = std::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "protogate",
            "username",
            protogate::tls::CA_ACCOUNT,
        ])
        .output()
        .expect("secret-tool is installed by scripts/install-deps.sh test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client that trusts the exported CA and nothing else.
fn trusting(ca_pem: &[u8]) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_localhost_is_served_with_a_ca_from_the_keychain_that_signs_only_loopback() {
    require_secret_service();
    let _ca = KEYCHAIN_CA.lock().await;
    let home = tempfile::tempdir().unwrap();
    let (mut gateway, http, https) = serve(home.path()).await;
    assert!(https.starts_with("https://localhost:"), "{https}");

    let secret = ca_secret();
    assert!(
        secret.contains("PRIVATE KEY"),
        "the CA key is in the Secret Service"
    );
    for file in walk(home.path()) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains("PRIVATE KEY"),
            "no private key on disk: {}",
            file.display()
        );
    }

    let export = home.path().join("ca.pem");
    protogate_in(home.path(), &["tls", "export", export.to_str().unwrap()]);
    let ca_pem = std::fs::read(&export).unwrap();
    assert!(
        !String::from_utf8_lossy(&ca_pem).contains("PRIVATE"),
        "export holds no key"
    );
    let client = trusting(&ca_pem).build().unwrap();
    let res = client
        .get(format!("{https}/health"))
        .send()
        .await
        .expect("the chain verifies against the CA");
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{https}/api/ai-gateway/stream"))
        .header("origin", FRAMER_ORIGIN)
        .json(&json!({"message": "hi over https"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], FRAMER_ORIGIN);
    assert!(seed_text(&res.text().await.unwrap()).contains("hi over https"));
    let res = client
        .post(format!("{https}/api/ai-gateway/stream"))
        .header("origin", "https://evil.example")
        .json(&json!({"message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the same origin policy over https");
    assert_eq!(
        reqwest::get(format!("{http}/health"))
            .await
            .unwrap()
            .status(),
        200,
        "http goes on"
    );

    // The CA's name constraints: a certificate it signs for example.com is refused.
    let ca = LocalCa::from_secret(&SecretString::from(secret)).unwrap();
    for (name, accepted) in [("example.com", false), ("localhost", true)] {
        let (chain, key) = ca.issue(&[name]).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(
            std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut request = vec![0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            }
        });
        let client = trusting(&ca_pem).resolve(name, addr).build().unwrap();
        let result = client
            .get(format!("https://{name}:{}/", addr.port()))
            .send()
            .await;
        assert_eq!(
            result.is_ok(),
            accepted,
            "{name}: the CA may vouch only for loopback names: {result:?}"
        );
        if let Err(e) = result {
            let mut cause: &dyn std::error::Error = &e;
            let mut causes = vec![cause.to_string()];
            while let Some(next) = cause.source() {
                cause = next;
                causes.push(cause.to_string());
            }
            assert!(
                causes
                    .iter()
                    .any(|c| c.to_lowercase().contains("certificate")),
                "refused for its certificate: {causes:?}"
            );
        }
    }

    // A second start keeps the same CA: what the user trusted stays trusted.
    let before = protogate_in(home.path(), &["tls", "status"]);
    gateway.kill().await.unwrap();
    let (_again, _, https) = serve(home.path()).await;
    assert!(trusting(&ca_pem)
        .build()
        .unwrap()
        .get(format!("{https}/health"))
        .send()
        .await
        .is_ok());
    assert_eq!(protogate_in(home.path(), &["tls", "status"]), before);
}

async fn chromium_shows(home: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("chromium answers")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trust_makes_chromium_accept_https_localhost_and_untrust_undoes_it() {
    require_secret_service();
    let _ca = KEYCHAIN_CA.lock().await;
    let home = tempfile::tempdir().unwrap();
    let (_gateway, _, https) = serve(home.path()).await;
    let health = format!("{https}/health");
    assert!(
        !chromium_shows(home.path(), &health)
            .await
            .contains("\"status\":\"ok\""),
        "before trust, Chromium refuses the certificate"
    );
    let said = protogate_in(home.path(), &["tls", "trust"]);
    assert!(said.contains(".pki/nssdb"), "{said}");
    assert!(
        chromium_shows(home.path(), &health)
            .await
            .contains("\"status\":\"ok\""),
        "after trust, Chromium shows the health page with no flag that weakens checks"
    );
    assert!(protogate_in(home.path(), &["tls", "status"]).contains(".pki/nssdb"));
    protogate_in(home.path(), &["tls", "untrust"]);
    assert!(
        !chromium_shows(home.path(), &health)
            .await
            .contains("\"status\":\"ok\""),
        "after untrust, refused again"
    );
}
