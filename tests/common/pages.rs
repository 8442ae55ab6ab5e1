//! Test pages on loopback: a tiny server for fixed files that forwards each page's
//! `/report` to the test, and the bundled scripts of `tests/browser/` (the Framer
//! component compiled from `ui/framer/`, the OpenAI SDK page), built once per run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, OnceCell};

static BUNDLES: OnceCell<PathBuf> = OnceCell::const_new();

/// The pages' scripts, bundled once per run by `tests/browser/build.mjs`.
pub async fn bundles() -> PathBuf {
    BUNDLES
        .get_or_init(|| async {
            let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
            assert!(
                here.join("node_modules/esbuild").exists(),
                "the browser tests' packages are missing: run scripts/test.sh, which installs them"
            );
            let out =
                std::env::temp_dir().join(format!("protogate-bundles-{}", std::process::id()));
            let status = tokio::process::Command::new("node")
                .arg(here.join("build.mjs"))
                .arg(&out)
                .stdin(Stdio::null())
                .status()
                .await
                .expect("node runs");
            assert!(
                status.success(),
                "esbuild compiled the component and the SDK page"
            );
            out
        })
        .await
        .clone()
}

/// A page server: fixed files, plus `/report`, whose body the test receives.
pub struct Pages {
    pub ip: &'static str,
    pub port: u16,
    pub reports: mpsc::Receiver<Value>,
}

impl Pages {
    pub fn origin(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }
    /// `ip:port`, as `--ip-address-space-overrides` names it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}

pub async fn serve_pages(
    ip: &'static str,
    files: HashMap<&'static str, (&'static str, Vec<u8>)>,
) -> Pages {
    serve_pages_on(ip, files, None).await
}

/// The same pages over https, with a throwaway certificate for `ip` (the browser is told
/// to accept it: these pages stand in for a public https site).
pub async fn serve_pages_tls(
    ip: &'static str,
    files: HashMap<&'static str, (&'static str, Vec<u8>)>,
) -> Pages {
    let ca = protogate::tls::LocalCa::generate().unwrap();
    let (chain, key) = ca.issue(&[ip]).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    serve_pages_on(
        ip,
        files,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await
}

async fn serve_pages_on(
    ip: &'static str,
    files: HashMap<&'static str, (&'static str, Vec<u8>)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Pages {
    let (tx, reports) = mpsc::channel(4);
    let files = Arc::new(files);
    let app = Router::new()
        .route(
            "/report",
            post(
                |State(tx): State<mpsc::Sender<Value>>, body: String| async move {
                    let _ = tx
                        .send(serde_json::from_str(&body).unwrap_or(Value::Null))
                        .await;
                },
            ),
        )
        .fallback(move |uri: Uri| {
            let files = files.clone();
            async move {
                match files.get(uri.path()) {
                    Some((kind, body)) => Response::builder()
                        .header("content-type", *kind)
                        .body(Body::from(body.clone()))
                        .unwrap(),
                    None => Response::builder().status(404).body(Body::empty()).unwrap(),
                }
            }
        })
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    match tls {
        None => {
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        Some(acceptor) => {
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                    });
                }
            });
        }
    }
    Pages { ip, port, reports }
}

pub fn html(body: String) -> (&'static str, Vec<u8>) {
    ("text/html; charset=utf-8", body.into_bytes())
}

pub async fn script(name: &str) -> (&'static str, Vec<u8>) {
    let body = tokio::fs::read(bundles().await.join(name)).await.unwrap();
    ("text/javascript", body)
}

/// A page that renders the Framer component with its defaults and clicks Send.
pub async fn component_page(ip: &'static str) -> Pages {
    let page = r#"<!doctype html><meta charset="utf-8"><title>prototype</title>
<div id="root"></div><script src="/component.js"></script>"#;
    serve_pages(
        ip,
        HashMap::from([
            ("/", html(page.to_string())),
            ("/component.js", script("component.js").await),
        ]),
    )
    .await
}
