//! An incremental Server-Sent Events parser that follows the WHATWG
//! "event stream interpretation" rules, without allocating per event: the
//! load generator must read events faster than the servers send them.
//! Checked against `eventsource-stream` in the tests below.

/// Parser state across chunks.
#[derive(Default)]
pub struct Parser {
    /// The current line so far (a line may span chunks).
    line: Vec<u8>,
    /// The event being built.
    data: Vec<u8>,
    event: Vec<u8>,
    /// A CR ended the last chunk: an LF at the start of the next is part
    /// of the same line break.
    after_cr: bool,
    /// Still at the very start of the stream (a BOM is skipped there).
    start: bool,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Parser {
            start: true,
            ..Parser::default()
        }
    }

    /// Feeds a chunk; calls `on_event(event_type, data)` for each event
    /// completed by it.
    pub fn feed(&mut self, mut chunk: &[u8], on_event: &mut impl FnMut(&str, &str)) {
        if self.start {
            if self.line.len() + chunk.len() < 3
                && b"\xEF\xBB\xBF".starts_with(&[&self.line[..], chunk].concat())
            {
                self.line.extend_from_slice(chunk);
                return; // maybe a BOM, not complete yet
            }
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(chunk);
            self.start = false;
            let rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head).to_vec();
            return self.feed(&rest, on_event);
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(i) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.line.is_empty() {
                self.line_done(&chunk[..i], on_event);
            } else {
                self.line.extend_from_slice(&chunk[..i]);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, on_event);
                self.line = line;
                self.line.clear();
            }
            let cr = chunk[i] == b'\r';
            chunk = &chunk[i + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
        }
        self.line.extend_from_slice(chunk);
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(&str, &str)) {
        if line.is_empty() {
            // Dispatch.
            if !self.data.is_empty() {
                self.data.pop(); // the last LF
                let event = if self.event.is_empty() {
                    "message"
                } else {
                    std::str::from_utf8(&self.event).unwrap_or("message")
                };
                let data = String::from_utf8_lossy(&self.data);
                on_event(event, &data);
            }
            self.data.clear();
            self.event.clear();
            return;
        }
        if line[0] == b':' {
            return; // a comment
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            // `id` and `retry` matter to a reconnecting client only.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn ours(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut |e, d| out.push((e.to_owned(), d.to_owned())));
        }
        out
    }

    fn reference(chunks: &[&[u8]]) -> Vec<(String, String)> {
        use eventsource_stream::Eventsource;
        let owned: Vec<Result<Vec<u8>, std::io::Error>> =
            chunks.iter().map(|c| Ok(c.to_vec())).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(
            futures_util::stream::iter(owned)
                .eventsource()
                .filter_map(|e| async move { e.ok().map(|e| (e.event, e.data)) })
                .collect(),
        )
    }

    #[test]
    fn agrees_with_eventsource_stream_however_the_bytes_are_cut() {
        let stream: &[u8] = b": hi\n\nid: 1\ndata: one\n\nevent: end\ndata: {\"a\":1}\r\n\r\n\
            data:two\rdata\rdata: three\r\n\r: c\ndata:  spaced\n\nid: 9\nretry: 10\n\n\
            event: gap\ndata: x\n\ndata: 1 123 xxxx\n\n";
        let whole = ours(&[stream]);
        assert_eq!(whole, reference(&[stream]));
        assert_eq!(whole.len(), 6);
        assert_eq!(whole[2], ("message".into(), "two\n\nthree".into()));
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(ours(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(ours(&bytes), whole);
        // A byte-order mark at the start is skipped, even cut in two
        // (eventsource-stream itself panics on it, so no comparison).
        let bom = [b"\xEF\xBB\xBF", stream].concat();
        assert_eq!(ours(&[&bom]), whole);
        assert_eq!(ours(&[&bom[..2], &bom[2..]]), whole);
    }
}
