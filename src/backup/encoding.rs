//! Byte-level encodings milvus-backup's Go code produces: `encoding/json`'s compact output with
//! its HTML-safe string escaping, and standard padded base64 (used for field default values).
//!
//! Owns the last step from a serde value to the bytes of a meta file and the base64 codec. Does
//! not own key names or omission rules: those are the serde attributes in [`super::meta`].

use serde::Serialize;

/// Encodes `value` the way Go's `json.Marshal` does: compact, no trailing newline, and with
/// `<`, `>`, `&`, U+2028 and U+2029 inside strings written as `\u003c`, `\u003e`, `\u0026`,
/// `\u2028` and `\u2029`.
///
/// The remaining escapes already agree: serde_json and Go both write `\"`, `\\`, `\n`, `\r`,
/// `\t`, `\b`, `\f` (Go since 1.22) and lower-case `\u00xx` for other control characters, and
/// both sort map keys byte-wise.
pub(crate) fn to_go_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let plain = serde_json::to_vec(value)?;
    Ok(html_escape(plain))
}

/// Rewrites the characters Go escapes for HTML safety. They can only occur inside JSON strings
/// (none of them is JSON syntax or whitespace), so a byte-level pass is exact.
fn html_escape(plain: Vec<u8>) -> Vec<u8> {
    let needs = plain.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2));
    if !needs {
        return plain;
    }
    let mut out = Vec::with_capacity(plain.len() + 16);
    let mut i = 0;
    while i < plain.len() {
        let b = plain[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if plain.get(i + 1) == Some(&0x80)
                && matches!(plain.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                let last = if plain[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(b"\\u202");
                out.push(last);
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (Go's `base64.StdEncoding`).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(ALPHABET[((v >> (18 - 6 * k)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard padded base64 (Go's `base64.StdEncoding`); `None` if the text is not
/// valid. Line breaks are not accepted, as in Go.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && ci + 1 != chunks) {
            return None;
        }
        let mut v: u32 = 0;
        for &c in &chunk[..4 - pad] {
            v = (v << 6) | u32::from(sextet(c)?);
        }
        v <<= 6 * pad as u32;
        let decoded = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        // Go rejects non-zero bits in the padding remainder only in strict mode; StdEncoding
        // accepts them, and so do we.
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_go() {
        let v = serde_json::json!({"d": "a<b>&c\u{2028}\u{2029}é\n\u{1}"});
        let out = String::from_utf8(to_go_json(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"d":"a\u003cb\u003e\u0026c\u2028\u2029é\n\u0001"}"#);
        // Still the same value when read back.
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn base64_round_trips_and_matches_known_values() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (&[0x18, 0x2a][..], "GCo="),
            (&[0xff, 0xfe, 0xfd, 0x00][..], "//79AA=="),
        ] {
            assert_eq!(base64_encode(raw), enc);
            assert_eq!(base64_decode(enc).as_deref(), Some(raw));
        }
        assert_eq!(base64_decode("Zg="), None);
        assert_eq!(base64_decode("Zg==Zg=="), None);
        assert_eq!(base64_decode("Z!=="), None);
        assert_eq!(base64_decode("Z==="), None);
    }
}
