//! The copy ledger: an append-only JSON-lines file that survives a crash or a kill and lets the
//! next run of the same copy skip finished objects and finish open multipart uploads from their
//! completed parts.
//!
//! Owns the record format, appending, and replay. One ledger belongs to one (source, destination)
//! pair; the copier decides what the records mean for a new run ([`super::plan`]).
//!
//! Implementation notes: each record is one `write` of one line on a file opened with
//! `O_APPEND`, so a killed process leaves at most a torn last line, which replay ignores. Records
//! are not fsynced one by one: after a power loss a few finished objects may be copied again,
//! which the destination check makes harmless.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One line of the ledger. Keys are relative to the copy's prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// An object copied and verified.
    Done {
        key: String,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_etag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dst_etag: Option<String>,
        /// MD5 of the bytes copied: plain hex, or the multipart form `hex-N`.
        md5: String,
    },
    /// A multipart upload started.
    Upload {
        key: String,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_etag: Option<String>,
        upload_id: String,
        part_size: u64,
        /// The destination store's name and the upload's full key, so that an upload a
        /// cancelled or abandoned copy left open can be aborted without that copy's job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        store: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dst: Option<String>,
    },
    /// One part of an upload written and verified.
    Part {
        key: String,
        upload_id: String,
        index: usize,
        etag: String,
        md5: String,
    },
    /// An upload completed or aborted: its parts are no longer reusable.
    UploadEnd { key: String, upload_id: String },
}

/// A verified part of an open upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonePart {
    /// ETag the server gave the part.
    pub etag: String,
    /// MD5 of the part's bytes.
    pub md5: [u8; 16],
}

/// A multipart upload that a previous run left open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    /// Size of the source object when the upload started.
    pub size: u64,
    /// ETag of the source object when the upload started.
    pub src_etag: Option<String>,
    /// Server-side upload id.
    pub upload_id: String,
    /// Part size the upload was started with.
    pub part_size: u64,
    /// Parts already written, by 0-based index.
    pub parts: BTreeMap<usize, DonePart>,
}

/// A finished object as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneObject {
    /// Size copied.
    pub size: u64,
    /// Source ETag at copy time.
    pub src_etag: Option<String>,
    /// Destination ETag after the copy.
    pub dst_etag: Option<String>,
    /// MD5 of the copied bytes.
    pub md5: String,
}

/// What replaying a ledger found.
#[derive(Debug, Default, Clone)]
pub struct LedgerState {
    /// Finished objects by relative key.
    pub done: HashMap<String, DoneObject>,
    /// Open multipart uploads by relative key.
    pub uploads: HashMap<String, OpenUpload>,
}

impl LedgerState {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Done {
                key,
                size,
                src_etag,
                dst_etag,
                md5,
            } => {
                self.uploads.remove(&key);
                self.done.insert(
                    key,
                    DoneObject {
                        size,
                        src_etag,
                        dst_etag,
                        md5,
                    },
                );
            }
            Record::Upload {
                key,
                size,
                src_etag,
                upload_id,
                part_size,
                ..
            } => {
                self.done.remove(&key);
                self.uploads.insert(
                    key,
                    OpenUpload {
                        size,
                        src_etag,
                        upload_id,
                        part_size,
                        parts: BTreeMap::new(),
                    },
                );
            }
            Record::Part {
                key,
                upload_id,
                index,
                etag,
                md5,
            } => {
                let digest = hex::decode(&md5)
                    .ok()
                    .and_then(|v| <[u8; 16]>::try_from(v).ok());
                if let (Some(u), Some(md5)) = (self.uploads.get_mut(&key), digest)
                    && u.upload_id == upload_id
                {
                    u.parts.insert(index, DonePart { etag, md5 });
                }
            }
            Record::UploadEnd { key, upload_id } => {
                if self
                    .uploads
                    .get(&key)
                    .is_some_and(|u| u.upload_id == upload_id)
                {
                    self.uploads.remove(&key);
                }
            }
        }
    }
}

/// A multipart upload that a ledger records as still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandedUpload {
    /// Name of the destination store ([`crate::storage::Store::name`]).
    pub store: String,
    /// Full key of the object being uploaded.
    pub key: String,
    /// Server-side upload id.
    pub upload_id: String,
}

/// The uploads left open by the ledgers under `<state_dir>/ledgers/` (those that recorded
/// where they were going). Read-only; torn lines are skipped.
///
/// # Errors
/// The directory or a ledger cannot be read.
pub fn stranded_uploads(state_dir: &Path) -> std::io::Result<Vec<StrandedUpload>> {
    let dir = state_dir.join("ledgers");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let mut open: BTreeMap<String, StrandedUpload> = BTreeMap::new();
        for line in BufReader::new(File::open(&path)?).lines() {
            match serde_json::from_str::<Record>(&line?) {
                Ok(Record::Upload {
                    key,
                    upload_id,
                    store: Some(store),
                    dst: Some(dst),
                    ..
                }) => {
                    open.insert(
                        key,
                        StrandedUpload {
                            store,
                            key: dst,
                            upload_id,
                        },
                    );
                }
                Ok(Record::UploadEnd { key, upload_id })
                    if open.get(&key).is_some_and(|u| u.upload_id == upload_id) =>
                {
                    open.remove(&key);
                }
                Ok(Record::Done { key, .. }) => {
                    open.remove(&key);
                }
                _ => {}
            }
        }
        out.extend(open.into_values());
    }
    Ok(out)
}

/// An open ledger file.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: Mutex<File>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` and replays it.
    ///
    /// # Errors
    /// The file or its directory cannot be created, read or opened for appending.
    pub fn open(path: &Path) -> std::io::Result<(Ledger, LedgerState)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut state = LedgerState::default();
        if path.exists() {
            let reader = BufReader::new(File::open(path)?);
            for line in reader.lines() {
                let line = line?;
                // A torn last line from a killed run does not parse: skip it.
                if let Ok(record) = serde_json::from_str::<Record>(&line) {
                    state.apply(record);
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // Terminate a torn last line so the next record starts on its own line.
        file.write_all(b"\n")?;
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            state,
        ))
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    ///
    /// # Errors
    /// The write fails (disk full, file removed).
    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file
            .lock()
            .map_err(|_| std::io::Error::other("ledger lock poisoned"))?
            .write_all(&line)
    }

    /// Rewrites the ledger with only the finished objects of `state`, atomically (a new file
    /// renamed over the old one).
    ///
    /// # Errors
    /// The new file cannot be written or renamed.
    pub fn compact(&self, state: &LedgerState) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        {
            let mut out = std::io::BufWriter::new(File::create(&tmp)?);
            let mut keys: Vec<_> = state.done.keys().collect();
            keys.sort();
            for key in keys {
                let d = &state.done[key];
                let r = Record::Done {
                    key: key.clone(),
                    size: d.size,
                    src_etag: d.src_etag.clone(),
                    dst_etag: d.dst_etag.clone(),
                    md5: d.md5.clone(),
                };
                serde_json::to_writer(&mut out, &r).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        let file = OpenOptions::new().append(true).open(&self.path)?;
        *self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("ledger lock poisoned"))? = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_rebuilds_state_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        {
            let (l, s) = Ledger::open(&path).unwrap();
            assert!(s.done.is_empty());
            l.append(&Record::Done {
                key: "a".into(),
                size: 1,
                src_etag: Some("e1".into()),
                dst_etag: Some("e2".into()),
                md5: "m".into(),
            })
            .unwrap();
            l.append(&Record::Upload {
                key: "big".into(),
                size: 100,
                src_etag: None,
                upload_id: "u1".into(),
                part_size: 10,
                store: Some("s3 bucket-b".into()),
                dst: Some("backup/x/big".into()),
            })
            .unwrap();
            for i in [0usize, 2] {
                l.append(&Record::Part {
                    key: "big".into(),
                    upload_id: "u1".into(),
                    index: i,
                    etag: format!("p{i}"),
                    md5: "00112233445566778899aabbccddeeff".into(),
                })
                .unwrap();
            }
            // A part of another (older) upload id is ignored.
            l.append(&Record::Part {
                key: "big".into(),
                upload_id: "old".into(),
                index: 1,
                etag: "x".into(),
                md5: "00112233445566778899aabbccddeeff".into(),
            })
            .unwrap();
        }
        // Simulate a kill in the middle of a write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"t":"done","key":"tor"#)
            .unwrap();
        let (l, s) = Ledger::open(&path).unwrap();
        assert_eq!(s.done["a"].dst_etag.as_deref(), Some("e2"));
        assert!(
            stranded_uploads(dir.path()).unwrap().is_empty(),
            "not under ledgers/"
        );
        let u = &s.uploads["big"];
        assert_eq!(u.upload_id, "u1");
        assert_eq!(u.parts.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert!(!s.done.contains_key("tor"));
        // Records appended after a torn line still replay.
        l.append(&Record::UploadEnd {
            key: "big".into(),
            upload_id: "u1".into(),
        })
        .unwrap();
        drop(l);
        let (l, s) = Ledger::open(&path).unwrap();
        assert!(s.uploads.is_empty());
        l.compact(&s).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn stranded_uploads_are_the_open_ones_with_their_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (l, _) = Ledger::open(&dir.path().join("ledgers/x.jsonl")).unwrap();
        let upload = |key: &str, id: &str| Record::Upload {
            key: key.into(),
            size: 100,
            src_etag: None,
            upload_id: id.into(),
            part_size: 10,
            store: Some("store-b".into()),
            dst: Some(format!("root/{key}")),
        };
        for r in [
            upload("open", "u1"),
            upload("ended", "u2"),
            upload("done", "u3"),
            Record::UploadEnd {
                key: "ended".into(),
                upload_id: "u2".into(),
            },
            // The end of another upload of the same key does not close this one.
            Record::UploadEnd {
                key: "open".into(),
                upload_id: "older".into(),
            },
            Record::Done {
                key: "done".into(),
                size: 100,
                src_etag: None,
                dst_etag: None,
                md5: "m".into(),
            },
        ] {
            l.append(&r).unwrap();
        }
        assert_eq!(
            stranded_uploads(dir.path()).unwrap(),
            vec![StrandedUpload {
                store: "store-b".into(),
                key: "root/open".into(),
                upload_id: "u1".into(),
            }]
        );
    }
}
