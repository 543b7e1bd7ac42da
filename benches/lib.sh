# Sourced by the benchmark scripts: helpers shared by them.
# shellcheck shell=bash

# stack_profile SIDE (A or B): prints a milvus-backup v1 backup.yaml for one side of the stack
# whose stack.env is sourced: its Milvus, its store and bucket (rootPath files), backups under
# backup/ in the same bucket, GC pause through its metrics port. Both milvus-migrate and
# milvus-backup read it as it is.
stack_profile() {
    local s=$1 mp sp ak sk bk metrics
    eval "mp=\$MM_MILVUS_${s}_PORT; metrics=\$MM_MILVUS_${s}_METRICS; sp=\$MM_STORE_${s}_PORT"
    eval "ak=\$MM_STORE_${s}_ACCESS_KEY; sk=\$MM_STORE_${s}_SECRET_KEY; bk=\$MM_STORE_${s}_BUCKET"
    cat <<YAML
milvus:
  address: 127.0.0.1
  port: $mp
minio:
  storageType: minio
  address: 127.0.0.1
  port: $sp
  accessKeyID: $ak
  secretAccessKey: $sk
  useSSL: false
  bucketName: $bk
  rootPath: files
  backupBucketName: $bk
  backupRootPath: backup
backup:
  gcPause:
    address: http://127.0.0.1:$metrics
YAML
}
