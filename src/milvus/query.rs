//! Queries by primary-key range: pages of rows or keys, and exact row counts on every server
//! version, in an `impl MilvusClient` block beside the client's own calls.
//!
//! Owns: the primary key of a collection ([`PrimaryKey`], [`Pk`]), boolean expressions over it
//! ([`range_expr`], [`in_expr`]), paging by key (`pk > last` with a limit, never `offset`:
//! Milvus 2.2 refuses `offset + limit > 16384`, and an offset rescans what it skips), and
//! [`MilvusClient::count`], which uses `count(*)` where the server has it and enumerates the
//! keys where it has not (Milvus < 2.3, [`count_method`]). Does not own what the rows are
//! compared with (`crate::verify`).
//!
//! Paging by key relies on Milvus returning the `limit` smallest keys of the expression in
//! ascending order when a limit is given (the proxy merges the segments' results by key, as
//! the query iterators of the official SDKs also assume). Every full page is checked for that
//! order, and an unordered one is an error rather than a silently skipped row.

use super::MilvusClient;
use super::MilvusError;
use super::proto::{common, milvus as pb, schema};
use super::version::ServerVersion;

/// The largest `limit` a query may carry on every supported server (2.2's window).
pub const MAX_QUERY_LIMIT: u64 = 16_384;

/// How [`MilvusClient::count`] counts on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    /// `Query` with output field `count(*)` (2.3 and later).
    CountStar,
    /// Enumerating primary keys in key-range pages (2.2 refuses an empty expression, so it has
    /// no `count(*)`).
    EnumerateKeys,
}

/// How rows are counted on a server of this version: `count(*)` from 2.3 (unknown versions
/// count as newest), else by enumerating the keys.
pub fn count_method(version: &ServerVersion) -> CountMethod {
    if version.at_least(2, 3, 0) {
        CountMethod::CountStar
    } else {
        CountMethod::EnumerateKeys
    }
}

/// A primary-key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pk {
    /// Int64 key.
    Int(i64),
    /// VarChar key.
    Str(String),
}

impl Pk {
    /// Bytes the key takes: 8 for an Int64, the string's length.
    fn width(&self) -> u64 {
        match self {
            Pk::Int(_) => 8,
            Pk::Str(s) => s.len() as u64,
        }
    }

    /// The key as an expression literal: a number, or a double-quoted string with `\` and `"`
    /// escaped.
    pub fn literal(&self) -> String {
        match self {
            Pk::Int(i) => i.to_string(),
            Pk::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                out.push('"');
                for ch in s.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
                out
            }
        }
    }
}

impl std::fmt::Display for Pk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pk::Int(i) => write!(f, "{i}"),
            Pk::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Bytes of keys one page of keys holds, about: a quarter of what Milvus's proxy sends in one
/// answer by default (`proxy.grpc.serverMaxSendSize`, 64 MiB).
const KEY_PAGE_BYTES: u64 = 16 << 20;

/// Keys per page when a collection's keys are enumerated: Milvus's limit ([`MAX_QUERY_LIMIT`])
/// unless the keys are long strings. The first page counts each key at the key field's
/// `max_length`, the next ones at the longest key seen so far, so that a page of keys stays
/// far below what Milvus sends in one answer (16384 keys of 4 KiB would be 64 MiB).
///
/// A server that refuses a page as larger than its limit (a proxy whose
/// `proxy.grpc.serverMaxSendSize` is set low) makes the pages fit half that limit from then
/// on ([`KeyPages::refused`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyPages {
    page: u64,
    longest: u64,
    /// Bytes of keys a page may hold.
    budget: u64,
}

impl Default for KeyPages {
    /// Pages of Int64 keys: [`MAX_QUERY_LIMIT`].
    fn default() -> Self {
        KeyPages {
            page: MAX_QUERY_LIMIT,
            longest: 0,
            budget: KEY_PAGE_BYTES,
        }
    }
}

impl KeyPages {
    /// Pages for the keys of `schema`.
    pub fn new(schema: &schema::CollectionSchema) -> KeyPages {
        let bound = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .filter(|f| f.data_type == schema::DataType::VarChar as i32)
            .map_or(8, |f| {
                f.type_params
                    .iter()
                    .find(|kv| kv.key == "max_length")
                    .and_then(|kv| kv.value.parse::<u64>().ok())
                    .unwrap_or(u64::from(u16::MAX))
            });
        KeyPages {
            page: keys_within(KEY_PAGE_BYTES, bound),
            longest: 0,
            budget: KEY_PAGE_BYTES,
        }
    }

    /// Keys in the next page.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// A page of `keys` arrived: the next pages are sized by the longest key seen.
    pub fn saw(&mut self, keys: &[Pk]) {
        let longest = keys.iter().map(Pk::width).max().unwrap_or(0);
        self.longest = self.longest.max(longest);
        if self.longest > 0 {
            self.page = keys_within(self.budget, self.longest);
        }
    }

    /// The server refused a page of `keys` keys as `size` bytes, over its `limit`: the next
    /// pages hold half that limit, by the width of the refused keys, so fewer than half as
    /// many keys (`size > limit`). `false` when the page cannot shrink (a single key).
    pub fn refused(&mut self, keys: u64, size: u64, limit: u64) -> bool {
        if keys <= 1 {
            return false;
        }
        self.budget = self.budget.min(limit / 2);
        // The width of the refused keys, less the framing `keys_within` adds back.
        self.longest = self.longest.max(size.div_ceil(keys).saturating_sub(8));
        self.page = keys_within(self.budget, self.longest);
        true
    }
}

/// Keys of `longest` bytes that `budget` bytes of answer hold.
fn keys_within(budget: u64, longest: u64) -> u64 {
    // A string key costs its bytes and a few of framing in the answer.
    (budget / (longest + 8)).clamp(1, MAX_QUERY_LIMIT)
}

/// The type of a primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkKind {
    /// `Int64`.
    Int64,
    /// `VarChar`.
    VarChar,
}

/// A collection's primary-key field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    /// Field name.
    pub name: String,
    /// Its type.
    pub kind: PkKind,
}

impl PrimaryKey {
    /// The primary key of a schema; `None` when it has none of a supported type.
    pub fn of(schema: &schema::CollectionSchema) -> Option<PrimaryKey> {
        let f = schema.fields.iter().find(|f| f.is_primary_key)?;
        let kind = match schema::DataType::try_from(f.data_type).ok()? {
            schema::DataType::Int64 => PkKind::Int64,
            schema::DataType::VarChar => PkKind::VarChar,
            _ => return None,
        };
        Some(PrimaryKey {
            name: f.name.clone(),
            kind,
        })
    }

    /// The keys of a query answer's key column, in answer order.
    pub fn column(&self, fields: &[schema::FieldData]) -> Option<Vec<Pk>> {
        let f = fields.iter().find(|f| f.field_name == self.name)?;
        let Some(schema::field_data::Field::Scalars(sc)) = &f.field else {
            return None;
        };
        match (&sc.data, self.kind) {
            (Some(schema::scalar_field::Data::LongData(l)), PkKind::Int64) => {
                Some(l.data.iter().copied().map(Pk::Int).collect())
            }
            (Some(schema::scalar_field::Data::StringData(s)), PkKind::VarChar) => {
                Some(s.data.iter().cloned().map(Pk::Str).collect())
            }
            // An empty answer may carry no column data at all.
            (None, _) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// `after < pk <= upto`, either bound open when `None`; everything (`pk < 0 || pk >= 0`,
/// `pk >= ""`) when both are. Never empty: 2.2 refuses an empty expression. The parser reads
/// `-9223372036854775808` as minus an out-of-range number, so `i64::MIN` never appears as a
/// literal: bounds at it are written with `i64::MIN + 1`.
pub fn range_expr(pk: &PrimaryKey, after: Option<&Pk>, upto: Option<&Pk>) -> String {
    let name = &pk.name;
    let mut parts = Vec::new();
    match after {
        Some(Pk::Int(i64::MIN)) => parts.push(format!("{name} >= {}", i64::MIN + 1)),
        Some(a) => parts.push(format!("{name} > {}", a.literal())),
        None => {}
    }
    match upto {
        Some(Pk::Int(i64::MIN)) => parts.push(format!("{name} < {}", i64::MIN + 1)),
        Some(u) => parts.push(format!("{name} <= {}", u.literal())),
        None => {}
    }
    if parts.is_empty() {
        return match pk.kind {
            PkKind::Int64 => format!("{name} < 0 || {name} >= 0"),
            PkKind::VarChar => format!("{name} >= \"\""),
        };
    }
    parts.join(" && ")
}

/// `pk in [k1, k2, ...]`.
pub fn in_expr(pk: &PrimaryKey, keys: &[Pk]) -> String {
    let list: Vec<String> = keys.iter().map(Pk::literal).collect();
    format!("{} in [{}]", pk.name, list.join(", "))
}

/// How current a query's view must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Everything written before the query: the server waits for its next time tick (every
    /// 200 ms by default), so each such query costs up to a tick.
    Strong,
    /// What the server has applied, at most its graceful time (5 s by default) behind: no
    /// wait. For the pages after a first Strong query, when nothing is being written: the
    /// view never goes back past what the Strong query saw on the same replica.
    Bounded,
}

impl Consistency {
    fn level(self) -> common::ConsistencyLevel {
        match self {
            Consistency::Strong => common::ConsistencyLevel::Strong,
            Consistency::Bounded => common::ConsistencyLevel::Bounded,
        }
    }
}

impl MilvusClient {
    /// A `Query` with Strong consistency: the columns of `output_fields` for the rows `expr`
    /// selects (at most `limit`, when given), in some partitions or all.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn query(
        &self,
        collection: &str,
        partitions: &[String],
        expr: &str,
        output_fields: &[String],
        limit: Option<u64>,
    ) -> Result<Vec<schema::FieldData>, MilvusError> {
        self.query_with(
            collection,
            partitions,
            expr,
            output_fields,
            limit,
            Consistency::Strong,
        )
        .await
    }

    /// [`MilvusClient::query`] with the given consistency.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn query_with(
        &self,
        collection: &str,
        partitions: &[String],
        expr: &str,
        output_fields: &[String],
        limit: Option<u64>,
        consistency: Consistency,
    ) -> Result<Vec<schema::FieldData>, MilvusError> {
        let query_params = limit
            .map(|n| {
                vec![common::KeyValuePair {
                    key: "limit".into(),
                    value: n.to_string(),
                }]
            })
            .unwrap_or_default();
        let req = pb::QueryRequest {
            db_name: self.db().to_string(),
            collection_name: collection.to_string(),
            expr: expr.to_string(),
            output_fields: output_fields.to_vec(),
            partition_names: partitions.to_vec(),
            query_params,
            consistency_level: consistency.level() as i32,
            use_default_consistency: false,
            ..Default::default()
        };
        let r: pb::QueryResults = self
            .call("Query", move |mut s| {
                let req = req.clone();
                async move { s.query(req).await }
            })
            .await?;
        Ok(r.fields_data)
    }

    /// The primary key and schema of a collection.
    ///
    /// # Errors
    /// [`MilvusError`]; [`MilvusError::Unsupported`] when the collection has no Int64 or
    /// VarChar primary key.
    pub async fn primary_key(
        &self,
        collection: &str,
    ) -> Result<(PrimaryKey, schema::CollectionSchema), MilvusError> {
        let schema = self
            .describe_collection(collection)
            .await?
            .schema
            .unwrap_or_default();
        let pk = PrimaryKey::of(&schema).ok_or_else(|| MilvusError::Unsupported {
            address: self.address().to_string(),
            version: self.version().raw.clone(),
            what: format!("collection `{collection}` has no Int64 or VarChar primary key"),
        })?;
        Ok((pk, schema))
    }

    /// The smallest `limit` keys greater than `after` (all keys from the start when `None`),
    /// ascending.
    ///
    /// # Errors
    /// [`MilvusError`]; [`MilvusError::Unsupported`] when a full page is not in ascending
    /// key order (paging by key would skip rows).
    pub async fn key_page(
        &self,
        collection: &str,
        partitions: &[String],
        pk: &PrimaryKey,
        after: Option<&Pk>,
        limit: u64,
        consistency: Consistency,
    ) -> Result<Vec<Pk>, MilvusError> {
        let fields = self
            .query_with(
                collection,
                partitions,
                &range_expr(pk, after, None),
                std::slice::from_ref(&pk.name),
                Some(limit),
                consistency,
            )
            .await?;
        let keys = pk
            .column(&fields)
            .ok_or_else(|| self.unexpected(collection, "the answer lacks the key column"))?;
        self.ordered_page(collection, keys, limit)
    }

    /// A page as paging by key needs it: ascending. A short page is complete whatever its
    /// order, so it is sorted; a full one must already be in order.
    pub(crate) fn ordered_page(
        &self,
        collection: &str,
        mut keys: Vec<Pk>,
        limit: u64,
    ) -> Result<Vec<Pk>, MilvusError> {
        let sorted = keys.windows(2).all(|w| w[0] < w[1]);
        if !sorted {
            if keys.len() as u64 >= limit {
                return Err(self.unexpected(
                    collection,
                    "a query page with a limit is not in ascending key order, so it cannot be \
                     paged by key",
                ));
            }
            keys.sort();
        }
        Ok(keys)
    }

    fn unexpected(&self, collection: &str, what: &str) -> MilvusError {
        MilvusError::Unsupported {
            address: self.address().to_string(),
            version: self.version().raw.clone(),
            what: format!("collection `{collection}`: {what}"),
        }
    }

    /// The live rows of a collection, or of some of its partitions, exactly: `count(*)` with
    /// Strong consistency where the server has it, else every key enumerated in pages
    /// ([`KeyPages`], [`count_method`]). The collection must be loaded.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn count(&self, collection: &str, partitions: &[String]) -> Result<i64, MilvusError> {
        match count_method(self.version()) {
            CountMethod::CountStar => self.count_star(collection, partitions).await,
            CountMethod::EnumerateKeys => self.count_by_keys(collection, partitions).await,
        }
    }

    /// The live rows of a collection (or some partitions) by enumerating their keys in pages
    /// ([`KeyPages`]): what [`MilvusClient::count`] does on servers without
    /// `count(*)`, usable on any server.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn count_by_keys(
        &self,
        collection: &str,
        partitions: &[String],
    ) -> Result<i64, MilvusError> {
        let (pk, schema) = self.primary_key(collection).await?;
        let mut pages = KeyPages::new(&schema);
        let mut n = 0i64;
        let mut after = None;
        // The first page waits for everything written before the count; the next ones need
        // not wait for a time tick each.
        let mut consistency = Consistency::Strong;
        loop {
            let limit = pages.page();
            let page = match self
                .key_page(
                    collection,
                    partitions,
                    &pk,
                    after.as_ref(),
                    limit,
                    consistency,
                )
                .await
            {
                Ok(page) => page,
                Err(e) => match e.too_large() {
                    Some((size, max)) if pages.refused(limit, size, max) => continue,
                    _ => return Err(e),
                },
            };
            consistency = Consistency::Bounded;
            n += page.len() as i64;
            if (page.len() as u64) < limit {
                return Ok(n);
            }
            pages.saw(&page);
            after = page.into_iter().next_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(kind: PkKind) -> PrimaryKey {
        PrimaryKey {
            name: "id".into(),
            kind,
        }
    }

    #[test]
    fn key_pages_hold_about_16_mib_of_keys() {
        let key = |ty: schema::DataType, params: &[(&str, &str)]| schema::CollectionSchema {
            fields: vec![schema::FieldSchema {
                name: "id".into(),
                is_primary_key: true,
                data_type: ty as i32,
                type_params: params
                    .iter()
                    .map(|(k, v)| common::KeyValuePair {
                        key: (*k).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let int = KeyPages::new(&key(schema::DataType::Int64, &[]));
        assert_eq!(int.page(), MAX_QUERY_LIMIT);
        assert_eq!(KeyPages::default().page(), MAX_QUERY_LIMIT);
        // Short strings: Milvus's limit.
        let short = KeyPages::new(&key(schema::DataType::VarChar, &[("max_length", "64")]));
        assert_eq!(short.page(), MAX_QUERY_LIMIT);
        // Keys that may be 65535 bytes: 255 in the first page; then by the longest seen,
        // which only grows.
        let mut long = KeyPages::new(&key(schema::DataType::VarChar, &[("max_length", "65535")]));
        assert_eq!(long.page(), 255);
        long.saw(&[Pk::Str("k".repeat(36)), Pk::Str("k".repeat(12))]);
        assert_eq!(long.page(), MAX_QUERY_LIMIT);
        long.saw(&[Pk::Str("k".repeat(4096))]);
        assert_eq!(long.page(), (16 << 20) / 4104);
        assert!(long.page() * 4096 < 64 << 20);
        long.saw(&[Pk::Str("k".into())]);
        assert_eq!(long.page(), (16 << 20) / 4104);
        // No max_length given: counted at 65535.
        let unbounded = KeyPages::new(&key(schema::DataType::VarChar, &[]));
        assert_eq!(unbounded.page(), 255);
    }

    #[test]
    fn a_page_refused_as_too_large_makes_the_next_ones_fit_half_the_limit() {
        // 16384 keys of 1 KiB (16.1 MiB) refused by a 2 MiB limit.
        let mut pages = KeyPages::default();
        pages.saw(&[Pk::Str("k".repeat(1024))]);
        assert_eq!(pages.page(), (16 << 20) / 1032);
        let asked = pages.page();
        assert!(pages.refused(asked, asked * 1032, 2 << 20));
        assert_eq!(pages.page(), (1 << 20) / 1032);
        // Pages stay within the lower budget as longer keys come.
        pages.saw(&[Pk::Str("k".repeat(2040))]);
        assert_eq!(pages.page(), (1 << 20) / 2048);
        // A refusal whose sizes say little still halves the page at least.
        let asked = pages.page();
        assert!(pages.refused(asked, (2 << 20) + 1, 2 << 20));
        assert!(pages.page() <= asked / 2);
        // One key cannot be split.
        assert!(!pages.refused(1, 3 << 20, 2 << 20));
    }

    #[test]
    fn servers_before_2_3_count_by_enumerating_keys() {
        let m = |v: &str| count_method(&ServerVersion::parse(v));
        assert_eq!(m("v2.2.16-lite"), CountMethod::EnumerateKeys);
        assert_eq!(m("v2.2.0"), CountMethod::EnumerateKeys);
        assert_eq!(m("v2.3.0"), CountMethod::CountStar);
        assert_eq!(m("v2.3.5-lite"), CountMethod::CountStar);
        assert_eq!(m("v2.6.3"), CountMethod::CountStar);
        // Unparsable (dev builds, managed clouds) counts as newest.
        assert_eq!(m("master-20260101-abc"), CountMethod::CountStar);
    }

    #[test]
    fn range_expressions_are_never_empty_and_escape_strings() {
        let i = pk(PkKind::Int64);
        assert_eq!(range_expr(&i, None, None), "id < 0 || id >= 0");
        assert_eq!(
            range_expr(&i, Some(&Pk::Int(i64::MIN)), Some(&Pk::Int(0))),
            "id >= -9223372036854775807 && id <= 0"
        );
        assert_eq!(
            range_expr(&i, None, Some(&Pk::Int(i64::MIN))),
            "id < -9223372036854775807"
        );
        assert_eq!(range_expr(&i, Some(&Pk::Int(5)), None), "id > 5");
        assert_eq!(
            range_expr(&i, Some(&Pk::Int(-3)), Some(&Pk::Int(9))),
            "id > -3 && id <= 9"
        );
        let s = pk(PkKind::VarChar);
        assert_eq!(range_expr(&s, None, None), "id >= \"\"");
        assert_eq!(
            range_expr(&s, None, Some(&Pk::Str("a\"b\\c".into()))),
            r#"id <= "a\"b\\c""#
        );
        assert_eq!(
            in_expr(&s, &[Pk::Str("x".into()), Pk::Str("y".into())]),
            r#"id in ["x", "y"]"#
        );
        assert_eq!(in_expr(&i, &[Pk::Int(1), Pk::Int(2)]), "id in [1, 2]");
    }

    #[test]
    fn key_columns_decode_by_type() {
        let longs = schema::FieldData {
            field_name: "id".into(),
            field: Some(schema::field_data::Field::Scalars(schema::ScalarField {
                data: Some(schema::scalar_field::Data::LongData(schema::LongArray {
                    data: vec![3, 1],
                })),
            })),
            ..Default::default()
        };
        assert_eq!(
            pk(PkKind::Int64).column(std::slice::from_ref(&longs)),
            Some(vec![Pk::Int(3), Pk::Int(1)])
        );
        // The wrong type is not silently read as keys.
        assert_eq!(pk(PkKind::VarChar).column(&[longs]), None);
        assert_eq!(pk(PkKind::Int64).column(&[]), None);
        assert!(Pk::Int(2) < Pk::Int(10));
        assert!(Pk::Str("10".into()) < Pk::Str("2".into()));
    }
}
