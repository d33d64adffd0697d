//! A job's output as a log view: a scrollable box of numbered, coloured
//! rows with "Load earlier", "Jump to latest" and "Download output".
//!
//! The server renders the newest page of lines ([`PAGE_LINES`](jobstream_protocol::lines::PAGE_LINES)) straight
//! into the list as HTML ([`rows_html`]). That HTML is not part of the
//! page's hydration data (the field carrying it is skipped by serde), and
//! hydration leaves an element's `inner_html` alone, so the rows are sent
//! once. In the browser the rows belong to `log_window`, which appends
//! live lines once per frame, keeps at most `MAX_ROWS` of them and fetches
//! older pages from the lines API.
//!
//! Rows carry their line number in `data-n`; the stylesheet shows it in a
//! gutter (`::before`), so a row's text, what is selected and copied and
//! what tests read, is the message alone.

use jobstream_protocol::routes;
use leptos::prelude::*;

use crate::i18n::Strings;

/// What the view shows besides the rows; the browser's window sets them.
#[derive(Debug, Clone, Copy)]
pub struct LogSignals {
    /// The view is at its end and scrolls along with new lines.
    pub following: RwSignal<bool>,
    /// Older lines exist before the first row.
    pub more: RwSignal<bool>,
    /// A page of older lines is being fetched.
    pub busy: RwSignal<bool>,
    /// "Load earlier" reached the first line.
    pub at_start: RwSignal<bool>,
    /// The last fetch failed.
    pub failed: RwSignal<bool>,
}

/// Where the rows start, as the server rendered them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogStart {
    /// How many rows the server rendered (in the HTML, or that the browser
    /// must fetch when it has no HTML).
    pub shown: usize,
    /// Whether older lines exist before them.
    pub more: bool,
    /// The log's last sequence id at that instant (the live stream resumes
    /// after it).
    pub last_seq: u64,
    /// The number of the last message at that instant.
    pub last_n: u64,
}

/// The log view's handle: the signals, and in the browser the window of
/// rows. Cheap to clone into the page's callbacks.
#[derive(Clone)]
pub struct LogHandle {
    signals: LogSignals,
    #[cfg(feature = "hydrate")]
    window: send_wrapper::SendWrapper<crate::log_window::Shared>,
}

impl LogHandle {
    /// A handle for job `id`'s log, starting as the server rendered it.
    pub fn new(id: &str, start: LogStart) -> Self {
        let signals = LogSignals {
            following: RwSignal::new(true),
            more: RwSignal::new(start.more),
            busy: RwSignal::new(false),
            at_start: RwSignal::new(false),
            failed: RwSignal::new(false),
        };
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
        LogHandle {
            signals,
            #[cfg(feature = "hydrate")]
            window: send_wrapper::SendWrapper::new(crate::log_window::LogWindow::new(
                id.to_owned(),
                start.last_seq,
                start.last_n,
                signals,
            )),
        }
    }

    /// A live message (browser only).
    #[cfg(feature = "hydrate")]
    pub fn push(&self, seq: u64, text: String) {
        crate::log_window::push(&self.window, seq, text);
    }

    fn load_earlier(&self) {
        #[cfg(feature = "hydrate")]
        crate::log_window::load_earlier(&self.window);
    }

    fn jump_to_latest(&self) {
        #[cfg(feature = "hydrate")]
        crate::log_window::jump_to_latest(&self.window);
    }

    fn on_scroll(&self) {
        #[cfg(feature = "hydrate")]
        crate::log_window::on_scroll(&self.window);
    }
}

/// The log view of job `id`. `rows_html` is the server's rendering of the
/// newest rows (empty in the browser).
#[component]
pub fn LogView(
    id: String,
    strings: Strings,
    log: LogHandle,
    start: LogStart,
    rows_html: String,
) -> impl IntoView {
    let LogSignals {
        following,
        more,
        busy,
        at_start,
        failed,
    } = log.signals;
    let list = NodeRef::<leptos::html::Ul>::new();
    #[cfg(feature = "hydrate")]
    {
        let log = log.clone();
        Effect::new(move |_| {
            if let Some(ul) = list.get() {
                crate::log_window::mount(&log.window, ul.into(), start.shown);
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = start;
    let (earlier, jump, scroll) = (log.clone(), log.clone(), log);
    view! {
        <section class="log">
            <div class="log-tools">
                <button type="button" class="secondary" hidden=move || !more.get()
                    disabled=move || busy.get()
                    on:click=move |_| earlier.load_earlier()>{strings.t("log-load-earlier")}</button>
                <span class="notice" hidden=move || !at_start.get() || more.get()>{strings.t("log-start")}</span>
                <span class="error" role="alert" hidden=move || !failed.get()>{strings.t("log-load-failed")}</span>
                <a class="download" href=routes::job_output(&id) download="">{strings.t("log-download")}</a>
            </div>
            // The list's accessible name stays English in every language:
            // tests and outside checks find the output by it. It scrolls on
            // its own, so it can take keyboard focus.
            <ul class="output" aria-label="Job output" tabindex="0" node_ref=list
                inner_html=rows_html on:scroll=move |_| scroll.on_scroll()></ul>
            <button type="button" class="jump" hidden=move || following.get()
                on:click=move |_| jump.jump_to_latest()>{strings.t("log-jump")}</button>
        </section>
    }
}

/// `lines` as the list's rows: `<li data-seq data-n>` with coloured runs
/// in `<span class>`; every text escaped. The browser builds the same
/// markup for the rows it adds (`log_window::row`).
#[cfg(feature = "ssr")]
pub fn rows_html(lines: &[jobstream_protocol::Line]) -> String {
    use std::fmt::Write;

    let mut out = String::with_capacity(lines.iter().map(|l| l.text.len() + 40).sum());
    for line in lines {
        // Writing to a String cannot fail.
        let _ = write!(out, r#"<li data-seq="{}" data-n="{}">"#, line.seq, line.n);
        for span in jobstream_protocol::ansi::spans(&line.text) {
            match span.style.class() {
                // Class names are made of `fg-N`, `bg-N` and `bold` only.
                Some(class) => {
                    let _ = write!(out, r#"<span class="{class}">"#);
                    out.push_str(&html_escape::encode_text(&span.text));
                    out.push_str("</span>");
                }
                None => out.push_str(&html_escape::encode_text(&span.text)),
            }
        }
        out.push_str("</li>");
    }
    out
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use jobstream_protocol::Line;

    fn line(seq: u64, n: u64, text: &str) -> Line {
        Line {
            seq,
            n,
            text: text.to_owned(),
        }
    }

    #[test]
    fn rows_are_numbered_text_with_colour_classes() {
        let html = rows_html(&[
            line(3, 1, "plain"),
            line(5, 2, "\x1b[32mline 10 of 30\x1b[0m"),
            line(6, 3, "\x1b[1;31mbad\x1b[0m ok"),
        ]);
        assert_eq!(
            html,
            concat!(
                r#"<li data-seq="3" data-n="1">plain</li>"#,
                r#"<li data-seq="5" data-n="2"><span class="fg-2">line 10 of 30</span></li>"#,
                r#"<li data-seq="6" data-n="3"><span class="fg-1 bold">bad</span> ok</li>"#,
            )
        );
        assert_eq!(rows_html(&[]), "");
    }

    #[test]
    fn markup_in_messages_is_escaped() {
        let html = rows_html(&[line(
            1,
            1,
            "<img src=x onerror=\"a('&')\">\x1b[31m</li><script>\x1b]0;t\x07",
        )]);
        assert_eq!(
            html,
            concat!(
                // Text content: `&`, `<` and `>` escaped (quotes need not be).
                r#"<li data-seq="1" data-n="1">&lt;img src=x onerror="a('&amp;')"&gt;"#,
                r#"<span class="fg-1">&lt;/li&gt;&lt;script&gt;</span></li>"#,
            )
        );
    }

    #[test]
    fn newlines_and_tabs_stay_in_the_row() {
        assert_eq!(
            rows_html(&[line(2, 1, "two\nlines\tand a tab")]),
            "<li data-seq=\"2\" data-n=\"1\">two\nlines\tand a tab</li>"
        );
    }
}
