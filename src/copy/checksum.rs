//! Checksums computed while streaming, in the forms S3-compatible servers report as ETags.
//!
//! Owns the MD5 forms: the plain hex MD5 of a single-request upload and the
//! `hex(md5(md5(part1) || md5(part2) ...))-N` form of a multipart upload, and [`StreamMd5`],
//! which hashes the streams of all transfers in flight together, in SIMD lanes.
//!
//! One MD5 stream cannot go faster than one 64-byte block after another, but independent
//! streams can share a core's vector lanes (8 with AVX2, 16 with AVX-512). Transfers hand
//! their pieces to one hashing thread, which waits a few milliseconds for pieces from other
//! transfers and then hashes everything pending in one pass: a copy with many objects and parts
//! in flight spends a fraction of the CPU of one-stream MD5, and a digest is ready at most
//! [`WINDOW`] after its last piece.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use md5_many::{Md5Many, Md5State};
use tokio::sync::oneshot;

/// MD5 digest of some bytes.
pub type Md5Digest = [u8; 16];

/// Incremental MD5 of one stream, hashed where it is called.
#[derive(Default, Clone)]
pub struct Hasher(Md5State);

impl Hasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Md5Digest {
        self.0.finalize()
    }
}

/// Streams shorter than this are hashed in place: for them, a few milliseconds' wait costs
/// more than the lanes save.
const INLINE_BELOW: u64 = 256 * 1024;

/// How long the hashing thread waits for other transfers' pieces before a pass.
const WINDOW: Duration = Duration::from_millis(5);

enum Msg {
    Data(u64, Bytes),
    Finish(u64, oneshot::Sender<Md5Digest>),
    Drop(u64),
}

/// The process's hashing thread, started on first use; `None` when it could not be started.
fn lanes() -> Option<&'static mpsc::Sender<Msg>> {
    static LANES: OnceLock<Option<mpsc::Sender<Msg>>> = OnceLock::new();
    LANES
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let started = std::thread::Builder::new()
                .name("md5-lanes".into())
                .spawn(move || LaneThread::default().run(&rx));
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!("cannot start the hashing thread, hashing in place: {e}");
                    None
                }
            }
        })
        .as_ref()
}

#[derive(Default)]
struct Lane {
    state: Md5State,
    pending: std::collections::VecDeque<Bytes>,
    reply: Option<oneshot::Sender<Md5Digest>>,
    /// Left for the next pass once already, for want of other lanes.
    deferred: bool,
}

#[derive(Default)]
struct LaneThread {
    lanes: HashMap<u64, Lane>,
}

impl LaneThread {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        let engine = Md5Many::new();
        while let Ok(first) = rx.recv() {
            self.apply(first);
            // Sleeping through the window, rather than waking for each piece, is what keeps
            // this thread cheap.
            std::thread::sleep(WINDOW);
            while let Ok(msg) = rx.try_recv() {
                self.apply(msg);
            }
            self.pass(engine);
        }
    }

    fn apply(&mut self, msg: Msg) {
        match msg {
            Msg::Data(id, piece) => self.lanes.entry(id).or_default().pending.push_back(piece),
            Msg::Finish(id, reply) => self.lanes.entry(id).or_default().reply = Some(reply),
            Msg::Drop(id) => {
                self.lanes.remove(&id);
            }
        }
    }

    /// Hashes everything pending, all lanes side by side, then answers finished streams.
    fn pass(&mut self, engine: Md5Many) {
        let mut ids = Vec::new();
        loop {
            // Whole blocks of equal length in every lane, as long as the shortest front piece
            // allows; the last bytes of a stream (under one block) are hashed on their own.
            ids.clear();
            let mut len = ZEROS.len();
            for (id, lane) in &mut self.lanes {
                let Some(front) = lane.pending.front() else {
                    continue;
                };
                if front.len() < 64 {
                    lane.state.update(front);
                    lane.pending.pop_front();
                    if lane.pending.is_empty() {
                        continue;
                    }
                }
                ids.push(*id);
                len = len.min(lane.pending[0].len() / 64 * 64);
            }
            if let [id] = ids[..] {
                // Alone, a lane runs at one-stream speed: wait one pass for company, unless
                // someone waits for the digest.
                let lane = self.lanes.get_mut(&id).expect("lane listed above");
                if lane.reply.is_none() && !lane.deferred {
                    lane.deferred = true;
                    break;
                }
                lane.deferred = false;
            }
            if ids.is_empty() {
                break;
            }
            for group in ids.chunks(MAX_LANES) {
                self.hash_group(engine, group, len);
            }
            for id in &ids {
                let lane = self.lanes.get_mut(id).expect("lane listed above");
                let front = lane.pending.front_mut().expect("lane had a piece");
                if front.len() == len {
                    lane.pending.pop_front();
                } else {
                    let _ = front.split_to(len);
                }
            }
        }
        self.lanes.retain(
            |_, lane| match lane.reply.take_if(|_| lane.pending.is_empty()) {
                Some(reply) => {
                    let _ = reply.send(lane.state.finalize());
                    false
                }
                None => true,
            },
        );
    }

    /// The first `len` bytes of each lane's front piece. The SIMD kernels run 8 or 16 lanes
    /// (fewer run far slower), so a short group is padded with throwaway lanes hashing zeros.
    fn hash_group(&mut self, engine: Md5Many, ids: &[u64], len: usize) {
        if let [id] = ids {
            let lane = self.lanes.get_mut(id).expect("lane listed above");
            let front = lane.pending.front().expect("lane had a piece");
            lane.state.update(&front[..len]);
            return;
        }
        let width = if ids.len() <= MAX_LANES / 2 {
            MAX_LANES / 2
        } else {
            MAX_LANES
        };
        let mut states = vec![Md5State::new(); width];
        let mut inputs: Vec<&[u8]> = vec![&ZEROS[..len]; width];
        for (i, id) in ids.iter().enumerate() {
            let lane = &self.lanes[id];
            states[i] = lane.state;
            inputs[i] = &lane.pending[0][..len];
        }
        engine.update_many(&mut states, &inputs);
        for (id, state) in ids.iter().zip(states) {
            self.lanes.get_mut(id).expect("lane listed above").state = state;
        }
    }
}

/// Lanes in one SIMD pass (AVX-512; AVX2 passes are half as wide).
const MAX_LANES: usize = 16;

/// Input of the throwaway lanes; also the most one pass takes from each lane at a time.
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

/// MD5 of one stream of pieces. Streams of at least [`INLINE_BELOW`] bytes are hashed on the
/// hashing thread together with the other transfers' streams; shorter ones in place.
pub struct StreamMd5 {
    inner: Inner,
}

enum Inner {
    Here(Hasher),
    Lane(u64, &'static mpsc::Sender<Msg>),
    Done,
}

impl StreamMd5 {
    /// A stream expected to be `len` bytes long.
    pub fn new(len: u64) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let inner = match lanes() {
            Some(tx) if len >= INLINE_BELOW => {
                Inner::Lane(NEXT_ID.fetch_add(1, Ordering::Relaxed), tx)
            }
            _ => Inner::Here(Hasher::default()),
        };
        Self { inner }
    }

    /// Adds the next piece. Pieces whose lengths are multiples of 64 bytes (all but the last)
    /// keep the lanes in step, which is what makes them fast.
    pub fn update(&mut self, piece: Bytes) {
        match &mut self.inner {
            Inner::Here(h) => h.update(&piece),
            Inner::Lane(id, tx) => {
                if tx.send(Msg::Data(*id, piece)).is_err() {
                    // The thread stopped: this stream has no digest.
                    self.inner = Inner::Done;
                }
            }
            Inner::Done => {}
        }
    }

    /// The digest of all pieces; `None` only if the hashing thread stopped.
    pub async fn finish(mut self) -> Option<Md5Digest> {
        match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::Here(h) => Some(h.finish()),
            Inner::Lane(id, tx) => {
                let (reply, digest) = oneshot::channel();
                tx.send(Msg::Finish(id, reply)).ok()?;
                digest.await.ok()
            }
            Inner::Done => None,
        }
    }
}

impl Drop for StreamMd5 {
    fn drop(&mut self) {
        if let Inner::Lane(id, tx) = self.inner {
            let _ = tx.send(Msg::Drop(id));
        }
    }
}

/// Lower-case hex of a digest: the ETag of a single-request upload.
pub fn md5_hex(d: &Md5Digest) -> String {
    hex::encode(d)
}

/// Lower-case hex MD5 of `data`, for names derived from content (ledger files, staging
/// prefixes, default backup names).
pub fn md5_hex_of(data: &[u8]) -> String {
    md5_hex(&md5_many::md5(data))
}

/// The ETag S3 gives a multipart upload made of parts with these MD5s.
pub fn multipart_etag(part_md5s: &[Md5Digest]) -> String {
    let concat: Vec<u8> = part_md5s.iter().flatten().copied().collect();
    format!("{}-{}", md5_hex_of(&concat), part_md5s.len())
}

/// Whether two ETags name the same content. MD5-derived ETags compare without regard to the
/// case of their hex digits: Alibaba OSS reports upper case.
pub fn same_etag(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The digest a plain-MD5 ETag spells.
pub fn parse_md5(etag: &str) -> Option<Md5Digest> {
    let mut d = [0u8; 16];
    hex::decode_to_slice(etag, &mut d).ok()?;
    Some(d)
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

    fn reference(data: &[u8]) -> Md5Digest {
        use md5::Digest;
        md5::Md5::digest(data).into()
    }

    /// Streams of awkward sizes and piece lengths, hashed concurrently so passes mix lane
    /// counts, lengths and alignments, give the digests of a plain one-stream MD5; a stream
    /// dropped half-way leaves the others intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lane_digests_match_one_stream_md5() {
        let big = INLINE_BELOW as usize;
        let sizes = [
            0,
            1,
            63,
            64,
            65,
            1000,
            big - 1,
            big,
            big + 1,
            1 << 20,
            (4 << 20) + 7,
        ];
        let data: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let seed = (i as u32).wrapping_mul(2_654_435_761);
                (0..n as u32)
                    .map(|j| (j.wrapping_mul(2_246_822_519) ^ seed) as u8)
                    .collect()
            })
            .collect();
        let piece_lens = [64, 4096, 65_536, 1_000_000, 3];
        let mut tasks = Vec::new();
        for round in 0..3 {
            for (i, d) in data.iter().enumerate() {
                let d = d.clone();
                let piece = piece_lens[(i + round) % piece_lens.len()];
                let dropped = (i + round) % 4 == 0;
                tasks.push(tokio::spawn(async move {
                    let mut h = StreamMd5::new(d.len() as u64);
                    let mut rest = d.clone();
                    while !rest.is_empty() {
                        let n = piece.min(rest.len());
                        h.update(rest.split_to(n));
                        if dropped && rest.len() < d.len() / 2 {
                            return None;
                        }
                        tokio::task::yield_now().await;
                    }
                    Some((h.finish().await, reference(&d)))
                }));
            }
        }
        let mut checked = 0;
        for t in tasks {
            if let Some((got, want)) = t.await.unwrap() {
                assert_eq!(got.map(|d| md5_hex(&d)), Some(md5_hex(&want)));
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked}");
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
