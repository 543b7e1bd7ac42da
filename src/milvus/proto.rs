//! Generated Milvus protocol types and the gRPC client, one module per proto package.
//!
//! The module tree mirrors the proto packages (`milvus.proto.{common, schema, msg, milvus}`)
//! because prost writes cross-package references as relative paths (`super::common::Status`),
//! so the four modules must be siblings. The client is
//! [`milvus::milvus_service_client::MilvusServiceClient`]; build it with `new(channel)` or
//! `with_interceptor(channel, f)` (there is no `connect` constructor, see `build.rs`).
//!
//! prost turns upstream field names into snake case: `fieldID` → `field_id`, `autoID` →
//! `auto_id`, `dbName` → `db_name`, `IDs` → `i_ds`, `coll_segIDs` → `coll_seg_i_ds`,
//! `inMemory_percentages` → `in_memory_percentages`. Enum-typed fields are plain `i32` so that
//! values from newer servers survive a decode/encode round trip; convert with `TryFrom`.
//!
//! Owns nothing but the generated code and the tests that pin its wire field numbers.

/// `milvus.proto.common`: status, key/value pairs, shared enums.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod common {
    tonic::include_proto!("milvus.proto.common");
}

/// `milvus.proto.schema`: collection/field schemas and column data.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod schema {
    tonic::include_proto!("milvus.proto.schema");
}

/// `milvus.proto.msg`: message-stream positions (flush checkpoints).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod msg {
    tonic::include_proto!("milvus.proto.msg");
}

/// `milvus.proto.milvus`: the `MilvusService` requests, responses and client.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod milvus {
    tonic::include_proto!("milvus.proto.milvus");
}

#[cfg(test)]
mod tests {
    //! These tests pin the wire format: a renumbered or dropped field in `proto/milvus/` breaks
    //! them. Expected numbers are the upstream ones (milvus-proto v2.3.16 / v2.6.22).

    use std::collections::HashMap;

    use prost::Message;

    use super::common::{
        ConsistencyLevel, ErrorCode, KeyValuePair, SegmentLevel, SegmentState, Status,
    };
    use super::milvus::{
        CreateCollectionRequest, DeleteRequest, DescribeCollectionResponse, FlushResponse,
        GetFlushStateRequest, GetImportStateResponse, GetLoadStateRequest,
        GetLoadingProgressRequest, GetPersistentSegmentInfoRequest,
        GetPersistentSegmentInfoResponse, ImportRequest, IndexDescription, InsertRequest,
        LoadPartitionsRequest, MutationResult, PersistentSegmentInfo, QueryRequest,
        ShowCollectionsResponse, ShowPartitionsResponse,
    };
    use super::msg::MsgPosition;
    use super::schema::{
        CollectionSchema, DataType, FieldData, FieldSchema, FieldState, FunctionSchema,
        FunctionType, IDs, LongArray, ScalarField, StructArrayFieldSchema, ValueField, field_data,
        i_ds, scalar_field, value_field,
    };

    fn kv(key: &str, value: &str) -> KeyValuePair {
        KeyValuePair {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    /// Field numbers of the top-level fields in an encoded message, in wire order.
    fn field_numbers(mut buf: &[u8]) -> Vec<u32> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let (&byte, rest) = buf.split_first().expect("truncated varint");
                *buf = rest;
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return value;
                }
            }
            panic!("varint too long");
        }
        let mut numbers = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            numbers.push(u32::try_from(key >> 3).expect("field number"));
            let skip = match key & 7 {
                0 => {
                    varint(&mut buf);
                    0
                }
                1 => 8,
                2 => usize::try_from(varint(&mut buf)).expect("length"),
                5 => 4,
                other => panic!("unexpected wire type {other}"),
            };
            buf = &buf[skip..];
        }
        numbers
    }

    /// The single field number a message with exactly one field set is encoded with.
    fn only_field(message: &impl Message) -> u32 {
        let numbers = field_numbers(&message.encode_to_vec());
        assert_eq!(
            numbers.len(),
            1,
            "expected exactly one field, got {numbers:?}"
        );
        numbers[0]
    }

    /// A field with every member set to a non-default value.
    fn full_field(id: i64, name: &str) -> FieldSchema {
        FieldSchema {
            field_id: id,
            name: name.to_owned(),
            is_primary_key: true,
            description: format!("{name} description"),
            data_type: DataType::Array as i32,
            type_params: vec![kv("max_capacity", "16"), kv("max_length", "64")],
            index_params: vec![kv("mmap.enabled", "true")],
            auto_id: true,
            state: FieldState::FieldDropping as i32,
            element_type: DataType::VarChar as i32,
            default_value: Some(ValueField {
                data: Some(value_field::Data::StringData("dflt".to_owned())),
            }),
            is_dynamic: true,
            is_partition_key: true,
            is_clustering_key: true,
            nullable: true,
            is_function_output: true,
        }
    }

    fn full_schema() -> CollectionSchema {
        CollectionSchema {
            name: "coll".to_owned(),
            description: "a collection".to_owned(),
            #[allow(deprecated)]
            auto_id: true,
            fields: vec![full_field(100, "pk"), full_field(101, "tags")],
            enable_dynamic_field: true,
            properties: vec![kv("collection.ttl.seconds", "3600")],
            functions: vec![FunctionSchema {
                name: "bm25".to_owned(),
                id: 7,
                description: "text to sparse".to_owned(),
                r#type: FunctionType::Bm25 as i32,
                input_field_names: vec!["text".to_owned()],
                input_field_ids: vec![102],
                output_field_names: vec!["sparse".to_owned()],
                output_field_ids: vec![103],
                params: vec![kv("k1", "1.2")],
            }],
            db_name: "db1".to_owned(),
            struct_array_fields: vec![StructArrayFieldSchema {
                field_id: 104,
                name: "clips".to_owned(),
                description: "struct array".to_owned(),
                fields: vec![full_field(105, "clip_vec")],
                type_params: vec![kv("max_capacity", "8")],
                nullable: true,
            }],
            version: 3,
            enable_namespace: true,
        }
    }

    #[test]
    fn collection_schema_with_every_field_round_trips() {
        let schema = full_schema();
        let bytes = schema.encode_to_vec();

        // Every member really is set (non-default), so the round trip covers all of them.
        let mut expected: Vec<u32> = (1..=10).collect();
        expected.push(15);
        let mut seen = field_numbers(&bytes);
        seen.dedup();
        assert_eq!(seen, expected);
        let mut seen = field_numbers(&schema.fields[0].encode_to_vec());
        seen.dedup();
        assert_eq!(seen, (1..=16).collect::<Vec<_>>());

        let decoded = CollectionSchema::decode(bytes.as_slice()).expect("decode schema");
        assert_eq!(decoded, schema);
        assert_eq!(decoded.encode_to_vec(), bytes);
    }

    #[test]
    fn field_schema_alone_is_field_one() {
        let field = FieldSchema {
            field_id: 100,
            ..Default::default()
        };
        assert_eq!(field.encode_to_vec(), [0x08, 100]);
    }

    #[test]
    #[allow(deprecated)] // Status.error_code and inMemory_percentages are deprecated upstream
    fn response_field_numbers_match_upstream() {
        // DescribeCollectionResponse.num_partitions = 15 (varint): key 15 << 3 = 0x78.
        let describe = DescribeCollectionResponse {
            num_partitions: 16,
            ..Default::default()
        };
        assert_eq!(describe.encode_to_vec(), [0x78, 16]);

        // GetPersistentSegmentInfoResponse.infos = 2 holding level = 6, storage_version = 8.
        let segments = GetPersistentSegmentInfoResponse {
            infos: vec![PersistentSegmentInfo {
                level: SegmentLevel::L0 as i32,
                storage_version: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            segments.encode_to_vec(),
            [0x12, 4, 0x30, 1, 0x40, 2],
            "infos = 2 {{ level = 6, storage_version = 8 }}"
        );

        let cases: Vec<(&str, u32, u32)> = vec![
            (
                "DescribeCollectionResponse.schema",
                only_field(&DescribeCollectionResponse {
                    schema: Some(full_schema()),
                    ..Default::default()
                }),
                2,
            ),
            (
                "DescribeCollectionResponse.collectionID",
                only_field(&DescribeCollectionResponse {
                    collection_id: 1,
                    ..Default::default()
                }),
                3,
            ),
            (
                "DescribeCollectionResponse.shards_num",
                only_field(&DescribeCollectionResponse {
                    shards_num: 1,
                    ..Default::default()
                }),
                8,
            ),
            (
                "DescribeCollectionResponse.consistency_level",
                only_field(&DescribeCollectionResponse {
                    consistency_level: ConsistencyLevel::Bounded as i32,
                    ..Default::default()
                }),
                11,
            ),
            (
                "DescribeCollectionResponse.properties",
                only_field(&DescribeCollectionResponse {
                    properties: vec![kv("a", "b")],
                    ..Default::default()
                }),
                13,
            ),
            (
                "DescribeCollectionResponse.update_timestamp_str",
                only_field(&DescribeCollectionResponse {
                    update_timestamp_str: "x".to_owned(),
                    ..Default::default()
                }),
                19,
            ),
            (
                "PersistentSegmentInfo.segmentID",
                only_field(&PersistentSegmentInfo {
                    segment_id: 1,
                    ..Default::default()
                }),
                1,
            ),
            (
                "PersistentSegmentInfo.partitionID",
                only_field(&PersistentSegmentInfo {
                    partition_id: 1,
                    ..Default::default()
                }),
                3,
            ),
            (
                "PersistentSegmentInfo.num_rows",
                only_field(&PersistentSegmentInfo {
                    num_rows: 1,
                    ..Default::default()
                }),
                4,
            ),
            (
                "PersistentSegmentInfo.state",
                only_field(&PersistentSegmentInfo {
                    state: SegmentState::Flushed as i32,
                    ..Default::default()
                }),
                5,
            ),
            (
                "PersistentSegmentInfo.is_sorted",
                only_field(&PersistentSegmentInfo {
                    is_sorted: true,
                    ..Default::default()
                }),
                7,
            ),
            (
                "FlushResponse.coll_segIDs",
                only_field(&FlushResponse {
                    coll_seg_i_ds: HashMap::from([("c".to_owned(), LongArray { data: vec![1] })]),
                    ..Default::default()
                }),
                3,
            ),
            (
                "FlushResponse.coll_flush_ts",
                only_field(&FlushResponse {
                    coll_flush_ts: HashMap::from([("c".to_owned(), 1)]),
                    ..Default::default()
                }),
                6,
            ),
            (
                "FlushResponse.channel_cps",
                only_field(&FlushResponse {
                    channel_cps: HashMap::from([(
                        "ch".to_owned(),
                        MsgPosition {
                            timestamp: 1,
                            ..Default::default()
                        },
                    )]),
                    ..Default::default()
                }),
                7,
            ),
            (
                "MsgPosition.timestamp",
                only_field(&MsgPosition {
                    timestamp: 1,
                    ..Default::default()
                }),
                4,
            ),
            (
                "GetImportStateResponse.state",
                only_field(&GetImportStateResponse {
                    state: 6,
                    ..Default::default()
                }),
                2,
            ),
            (
                "GetImportStateResponse.infos",
                only_field(&GetImportStateResponse {
                    infos: vec![kv("failed_reason", "x")],
                    ..Default::default()
                }),
                5,
            ),
            (
                "IndexDescription.params",
                only_field(&IndexDescription {
                    params: vec![kv("index_type", "HNSW")],
                    ..Default::default()
                }),
                3,
            ),
            (
                "IndexDescription.state",
                only_field(&IndexDescription {
                    state: 3,
                    ..Default::default()
                }),
                7,
            ),
            (
                "MutationResult.IDs",
                only_field(&MutationResult {
                    i_ds: Some(IDs {
                        id_field: Some(i_ds::IdField::IntId(LongArray { data: vec![1] })),
                    }),
                    ..Default::default()
                }),
                2,
            ),
            (
                "MutationResult.insert_cnt",
                only_field(&MutationResult {
                    insert_cnt: 1,
                    ..Default::default()
                }),
                6,
            ),
            (
                "MutationResult.timestamp",
                only_field(&MutationResult {
                    timestamp: 1,
                    ..Default::default()
                }),
                9,
            ),
            (
                "ShowCollectionsResponse.inMemory_percentages",
                only_field(&ShowCollectionsResponse {
                    in_memory_percentages: vec![100],
                    ..Default::default()
                }),
                6,
            ),
            (
                "ShowPartitionsResponse.partitionIDs",
                only_field(&ShowPartitionsResponse {
                    partition_i_ds: vec![1],
                    ..Default::default()
                }),
                3,
            ),
            (
                "Status.error_code",
                only_field(&Status {
                    error_code: ErrorCode::IndexNotExist as i32,
                    ..Default::default()
                }),
                1,
            ),
            (
                "Status.code",
                only_field(&Status {
                    code: 700,
                    ..Default::default()
                }),
                3,
            ),
            (
                "Status.extra_info",
                only_field(&Status {
                    extra_info: HashMap::from([("k".to_owned(), "v".to_owned())]),
                    ..Default::default()
                }),
                6,
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn request_field_numbers_match_upstream() {
        // ImportRequest.files = 5 and options = 6 (length-delimited: keys 0x2a and 0x32).
        let import = ImportRequest {
            files: vec!["a/".to_owned()],
            options: vec![kv("b", "t")],
            ..Default::default()
        };
        assert_eq!(
            import.encode_to_vec(),
            [0x2a, 2, b'a', b'/', 0x32, 6, 0x0a, 1, b'b', 0x12, 1, b't']
        );

        let cases: Vec<(&str, u32, u32)> = vec![
            (
                "ImportRequest.partition_name",
                only_field(&ImportRequest {
                    partition_name: "p".to_owned(),
                    ..Default::default()
                }),
                2,
            ),
            (
                "ImportRequest.db_name",
                only_field(&ImportRequest {
                    db_name: "d".to_owned(),
                    ..Default::default()
                }),
                7,
            ),
            (
                "ImportRequest.idempotency_key",
                only_field(&ImportRequest {
                    idempotency_key: "k".to_owned(),
                    ..Default::default()
                }),
                9,
            ),
            (
                "CreateCollectionRequest.schema",
                only_field(&CreateCollectionRequest {
                    schema: full_schema().encode_to_vec(),
                    ..Default::default()
                }),
                4,
            ),
            (
                "CreateCollectionRequest.consistency_level",
                only_field(&CreateCollectionRequest {
                    consistency_level: ConsistencyLevel::Session as i32,
                    ..Default::default()
                }),
                6,
            ),
            (
                "CreateCollectionRequest.num_partitions",
                only_field(&CreateCollectionRequest {
                    num_partitions: 16,
                    ..Default::default()
                }),
                8,
            ),
            (
                "GetPersistentSegmentInfoRequest.collectionName",
                only_field(&GetPersistentSegmentInfoRequest {
                    collection_name: "c".to_owned(),
                    ..Default::default()
                }),
                3,
            ),
            (
                "GetFlushStateRequest.collection_name",
                only_field(&GetFlushStateRequest {
                    collection_name: "c".to_owned(),
                    ..Default::default()
                }),
                4,
            ),
            (
                "GetLoadingProgressRequest.db_name",
                only_field(&GetLoadingProgressRequest {
                    db_name: "d".to_owned(),
                    ..Default::default()
                }),
                4,
            ),
            (
                "GetLoadStateRequest.partition_names",
                only_field(&GetLoadStateRequest {
                    partition_names: vec!["p".to_owned()],
                    ..Default::default()
                }),
                3,
            ),
            (
                "LoadPartitionsRequest.partition_names",
                only_field(&LoadPartitionsRequest {
                    partition_names: vec!["p".to_owned()],
                    ..Default::default()
                }),
                4,
            ),
            (
                "LoadPartitionsRequest.replica_number",
                only_field(&LoadPartitionsRequest {
                    replica_number: 2,
                    ..Default::default()
                }),
                5,
            ),
            (
                "DeleteRequest.expr",
                only_field(&DeleteRequest {
                    expr: "pk in [1]".to_owned(),
                    ..Default::default()
                }),
                5,
            ),
            (
                "DeleteRequest.consistency_level",
                only_field(&DeleteRequest {
                    consistency_level: ConsistencyLevel::Bounded as i32,
                    ..Default::default()
                }),
                7,
            ),
            (
                "InsertRequest.fields_data",
                only_field(&InsertRequest {
                    fields_data: vec![FieldData {
                        r#type: DataType::Int64 as i32,
                        field: Some(field_data::Field::Scalars(ScalarField {
                            data: Some(scalar_field::Data::LongData(LongArray { data: vec![1] })),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                5,
            ),
            (
                "InsertRequest.num_rows",
                only_field(&InsertRequest {
                    num_rows: 1,
                    ..Default::default()
                }),
                7,
            ),
            (
                "QueryRequest.output_fields",
                only_field(&QueryRequest {
                    output_fields: vec!["count(*)".to_owned()],
                    ..Default::default()
                }),
                5,
            ),
            (
                "QueryRequest.consistency_level",
                only_field(&QueryRequest {
                    consistency_level: ConsistencyLevel::Eventually as i32,
                    ..Default::default()
                }),
                11,
            ),
            (
                "QueryRequest.use_default_consistency",
                only_field(&QueryRequest {
                    use_default_consistency: true,
                    ..Default::default()
                }),
                12,
            ),
            (
                "FieldData.field_id",
                only_field(&FieldData {
                    field_id: 100,
                    ..Default::default()
                }),
                5,
            ),
            (
                "StructArrayFieldSchema.nullable",
                only_field(&StructArrayFieldSchema {
                    nullable: true,
                    ..Default::default()
                }),
                6,
            ),
            (
                "FieldData.valid_data",
                only_field(&FieldData {
                    valid_data: vec![true],
                    ..Default::default()
                }),
                7,
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }
}
