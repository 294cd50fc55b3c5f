//! The pages and queries the `board` sink serves on the agent's HTTP port:
//!
//! - `/` the list of boards, `/board/SLUG` one board, `/checks` the check
//!   states: one page (`assets/page.html`) whose script draws each;
//! - `/assets/…` its script, style sheet and their licence, compiled in;
//! - `/api/boards`, `/api/board/SLUG` (the board, its widgets and data),
//!   `/api/board/SLUG/events` (server-sent events: the board, then each
//!   submission's changes), `/api/board/SLUG/range?tag=T&from=MS&to=MS&points=N`
//!   (a bound widget's lines over a time range), `/api/checks`;
//! - `/api/series` and `/api/range` (see `query.rs`).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use vane_core::http::{Body, HttpHandler, HttpRequest, HttpResponse};

use super::bind;
use super::checks::Checks;
use super::history::History;
use super::set::BoardSet;

const PAGE: &str = include_str!("assets/page.html");
const SCRIPT: &[u8] = include_bytes!("assets/board.js");
const STYLE: &[u8] = include_bytes!("assets/board.css");

/// What the routes read.
#[derive(Clone)]
pub struct Site {
    pub boards: Arc<BoardSet>,
    pub history: Arc<Mutex<History>>,
    pub checks: Arc<Mutex<Checks>>,
}

/// The page, with what it draws first written into it (so that it is drawn
/// before the page's load event, without waiting for a request: a page
/// saved or dumped at load shows the data).
fn page(initial: &Value) -> HttpResponse {
    // `</` would end the script element early.
    let data = initial.to_string().replace("</", "<\\/");
    let script = format!("<script id=\"initial\" type=\"application/json\">{data}</script>");
    HttpResponse::text(200, "text/html; charset=utf-8", PAGE.replace("<!-- initial -->", &script))
}

fn asset(req: &HttpRequest) -> HttpResponse {
    let (ctype, bytes) = match req.path.as_str() {
        "/assets/board.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/assets/board.css" => ("text/css; charset=utf-8", STYLE),
        p => return HttpResponse::not_found(format_args!("no asset {p}")),
    };
    HttpResponse { status: 200, content_type: ctype.into(), body: Body::Static(bytes) }
}

impl Site {
    /// Every route, by path.
    pub fn routes(&self) -> Vec<(&'static str, HttpHandler)> {
        let s = self.clone();
        let api = move |req: &HttpRequest| s.board_api(req);
        let s = self.clone();
        let list = move |_: &HttpRequest| HttpResponse::json(format!("{}\n", s.boards.list()));
        let s = self.clone();
        let checks = move |_: &HttpRequest| HttpResponse::json(format!("{}\n", s.checks_now()));
        let s = self.clone();
        let home = move |req: &HttpRequest| {
            if req.path == "/" {
                page(&s.boards.list())
            } else {
                HttpResponse::not_found(format_args!("no page {}", req.path))
            }
        };
        let s = self.clone();
        let board = move |req: &HttpRequest| {
            let slug = req.path.trim_start_matches("/board/");
            match s.boards.snapshot(slug) {
                Some(b) => page(&b),
                None => HttpResponse::not_found(format_args!("no board {slug:?}")),
            }
        };
        let s = self.clone();
        let checks_page = move |_: &HttpRequest| page(&s.checks_now());
        let h = self.history.clone();
        let series = move |req: &HttpRequest| super::query::series(&h.lock().expect("not poisoned"), req);
        let h = self.history.clone();
        let range = move |req: &HttpRequest| super::query::range(&h.lock().expect("not poisoned"), req);
        vec![
            ("/", Arc::new(home) as HttpHandler),
            ("/board/", Arc::new(board)),
            ("/checks", Arc::new(checks_page)),
            ("/assets/", Arc::new(asset)),
            ("/api/boards", Arc::new(list)),
            ("/api/board/", Arc::new(api)),
            ("/api/checks", Arc::new(checks)),
            ("/api/series", Arc::new(series)),
            ("/api/range", Arc::new(range)),
        ]
    }

    fn checks_now(&self) -> Value {
        Value::Array(self.checks.lock().expect("not poisoned").list(""))
    }

    fn board_api(&self, req: &HttpRequest) -> HttpResponse {
        let rest = req.path.trim_start_matches("/api/board/");
        let (slug, what) = rest.split_once('/').unwrap_or((rest, ""));
        match what {
            "" => match self.boards.snapshot(slug) {
                Some(b) => HttpResponse::json(format!("{b}\n")),
                None => HttpResponse::not_found(format_args!("no board {slug:?}")),
            },
            "events" => match self.boards.watch(slug) {
                Some(rx) => {
                    HttpResponse { status: 200, content_type: "text/event-stream".into(), body: Body::Stream(rx) }
                }
                None => HttpResponse::not_found(format_args!("no board {slug:?}")),
            },
            "range" => self.range(slug, req),
            _ => HttpResponse::not_found(format_args!("no route {}", req.path)),
        }
    }

    /// `{"lines": [{"label", "points": [[ms, v]]}]}` of a bound widget.
    fn range(&self, slug: &str, req: &HttpRequest) -> HttpResponse {
        let tag = req.param("tag").unwrap_or_default();
        let Some(bindings) = self.boards.bindings(slug, &tag) else {
            return HttpResponse::not_found(format_args!("no widget {tag:?} on board {slug:?}"));
        };
        let (from, to, points) = super::query::span(req, 300, 10_000);
        let h = self.history.lock().expect("not poisoned");
        let lines: Vec<Value> = bindings
            .iter()
            .flat_map(|b| bind::range(&h, b, from, to, points))
            .map(|(label, pts)| {
                let pts: Vec<Value> = pts
                    .into_iter()
                    .map(|(t, v)| json!([t, if v.is_finite() { json!(v) } else { Value::Null }]))
                    .collect();
                json!({"label": label, "points": pts})
            })
            .collect();
        HttpResponse::json(format!("{}\n", json!({"lines": lines})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_drawing_is_written_into_the_page_and_cannot_end_its_script() {
        let r = page(&json!({"title": "a </script><b>"}));
        let Body::Text(html) = r.body else { panic!() };
        let at = html.find("<script id=\"initial\"").unwrap();
        let script = &html[at..at + html[at..].find("</script>").unwrap()];
        assert!(script.contains(r#""title":"a <\/script><b>""#), "{script}");
        assert!(html.contains("<script src=\"/assets/board.js\"></script>"));
    }
}
