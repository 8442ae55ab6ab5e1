//! A mock of the seed's AI gateway on `127.0.0.1:0`: Bedrock-format Claude payloads at
//! `/gw/{model}/invoke` and `/gw/{model}/invoke-with-response-stream`, answering with
//! Anthropic events as `data:` lines and Bedrock's invocation metrics on `message_stop`.
//!
//! Every call must carry `Authorization: bearer <jwt>`, verified as the ASAP reference
//! verifiers do: RS256 signature by the issuer's public key, `kid` owned by the issuer
//! (`<iss>/...`) and equal to the configured one, `aud`, `sub` = `iss`, `iat` ≤ `nbf` <
//! `exp`, `exp - iat` ≤ 1 hour, and a `jti` never seen on a different token.
//!
//! Like a real host it serves more than the configured route: any other path answers 200
//! with an "admin" body and is recorded as a stray, so a test can show that no request
//! (and no signed token) ever leaves the configured route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

pub const ISSUER: &str = "protogate-test";
pub const KEY_ID: &str = "protogate-test/key1";
pub const AUDIENCE: &str = "ai-gateway";
pub const PRIVATE_KEY: &str = include_str!("../fixtures/asap-private.pem");
pub const OTHER_PRIVATE_KEY: &str = include_str!("../fixtures/other-private.pem");
const PUBLIC_KEY: &str = include_str!("../fixtures/asap-public.pem");

#[derive(Clone, Default)]
pub struct MockAsapGateway {
    /// The invoke URL with a `{model}` placeholder, as a provider is configured.
    pub invoke_url: String,
    inner: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    /// Accepted tokens, in order of use.
    tokens: Vec<String>,
    jti_to_token: HashMap<String, String>,
    paths: Vec<String>,
    headers: Vec<HeaderMap>,
    bodies: Vec<Value>,
    rejections: Vec<String>,
    /// Requests outside `/gw/{model}/{action}`: method, raw path and query.
    strays: Vec<String>,
}

impl MockAsapGateway {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockAsapGateway {
            invoke_url: format!(
                "http://{}/gw/{{model}}/invoke",
                listener.local_addr().unwrap()
            ),
            ..MockAsapGateway::default()
        };
        let app = Router::new()
            .route("/gw/{model}/{action}", post(invoke))
            .fallback(stray)
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn tokens(&self) -> Vec<String> {
        self.inner.lock().unwrap().tokens.clone()
    }
    pub fn paths(&self) -> Vec<String> {
        self.inner.lock().unwrap().paths.clone()
    }
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.inner.lock().unwrap().headers.clone()
    }
    pub fn bodies(&self) -> Vec<Value> {
        self.inner.lock().unwrap().bodies.clone()
    }
    pub fn rejections(&self) -> Vec<String> {
        self.inner.lock().unwrap().rejections.clone()
    }
    pub fn strays(&self) -> Vec<String> {
        self.inner.lock().unwrap().strays.clone()
    }

    fn verify(&self, headers: &HeaderMap) -> Result<(), String> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or("no Authorization")?;
        let token = auth.strip_prefix("bearer ").ok_or("not `bearer <jwt>`")?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("bad header: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("alg {:?}", header.alg));
        }
        let kid = header.kid.ok_or("no kid")?;
        if !kid.starts_with(&format!("{ISSUER}/")) {
            return Err("Issuer does not own the supplied public key".into());
        }
        if kid != KEY_ID {
            return Err(format!("unknown kid {kid}"));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "nbf"]);
        validation.leeway = 30;
        let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| format!("invalid token: {e}"))?
            .claims;
        let num = |name: &str| claims[name].as_u64().ok_or(format!("no {name}"));
        let (iat, nbf, exp) = (num("iat")?, num("nbf")?, num("exp")?);
        if exp - iat > 3600 {
            return Err("exp exceeds the maximum 1 hour".into());
        }
        if !(iat <= nbf && nbf < exp) {
            return Err("nbf out of range".into());
        }
        if claims["sub"] != claims["iss"] {
            return Err("sub differs from iss".into());
        }
        let jti = claims["jti"].as_str().ok_or("no jti")?.to_string();
        let mut seen = self.inner.lock().unwrap();
        match seen.jti_to_token.get(&jti) {
            Some(t) if t != token => return Err("jti reused on another token".into()),
            _ => {}
        }
        seen.jti_to_token.insert(jti, token.to_string());
        seen.tokens.push(token.to_string());
        Ok(())
    }
}

async fn stray(
    State(mock): State<MockAsapGateway>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    mock.inner
        .lock()
        .unwrap()
        .strays
        .push(format!("{method} {}{query}", uri.path()));
    Json(json!({"admin": "the keys to the kingdom"})).into_response()
}

async fn invoke(
    State(mock): State<MockAsapGateway>,
    Path((model, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    {
        let mut seen = mock.inner.lock().unwrap();
        seen.paths.push(format!("/gw/{model}/{action}"));
        seen.headers.push(headers.clone());
        seen.bodies.push(body.clone());
    }
    if let Err(why) = mock.verify(&headers) {
        mock.inner.lock().unwrap().rejections.push(why.clone());
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": why}))).into_response();
    }
    if body["anthropic_version"] != "bedrock-2023-05-31"
        || body["max_tokens"].as_u64().is_none()
        || body["messages"][0]["content"][0]["type"] != "text"
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "not a Bedrock Anthropic payload"})),
        )
            .into_response();
    }
    match action.as_str() {
        "invoke" => Json(json!({
            "id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Hello world"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 2},
        }))
        .into_response(),
        "invoke-with-response-stream" => {
            let data = |v: Value| Ok::<_, std::convert::Infallible>(format!("data: {v}\n\n"));
            let mut events = vec![
                data(
                    json!({"type": "message_start", "message": {"id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": 12, "output_tokens": 1}}}),
                ),
                data(
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                data(
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
                ),
            ];
            if model != "cut" {
                events.push(data(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}})));
                events.push(data(json!({"type": "content_block_stop", "index": 0})));
                events.push(data(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 2}})));
                events.push(data(json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 2, "invocationLatency": 640, "firstByteLatency": 210}})));
            }
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures_util::stream::iter(events)))
                .unwrap()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
