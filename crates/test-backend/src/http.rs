//! Minimal HTTP/1.1 wire handling: reading one request (Content-Length or
//! chunked body, `Expect: 100-continue`) from a buffered stream and writing
//! one response with a Content-Length body.

use std::io::{self, BufRead, Read, Write};

/// Largest request head or body this server accepts, to keep a broken client
/// from exhausting memory.
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_LINE: usize = 64 * 1024;

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The path part of the request target (before any `?`).
    pub path: String,
    /// The query string after `?`, without the `?`.
    pub query: Option<String>,
    /// HTTP version token, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header names lower-cased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection should stay open after the response.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").map(str::to_ascii_lowercase);
        match conn.as_deref() {
            Some(c) if c.split(',').any(|t| t.trim() == "close") => false,
            Some(c) if c.split(',').any(|t| t.trim() == "keep-alive") => true,
            _ => self.version != "HTTP/1.0",
        }
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line, without the terminator.
/// Returns `Ok(None)` on a clean EOF before any byte.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = Read::take(&mut *r, MAX_LINE as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| bad("non-UTF-8 header line"))
}

/// Reads one request. `Ok(None)` means the peer closed the connection
/// between requests. `writer` is used only to send `100 Continue`.
pub(crate) fn read_request<R: BufRead, W: Write>(
    r: &mut R,
    writer: &mut W,
) -> io::Result<Option<Request>> {
    // Skip blank lines between pipelined requests (RFC 9112 section 2.2).
    let request_line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), version) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!("bad request line: {request_line:?}")));
    };
    let version = version.unwrap_or("HTTP/1.0").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };

    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("EOF in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line: {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }

    let mut req = Request {
        method: method.to_string(),
        path,
        query,
        version,
        headers,
        body: Vec::new(),
    };

    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }

    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(r)?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad content-length: {len:?}")))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(Some(req))
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("EOF in chunk size"))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| bad(format!("bad chunk size: {line:?}")))?;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let t = read_line(r)?.ok_or_else(|| bad("EOF in trailers"))?;
                if t.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let crlf = read_line(r)?.ok_or_else(|| bad("EOF after chunk"))?;
        if !crlf.is_empty() {
            return Err(bad("missing CRLF after chunk data"));
        }
    }
}

/// One response to write.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra_headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            extra_headers: Vec::new(),
        }
    }

    pub fn sse(body: String) -> Self {
        Response {
            status: 200,
            content_type: "text/event-stream",
            body: body.into_bytes(),
            extra_headers: vec![("cache-control", "no-cache".to_string())],
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `resp`; with `head_only` the body is omitted (for `HEAD`).
pub(crate) fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &resp.extra_headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&resp.body);
    }
    w.write_all(&bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &str) -> Request {
        let mut sink = Vec::new();
        read_request(&mut Cursor::new(raw.as_bytes().to_vec()), &mut sink)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn parses_content_length_and_query() {
        let r = parse(
            "POST /v1/messages?beta=true HTTP/1.1\r\nContent-Length: 2\r\nX-Api-Key: k\r\n\r\n{}",
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.query.as_deref(), Some("beta=true"));
        assert_eq!(r.header("x-api-key"), Some("k"));
        assert_eq!(r.body, b"{}");
        assert!(r.keep_alive());
    }

    #[test]
    fn parses_chunked_body() {
        let r = parse(
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n",
        );
        assert_eq!(r.body, b"abcdefg");
    }

    #[test]
    fn connection_close_and_http10() {
        assert!(!parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn expect_continue_is_answered() {
        let mut sink = Vec::new();
        let raw = "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz";
        let r = read_request(&mut Cursor::new(raw.as_bytes().to_vec()), &mut sink)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"z");
        assert_eq!(sink, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn eof_between_requests_is_none() {
        let mut sink = Vec::new();
        assert!(read_request(&mut Cursor::new(Vec::new()), &mut sink)
            .unwrap()
            .is_none());
    }
}
