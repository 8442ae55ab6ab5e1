//! `GET /metrics`, for Prometheus, when the settings turn metrics on; otherwise the path
//! is not routed at all and answers 404 as any unknown one does.
//!
//! It passes the same checks as every route (`Host`, the access token when one is
//! required, which serving on the LAN always is), and refuses web pages: a scraper sends
//! no `Origin`, and no site needs to read what the designer's prototypes cost.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::state::AppState;
use crate::error::GatewayError;
use crate::telemetry::metrics::{Scrape, CONTENT_TYPE};

/// The route, when metrics are on.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    match state.telemetry.metrics {
        Some(_) => Router::new().route("/metrics", get(metrics)),
        None => Router::new(),
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(metrics) = &state.telemetry.metrics else {
        return GatewayError::NotFound("/metrics".into()).into_response();
    };
    if headers.contains_key(header::ORIGIN) {
        return GatewayError::Forbidden(
            "metrics are for a scraper such as Prometheus, not for web pages; fetch them \
             without an Origin header"
                .into(),
        )
        .into_response();
    }
    let limit = state.config.limits.max_concurrent_streams;
    let text = metrics.render(Scrape {
        streams_open: limit.saturating_sub(state.streams.available_permits()),
        streams_limit: limit,
        spans_dropped: state.telemetry.spans_dropped(),
    });
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
