//! The web UI, embedded in the binary and served at `/`: one HTML shell, a stylesheet and plain
//! ES modules under `/ui/`. Nothing is fetched from elsewhere at run time and nothing is built
//! before `cargo build` (docs/ARCHITECTURE.md argues for modules of our own over npm libraries).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

mod assets;

pub use assets::ASSETS;

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route("/ui/{*file}", get(|Path(file): Path<String>| async move { serve(&file) }))
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such UI file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type()),
            // The files change with the binary; `no-cache` revalidates, which is cheap on loopback
            // and never serves one build's module beside another's.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Values from the store are only ever set as text; this stops anything else from running.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ],
        asset.body,
    )
        .into_response()
}
