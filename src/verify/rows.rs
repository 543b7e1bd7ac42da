//! Query answers (`FieldData` columns) as rows of comparable values, their canonical encoding
//! and digests.
//!
//! Every value is kept exactly: floats by their bits (so `NaN` equals itself and `-0.0` differs
//! from `0.0`), vectors as their bytes (float vectors as little-endian `f32` bits, binary,
//! float16, bfloat16, int8 and sparse vectors as Milvus sends them), JSON parsed and
//! re-encoded with sorted keys (equal by value, whatever the key order or spacing), arrays
//! element by element, nulls (`valid_data`) as their own value.

use std::collections::BTreeMap;

use crate::milvus::proto::schema::{self, field_data, scalar_field, vector_field};
use crate::milvus::{Pk, PrimaryKey};

/// One field's value in one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null (a nullable field without a value).
    Null,
    /// Bool.
    Bool(bool),
    /// Int8, Int16, Int32, Int64 (and Timestamptz).
    Int(i64),
    /// Float, by its bits.
    Float(u32),
    /// Double, by its bits.
    Double(u64),
    /// VarChar (and geometry as WKT).
    Str(String),
    /// JSON (and the dynamic `$meta` field), parsed; `Bytes` when not valid JSON.
    Json(serde_json::Value),
    /// Vectors and other binary values, exactly as stored.
    Bytes(Vec<u8>),
    /// An array field's elements.
    Array(Vec<Value>),
}

/// One row: its key and every other field by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Primary key.
    pub pk: Pk,
    /// Field name -> value (the key field excluded).
    pub fields: BTreeMap<String, Value>,
}

impl Row {
    /// The 128-bit digest of the row: XXH3-128 of the key and the canonical encoding of every
    /// field, in name order.
    pub fn digest(&self) -> u128 {
        let mut buf = Vec::with_capacity(256);
        encode_pk(&self.pk, &mut buf);
        for (name, v) in &self.fields {
            encode_str(name, &mut buf);
            encode(v, &mut buf);
        }
        hash(&buf)
    }

    /// The names of the fields whose values differ between two rows (a field on one side
    /// only counts as different).
    pub fn differing_fields(&self, other: &Row) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, v) in &self.fields {
            if other.fields.get(k) != Some(v) {
                out.push(k.clone());
            }
        }
        for k in other.fields.keys() {
            if !self.fields.contains_key(k) {
                out.push(k.clone());
            }
        }
        out
    }
}

/// An order-independent digest of a set of rows: their count and the wrapping sums of their
/// digests (and of the digests squared, so that two swapped differences do not cancel as
/// easily). Equal sets give equal digests whatever the order the rows arrive in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetDigest {
    /// Rows added.
    pub rows: u64,
    sum: u128,
    sum_sq: u128,
}

impl SetDigest {
    /// Adds one row's digest.
    pub fn add(&mut self, d: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(d);
        self.sum_sq = self.sum_sq.wrapping_add(d.wrapping_mul(d));
    }
}

fn hash(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

fn encode_pk(pk: &Pk, buf: &mut Vec<u8>) {
    match pk {
        Pk::Int(i) => {
            buf.push(b'i');
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Pk::Str(s) => {
            buf.push(b's');
            encode_str(s, buf);
        }
    }
}

fn encode_str(s: &str, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// A tagged, length-prefixed encoding: two values encode alike only when they are equal.
fn encode(v: &Value, buf: &mut Vec<u8>) {
    match v {
        Value::Null => buf.push(0),
        Value::Bool(b) => buf.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            buf.push(2);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            buf.push(3);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Value::Double(d) => {
            buf.push(4);
            buf.extend_from_slice(&d.to_le_bytes());
        }
        Value::Str(s) => {
            buf.push(5);
            encode_str(s, buf);
        }
        Value::Json(j) => {
            buf.push(6);
            let mut text = String::new();
            canonical_json(j, &mut text);
            encode_str(&text, buf);
        }
        Value::Bytes(b) => {
            buf.push(7);
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
        Value::Array(items) => {
            buf.push(8);
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                encode(i, buf);
            }
        }
    }
}

/// JSON text with object keys sorted at every level, independent of how the map type orders
/// them.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (n, k) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn json(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(j) => Value::Json(j),
        Err(_) => Value::Bytes(bytes.to_vec()),
    }
}

/// A decoding failure: which column and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// The values of one scalar column (`n` rows expected).
fn scalar_values(sc: &schema::ScalarField) -> Vec<Value> {
    use scalar_field::Data;
    match &sc.data {
        None => Vec::new(),
        Some(Data::BoolData(a)) => a.data.iter().map(|b| Value::Bool(*b)).collect(),
        Some(Data::IntData(a)) => a.data.iter().map(|i| Value::Int(i64::from(*i))).collect(),
        Some(Data::LongData(a)) => a.data.iter().map(|i| Value::Int(*i)).collect(),
        Some(Data::FloatData(a)) => a.data.iter().map(|f| Value::Float(f.to_bits())).collect(),
        Some(Data::DoubleData(a)) => a.data.iter().map(|f| Value::Double(f.to_bits())).collect(),
        Some(Data::StringData(a)) => a.data.iter().map(|s| Value::Str(s.clone())).collect(),
        Some(Data::BytesData(a)) => a.data.iter().map(|b| Value::Bytes(b.clone())).collect(),
        Some(Data::JsonData(a)) => a.data.iter().map(|b| json(b)).collect(),
        Some(Data::ArrayData(a)) => a
            .data
            .iter()
            .map(|e| Value::Array(scalar_values(e)))
            .collect(),
        Some(Data::GeometryData(a)) => a.data.iter().map(|b| Value::Bytes(b.clone())).collect(),
        Some(Data::TimestamptzData(a)) => a.data.iter().map(|i| Value::Int(*i)).collect(),
        Some(Data::GeometryWktData(a)) => a.data.iter().map(|s| Value::Str(s.clone())).collect(),
    }
}

/// Splits a flat byte column into `n` equal rows.
fn chunks(bytes: &[u8], n: usize, what: &str) -> Result<Vec<Value>, DecodeError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if !bytes.len().is_multiple_of(n) {
        return Err(DecodeError(format!(
            "{what}: {} bytes do not split into {n} rows",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks(bytes.len() / n)
        .map(|c| Value::Bytes(c.to_vec()))
        .collect())
}

/// The values of one vector column of `n` rows.
fn vector_values(v: &schema::VectorField, n: usize, name: &str) -> Result<Vec<Value>, DecodeError> {
    use vector_field::Data;
    match &v.data {
        None => Ok(Vec::new()),
        Some(Data::FloatVector(f)) => {
            let bytes: Vec<u8> = f.data.iter().flat_map(|x| x.to_le_bytes()).collect();
            chunks(&bytes, n, name)
        }
        Some(Data::BinaryVector(b))
        | Some(Data::Float16Vector(b))
        | Some(Data::Bfloat16Vector(b))
        | Some(Data::Int8Vector(b)) => chunks(b, n, name),
        Some(Data::SparseFloatVector(s)) => {
            Ok(s.contents.iter().map(|c| Value::Bytes(c.clone())).collect())
        }
        Some(Data::VectorArray(_)) => Err(DecodeError(format!(
            "{name}: vector arrays are not compared yet"
        ))),
    }
}

/// The `n` values of one column of a query answer.
///
/// # Errors
/// Another number of values, a vector column that does not split into `n` rows, or a type
/// not compared yet.
fn column_values(f: &schema::FieldData, n: usize) -> Result<Vec<Value>, DecodeError> {
    let mut values = match &f.field {
        Some(field_data::Field::Scalars(sc)) => scalar_values(sc),
        Some(field_data::Field::Vectors(v)) => vector_values(v, n, &f.field_name)?,
        Some(field_data::Field::StructArrays(_)) => {
            return Err(DecodeError(format!(
                "{}: struct arrays are not compared yet",
                f.field_name
            )));
        }
        None => Vec::new(),
    };
    // Nullable columns (2.5+): values only for the valid rows, or one per row with
    // placeholders; either way `valid_data` says which rows are null.
    if !f.valid_data.is_empty() {
        let mut it = values.into_iter();
        let compact = f.valid_data.iter().filter(|v| **v).count() != n;
        values = f
            .valid_data
            .iter()
            .map(|valid| {
                let v = if *valid || !compact { it.next() } else { None };
                if *valid {
                    v.unwrap_or(Value::Null)
                } else {
                    Value::Null
                }
            })
            .collect();
    }
    if values.len() != n {
        return Err(DecodeError(format!(
            "column `{}` has {} values for {n} rows",
            f.field_name,
            values.len()
        )));
    }
    Ok(values)
}

/// One column of a query answer, read row by row for [`digests`] without building [`Row`]s:
/// the common types straight from the answer's arrays, the others (nullable columns, JSON,
/// arrays, sparse vectors) as decoded [`Value`]s. Each encodes a row exactly as [`encode`]
/// encodes its [`Value`], so the digests are [`Row::digest`]'s.
enum Column<'a> {
    Bool(&'a [bool]),
    Int(&'a [i32]),
    Long(&'a [i64]),
    Float(&'a [f32]),
    Double(&'a [f64]),
    Str(&'a [String]),
    /// Float vectors, `dim` components per row.
    FloatVec(&'a [f32], usize),
    /// Binary, float16, bfloat16 and int8 vectors: `width` bytes per row.
    Fixed(&'a [u8], usize),
    Values(Vec<Value>),
}

impl<'a> Column<'a> {
    fn of(f: &'a schema::FieldData, n: usize) -> Result<Column<'a>, DecodeError> {
        use scalar_field::Data as S;
        use vector_field::Data as V;
        let wrong = |len: usize| {
            DecodeError(format!(
                "column `{}` has {len} values for {n} rows",
                f.field_name
            ))
        };
        let per_row = |len: usize| {
            if len.is_multiple_of(n) {
                Ok(len / n)
            } else {
                Err(DecodeError(format!(
                    "{}: {len} values do not split into {n} rows",
                    f.field_name
                )))
            }
        };
        let col = match &f.field {
            _ if !f.valid_data.is_empty() => None,
            Some(field_data::Field::Scalars(sc)) => match &sc.data {
                Some(S::BoolData(a)) => Some((Column::Bool(&a.data), a.data.len())),
                Some(S::IntData(a)) => Some((Column::Int(&a.data), a.data.len())),
                Some(S::LongData(a)) => Some((Column::Long(&a.data), a.data.len())),
                Some(S::FloatData(a)) => Some((Column::Float(&a.data), a.data.len())),
                Some(S::DoubleData(a)) => Some((Column::Double(&a.data), a.data.len())),
                Some(S::StringData(a)) => Some((Column::Str(&a.data), a.data.len())),
                _ => None,
            },
            Some(field_data::Field::Vectors(v)) => match &v.data {
                Some(V::FloatVector(a)) => {
                    Some((Column::FloatVec(&a.data, per_row(a.data.len())?), n))
                }
                Some(
                    V::BinaryVector(b)
                    | V::Float16Vector(b)
                    | V::Bfloat16Vector(b)
                    | V::Int8Vector(b),
                ) => Some((Column::Fixed(b, per_row(b.len())?), n)),
                _ => None,
            },
            _ => None,
        };
        match col {
            Some((c, len)) if len == n => Ok(c),
            Some((_, len)) => Err(wrong(len)),
            None => Ok(Column::Values(column_values(f, n)?)),
        }
    }

    /// Appends row `i`'s encoding.
    fn encode(&self, i: usize, buf: &mut Vec<u8>) {
        match self {
            Column::Bool(a) => buf.extend_from_slice(&[1, u8::from(a[i])]),
            Column::Int(a) => {
                buf.push(2);
                buf.extend_from_slice(&i64::from(a[i]).to_le_bytes());
            }
            Column::Long(a) => {
                buf.push(2);
                buf.extend_from_slice(&a[i].to_le_bytes());
            }
            Column::Float(a) => {
                buf.push(3);
                buf.extend_from_slice(&a[i].to_bits().to_le_bytes());
            }
            Column::Double(a) => {
                buf.push(4);
                buf.extend_from_slice(&a[i].to_bits().to_le_bytes());
            }
            Column::Str(a) => {
                buf.push(5);
                encode_str(&a[i], buf);
            }
            Column::FloatVec(a, dim) => {
                buf.push(7);
                buf.extend_from_slice(&((dim * 4) as u64).to_le_bytes());
                for x in &a[i * dim..(i + 1) * dim] {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            Column::Fixed(a, width) => {
                buf.push(7);
                buf.extend_from_slice(&(*width as u64).to_le_bytes());
                buf.extend_from_slice(&a[i * width..(i + 1) * width]);
            }
            Column::Values(v) => encode(&v[i], buf),
        }
    }
}

/// Each row's key and [`Row::digest`], computed from the answer's columns without building
/// the rows (a full verification digests every row of both sides).
///
/// # Errors
/// As [`decode`].
pub fn digests(
    fields: &[schema::FieldData],
    pk: &PrimaryKey,
) -> Result<Vec<(Pk, u128)>, DecodeError> {
    let keys = key_column(fields, pk)?;
    let n = keys.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut columns = fields
        .iter()
        .filter(|f| f.field_name != pk.name)
        .map(|f| Ok((f.field_name.as_str(), Column::of(f, n)?)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    // A row's fields are encoded in name order.
    columns.sort_by(|x, y| x.0.cmp(y.0));
    let mut buf = Vec::with_capacity(256);
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            buf.clear();
            encode_pk(&key, &mut buf);
            for (name, col) in &columns {
                encode_str(name, &mut buf);
                col.encode(i, &mut buf);
            }
            (key, hash(&buf))
        })
        .collect())
}

/// The answer's key column.
fn key_column(fields: &[schema::FieldData], pk: &PrimaryKey) -> Result<Vec<Pk>, DecodeError> {
    pk.column(fields)
        .ok_or_else(|| DecodeError(format!("no `{}` key column in the answer", pk.name)))
}

/// The rows of a query answer: the key column `pk`, every other column by field name (the
/// dynamic field under its name, `$meta`).
///
/// # Errors
/// A column of another length than the key column, a vector column that does not split into
/// rows, or a missing or mistyped key column.
pub fn decode(fields: &[schema::FieldData], pk: &PrimaryKey) -> Result<Vec<Row>, DecodeError> {
    let keys = key_column(fields, pk)?;
    let n = keys.len();
    let mut rows: Vec<Row> = keys
        .into_iter()
        .map(|pk| Row {
            pk,
            fields: BTreeMap::new(),
        })
        .collect();
    for f in fields.iter().filter(|f| f.field_name != pk.name) {
        for (row, v) in rows.iter_mut().zip(column_values(f, n)?) {
            row.fields.insert(f.field_name.clone(), v);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::PkKind;
    use crate::milvus::proto::schema::{
        BoolArray, BytesArray, DoubleArray, FieldData, FloatArray, IntArray, JsonArray, LongArray,
        ScalarField, SparseFloatArray, StringArray, VectorField,
    };

    fn scalar(name: &str, data: scalar_field::Data) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
            ..Default::default()
        }
    }

    fn vector(name: &str, dim: i64, data: vector_field::Data) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(data),
            })),
            ..Default::default()
        }
    }

    fn pk() -> PrimaryKey {
        PrimaryKey {
            name: "id".into(),
            kind: PkKind::Int64,
        }
    }

    /// Two rows of every type, with `json` text and column order given.
    fn answer(json_texts: [&str; 2], vec1: [f32; 2]) -> Vec<FieldData> {
        vec![
            scalar(
                "b",
                scalar_field::Data::BoolData(BoolArray {
                    data: vec![true, false],
                }),
            ),
            scalar(
                "i8",
                scalar_field::Data::IntData(IntArray { data: vec![-1, 7] }),
            ),
            scalar(
                "id",
                scalar_field::Data::LongData(LongArray { data: vec![10, 20] }),
            ),
            scalar(
                "f",
                scalar_field::Data::FloatData(FloatArray {
                    data: vec![0.5, f32::NAN],
                }),
            ),
            scalar(
                "d",
                scalar_field::Data::DoubleData(DoubleArray {
                    data: vec![1.25, -0.0],
                }),
            ),
            scalar(
                "s",
                scalar_field::Data::StringData(StringArray {
                    data: vec!["x".into(), "".into()],
                }),
            ),
            scalar(
                "j",
                scalar_field::Data::JsonData(JsonArray {
                    data: json_texts.iter().map(|t| t.as_bytes().to_vec()).collect(),
                }),
            ),
            scalar(
                "arr",
                scalar_field::Data::ArrayData(schema::ArrayArray {
                    data: vec![
                        ScalarField {
                            data: Some(scalar_field::Data::LongData(LongArray {
                                data: vec![1, 2],
                            })),
                        },
                        ScalarField {
                            data: Some(scalar_field::Data::LongData(LongArray { data: vec![] })),
                        },
                    ],
                    element_type: schema::DataType::Int64 as i32,
                }),
            ),
            vector(
                "fv",
                2,
                vector_field::Data::FloatVector(FloatArray {
                    data: vec![vec1[0], vec1[1], 3.0, 4.0],
                }),
            ),
            vector("bv", 8, vector_field::Data::BinaryVector(vec![0xAA, 0x55])),
            vector("hv", 1, vector_field::Data::Float16Vector(vec![1, 2, 3, 4])),
            vector(
                "sv",
                0,
                vector_field::Data::SparseFloatVector(SparseFloatArray {
                    contents: vec![vec![1, 0, 0, 0, 0, 0, 128, 63], vec![]],
                    dim: 2,
                }),
            ),
        ]
    }

    #[test]
    fn decodes_every_type_into_rows() {
        let rows = decode(&answer([r#"{"a":1}"#, "[1]"], [1.0, 2.0]), &pk()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].pk, Pk::Int(10));
        assert_eq!(rows[1].pk, Pk::Int(20));
        let r = &rows[1].fields;
        assert_eq!(r["b"], Value::Bool(false));
        assert_eq!(r["i8"], Value::Int(7));
        assert_eq!(r["f"], Value::Float(f32::NAN.to_bits()));
        assert_eq!(r["d"], Value::Double((-0.0f64).to_bits()));
        assert_eq!(r["bv"], Value::Bytes(vec![0x55]));
        assert_eq!(r["hv"], Value::Bytes(vec![3, 4]));
        assert_eq!(r["sv"], Value::Bytes(vec![]));
        assert_eq!(r["arr"], Value::Array(vec![]));
        assert_eq!(
            rows[0].fields["fv"],
            Value::Bytes([1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect())
        );
        assert!(!rows[0].fields.contains_key("id"));
    }

    #[test]
    fn json_compares_by_value_and_vectors_bit_for_bit() {
        let a = decode(&answer([r#"{"a":1,"b":[true]}"#, "[1]"], [1.0, 2.0]), &pk()).unwrap();
        let same = decode(
            &answer([r#"{ "b": [true], "a": 1 }"#, "[1]"], [1.0, 2.0]),
            &pk(),
        )
        .unwrap();
        assert_eq!(a[0].digest(), same[0].digest());
        assert!(a[0].differing_fields(&same[0]).is_empty());
        let other_json =
            decode(&answer([r#"{"a":2,"b":[true]}"#, "[1]"], [1.0, 2.0]), &pk()).unwrap();
        assert_ne!(a[0].digest(), other_json[0].digest());
        assert_eq!(a[0].differing_fields(&other_json[0]), ["j"]);
        // One ulp in one vector component is a difference.
        let ulp = f32::from_bits(2.0f32.to_bits() + 1);
        let other_vec =
            decode(&answer([r#"{"a":1,"b":[true]}"#, "[1]"], [1.0, ulp]), &pk()).unwrap();
        assert_ne!(a[0].digest(), other_vec[0].digest());
        assert_eq!(a[0].differing_fields(&other_vec[0]), ["fv"]);
        // The second row did not change.
        assert_eq!(a[1].digest(), other_vec[1].digest());
    }

    /// The digests straight from the columns are the rows' digests, for every type, nulls
    /// and both JSON spellings included.
    #[test]
    fn column_digests_are_the_row_digests() {
        let mut with_nulls = answer([r#"{"b":1, "a":[2]}"#, "null"], [1.5, -0.0]);
        let mut n = scalar(
            "n",
            scalar_field::Data::DoubleData(DoubleArray { data: vec![2.5] }),
        );
        n.valid_data = vec![false, true];
        with_nulls.push(n);
        for cols in [answer(["1", "[]"], [1.0, 2.0]), with_nulls] {
            let rows: Vec<(Pk, u128)> = decode(&cols, &pk())
                .unwrap()
                .into_iter()
                .map(|r| (r.pk.clone(), r.digest()))
                .collect();
            assert_eq!(digests(&cols, &pk()).unwrap(), rows);
        }
    }

    #[test]
    /// Both readings of an answer, rows and column digests, refuse the same malformed columns.
    fn malformed_columns_are_errors() {
        let errors = |cols: &[FieldData]| {
            [
                decode(cols, &pk()).map(drop).unwrap_err(),
                digests(cols, &pk()).map(drop).unwrap_err(),
            ]
        };
        let mut cols = answer(["1", "2"], [1.0, 2.0]);
        cols.push(scalar(
            "short",
            scalar_field::Data::LongData(LongArray { data: vec![1] }),
        ));
        for e in errors(&cols) {
            assert!(e.0.contains("`short` has 1 values for 2 rows"), "{e:?}");
        }
        let cols = vec![vector(
            "bv",
            8,
            vector_field::Data::BinaryVector(vec![1, 2, 3]),
        )];
        for e in errors(&cols) {
            assert!(e.0.contains("no `id` key column"), "{e:?}");
        }
        let mut cols = answer(["1", "2"], [1.0, 2.0]);
        cols.push(vector(
            "odd",
            8,
            vector_field::Data::BinaryVector(vec![1, 2, 3]),
        ));
        for e in errors(&cols) {
            assert!(e.0.contains("do not split"), "{e:?}");
        }
    }

    #[test]
    fn nulls_follow_valid_data() {
        let mut f = scalar(
            "n",
            scalar_field::Data::LongData(LongArray { data: vec![5] }),
        );
        f.valid_data = vec![false, true];
        let cols = vec![
            scalar(
                "id",
                scalar_field::Data::LongData(LongArray { data: vec![1, 2] }),
            ),
            f,
        ];
        let rows = decode(&cols, &pk()).unwrap();
        assert_eq!(rows[0].fields["n"], Value::Null);
        assert_eq!(rows[1].fields["n"], Value::Int(5));
        let _ = BytesArray::default();
    }

    #[test]
    fn set_digest_ignores_order_but_not_content() {
        let rows = decode(&answer(["1", "2"], [1.0, 2.0]), &pk()).unwrap();
        let (mut x, mut y) = (SetDigest::default(), SetDigest::default());
        x.add(rows[0].digest());
        x.add(rows[1].digest());
        y.add(rows[1].digest());
        y.add(rows[0].digest());
        assert_eq!(x, y);
        let mut z = SetDigest::default();
        z.add(rows[0].digest());
        assert_ne!(x, z);
        z.add(rows[0].digest());
        assert_ne!(x, z, "a duplicated row is not the missing one");
    }
}
