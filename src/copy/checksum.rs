//! Checksums computed while streaming, in the forms S3-compatible servers report as ETags.
//!
//! Owns the MD5 forms: the plain hex MD5 of a single-request upload and the
//! `hex(md5(md5(part1) || md5(part2) ...))-N` form of a multipart upload.

use md5::{Digest, Md5};

/// MD5 digest of some bytes.
pub type Md5Digest = [u8; 16];

/// Incremental MD5.
#[derive(Default, Clone)]
pub struct Hasher(Md5);

impl Hasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Md5Digest {
        self.0.finalize().into()
    }
}

/// Lower-case hex of a digest: the ETag of a single-request upload.
pub fn md5_hex(d: &Md5Digest) -> String {
    hex::encode(d)
}

/// Lower-case hex MD5 of `data`, for names derived from content (ledger files, staging
/// prefixes, default backup names).
pub fn md5_hex_of(data: &[u8]) -> String {
    let mut h = Hasher::default();
    h.update(data);
    md5_hex(&h.finish())
}

/// The ETag S3 gives a multipart upload made of parts with these MD5s.
pub fn multipart_etag(part_md5s: &[Md5Digest]) -> String {
    let mut h = Md5::new();
    for d in part_md5s {
        h.update(d);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

/// Whether an ETag is the plain MD5 of the object's bytes (32 hex digits, no part count).
pub fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether an ETag has the multipart form `<32 hex>-<parts>`.
pub fn is_multipart_md5(etag: &str) -> bool {
    etag.split_once('-').is_some_and(|(h, n)| {
        is_plain_md5(h) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether two ETags are comparable as content checksums (both MD5-derived, same form).
pub fn comparable(a: &str, b: &str) -> bool {
    (is_plain_md5(a) && is_plain_md5(b)) || (is_multipart_md5(a) && is_multipart_md5(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = Hasher::default();
        h.update(b"");
        assert_eq!(md5_hex(&h.finish()), "d41d8cd98f00b204e9800998ecf8427e");
        let mut h = Hasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(md5_hex(&h.finish()), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }

    #[test]
    fn multipart_form_matches_s3() {
        // Two parts "a" and "b": md5(md5("a") || md5("b")) with the part count.
        let d = |s: &[u8]| {
            let mut h = Hasher::default();
            h.update(s);
            h.finish()
        };
        let mut concat = Vec::new();
        concat.extend_from_slice(&d(b"a"));
        concat.extend_from_slice(&d(b"b"));
        let expect = format!("{}-2", md5_hex(&d(&concat)));
        assert_eq!(multipart_etag(&[d(b"a"), d(b"b")]), expect);
        assert!(is_multipart_md5(&expect));
        assert!(!is_plain_md5(&expect));
    }

    #[test]
    fn etag_forms() {
        assert!(is_plain_md5("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_plain_md5("1712345678-123-abc"));
        assert!(comparable(
            "d41d8cd98f00b204e9800998ecf8427e",
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        ));
        assert!(!comparable(
            "d41d8cd98f00b204e9800998ecf8427e",
            "5eb63bbbe01eeed093cb22bb8f5acdc3-2"
        ));
    }
}
