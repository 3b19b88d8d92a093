//! The OpenAPI 3.1 description of Rewind's own query API, served at `GET /api/openapi.json`.
//! Generated from the code: the response schemas from the types the handlers answer
//! (`utoipa::ToSchema`), the operations and their parameters from the annotations beside each
//! handler. A test holds each operation's parameters to the names the handler's parser accepts,
//! and CI runs schemathesis against a live server with it (tests/it/openapi.rs).
//!
//! The Jaeger API under `/jaeger` is Jaeger's, described by Jaeger; it is not repeated here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, OpenApi};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rewind query API",
        description = "Traces, the server map, response-time histograms, the XLog scatter and \
            transaction list, second-by-second replay, incidents, comparisons and SQL over the \
            spans a Rewind server has stored. Times are Unix milliseconds, fractions allowed down \
            to the nanosecond; nanosecond timestamps in answers are decimal strings."
    ),
    paths(
        crate::routes::services::list,
        crate::routes::traces::get,
        crate::routes::traces::calltree,
        crate::routes::servermap::get,
        crate::routes::histogram::get,
        crate::routes::replay::replay,
        crate::routes::replay::incidents,
        crate::routes::replay::compare,
        crate::routes::xlog::scatter,
        crate::routes::xlog::transactions,
        crate::routes::sql::post,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// `--query-token`: every `/api` route but this description asks for it when it is set.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The description as JSON, built once.
pub fn spec() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| ApiDoc::openapi().to_json().expect("the description serializes"))
}

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], spec())
}

/// The refusals any operation can answer: a bad parameter, a missing token, an answer past
/// --query-memory, and a busy server or a query past --query-timeout, each with the error body;
/// and a URI past what the HTTP layer reads, which it answers without one.
pub struct Refusals;

impl utoipa::IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "A bad parameter; the message names it"),
            ("401", "The bearer token (--query-token) is missing or wrong"),
            ("413", "The answer could take more than --query-memory, or the query text is too long; narrow it"),
            ("503", "Every query slot is taken, or the query ran past --query-timeout; retry later"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let response = ResponseBuilder::new().description(description).content("application/json", content);
            (status.to_owned(), RefOr::T(response.build()))
        })
        .chain(std::iter::once((
            "414".to_owned(),
            RefOr::T(
                ResponseBuilder::new().description("The URI is longer than the HTTP layer reads (64 KiB)").build(),
            ),
        )))
        .collect()
    }
}

/// `from` and `to`, which most operations take.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description only: the handlers parse their query strings themselves
pub struct Range {
    /// Start of the range, Unix milliseconds (fractions down to the nanosecond: `1796031270290.25`).
    #[param(pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$")]
    from: String,
    /// End of the range, exclusive, after `from`.
    #[param(pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$")]
    to: String,
}

/// `slow_ms` and `apdex_ms`, which the figures of a map, a histogram or a comparison depend on.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Thresholds {
    /// Calls slower than this, milliseconds, count as slow (default: the bucket schema's last bound).
    #[param(minimum = 0, maximum = 1e12)]
    slow_ms: Option<f64>,
    /// Apdex's T, milliseconds (default 500).
    #[param(exclusive_minimum = 0, maximum = 1e12)]
    apdex_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> serde_json::Value {
        serde_json::from_str(spec()).unwrap()
    }

    /// Every operation's parameters in the description, by (method, path).
    fn documented() -> BTreeMap<(String, String), Vec<String>> {
        let spec = spec_json();
        let mut out = BTreeMap::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let names = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "query")
                            .map(|p| p["name"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert((method.clone(), path.clone()), names);
            }
        }
        out
    }

    #[test]
    fn each_operation_documents_the_parameters_its_handler_accepts() {
        use crate::routes::{histogram, replay, servermap, xlog};
        let sorted = |names: &[&str]| {
            let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let mut scatter = xlog::FILTERS.to_vec();
        scatter.push("format");
        let expected: Vec<(&str, &str, Vec<String>)> = vec![
            ("get", "/api/services", vec![]),
            ("get", "/api/traces/{trace_id}", vec![]),
            ("get", "/api/traces/{trace_id}/calltree", sorted(&["offset", "limit"])),
            ("get", "/api/servermap", sorted(servermap::PARAMS)),
            ("get", "/api/histogram", sorted(histogram::PARAMS)),
            ("get", "/api/replay", sorted(replay::REPLAY)),
            ("get", "/api/incidents", sorted(replay::INCIDENTS)),
            ("get", "/api/compare", sorted(replay::COMPARE)),
            ("get", "/api/xlog", sorted(&scatter)),
            ("get", "/api/transactions", sorted(xlog::FILTERS)),
            ("post", "/api/sql", vec![]),
        ];
        let mut documented = documented();
        for (method, path, names) in expected {
            let mut got = documented.remove(&(method.to_owned(), path.to_owned())).unwrap_or_else(|| {
                panic!("{method} {path} is not described");
            });
            got.sort();
            assert_eq!(got, names, "{method} {path}");
        }
        assert!(documented.is_empty(), "described but not checked here: {:?}", documented.keys());
    }

    #[test]
    fn every_schema_referenced_is_defined() {
        let text = spec();
        let spec = spec_json();
        let schemas = spec["components"]["schemas"].as_object().unwrap();
        for name in text.split("\"#/components/schemas/").skip(1).map(|s| &s[..s.find('"').unwrap()]) {
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }

    /// OpenAPI requires a description on every response; utoipa does not insist.
    #[test]
    fn every_response_is_described() {
        let spec = spec_json();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    let described = response["description"].as_str().is_some_and(|d| !d.is_empty());
                    assert!(described, "{method} {path} {status}");
                }
            }
        }
    }
}
