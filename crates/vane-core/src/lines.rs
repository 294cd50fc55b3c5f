//! Reading lines from a stream with a bound on their length: a line longer
//! than the bound is skipped (and reported) instead of growing a buffer
//! without end.

use tokio::io::{AsyncRead, AsyncReadExt};

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its `\n` (a trailing `\r` is kept).
    Text(String),
    /// A line longer than the bound; its bytes were discarded.
    TooLong { bytes: usize },
    /// Bytes that are not UTF-8.
    NotText,
}

/// Splits a stream into lines of at most `max` bytes.
pub struct LimitedLines<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    max: usize,
    /// Length of an overlong line being skipped.
    skipping: Option<usize>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LimitedLines<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LimitedLines { inner, buf: Vec::with_capacity(8192), start: 0, max: max.max(1), skipping: None, eof: false }
    }

    /// The next line; `None` at the end of the stream.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(nl) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let end = self.start + nl;
                let line = self.take(end);
                self.start = end + 1;
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Some(Line::TooLong { bytes: skipped + line.len() }));
                }
                return Ok(Some(line.into_line()));
            }
            let pending = self.buf.len() - self.start;
            if pending > self.max || self.skipping.is_some() {
                // Too long already: forget it, remember how much we dropped.
                *self.skipping.get_or_insert(0) += pending;
                self.buf.clear();
                self.start = 0;
            }
            if self.eof {
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Some(Line::TooLong { bytes: skipped }));
                }
                if self.start < self.buf.len() {
                    let end = self.buf.len();
                    let line = self.take(end);
                    self.start = end;
                    return Ok(Some(line.into_line()));
                }
                return Ok(None);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 8192];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    fn take(&self, end: usize) -> Raw {
        Raw(self.buf[self.start..end].to_vec(), end - self.start > self.max)
    }
}

struct Raw(Vec<u8>, bool);

impl Raw {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn into_line(self) -> Line {
        if self.1 {
            return Line::TooLong { bytes: self.0.len() };
        }
        match String::from_utf8(self.0) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::NotText,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LimitedLines::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_and_bounds_lines() {
        let long = vec![b'x'; 20_000];
        let mut input = b"a\nbb\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\n\xff\xfe\nlast");
        let got = all(&input, 100).await;
        assert_eq!(
            got,
            vec![
                Line::Text("a".into()),
                Line::Text("bb".into()),
                Line::TooLong { bytes: 20_000 },
                Line::NotText,
                Line::Text("last".into()),
            ]
        );
    }

    #[tokio::test]
    async fn an_endless_line_at_the_end_is_reported() {
        let got = all(&vec![b'y'; 50_000], 1000).await;
        assert_eq!(got, vec![Line::TooLong { bytes: 50_000 }]);
        let got = all(b"0123456789\n", 5).await;
        assert_eq!(got, vec![Line::TooLong { bytes: 10 }]);
    }
}
