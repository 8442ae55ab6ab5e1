//! `metrics` and `telemetry` in the settings: Prometheus metrics and OpenTelemetry traces,
//! both off by default.

use serde::{Deserialize, Serialize};

/// `GET /metrics` in Prometheus' text format.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
}

/// Traces to an OpenTelemetry collector (OTLP over HTTP).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// The collector's base URL (`/v1/traces` is added); unset, the standard
    /// `OTEL_EXPORTER_OTLP_*` environment variables are read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl TelemetrySection {
    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}
