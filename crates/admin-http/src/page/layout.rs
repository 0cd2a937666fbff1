//! The frame every page shares: the document head, the style sheet (inline: the
//! Content-Security-Policy allows no other), and the pages that say something failed.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:0.75rem;color:#1b1b1b}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.5rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{white-space:nowrap}td.time{white-space:nowrap}
.scroll{overflow-x:auto}
.ok{color:#0a6b2d}.failed{color:#a40000}.note{color:#555;font-size:.85rem}
.flash{background:#eef6ff;border:1px solid #9cc3ef;padding:.5rem;margin:.5rem 0}
.errors{background:#fff0f0;border:1px solid #e3a0a0;padding:.5rem;margin:.5rem 0}
.stale{background:#fff4d6;border:2px solid #d19a00;padding:.5rem;margin:.5rem 0;font-weight:600}
.counts{font-size:1rem}.counts strong{font-size:1.1rem}
.badge{display:inline-block;border-radius:.7rem;padding:.05rem .55rem;font-size:.8rem;font-weight:600;white-space:nowrap}
.badge.scheduled{background:#e3efff;color:#0b3d91}.badge.started{background:#fff1c2;color:#6b4a00}
.badge.completed{background:#dcf5e3;color:#0a6b2d}.badge.discontinued{background:#eee;color:#555;text-decoration:line-through}
section.status-group.completed tr.entry,section.status-group.discontinued tr.entry{color:#666}
.actions form{display:inline-block;margin:0 .2rem .2rem 0}.actions button,.actions a{font-size:.8rem;padding:.15rem .4rem}
form.inline{display:inline}
label{display:block;margin:.3rem 0}
input,select{font-size:1rem;max-width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.2rem 1rem}
.grid label input,.grid label select{display:block;width:100%;box-sizing:border-box}
button{font-size:1rem;padding:.3rem .8rem}
nav.stations{display:flex;flex-wrap:wrap;gap:.2rem .9rem}nav.stations a{white-space:nowrap}
ul.sources{padding-left:1.2rem}ul.sources li{margin:.3rem 0}
@media (max-width:40rem){
table.entries thead{display:none}
table.entries,table.entries tbody,table.entries tr,table.entries td{display:block}
table.entries tr.entry{border:1px solid #ccc;border-radius:.4rem;margin:.5rem 0;padding:.35rem .6rem}
table.entries td{border:0;padding:.1rem 0}
table.entries td[data-label]::before{content:attr(data-label) ": ";color:#555;font-size:.8rem}
table.entries td.actions{padding-top:.3rem}
}
"#;

/// A whole page. With `refresh` (seconds, URL), the browser loads that URL after that
/// many seconds (no JavaScript needed).
pub(crate) fn layout(title: &str, refresh: Option<(u32, &str)>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if let Some((s, url)) = refresh {
                        meta http-equiv="refresh" content={ (s) "; url=" (url) };
                    }
                    title { (title) }
                    style { (PreEscaped(STYLE)) }
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

/// A page that only says what went wrong, with a way back.
pub(crate) fn message_page(status: StatusCode, message: &str, back: &str) -> Response {
    (
        status,
        layout(
            "mwlbridge",
            None,
            html! {
                h1 { "mwlbridge" }
                p.errors { (message) }
                p { a href=(back) { "Back" } }
            },
        ),
    )
        .into_response()
}

/// The store failed: 503, said in words (the cause is logged, not shown).
pub(crate) fn unavailable() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The worklist database is unavailable.",
        "/",
    )
}
