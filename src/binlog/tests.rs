//! Against binlog files Milvus 2.3.5 wrote (`tests/fixtures/binlog/`): `tiny` is one segment
//! of an Int64-keyed collection (5 rows: `v` a 4-d float vector `[i, i + 0.5, -i, 0.001 i]`,
//! a dynamic field `{"extra": {"n": i}}`, key 3 deleted); `exotic` is one segment of
//! `/tmp/probe/exotic.py`'s schema (VarChar key `k-<i:07>-é`, every scalar type, JSON, an array
//! and a binary vector, each value a function of `i`).

use super::*;

fn fixture(set: &str, name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/binlog/{set}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn cells(set: &str, field: &str) -> Cells {
    let log = Binlog::parse(fixture(set, &format!("insert_{field}"))).unwrap();
    assert_eq!(log.descriptor.field_id.to_string(), field);
    log.cells().unwrap()
}

#[test]
fn an_int64_keyed_segment_reads_back_as_written() {
    let ids: Vec<i64> = cells("tiny", "100").int64s().map(Option::unwrap).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    let log = Binlog::parse(fixture("tiny", "insert_100")).unwrap();
    assert_eq!(log.descriptor.data_type, DATA_TYPE_INT64);

    let v = cells("tiny", "101");
    assert_eq!(v.len(), 5);
    for i in 0..5 {
        let f = i as f32;
        // Python wrote `-i` of an int: 0, not -0.0.
        let want: Vec<u8> = [f, f + 0.5, 0.0 - f, 1e-3 * f]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(v.get(i), Some(want.as_slice()), "row {i}");
    }

    let meta = cells("tiny", "102");
    for (i, m) in meta.iter().enumerate() {
        let json: serde_json::Value = serde_json::from_slice(m.unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"extra": {"n": i}}));
    }

    let stamps: Vec<i64> = cells("tiny", "1").int64s().map(Option::unwrap).collect();
    let deleted = deletes(fixture("tiny", "delta")).unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].0, Pk::Int(3));
    assert!(deleted[0].1 > stamps[3] as u64, "{deleted:?} {stamps:?}");
}

#[test]
fn every_scalar_type_a_varchar_key_and_a_binary_vector_read_back_as_written() {
    let ids = cells("exotic", "100");
    let n = ids.len();
    assert!(n > 0);
    let number = |row: usize| -> i64 {
        let id = std::str::from_utf8(ids.get(row).unwrap()).unwrap();
        assert!(id.starts_with("k-") && id.ends_with("-é"), "{id}");
        id[2..9].parse().unwrap()
    };
    let (flag, i8s, i16s) = (
        cells("exotic", "101"),
        cells("exotic", "102"),
        cells("exotic", "103"),
    );
    let (f, d, s) = (
        cells("exotic", "105"),
        cells("exotic", "106"),
        cells("exotic", "107"),
    );
    let (j, tags, bv) = (
        cells("exotic", "108"),
        cells("exotic", "109"),
        cells("exotic", "110"),
    );
    for c in [&flag, &i8s, &i16s, &f, &d, &s, &j, &tags, &bv] {
        assert_eq!(c.len(), n);
    }
    for row in 0..n {
        let i = number(row);
        assert_eq!(flag.get(row), Some(&[u8::from(i % 3 == 0)][..]), "{i}");
        // Int8 and Int16 are stored as Parquet INT32.
        assert_eq!(
            i8s.get(row),
            Some(&((i % 255 - 127) as i32).to_le_bytes()[..])
        );
        assert_eq!(
            i16s.get(row),
            Some(&((i * 7 % 65535 - 32767) as i32).to_le_bytes()[..])
        );
        assert_eq!(f.get(row), Some(&(i as f32 / 3.0).to_le_bytes()[..]));
        assert_eq!(d.get(row), Some(&(i as f64 * 1e-7).to_le_bytes()[..]));
        let want = format!("{}{i}", "s".repeat((i % 50) as usize));
        assert_eq!(s.get(row), Some(want.as_bytes()));
        let json: serde_json::Value = serde_json::from_slice(j.get(row).unwrap()).unwrap();
        assert_eq!(json["i"], i);
        assert_eq!(bv.get(row).unwrap().len(), 32, "256 bits");
        assert!(tags.get(row).is_some());
    }

    let deleted = deletes(fixture("exotic", "delta")).unwrap();
    assert!(!deleted.is_empty());
    for (pk, ts) in deleted {
        let Pk::Str(k) = pk else { panic!("{pk:?}") };
        assert!(k.starts_with("k-") && ts > 0, "{k}");
    }
}

#[test]
fn a_file_that_is_not_a_binlog_is_refused_with_the_reason() {
    let err = Binlog::parse(Bytes::from_static(b"PAR1 not a binlog")).unwrap_err();
    assert!(err.to_string().contains("magic number"), "{err}");
    let mut cut = fixture("tiny", "insert_100").to_vec();
    cut.truncate(cut.len() - 10);
    let err = Binlog::parse(Bytes::from(cut)).unwrap_err();
    assert!(err.to_string().contains("length"), "{err}");
    // An insert log is not a delta log.
    let err = deletes(fixture("tiny", "insert_100")).unwrap_err();
    assert!(err.to_string().contains("event type 1"), "{err}");
}

#[test]
fn delete_entries_in_both_string_forms() {
    assert_eq!(
        delete_entry(br#"{"pk":7,"ts":42,"pkType":5}"#).unwrap(),
        (Pk::Int(7), 42)
    );
    assert_eq!(
        delete_entry(br#"{"pk":"a,b","ts":9,"pkType":21}"#).unwrap(),
        (Pk::Str("a,b".into()), 9)
    );
    assert_eq!(delete_entry(b"12,34").unwrap(), (Pk::Int(12), 34));
    assert!(delete_entry(b"nonsense").is_err());
}

#[test]
fn cells_keep_nulls_and_offsets_across_extends() {
    let mut a = Cells::default();
    a.push(b"x");
    a.push_null();
    let mut b = Cells::default();
    b.push(b"yz");
    a.extend(b);
    let mut c = Cells::default();
    c.push_null();
    a.extend(c);
    let got: Vec<Option<&[u8]>> = a.iter().collect();
    assert_eq!(got, [Some(&b"x"[..]), None, Some(&b"yz"[..]), None]);
}
