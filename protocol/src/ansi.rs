//! Terminal colours in job output, made safe to show on a page.
//!
//! Jobs often write ANSI escape sequences (a compiler's red `error:`, a test
//! runner's green `ok`). [`spans`] splits a message into runs of text with
//! one [`Style`] each: the SGR codes for bold and the sixteen standard
//! colours (foreground and background) are kept as a style, every other
//! escape sequence (cursor moves, window titles, 256 and true colours,
//! device controls) is dropped, and the text is always text: a page puts
//! each span in a text node (or escapes it), never in HTML.
//!
//! The tokenizer is `anstyle-parse`, the VT parser of the `anstyle` family
//! (a maintained fork of alacritty's `vte`): a table-driven state machine
//! with no allocation per byte, `no_std`, a few kilobytes in the browser
//! bundle. It knows where every sequence ends, including ones this module
//! ignores, which a hand-written "skip to the next letter" would get wrong
//! for OSC strings and DCS.
//!
//! ```
//! use jobstream_protocol::ansi::spans;
//!
//! let s = spans("\x1b[1;31merror\x1b[0m: <b>no</b>");
//! assert_eq!(s[0].text, "error");
//! assert_eq!(s[0].style.class().as_deref(), Some("fg-1 bold"));
//! assert_eq!(s[1].text, ": <b>no</b>");
//! assert_eq!(s[1].style.class(), None);
//! ```

use anstyle_parse::{Params, Parser, Perform};

/// How a run of text is shown. The default is the page's own text style.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Foreground colour: 0–7 the standard colours (black, red, green,
    /// yellow, blue, magenta, cyan, white), 8–15 their bright variants.
    pub fg: Option<u8>,
    /// Background colour, numbered like `fg`.
    pub bg: Option<u8>,
    /// Bold (SGR 1).
    pub bold: bool,
}

impl Style {
    /// Its CSS classes (`fg-N`, `bg-N`, `bold`, space-separated), or `None`
    /// for the default style. The stylesheet gives them their colours.
    pub fn class(&self) -> Option<String> {
        let mut classes = Vec::new();
        if let Some(fg) = self.fg {
            classes.push(format!("fg-{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("bg-{bg}"));
        }
        if self.bold {
            classes.push("bold".to_owned());
        }
        (!classes.is_empty()).then(|| classes.join(" "))
    }

    /// Applies one SGR sequence's parameters, in order.
    fn apply(&mut self, params: &Params) {
        let mut params = params.iter();
        while let Some(param) = params.next() {
            // Colon sub-parameters (`38:5:196`) arrive with their parameter;
            // only the first number selects what it does.
            match param[0] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                code @ 30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                code @ 40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                code @ 90..=97 => self.fg = Some((code - 90) as u8 + 8),
                code @ 100..=107 => self.bg = Some((code - 100) as u8 + 8),
                // Extended colours are not shown, but their arguments must
                // not be read as codes of their own (`38;5;1` is not bold).
                38 | 48 if param.len() == 1 => match params.next().map(|p| p[0]) {
                    Some(5) => {
                        params.next();
                    }
                    Some(2) => {
                        params.next();
                        params.next();
                        params.next();
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The text, without escape sequences; newlines and tabs kept.
    pub text: String,
    /// How it is shown.
    pub style: Style,
}

/// `text` as styled runs, in order. Adjacent runs always differ in style;
/// an empty text gives no runs. An escape sequence cut off at the end is
/// dropped.
pub fn spans(text: &str) -> Vec<Span> {
    // Plain text, the common case, skips the parser altogether.
    if !text.chars().any(is_hidden) {
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![Span {
                text: text.to_owned(),
                style: Style::default(),
            }]
        };
    }
    let mut out = Collector::default();
    let mut parser: Parser = Parser::default();
    for byte in text.bytes() {
        parser.advance(&mut out, byte);
    }
    out.flush();
    out.spans
}

/// A control character other than newline and tab: ESC starts a sequence,
/// the rest (C0, DEL, C1) have no glyph.
fn is_hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The parser's callbacks: collects text into spans, applies SGR.
#[derive(Default)]
struct Collector {
    spans: Vec<Span>,
    /// Text since the last change of style.
    text: String,
    /// The style of `text`.
    style: Style,
}

impl Collector {
    fn push(&mut self, c: char) {
        self.text.push(c);
    }

    /// Ends the current run (if it has text).
    fn flush(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        match self.spans.last_mut() {
            Some(last) if last.style == self.style => last.text.push_str(&text),
            _ => self.spans.push(Span {
                text,
                style: self.style,
            }),
        }
    }
}

impl Perform for Collector {
    fn print(&mut self, c: char) {
        // DEL and C1 controls (U+0080–U+009F, which the parser hands over as
        // characters) have no glyph.
        if !c.is_control() {
            self.push(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        // Line breaks and tabs are text; bells, backspaces, carriage returns
        // and the rest of C0 are not.
        if byte == b'\n' || byte == b'\t' {
            self.push(byte as char);
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: u8) {
        // `ESC [ ... m` without private markers or intermediates is SGR;
        // any other CSI (cursor, erase, modes) is dropped. `ignore` means
        // the parser ran out of room for parameters: not trusted either.
        if action == b'm' && intermediates.is_empty() && !ignore {
            let mut next = self.style;
            next.apply(params);
            if next != self.style {
                self.flush();
                self.style = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Span {
        Span {
            text: text.to_owned(),
            style: Style::default(),
        }
    }

    fn styled(text: &str, fg: Option<u8>, bg: Option<u8>, bold: bool) -> Span {
        Span {
            text: text.to_owned(),
            style: Style { fg, bg, bold },
        }
    }

    #[test]
    fn plain_text_is_one_span_and_empty_text_none() {
        assert_eq!(spans("line 3 of 10"), vec![plain("line 3 of 10")]);
        assert_eq!(spans(""), vec![]);
    }

    #[test]
    fn colours_and_reset() {
        assert_eq!(
            spans("a\x1b[32mgreen\x1b[0mb"),
            vec![
                plain("a"),
                styled("green", Some(2), None, false),
                plain("b")
            ]
        );
        // `ESC[m` is a reset too (no parameter reads as 0).
        assert_eq!(
            spans("\x1b[31mred\x1b[mplain"),
            vec![styled("red", Some(1), None, false), plain("plain")]
        );
    }

    #[test]
    fn styles_nest_and_unset_one_by_one() {
        assert_eq!(
            spans("\x1b[1mB\x1b[31mBR\x1b[44mBRb\x1b[39mBb\x1b[22mb\x1b[49mx"),
            vec![
                styled("B", None, None, true),
                styled("BR", Some(1), None, true),
                styled("BRb", Some(1), Some(4), true),
                styled("Bb", None, Some(4), true),
                styled("b", None, Some(4), false),
                plain("x"),
            ]
        );
    }

    #[test]
    fn bold_red_in_one_sequence_and_bright_colours() {
        assert_eq!(
            spans("\x1b[1;31mfail\x1b[0m"),
            vec![styled("fail", Some(1), None, true)]
        );
        assert_eq!(
            spans("\x1b[92;103mx"),
            vec![styled("x", Some(10), Some(11), false)]
        );
        assert_eq!(
            spans("\x1b[1;31mx")
                .last()
                .unwrap()
                .style
                .class()
                .as_deref(),
            Some("fg-1 bold")
        );
        assert_eq!(Style::default().class(), None);
        assert_eq!(
            Style {
                fg: Some(10),
                bg: Some(0),
                bold: true
            }
            .class()
            .as_deref(),
            Some("fg-10 bg-0 bold")
        );
    }

    #[test]
    fn extended_colours_are_ignored_with_their_arguments() {
        // 5;1 and 2;1;1;1 are arguments, not "blink" and "bold".
        assert_eq!(spans("\x1b[38;5;1mx"), vec![plain("x")]);
        assert_eq!(spans("\x1b[48;2;1;1;1mx"), vec![plain("x")]);
        assert_eq!(
            spans("\x1b[38;5;196;1mx"),
            vec![styled("x", None, None, true)]
        );
        assert_eq!(
            spans("\x1b[38:2::255:0:0;32mx"),
            vec![styled("x", Some(2), None, false)]
        );
    }

    #[test]
    fn other_escapes_are_dropped() {
        // Window title (OSC, ended by BEL and by ST).
        assert_eq!(spans("\x1b]0;pwned\x07ok"), vec![plain("ok")]);
        assert_eq!(spans("\x1b]2;title\x1b\\ok"), vec![plain("ok")]);
        // Hyperlink: its text stays, the link does not.
        assert_eq!(
            spans("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            vec![plain("link")]
        );
        // Cursor moves, erase, private modes, charset selection, DCS.
        assert_eq!(
            spans("a\x1b[2J\x1b[10;5Hb\x1b[?25lc\x1b(Bd\x1bP1$r\x1b\\e\x1b[5Af"),
            vec![plain("abcdef")]
        );
        // Not SGR: `m` with a private marker.
        assert_eq!(spans("\x1b[>4;2mx"), vec![plain("x")]);
    }

    #[test]
    fn controls_other_than_newline_and_tab_are_dropped() {
        assert_eq!(
            spans("a\tb\nc\rd\x07e\x08f\x00g\x7fh\u{9b}i"),
            vec![plain("a\tb\ncdefghi")]
        );
        assert_eq!(spans("two\nlines"), vec![plain("two\nlines")]);
    }

    #[test]
    fn an_escape_cut_off_at_the_end_is_dropped() {
        assert_eq!(spans("done\x1b[3"), vec![plain("done")]);
        assert_eq!(spans("done\x1b"), vec![plain("done")]);
        assert_eq!(spans("done\x1b]0;tit"), vec![plain("done")]);
        assert_eq!(spans("\x1b[31"), vec![]);
    }

    #[test]
    fn markup_stays_text() {
        assert_eq!(
            spans("\x1b[31m<b>&amp;</b>\x1b[0m<script>"),
            vec![
                styled("<b>&amp;</b>", Some(1), None, false),
                plain("<script>")
            ]
        );
    }

    #[test]
    fn utf8_is_kept_whole() {
        assert_eq!(
            spans("\x1b[32mgrün ✓ 日本語 🎉\x1b[0m — fin"),
            vec![
                styled("grün ✓ 日本語 🎉", Some(2), None, false),
                plain(" — fin")
            ]
        );
    }

    #[test]
    fn a_style_change_without_text_leaves_no_empty_span() {
        assert_eq!(
            spans("\x1b[31m\x1b[0m\x1b[1m\x1b[22mx\x1b[32m"),
            vec![plain("x")]
        );
        // Setting a style that is already on does not split the run.
        assert_eq!(
            spans("\x1b[32ma\x1b[32mb"),
            vec![styled("ab", Some(2), None, false)]
        );
    }

    #[test]
    fn the_log_jobs_lines_read_as_expected() {
        let green = "\x1b[32mline 10 of 30\x1b[0m";
        let red = "\x1b[1;31mline 25 of 30\x1b[0m";
        assert_eq!(
            spans(green),
            vec![styled("line 10 of 30", Some(2), None, false)]
        );
        assert_eq!(
            spans(red),
            vec![styled("line 25 of 30", Some(1), None, true)]
        );
    }
}
