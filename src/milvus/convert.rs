//! Conversions between the Milvus protocol schema (what `DescribeCollection` returns and
//! `CreateCollection` takes) and the schema as milvus-backup's meta JSON records it.
//!
//! Owns the mapping of every member, both ways, so a schema survives a backup and a restore
//! unchanged. Members the backup JSON has no key for (`is_clustering_key`, the collection's
//! `version` and `enable_namespace`, a struct array's `type_params` and `nullable`) travel in
//! the JSON types' `extra` maps under their proto names, which milvus-backup ignores.

// The schema-level `autoID` is deprecated upstream but still sent and recorded by milvus-backup.
#![allow(deprecated)]

use prost::Message;
use serde_json::Value;

use super::proto::{common, schema};
use crate::backup::{self, BackupError};

const CLUSTERING_KEY: &str = "is_clustering_key";
const SCHEMA_VERSION: &str = "version";
const ENABLE_NAMESPACE: &str = "enable_namespace";
/// `StructArrayFieldSchema.nullable` (3.0), which milvus-backup's struct array has no key for.
const NULLABLE: &str = "nullable";

/// The collection a `DescribeCollection` answer describes. Asked by an alias, Milvus 2.3 echoes
/// the alias in `collection_name`; the schema's name is the collection's own.
pub fn described_name(d: &super::proto::milvus::DescribeCollectionResponse) -> String {
    d.schema
        .as_ref()
        .map(|s| s.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| d.collection_name.clone())
}

/// Key/value pairs, proto to JSON.
pub fn kv_to_meta(kv: &[common::KeyValuePair]) -> Vec<backup::KeyValuePair> {
    kv.iter()
        .map(|p| backup::KeyValuePair::new(&p.key, &p.value))
        .collect()
}

/// Key/value pairs, JSON to proto.
pub fn kv_from_meta(kv: &[backup::KeyValuePair]) -> Vec<common::KeyValuePair> {
    kv.iter()
        .map(|p| common::KeyValuePair {
            key: p.key.clone(),
            value: p.value.clone(),
        })
        .collect()
}

/// A field, proto to JSON.
pub fn field_to_meta(f: &schema::FieldSchema) -> backup::FieldSchema {
    let mut out = backup::FieldSchema {
        field_id: f.field_id,
        name: f.name.clone(),
        is_primary_key: f.is_primary_key,
        description: f.description.clone(),
        data_type: backup::DataType(f.data_type),
        type_params: kv_to_meta(&f.type_params),
        index_params: kv_to_meta(&f.index_params),
        auto_id: f.auto_id,
        state: backup::FieldState(f.state),
        element_type: backup::DataType(f.element_type),
        is_dynamic: f.is_dynamic,
        is_partition_key: f.is_partition_key,
        nullable: f.nullable,
        is_function_output: f.is_function_output,
        ..Default::default()
    };
    if let Some(v) = &f.default_value {
        out.set_default_value_bytes(Some(&v.encode_to_vec()));
    }
    if f.is_clustering_key {
        out.extra.insert(CLUSTERING_KEY.into(), Value::Bool(true));
    }
    out
}

/// A field, JSON to proto.
///
/// # Errors
/// [`BackupError`] when the recorded default value is not valid base64 or protobuf.
pub fn field_from_meta(f: &backup::FieldSchema) -> Result<schema::FieldSchema, BackupError> {
    let default_value = match f.default_value_bytes()? {
        Some(bytes) => Some(schema::ValueField::decode(bytes.as_slice()).map_err(|_| {
            BackupError::InvalidDefaultValue {
                field: f.name.clone(),
            }
        })?),
        None => None,
    };
    Ok(schema::FieldSchema {
        field_id: f.field_id,
        name: f.name.clone(),
        is_primary_key: f.is_primary_key,
        description: f.description.clone(),
        data_type: f.data_type.0,
        type_params: kv_from_meta(&f.type_params),
        index_params: kv_from_meta(&f.index_params),
        auto_id: f.auto_id,
        state: f.state.0,
        element_type: f.element_type.0,
        default_value,
        is_dynamic: f.is_dynamic,
        is_partition_key: f.is_partition_key,
        is_clustering_key: f.extra.get(CLUSTERING_KEY) == Some(&Value::Bool(true)),
        nullable: f.nullable,
        is_function_output: f.is_function_output,
    })
}

fn function_to_meta(f: &schema::FunctionSchema) -> backup::FunctionSchema {
    backup::FunctionSchema {
        name: f.name.clone(),
        id: f.id,
        description: f.description.clone(),
        function_type: backup::FunctionType(f.r#type),
        input_field_names: f.input_field_names.clone(),
        input_field_ids: f.input_field_ids.clone(),
        output_field_names: f.output_field_names.clone(),
        output_field_ids: f.output_field_ids.clone(),
        params: kv_to_meta(&f.params),
        ..Default::default()
    }
}

fn function_from_meta(f: &backup::FunctionSchema) -> schema::FunctionSchema {
    schema::FunctionSchema {
        name: f.name.clone(),
        id: f.id,
        description: f.description.clone(),
        r#type: f.function_type.0,
        input_field_names: f.input_field_names.clone(),
        input_field_ids: f.input_field_ids.clone(),
        output_field_names: f.output_field_names.clone(),
        output_field_ids: f.output_field_ids.clone(),
        params: kv_from_meta(&f.params),
    }
}

/// A collection schema, proto to JSON.
pub fn schema_to_meta(s: &schema::CollectionSchema) -> backup::CollectionSchema {
    let mut out = backup::CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.auto_id,
        fields: s.fields.iter().map(field_to_meta).collect(),
        enable_dynamic_field: s.enable_dynamic_field,
        properties: kv_to_meta(&s.properties),
        functions: s.functions.iter().map(function_to_meta).collect(),
        struct_array_fields: s
            .struct_array_fields
            .iter()
            .map(|st| {
                let mut m = backup::StructArrayFieldSchema {
                    field_id: st.field_id,
                    name: st.name.clone(),
                    description: st.description.clone(),
                    fields: st.fields.iter().map(field_to_meta).collect(),
                    ..Default::default()
                };
                if st.nullable {
                    m.extra.insert(NULLABLE.into(), Value::Bool(true));
                }
                if !st.type_params.is_empty() {
                    m.extra.insert(
                        "type_params".into(),
                        serde_json::to_value(kv_to_meta(&st.type_params)).unwrap_or(Value::Null),
                    );
                }
                m
            })
            .collect(),
        ..Default::default()
    };
    if s.version != 0 {
        out.extra
            .insert(SCHEMA_VERSION.into(), Value::from(s.version));
    }
    if s.enable_namespace {
        out.extra.insert(ENABLE_NAMESPACE.into(), Value::Bool(true));
    }
    out
}

/// A collection schema, JSON to proto.
///
/// # Errors
/// [`BackupError`] when a default value cannot be decoded.
pub fn schema_from_meta(
    s: &backup::CollectionSchema,
) -> Result<schema::CollectionSchema, BackupError> {
    let struct_array_fields = s
        .struct_array_fields
        .iter()
        .map(|st| {
            let type_params: Vec<backup::KeyValuePair> = st
                .extra
                .get("type_params")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            Ok(schema::StructArrayFieldSchema {
                field_id: st.field_id,
                name: st.name.clone(),
                description: st.description.clone(),
                fields: st
                    .fields
                    .iter()
                    .map(field_from_meta)
                    .collect::<Result<_, _>>()?,
                type_params: kv_from_meta(&type_params),
                nullable: st.extra.get(NULLABLE) == Some(&Value::Bool(true)),
            })
        })
        .collect::<Result<_, BackupError>>()?;
    Ok(schema::CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.auto_id,
        fields: s
            .fields
            .iter()
            .map(field_from_meta)
            .collect::<Result<_, _>>()?,
        enable_dynamic_field: s.enable_dynamic_field,
        properties: kv_from_meta(&s.properties),
        functions: s.functions.iter().map(function_from_meta).collect(),
        db_name: String::new(),
        struct_array_fields,
        version: s
            .extra
            .get(SCHEMA_VERSION)
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0),
        enable_namespace: s.extra.get(ENABLE_NAMESPACE) == Some(&Value::Bool(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> schema::CollectionSchema {
        schema::CollectionSchema {
            name: "docs".into(),
            description: "d".into(),
            auto_id: false,
            fields: vec![
                schema::FieldSchema {
                    field_id: 100,
                    name: "pk".into(),
                    is_primary_key: true,
                    data_type: schema::DataType::Int64 as i32,
                    ..Default::default()
                },
                schema::FieldSchema {
                    field_id: 101,
                    name: "tag".into(),
                    data_type: schema::DataType::VarChar as i32,
                    type_params: vec![common::KeyValuePair {
                        key: "max_length".into(),
                        value: "64".into(),
                    }],
                    is_partition_key: true,
                    is_clustering_key: true,
                    nullable: true,
                    default_value: Some(schema::ValueField {
                        data: Some(schema::value_field::Data::StringData("x".into())),
                    }),
                    ..Default::default()
                },
            ],
            enable_dynamic_field: true,
            properties: vec![common::KeyValuePair {
                key: "collection.ttl.seconds".into(),
                value: "60".into(),
            }],
            functions: vec![schema::FunctionSchema {
                name: "bm25".into(),
                id: 7,
                r#type: schema::FunctionType::Bm25 as i32,
                input_field_names: vec!["text".into()],
                output_field_names: vec!["sparse".into()],
                ..Default::default()
            }],
            struct_array_fields: vec![schema::StructArrayFieldSchema {
                field_id: 102,
                name: "clips".into(),
                fields: vec![schema::FieldSchema {
                    field_id: 103,
                    name: "clip_no".into(),
                    data_type: schema::DataType::Array as i32,
                    element_type: schema::DataType::Int32 as i32,
                    ..Default::default()
                }],
                type_params: vec![common::KeyValuePair {
                    key: "max_capacity".into(),
                    value: "4".into(),
                }],
                nullable: true,
                ..Default::default()
            }],
            version: 3,
            enable_namespace: true,
            ..Default::default()
        }
    }

    #[test]
    fn schema_survives_the_backup_json() {
        let s = sample();
        let meta = schema_to_meta(&s);
        let json = serde_json::to_string(&meta).unwrap();
        let back: backup::CollectionSchema = serde_json::from_str(&json).unwrap();
        assert_eq!(schema_from_meta(&back).unwrap(), s);
        assert!(json.contains("\"default_value_base64\""), "{json}");
        assert!(json.contains("\"is_clustering_key\":true"), "{json}");
        assert!(json.contains("\"name\":\"clips\""), "{json}");
        assert!(back.struct_array_fields[0].extra.get("nullable") == Some(&Value::Bool(true)));
    }
}
