//! `POST /api/search`: the wiring spec's `search(query, provider = 'tavily')`, answered by
//! whichever search provider is configured (Tavily, Brave, or the labelled demo), in one
//! shape (`wire::search`). The key stays here; the page sends only its query.

use axum::extract::State;
use axum::{Extension, Json};

use crate::config::{Capability, ProviderKind};
use crate::error::GatewayError;
use crate::gateway::{AppState, JsonBody};
use crate::providers::search::SearchQuery;
use crate::providers::{Provider, Registry};
use crate::request_log::RecordHandle;
use crate::wire::search::{log_text, SearchInput, SearchResponse};

/// `{query, provider?, max_results?}` → `{query, provider, answer?, results}`.
pub async fn search(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBody(input): JsonBody<SearchInput>,
) -> Result<Json<SearchResponse>, GatewayError> {
    let Some(query) = input.query() else {
        return Err(GatewayError::bad_request(
            "`query` is empty: send what to search for, as {\"query\": \"...\"}",
        ));
    };
    let max_results = input.max_results();
    let (provider, model, stand_in) = pick(&state.providers, input.provider.as_deref())?;
    record.set_request(provider.id(), &model, query.to_string());
    provider.wait_turn(&record).await?;
    if let Some(note) = stand_in {
        record.set_note(&note);
    }
    let answer = provider
        .search(SearchQuery {
            query: query.to_string(),
            max_results,
        })
        .await?;
    record.push_answer(&log_text(&answer));
    record.set_note(&format!(
        "{} result(s){}",
        answer.results.len(),
        if answer.answer.is_some() {
            " and an answer"
        } else {
            ""
        }
    ));
    Ok(Json(SearchResponse::new(query, provider.id(), answer)))
}

/// The provider that searches, its model (Tavily's search depth, Brave's `web`), and a note
/// when it stands in for another.
///
/// The wiring spec's client sends `provider: 'tavily'` unless told otherwise, so a page
/// naming a search *kind* that no provider has as its id is answered by a provider of that
/// kind, else by the default search provider (the demo on a fresh install: its results
/// say what they are, and the answer's `provider` names who answered). Any other unknown
/// id, or a provider that cannot search, is a 400 naming the providers that can.
fn pick<'r>(
    registry: &'r Registry,
    asked: Option<&str>,
) -> Result<(&'r Provider, String, Option<String>), GatewayError> {
    let asked = asked.map(str::trim).filter(|p| !p.is_empty());
    let mut stand_in = None;
    let mut id = asked;
    if let Some(name) = asked.filter(|name| registry.get(name).is_none()) {
        let kind = [ProviderKind::Tavily, ProviderKind::Brave]
            .into_iter()
            .find(|k| k.to_string() == name);
        let Some(kind) = kind else {
            return Err(GatewayError::bad_request(format!(
                "unknown provider `{name}`; providers that can search the web: {}",
                able(registry)
            )));
        };
        id = registry
            .all()
            .iter()
            .find(|p| p.kind() == kind)
            .map(Provider::id);
        stand_in = Some(match id {
            Some(other) => format!("no provider has the id `{name}`: `{other}` ({kind}) answered"),
            None => {
                format!("no {kind} provider is configured: the default search provider answered")
            }
        });
    }
    let (provider, model) = registry
        .pick(Capability::Search, id, None)
        .map_err(GatewayError::bad_request)?;
    Ok((provider, model, stand_in))
}

/// The ids of the providers that can search, for messages.
fn able(registry: &Registry) -> String {
    let ids: Vec<&str> = registry
        .all()
        .iter()
        .filter(|p| p.config().can(Capability::Search))
        .map(Provider::id)
        .collect();
    if ids.is_empty() {
        "none (add Tavily or Brave: see the README's Voice and search section)".into()
    } else {
        ids.join(", ")
    }
}
