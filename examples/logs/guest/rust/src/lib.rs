//! The logs example's parser, in Rust: `flat_map parse` reads one line of
//! a web server's access log (Common or Combined Log Format) and emits what
//! the job counts, `("status <code>", "1")` and `("path <path>", "1")`, or
//! `("malformed", "1")` for a line it cannot read. The counts are added up
//! by the Go guest (`../go`): a job in two languages. Build it with
//!
//! ```text
//! sdk/guest/rust/build.sh examples/logs/guest/rust examples/logs/guest/rust/guest.wasm
//! ```

use wasmgrid_guest::{Emit, Registry};

/// The value of every record: one request, in decimal, which is what the
/// Go guest's sum adds.
const ONE: &[u8] = b"1";

/// The field of `s` that ends at its first space, and what follows the
/// space; `None` if there is no space or the field is empty.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = s.iter().position(|&c| c == b' ')?;
    if end == 0 {
        return None;
    }
    Some((&s[..end], &s[end + 1..]))
}

/// A word of the quoted request at the start of `s`: the bytes up to the
/// first space or double quote that no backslash escapes (Apache writes a
/// `"` in a request as `\"`). Returns the word, the byte that ends it, and
/// what follows that byte; `None` if the word is empty or the line ends
/// first.
fn word(s: &[u8]) -> Option<(&[u8], u8, &[u8])> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b' ' | b'"' => break,
            _ => i += 1,
        }
    }
    if i == 0 || i >= s.len() {
        return None;
    }
    Some((&s[..i], s[i], &s[i + 1..]))
}

/// Reads an access-log line: `host ident user [time] "request" status
/// size`, optionally followed by a space and anything (Combined's referer
/// and user agent). host, ident and user are runs of bytes other than a
/// space; time is any bytes but `]`; the request is `METHOD TARGET` or
/// `METHOD TARGET PROTOCOL`; status is three digits; size is digits or `-`.
/// Every separator is one space. Returns the status and the path, which is
/// the target without its query string (from the first `?` on), or `None`
/// if the line is not of that form.
pub fn parse_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_host, rest) = field(line)?;
    let (_ident, rest) = field(rest)?;
    let (_user, rest) = field(rest)?;
    let rest = rest.strip_prefix(b"[")?;
    let close = rest.iter().position(|&c| c == b']')?;
    if close == 0 {
        return None;
    }
    let rest = rest[close + 1..].strip_prefix(b" \"")?;
    let (_method, end, rest) = word(rest)?;
    if end != b' ' {
        return None;
    }
    let (target, end, mut rest) = word(rest)?;
    if end == b' ' {
        let (_protocol, end, after) = word(rest)?;
        if end != b'"' {
            return None;
        }
        rest = after;
    }
    let rest = rest.strip_prefix(b" ")?;
    if rest.len() < 4 || !rest[..3].iter().all(u8::is_ascii_digit) || rest[3] != b' ' {
        return None;
    }
    let (status, rest) = (&rest[..3], &rest[4..]);
    let size_len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let size = &rest[..size_len];
    if size != b"-" && (size.is_empty() || !size.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let path_len = target.iter().position(|&c| c == b'?').unwrap_or(target.len());
    Some((status, &target[..path_len]))
}

/// Emits `("status <code>", "1")` and `("path <path>", "1")` for a line of
/// an access log, or `("malformed", "1")` if [`parse_line`] cannot read it:
/// a bad line is counted, it does not fail the job. The record's key is
/// ignored.
pub fn parse(line: &[u8], emit: &mut Emit) {
    match parse_line(line) {
        Some((status, path)) => {
            emit.emit_with(|key, value| {
                key.extend_from_slice(b"status ");
                key.extend_from_slice(status);
                value.extend_from_slice(ONE);
            });
            emit.emit_with(|key, value| {
                key.extend_from_slice(b"path ");
                key.extend_from_slice(path);
                value.extend_from_slice(ONE);
            });
        }
        None => emit.emit(b"malformed", ONE),
    }
}

fn register(r: &mut Registry) {
    r.flat_map("parse", parse);
}

wasmgrid_guest::register!(register);

#[cfg(test)]
mod tests {
    use super::parse_line;

    fn parsed(line: &str) -> Option<(String, String)> {
        parse_line(line.as_bytes()).map(|(s, p)| {
            (
                String::from_utf8_lossy(s).into_owned(),
                String::from_utf8_lossy(p).into_owned(),
            )
        })
    }

    fn ok(status: &str, path: &str) -> Option<(String, String)> {
        Some((status.to_string(), path.to_string()))
    }

    #[test]
    fn reads_common_and_combined_lines() {
        let t = "[10/Oct/2000:13:55:36 -0700]";
        let cases = [
            (format!("127.0.0.1 - frank {} \"GET /apache_pb.gif HTTP/1.0\" 200 2326", t), ok("200", "/apache_pb.gif")),
            (format!("127.0.0.1 - - {} \"GET /a?b=c HTTP/1.1\" 304 - \"http://x/?y\" \"Mozilla/4.08 (X)\"", t), ok("304", "/a")),
            (format!("::1 - - {} \"GET /\" 200 5", t), ok("200", "/")),
            (format!("h - - {} \"GET /q\\\"x?\\\"y HTTP/1.1\" 404 0", t), ok("404", "/q\\\"x")),
            (format!("h - - {} \"GET ?x HTTP/1.1\" 200 0", t), ok("200", "")),
            (format!("h - - {} \"-\" 408 -", t), None),
            (format!("h - - {} \"\\x16\\x03\\x01\" 400 226 \"-\" \"-\"", t), None),
            (format!("h - - {} \"GET / HTTP/1.1\" 2000 1", t), None),
            (format!("h - - {} \"GET / HTTP/1.1\" 200 12x", t), None),
            (format!("h - - {} \"GET / HTTP/1.1\" 200", t), None),
            (format!("h - - {} \"GET / HTTP/1.1\" 200 ", t), None),
            (format!("h - - {} \"GET / HTTP/1.1 x\" 200 1", t), None),
            (format!("h - - {} \"GET /  HTTP/1.1\" 200 1", t), None),
            (format!("h  - - {} \"GET / HTTP/1.1\" 200 1", t), None),
            (format!("h - - {} \"GET /ab\\", t), None),
            ("h - - [] \"GET / HTTP/1.1\" 200 1".to_string(), None),
            ("127.0.0.1 - - [10/Oct/2000:13:55".to_string(), None),
            (String::new(), None),
        ];
        for (line, want) in cases {
            assert_eq!(parsed(&line), want, "{}", line);
        }
    }
}
