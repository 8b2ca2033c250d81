//! The web dashboard `sluice serve` offers under `/ui/`: jobs, a job's runs matrix, a run
//! (its DAG with live states, a timeline of attempts, each task's attempts and logs,
//! repair and cancel). The page is static HTML, CSS and JavaScript embedded in the binary
//! (`include_str!`: no build step, no CDN; the machine may have no internet).
//!
//! Owns the assets (public: they hold no data) and the few JSON routes the pages need
//! beyond the API (`api`, mounted under `/api/sluice/v1/dashboard`). Every piece of data
//! the page shows comes through the authenticated JSON API with the token the user typed
//! in (kept in the browser's session storage, sent as `Authorization: Bearer`); the
//! dashboard never decides who may do what — the buttons it hides, the API refuses anyway.

pub mod api;
pub mod search;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;

/// What the page may load and where it may connect: only this server (no inline script,
/// no third-party origin), and it may not be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The embedded assets: path under `/ui/`, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("", "text/html; charset=utf-8", include_str!("assets/index.html")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("jobs.js", "text/javascript; charset=utf-8", include_str!("assets/jobs.js")),
    ("views.js", "text/javascript; charset=utf-8", include_str!("assets/views.js")),
    ("run.js", "text/javascript; charset=utf-8", include_str!("assets/run.js")),
    ("matrix.js", "text/javascript; charset=utf-8", include_str!("assets/matrix.js")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("assets/admin.js")),
];

/// The routes, merged at the root: `/ui` redirects to `/ui/` (the page), each asset at
/// `/ui/NAME`.
pub fn routes() -> Router<AppState> {
    let mut router = api::routes().route("/ui", get(|| async { Redirect::permanent("/ui/") }));
    for (i, (name, _, _)) in ASSETS.iter().enumerate() {
        router = router.route(&format!("/ui/{name}"), get(move || async move { asset(i) }));
    }
    router
}

/// For working on the dashboard itself: with `SLUICE_DASHBOARD_DIR` set to the assets'
/// directory (`runtime/src/server/dashboard/assets`) each asset is read from there on every
/// request, so an edit shows on reload without rebuilding. Only the names above are read.
pub const DEV_DIR_ENV: &str = "SLUICE_DASHBOARD_DIR";

fn asset(i: usize) -> Response {
    let (name, kind, embedded) = ASSETS[i];
    let from_dir = std::env::var_os(DEV_DIR_ENV).and_then(|dir| {
        let file = if name.is_empty() { "index.html" } else { name };
        std::fs::read_to_string(std::path::Path::new(&dir).join(file)).ok()
    });
    let text = from_dir.unwrap_or_else(|| embedded.to_owned());
    (
        [
            (CONTENT_TYPE, kind),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // the assets change with the binary: revalidate rather than run a stale page
            (CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_loads_is_embedded() {
        let index = ASSETS[0].2;
        for (name, _, _) in &ASSETS[1..] {
            assert!(index.contains(&format!("\"{name}\"")), "index.html does not load {name}");
        }
        assert!(!index.contains("http://") && !index.contains("https://"), "no external origin");
    }
}
