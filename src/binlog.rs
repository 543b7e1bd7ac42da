//! Milvus's binlog files, read: the insert and delta logs a flushed segment keeps in Milvus's
//! bucket (`<root>/insert_log/<coll>/<part>/<seg>/<field>/<log>`,
//! `<root>/delta_log/<coll>/<part>/<seg>/<log>`).
//!
//! Owns the file format (facts from Milvus's `internal/storage` binlog writer and reader, the
//! same on 2.2 to 2.5 for storage version 0/1, and checked on files Milvus 2.3.5 wrote here):
//! - an `i32` magic number, `0xfffabc`, little-endian like every number below;
//! - a descriptor event, then data events. Every event starts with a 17-byte header: timestamp
//!   (`i64`), type code (`i8`), event length (`i32`, header included) and the offset of the
//!   next event (`i32`);
//! - the descriptor's data starts with collection, partition, segment and field ids (`i64`
//!   each), start and end timestamps (`u64` each) and the payload's data type (`i32`);
//! - an insert event (type 1) or a delete event (type 2) holds start and end timestamps
//!   (16 bytes) and then its payload: a whole Parquet file of one column.
//!
//! The values come out as [`Cells`], one byte string per row (fixed-width numbers in their
//! little-endian bytes, strings, JSON, arrays and vectors in their stored bytes), or `None`
//! for a null: enough to digest and compare rows whatever their type, and to read keys and
//! timestamps. Delta logs come out as `(key, timestamp)` pairs ([`deletes`]): one string per
//! delete, JSON (`{"pk":..,"ts":..,"pkType":..}`) or the oldest `pk,ts` form, or two columns
//! (key, timestamp).
//!
//! Does not own where the files are (listing a segment's logs: [`crate::create`]) nor what a
//! row's digest is ([`crate::verify`]). Storage version 2 (Milvus 2.6's packed column groups)
//! is not this format: its files fail here with a [`BinlogError`], and callers fall back.

use bytes::Bytes;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType as ParquetType;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::milvus::Pk;

/// The magic number every binlog file starts with.
pub const MAGIC: i32 = 0x00ff_fabc;
/// Bytes of an event header: timestamp, type code, event length, next position.
const HEADER: usize = 8 + 1 + 4 + 4;
/// Bytes of an insert or delete event's own data before its payload: start and end timestamps.
const DATA_EVENT_FIXED: usize = 16;
/// Event type codes.
const DESCRIPTOR_EVENT: u8 = 0;
const INSERT_EVENT: u8 = 1;
const DELETE_EVENT: u8 = 2;
/// Rows read from a Parquet column at a time.
const BATCH: usize = 8192;

/// A binlog file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    /// The bytes are not a binlog file of the known format.
    #[error("not a Milvus binlog of storage version 0/1: {0}")]
    Format(String),
    /// An event's payload is not a Parquet file this reader decodes.
    #[error("payload: {0}")]
    Payload(String),
}

impl From<parquet::errors::ParquetError> for BinlogError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        BinlogError::Payload(e.to_string())
    }
}

/// A binlog file's descriptor: whose column it holds and of what type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Collection id.
    pub collection_id: i64,
    /// Partition id.
    pub partition_id: i64,
    /// Segment id.
    pub segment_id: i64,
    /// Field id (`-1` in a delta log).
    pub field_id: i64,
    /// Milvus's `schemapb.DataType` of the values.
    pub data_type: i32,
}

/// One column's values, one byte string per row, in row order.
#[derive(Debug, Default, Clone)]
pub struct Cells {
    bytes: Vec<u8>,
    /// End of each row's bytes in `bytes` (a row starts where the one before ends).
    ends: Vec<usize>,
    /// Which rows are null; empty while none is.
    nulls: Vec<bool>,
}

impl Cells {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i`'s bytes, `None` for a null or past the end.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if self.nulls.get(i).copied().unwrap_or(false) {
            return None;
        }
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// Every row's bytes in order (a null is `None`).
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Appends `other`'s rows.
    pub fn extend(&mut self, other: Cells) {
        let (base, rows) = (self.bytes.len(), self.len());
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.into_iter().map(|e| e + base));
        if !other.nulls.is_empty() || !self.nulls.is_empty() {
            self.nulls.resize(rows, false);
            let mut theirs = other.nulls;
            theirs.resize(self.ends.len() - rows, false);
            self.nulls.extend(theirs);
        }
    }

    fn push(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
        self.ends.push(self.bytes.len());
        if !self.nulls.is_empty() {
            self.nulls.push(false);
        }
    }

    fn push_null(&mut self) {
        self.nulls.resize(self.ends.len(), false);
        self.ends.push(self.bytes.len());
        self.nulls.push(true);
    }

    /// The values as `i64`s (an Int64 column: keys, timestamps); `None` where a row is null or
    /// not 8 bytes long.
    pub fn int64s(&self) -> impl Iterator<Item = Option<i64>> + '_ {
        self.iter()
            .map(|v| v.and_then(|b| Some(i64::from_le_bytes(b.try_into().ok()?))))
    }
}

/// A binlog file, its events found and checked.
#[derive(Debug, Clone)]
pub struct Binlog {
    /// What it holds.
    pub descriptor: Descriptor,
    /// Each data event's type code and payload.
    events: Vec<(u8, Bytes)>,
}

impl Binlog {
    /// Reads the events of a binlog file.
    ///
    /// # Errors
    /// [`BinlogError::Format`] when the bytes are not a binlog file.
    pub fn parse(file: Bytes) -> Result<Binlog, BinlogError> {
        let fail = |what: String| BinlogError::Format(what);
        let i32_at = |at: usize| -> Result<i32, BinlogError> {
            file.get(at..at + 4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| fail(format!("file ends at byte {} inside a header", file.len())))
        };
        let i64_at = |at: usize| -> Result<i64, BinlogError> {
            file.get(at..at + 8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| fail(format!("file ends at byte {} inside a header", file.len())))
        };
        let magic = i32_at(0)?;
        if magic != MAGIC {
            return Err(fail(format!("magic number {magic:#x}, not {MAGIC:#x}")));
        }
        let mut at = 4usize;
        let mut descriptor = None;
        let mut events = Vec::new();
        while at < file.len() {
            let code = *file
                .get(at + 8)
                .ok_or_else(|| fail(format!("an event header is cut at byte {at}")))?;
            let length = usize::try_from(i32_at(at + 9)?).unwrap_or(0);
            let next = usize::try_from(i32_at(at + 13)?).unwrap_or(0);
            let end = at + length;
            if length < HEADER || end > file.len() || next < end {
                return Err(fail(format!(
                    "event at byte {at} has length {length} and next position {next} in a file \
                     of {} bytes",
                    file.len()
                )));
            }
            let data = at + HEADER;
            match code {
                DESCRIPTOR_EVENT => {
                    descriptor = Some(Descriptor {
                        collection_id: i64_at(data)?,
                        partition_id: i64_at(data + 8)?,
                        segment_id: i64_at(data + 16)?,
                        field_id: i64_at(data + 24)?,
                        data_type: i32_at(data + 48)?,
                    });
                }
                INSERT_EVENT | DELETE_EVENT => {
                    if data + DATA_EVENT_FIXED > end {
                        return Err(fail(format!("event at byte {at} is too short")));
                    }
                    events.push((code, file.slice(data + DATA_EVENT_FIXED..end)));
                }
                other => {
                    return Err(fail(format!(
                        "event type {other} at byte {at} (a segment's logs hold insert and \
                         delete events)"
                    )));
                }
            }
            at = next;
        }
        let descriptor = descriptor.ok_or_else(|| fail("no descriptor event".into()))?;
        Ok(Binlog { descriptor, events })
    }

    /// The values of an insert log, every event's rows in order.
    ///
    /// # Errors
    /// [`BinlogError`] when a payload cannot be decoded, or the file holds delete events.
    pub fn cells(&self) -> Result<Cells, BinlogError> {
        let mut all = Cells::default();
        for (code, payload) in &self.events {
            if *code != INSERT_EVENT {
                return Err(BinlogError::Format(format!(
                    "event type {code} in an insert log"
                )));
            }
            let mut columns = columns(payload.clone())?;
            if columns.len() != 1 {
                return Err(BinlogError::Payload(format!(
                    "{} columns in an insert event (one expected)",
                    columns.len()
                )));
            }
            all.extend(columns.remove(0));
        }
        Ok(all)
    }
}

/// The deletes of a delta log: each deleted key with the timestamp of its delete.
///
/// # Errors
/// [`BinlogError`] when the file is not a delta log of a known form.
pub fn deletes(file: Bytes) -> Result<Vec<(Pk, u64)>, BinlogError> {
    let log = Binlog::parse(file)?;
    let mut out = Vec::new();
    for (code, payload) in &log.events {
        if *code != DELETE_EVENT {
            return Err(BinlogError::Format(format!(
                "event type {code} in a delta log"
            )));
        }
        let columns = columns(payload.clone())?;
        match columns.as_slice() {
            [one] => {
                for v in one.iter() {
                    let v = v.ok_or_else(|| BinlogError::Payload("a null delete".into()))?;
                    out.push(delete_entry(v)?);
                }
            }
            [keys, stamps] => {
                for (i, ts) in stamps.int64s().enumerate() {
                    let ts = ts.ok_or_else(|| {
                        BinlogError::Payload("a delete's timestamp is not an Int64".into())
                    })?;
                    let key = keys
                        .get(i)
                        .ok_or_else(|| BinlogError::Payload("a null deleted key".into()))?;
                    let pk = match log.descriptor.data_type {
                        DATA_TYPE_INT64 => {
                            Pk::Int(i64::from_le_bytes(key.try_into().map_err(|_| {
                                BinlogError::Payload("an Int64 key of another width".into())
                            })?))
                        }
                        _ => Pk::Str(String::from_utf8_lossy(key).into_owned()),
                    };
                    out.push((pk, ts as u64));
                }
            }
            other => {
                return Err(BinlogError::Payload(format!(
                    "{} columns in a delete event",
                    other.len()
                )));
            }
        }
    }
    Ok(out)
}

/// Milvus's `schemapb.DataType` codes this module tells apart.
const DATA_TYPE_INT64: i32 = 5;

/// One delete written as a string: JSON `{"pk":..,"ts":..,"pkType":..}` (Milvus 2.2+) or
/// `pk,ts` (older).
fn delete_entry(v: &[u8]) -> Result<(Pk, u64), BinlogError> {
    let bad = || {
        BinlogError::Payload(format!(
            "delete entry `{}` is neither JSON nor `pk,ts`",
            String::from_utf8_lossy(&v[..v.len().min(80)])
        ))
    };
    if v.first() == Some(&b'{') {
        let e: serde_json::Value = serde_json::from_slice(v).map_err(|_| bad())?;
        let ts = e
            .get("ts")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(bad)?;
        let pk = match e.get("pk") {
            Some(serde_json::Value::Number(n)) => Pk::Int(n.as_i64().ok_or_else(bad)?),
            Some(serde_json::Value::String(s)) => Pk::Str(s.clone()),
            _ => return Err(bad()),
        };
        return Ok((pk, ts));
    }
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let (pk, ts) = s.rsplit_once(',').ok_or_else(bad)?;
    let ts = ts.trim().parse::<u64>().map_err(|_| bad())?;
    let pk = pk
        .parse::<i64>()
        .map_or_else(|_| Pk::Str(pk.to_string()), Pk::Int);
    Ok((pk, ts))
}

/// Every column of one Parquet payload.
fn columns(payload: Bytes) -> Result<Vec<Cells>, BinlogError> {
    let reader = SerializedFileReader::new(payload)?;
    let width = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .num_columns();
    let mut out = vec![Cells::default(); width];
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g)?;
        for (c, cells) in out.iter_mut().enumerate() {
            let descr = group.metadata().column(c).column_descr_ptr();
            if descr.max_rep_level() > 0 {
                return Err(BinlogError::Payload(format!(
                    "column `{}` is repeated",
                    descr.name()
                )));
            }
            let nullable = descr.max_def_level() > 0;
            match group.get_column_reader(c)? {
                ColumnReader::BoolColumnReader(r) => {
                    read_all(r, nullable, cells, |v: &bool, out| {
                        out.push(&[u8::from(*v)])
                    })?;
                }
                ColumnReader::Int32ColumnReader(r) => {
                    read_all(r, nullable, cells, |v: &i32, out| {
                        out.push(&v.to_le_bytes())
                    })?;
                }
                ColumnReader::Int64ColumnReader(r) => {
                    read_all(r, nullable, cells, |v: &i64, out| {
                        out.push(&v.to_le_bytes())
                    })?;
                }
                ColumnReader::FloatColumnReader(r) => {
                    read_all(r, nullable, cells, |v: &f32, out| {
                        out.push(&v.to_bits().to_le_bytes());
                    })?;
                }
                ColumnReader::DoubleColumnReader(r) => {
                    read_all(r, nullable, cells, |v: &f64, out| {
                        out.push(&v.to_bits().to_le_bytes());
                    })?;
                }
                ColumnReader::ByteArrayColumnReader(r) => {
                    read_all(r, nullable, cells, |v, out| out.push(v.data()))?;
                }
                ColumnReader::FixedLenByteArrayColumnReader(r) => {
                    read_all(r, nullable, cells, |v, out| out.push(v.data()))?;
                }
                ColumnReader::Int96ColumnReader(_) => {
                    return Err(BinlogError::Payload(format!(
                        "column `{}` is INT96",
                        descr.name()
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Reads a column to its end into `cells`, `push` writing one value.
fn read_all<T: ParquetType>(
    mut reader: ColumnReaderImpl<T>,
    nullable: bool,
    cells: &mut Cells,
    push: impl Fn(&T::T, &mut Cells),
) -> Result<(), BinlogError> {
    let mut values: Vec<T::T> = Vec::with_capacity(BATCH);
    let mut levels: Vec<i16> = Vec::with_capacity(BATCH);
    loop {
        values.clear();
        levels.clear();
        let (records, _, _) =
            reader.read_records(BATCH, nullable.then_some(&mut levels), None, &mut values)?;
        if records == 0 {
            return Ok(());
        }
        if nullable {
            let mut next = values.iter();
            for l in &levels {
                if *l > 0 {
                    let v = next
                        .next()
                        .ok_or_else(|| BinlogError::Payload("fewer values than levels".into()))?;
                    push(v, cells);
                } else {
                    cells.push_null();
                }
            }
        } else {
            for v in &values {
                push(v, cells);
            }
        }
    }
}

#[cfg(test)]
mod tests;
