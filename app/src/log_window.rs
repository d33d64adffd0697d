//! The log view's rows in the browser: a window of at most [`MAX_ROWS`]
//! consecutive lines of the job, kept in the DOM by hand.
//!
//! A job can write a million lines; a reactive list would diff them all on
//! every message. Here the list's rows are plain DOM nodes: the server
//! renders the newest page of them, live lines are buffered and appended
//! once per animation frame (one `DocumentFragment` each), and the rows
//! shown are always one run of lines without holes, `first_seq` to the
//! newest, or, once the reader has loaded older pages past the bound, an
//! older run whose end is not the newest line ([`Tail::Stale`]).
//!
//! Bounds: the DOM holds at most [`MAX_ROWS`] rows and the frame buffer as
//! many lines. While following, the oldest rows are dropped as new ones
//! come ("Load earlier" fetches them again). While the reader looks at
//! older lines, rows are not dropped under their eyes: once the window is
//! full, live lines are no longer added and "Jump to latest" reloads the
//! newest page instead.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use jobstream_protocol::lines::{BEFORE_PARAM, LIMIT_PARAM, PAGE_LINES};
use jobstream_protocol::{ansi, routes, Line, LinesPage};
use leptos::prelude::*;
use web_sys::{Document, Element, HtmlElement};

use crate::log_view::LogSignals;

/// Most rows in the DOM at once (and most lines waiting for a frame).
pub const MAX_ROWS: usize = 5_000;

/// Scrolled to within this many pixels of the end counts as at the end.
const BOTTOM_SLACK: i32 = 8;

/// Whether the window's last row is the newest line the page knows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// It is: live lines are appended.
    Current,
    /// The window was moved back past the bound (or filled up while the
    /// reader looked at older lines): live lines are counted, not shown.
    Stale,
    /// The newest page is being fetched: live lines wait in the buffer.
    Loading,
}

/// The window's state. One per job page, shared by the live stream, the
/// frame callback and the buttons through [`Shared`].
pub struct LogWindow {
    /// The job's id, for the lines API.
    id: String,
    /// The `<ul>`, once the page is mounted.
    list: Option<HtmlElement>,
    /// The newest sequence id the page knows of: the snapshot's, then each
    /// live message's. Live messages at or below it are repeats.
    seen_seq: u64,
    /// The number (`n`) of the newest message the page knows of.
    last_n: u64,
    tail: Tail,
    /// Live lines waiting for the next frame, oldest first.
    pending: VecDeque<Line>,
    /// Set when `pending` dropped lines off its front to stay bounded: the
    /// rows shown no longer join up with it.
    pending_cut: bool,
    /// A frame callback is scheduled.
    frame: bool,
    /// The signals the view shows.
    signals: LogSignals,
}

/// The window, shared between the callbacks of one page (the browser is
/// single-threaded; no borrow is held across an `.await`).
pub type Shared = Rc<RefCell<LogWindow>>;

impl LogWindow {
    /// A window whose server-rendered rows end at the message numbered
    /// `last_n`, taken from the log at `last_seq`.
    pub fn new(id: String, last_seq: u64, last_n: u64, signals: LogSignals) -> Shared {
        Rc::new(RefCell::new(LogWindow {
            id,
            list: None,
            seen_seq: last_seq,
            last_n,
            tail: Tail::Current,
            pending: VecDeque::new(),
            pending_cut: false,
            frame: false,
            signals,
        }))
    }
}

/// The page is mounted: takes over `list` and shows its end. `expected`
/// is how many rows the server rendered; if the list is empty although
/// there were some (the view was rendered in the browser, whose props carry
/// no rows: not today, as links are page loads), the newest page is
/// fetched instead.
pub fn mount(shared: &Shared, list: HtmlElement, expected: usize) {
    if shared.borrow().list.is_some() {
        return;
    }
    let empty = list.child_element_count() == 0;
    shared.borrow_mut().list = Some(list.clone());
    if empty && expected > 0 {
        reload_tail(shared);
    } else {
        scroll_to_end(&list);
        schedule(shared);
    }
}

/// A live message: numbered and queued for the next frame.
pub fn push(shared: &Shared, seq: u64, text: String) {
    let mut w = shared.borrow_mut();
    // The server sends each event once; a reconnect could still replay.
    if seq <= w.seen_seq {
        return;
    }
    w.seen_seq = seq;
    w.last_n += 1;
    if w.tail == Tail::Stale {
        return;
    }
    let n = w.last_n;
    w.pending.push_back(Line { seq, n, text });
    if w.pending.len() > MAX_ROWS {
        w.pending.pop_front();
        w.pending_cut = true;
    }
    drop(w);
    schedule(shared);
}

/// Asks for a frame callback unless one is already due.
fn schedule(shared: &Shared) {
    let mut w = shared.borrow_mut();
    if w.frame || w.tail != Tail::Current || w.pending.is_empty() {
        return;
    }
    w.frame = true;
    let shared = Rc::clone(shared);
    request_animation_frame(move || {
        let mut w = shared.borrow_mut();
        w.frame = false;
        w.apply();
    });
}

impl LogWindow {
    /// Appends the buffered live lines in one go and keeps the bound.
    fn apply(&mut self) {
        let Some(list) = self.list.clone() else {
            return;
        };
        if self.tail != Tail::Current || self.pending.is_empty() {
            return;
        }
        let following = self.signals.following.get_untracked();
        let rows = list.child_element_count() as usize;
        if !following && (self.pending_cut || rows + self.pending.len() > MAX_ROWS) {
            // The reader is looking at older lines: fill the window up, then
            // leave it as it is until they jump to the latest.
            let room = if self.pending_cut {
                0
            } else {
                MAX_ROWS.saturating_sub(rows)
            };
            let fitting: Vec<Line> = self.pending.drain(..).take(room).collect();
            append(&list, &fitting);
            self.pending_cut = false;
            self.tail = Tail::Stale;
            return;
        }
        if self.pending_cut {
            // The buffer no longer joins the rows: it alone is the window.
            list.set_text_content(None);
            self.signals.more.set(true);
            self.pending_cut = false;
        }
        let lines: Vec<Line> = self.pending.drain(..).collect();
        append(&list, &lines);
        let excess = (list.child_element_count() as usize).saturating_sub(MAX_ROWS);
        if excess > 0 {
            for _ in 0..excess {
                if let Some(row) = list.first_element_child() {
                    row.remove();
                }
            }
            self.signals.more.set(true);
        }
        if following {
            scroll_to_end(&list);
        }
    }
}

/// "Load earlier": fetches the page before the first row and puts it on
/// top, keeping what the reader looks at in place.
pub fn load_earlier(shared: &Shared) {
    let (url, before) = {
        let w = shared.borrow();
        let Some(before) = w.list.as_ref().and_then(first_seq) else {
            return;
        };
        if w.signals.busy.get_untracked() || w.tail == Tail::Loading {
            return;
        }
        w.signals.busy.set(true);
        w.signals.failed.set(false);
        (lines_url(&w.id, before), before)
    };
    let shared = Rc::clone(shared);
    leptos::task::spawn_local(async move {
        let page = fetch_page(&url).await;
        let mut w = shared.borrow_mut();
        w.signals.busy.set(false);
        match page {
            Ok(page) => w.prepend(before, page),
            Err(()) => w.signals.failed.set(true),
        }
    });
}

impl LogWindow {
    fn prepend(&mut self, before: u64, page: LinesPage) {
        let Some(list) = self.list.clone() else {
            return;
        };
        // Rows were dropped from the top while the page was on its way: it
        // no longer joins up. The button stays for another try.
        if first_seq(&list) != Some(before) {
            return;
        }
        let height = list.scroll_height();
        let top = list.scroll_top();
        let fragment = fragment(&page.lines);
        // `prepend` on a fragment moves its children; it fails only for a
        // node that cannot hold them, which a `<ul>` can.
        let _ = list.prepend_with_node_1(&fragment);
        // The stylesheet turns the browser's scroll anchoring off, so the
        // rows the reader was looking at are kept in place here.
        list.set_scroll_top(top + (list.scroll_height() - height));
        let excess = (list.child_element_count() as usize).saturating_sub(MAX_ROWS);
        if excess > 0 {
            for _ in 0..excess {
                if let Some(row) = list.last_element_child() {
                    row.remove();
                }
            }
            // The window's end is no longer the newest line.
            self.tail = Tail::Stale;
            self.pending.clear();
            self.pending_cut = false;
            self.signals.following.set(false);
        }
        self.signals.more.set(page.more);
        self.signals.at_start.set(!page.more);
    }
}

/// "Jump to latest": to the end of the rows, or, if they do not reach the
/// newest line, to a fresh newest page; following again either way.
pub fn jump_to_latest(shared: &Shared) {
    let w = shared.borrow();
    let Some(list) = w.list.clone() else {
        return;
    };
    match w.tail {
        Tail::Current => {
            w.signals.following.set(true);
            scroll_to_end(&list);
        }
        Tail::Stale => {
            drop(w);
            reload_tail(shared);
        }
        Tail::Loading => {}
    }
}

/// Replaces the rows with the newest page (up to the newest line seen
/// live; lines arriving meanwhile wait in the buffer and follow it).
fn reload_tail(shared: &Shared) {
    let url = {
        let mut w = shared.borrow_mut();
        w.tail = Tail::Loading;
        w.pending.clear();
        w.pending_cut = false;
        w.signals.failed.set(false);
        lines_url(&w.id, w.seen_seq + 1)
    };
    let shared = Rc::clone(shared);
    leptos::task::spawn_local(async move {
        let page = fetch_page(&url).await;
        let mut w = shared.borrow_mut();
        let Some(list) = w.list.clone() else {
            return;
        };
        match page {
            Ok(page) => {
                list.set_text_content(None);
                if !w.pending_cut {
                    append(&list, &page.lines);
                }
                w.signals.more.set(page.more || w.pending_cut);
                w.signals.at_start.set(false);
                w.signals.following.set(true);
                w.tail = Tail::Current;
                w.apply();
                scroll_to_end(&list);
            }
            Err(()) => {
                w.tail = Tail::Stale;
                w.signals.following.set(false);
                w.signals.failed.set(true);
            }
        }
    });
}

/// The list was scrolled (by the reader or by following): following is on
/// exactly while its end, the newest line, is in view.
pub fn on_scroll(shared: &Shared) {
    let w = shared.borrow();
    let Some(list) = &w.list else {
        return;
    };
    let at_end = list.scroll_height() - list.scroll_top() - list.client_height() <= BOTTOM_SLACK;
    let following = at_end && w.tail == Tail::Current;
    if following != w.signals.following.get_untracked() {
        w.signals.following.set(following);
    }
    drop(w);
    if following {
        // Lines that waited while the reader was away.
        schedule(shared);
    }
}

fn scroll_to_end(list: &HtmlElement) {
    list.set_scroll_top(list.scroll_height());
}

/// The sequence id of the first row.
fn first_seq(list: &HtmlElement) -> Option<u64> {
    list.first_element_child()?
        .get_attribute("data-seq")?
        .parse()
        .ok()
}

fn lines_url(id: &str, before: u64) -> String {
    format!(
        "{}?{BEFORE_PARAM}={before}&{LIMIT_PARAM}={PAGE_LINES}",
        routes::job_lines(id)
    )
}

/// One page of lines from the lines API; `Err` for any failure (network,
/// status, body), which the view reports in one sentence.
async fn fetch_page(url: &str) -> Result<LinesPage, ()> {
    let response = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|_| ())?;
    if !response.ok() {
        return Err(());
    }
    response.json::<LinesPage>().await.map_err(|_| ())
}

fn append(list: &HtmlElement, lines: &[Line]) {
    if !lines.is_empty() {
        // A `<ul>` takes any children; appending cannot fail.
        let _ = list.append_child(&fragment(lines));
    }
}

/// `lines` as `<li>` rows in one fragment.
fn fragment(lines: &[Line]) -> web_sys::DocumentFragment {
    let doc = document();
    let fragment = doc.create_document_fragment();
    for line in lines {
        let _ = fragment.append_child(&row(&doc, line));
    }
    fragment
}

/// One row: the same markup as `log_view::rows_html` renders on the
/// server. Text goes into text nodes only.
fn row(doc: &Document, line: &Line) -> Element {
    // `li` and `span` are valid tag names: creating them cannot fail.
    let li = doc.create_element("li").expect("li");
    let _ = li.set_attribute("data-seq", &line.seq.to_string());
    let _ = li.set_attribute("data-n", &line.n.to_string());
    for span in ansi::spans(&line.text) {
        match span.style.class() {
            None => {
                let _ = li.append_with_str_1(&span.text);
            }
            Some(class) => {
                let el = doc.create_element("span").expect("span");
                el.set_class_name(&class);
                el.set_text_content(Some(&span.text));
                let _ = li.append_child(&el);
            }
        }
    }
    li
}
