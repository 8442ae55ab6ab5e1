//! The controller the tray and the window drive: start, stop and restart, a port in use,
//! a stop that really ends open streams and their upstream calls, and settings changed
//! under load with no failed request.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use protogate::config::{parse_raw_value, RawConfig};
use protogate::controller::{Controller, GatewayState};
use protogate::{RequestLog, SecretStore};
use serde_json::{json, Value};

fn controller(dir: &tempfile::TempDir, settings_json: Value) -> Controller {
    let raw: RawConfig = parse_raw_value(settings_json, "test").unwrap();
    let log = RequestLog::new(None, 1, 100, 200).unwrap();
    Controller::new(
        dir.path().join("settings.json"),
        raw,
        log,
        SecretStore::with_environment(Default::default()),
    )
}

fn endpoint(state: &GatewayState) -> String {
    state.endpoint().expect("running")
}

#[tokio::test]
async fn start_stop_restart_and_a_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = controller(&dir, settings(json!({})));
    let mut states = gateway.watch();
    assert_eq!(*states.borrow_and_update(), GatewayState::Stopped);

    let running = gateway.start().await;
    let url = endpoint(&running);
    assert!(states.has_changed().unwrap(), "watchers hear of the change");
    assert_eq!(
        reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        gateway.start().await,
        running,
        "starting twice changes nothing"
    );

    assert_eq!(gateway.stop().await, GatewayState::Stopped);
    assert!(
        reqwest::get(format!("{url}/health")).await.is_err(),
        "stopped"
    );
    let again = gateway.restart().await;
    assert!(reqwest::get(format!("{}/health", endpoint(&again)))
        .await
        .unwrap()
        .status()
        .is_success());

    // Another app holds the port: the state says so in words, nothing panics.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let blocked = controller(&dir, settings(json!({"port": port})));
    match blocked.start().await {
        GatewayState::Failed {
            reason,
            port_in_use,
        } => {
            assert!(
                reason.contains(&port.to_string()) && reason.contains("in use"),
                "{reason}"
            );
            assert_eq!(
                port_in_use,
                Some(port),
                "the state says which port is taken"
            );
        }
        other => panic!("a port in use is a failure with a reason, not {other:?}"),
    }
    drop(taken);
    assert!(
        matches!(blocked.start().await, GatewayState::Running { .. }),
        "free again: it starts"
    );
    gateway.stop().await;
    blocked.stop().await;
}

#[tokio::test]
async fn a_port_in_use_is_fixed_in_one_step_on_the_next_free_port() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let gateway = controller(&dir, settings(json!({"port": port})));
    assert!(matches!(gateway.start().await, GatewayState::Failed { .. }));

    let moved = gateway
        .move_to_free_port()
        .await
        .unwrap()
        .expect("a free port");
    let GatewayState::Running { addr, .. } = moved else {
        panic!("it runs after the move, not {moved:?}");
    };
    assert!(addr.port() > port, "{} after {port}", addr.port());
    let health = reqwest::get(format!("{}/health", endpoint(&moved)))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(written["port"], addr.port(), "the new port is saved");
    gateway.stop().await;
    drop(taken);
}

#[tokio::test]
async fn a_stop_ends_open_streams_and_their_upstream_calls() {
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = controller(
        &dir,
        settings(json!({"providers": [
            {"id": "up", "kind": "openai", "base_url": mock.base_url, "default_model": "endless"},
        ]})),
    );
    let url = endpoint(&gateway.start().await);
    let res = post_json(
        &format!("{url}/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let reading = tokio::spawn(async move { res.text().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.dropped_streams(), 0, "the stream is under way");

    let stopped = tokio::time::timeout(
        protogate::gateway::DRAIN + Duration::from_secs(5),
        gateway.stop(),
    )
    .await
    .expect("stop returns after the drain time");
    assert_eq!(stopped, GatewayState::Stopped);
    for _ in 0..50 {
        if mock.dropped_streams() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        mock.dropped_streams(),
        1,
        "after a stop no upstream connection is left open"
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .expect("the client's stream ended too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_under_load_with_no_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let base = settings(json!({"limits": {"requests_per_minute": 100000, "burst": 10000}}));
    let gateway = controller(&dir, base.clone());
    let url = endpoint(&gateway.start().await);

    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = vec![];
    for _ in 0..4 {
        let (url, failures, done) = (url.clone(), failures.clone(), done.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..60 {
                let res = client
                    .post(format!("{url}/api/ai-gateway/stream"))
                    .header("origin", FRAMER_ORIGIN)
                    .json(&json!({"message": "hi"}))
                    .send()
                    .await;
                let ok = match res {
                    Ok(res) if res.status() == 200 => {
                        res.text().await.is_ok_and(|t| t.contains("[DONE]"))
                    }
                    _ => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    let site = "https://coffee-app.framer.app";
    for round in 0..6 {
        let mut next = base.clone();
        if round % 2 == 0 {
            next["cors"] = json!({"allowed_origins": ["https://*.framercanvas.com", site]});
        }
        let state = gateway
            .save_settings(parse_raw_value(next, "test").unwrap())
            .await
            .expect("valid settings are saved");
        assert_eq!(endpoint(&state), url, "no restart: same listener");
        let res = post_json(
            &format!("{url}/api/ai-gateway/stream"),
            Some(site),
            json!({"message": "hi"}),
        )
        .await;
        let want = if round % 2 == 0 { 200 } else { 403 };
        assert_eq!(
            res.status(),
            want,
            "round {round}: the new origins apply at once"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 240);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "no request failed while settings changed"
    );

    let bad = parse_raw_value(json!({"port": 0, "limits": {"burst": 0}}), "test").unwrap();
    assert!(
        gateway.save_settings(bad).await.is_err(),
        "invalid settings are refused"
    );
    let still: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("settings.json")).unwrap())
            .unwrap();
    assert_ne!(
        still["limits"]["burst"], 0,
        "the file keeps the last valid settings"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_settings_file_edited_by_hand_applies_while_running_and_a_broken_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    let base = settings(json!({}));
    std::fs::write(&path, base.to_string()).unwrap();
    let gateway = controller(&dir, base.clone());
    let url = endpoint(&gateway.start().await);
    let watching = gateway.watch_file(Duration::from_millis(100));
    let site = "https://coffee-app.framer.app";
    let status = || async {
        post_json(
            &format!("{url}/api/ai-gateway/stream"),
            Some(site),
            json!({"message": "hi"}),
        )
        .await
        .status()
        .as_u16()
    };
    assert_eq!(status().await, 403);

    let mut edited = base.clone();
    edited["cors"] = json!({"allowed_origins": [site]});
    // A second's sleep first: a file system may keep modification times to the second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let mut now = 0;
    for _ in 0..50 {
        now = status().await;
        if now == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, 200, "the hand edit applies without a restart");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, "{ \"port\": ").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status().await,
        200,
        "a broken edit leaves the running settings"
    );
    let err = gateway.reload_from_disk().await.unwrap_err().to_string();
    assert!(
        err.contains("settings.json") && err.contains("not valid JSON"),
        "{err}"
    );
    watching.abort();
    gateway.stop().await;
}

#[tokio::test]
async fn serving_on_the_network_shows_the_address_other_devices_use() {
    let dir = tempfile::tempdir().unwrap();
    let raw: RawConfig = parse_raw_value(
        settings(json!({"host": "0.0.0.0", "require_access_token": true})),
        "test",
    )
    .unwrap();
    let token = "pg-lan-token-0123456789";
    let gateway = Controller::new(
        dir.path().join("settings.json"),
        raw,
        RequestLog::new(None, 1, 100, 200).unwrap(),
        SecretStore::with_environment(
            [(
                "PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN".to_string(),
                token.to_string(),
            )]
            .into(),
        ),
    );
    let running = gateway.start().await;
    let lan = running.lan_endpoint();
    match protogate::controller::lan_address() {
        // A machine with a network: the address is this machine's, and it answers there.
        Some(ip) => {
            let lan = lan.expect("a LAN endpoint while serving on all interfaces");
            assert!(lan.starts_with(&format!("http://{ip}:")), "{lan}");
            let health = reqwest::Client::new()
                .get(format!("{lan}/health"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(health.status(), 200);
        }
        None => assert_eq!(lan, None, "no network, no LAN address"),
    }
    gateway.stop().await;

    // On loopback only, there is nothing to show.
    let local = controller(&dir, settings(json!({})));
    assert_eq!(local.start().await.lan_endpoint(), None);
    local.stop().await;
}
