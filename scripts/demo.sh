#!/usr/bin/env bash
# The main job on a local default, on a fresh machine:
#  1. installs what is missing (s3s-fs, cached under ~/.cache/milvus-migrate) and builds
#     milvus-migrate;
#  2. starts two S3 stores on loopback, like minio_A and minio_B of the Milvus docs (different
#     credentials and buckets; profiles configs/a.yaml and configs/b.yaml);
#  3. puts a sample backup `my_backup` in store A (generated in milvus-backup's layout, uploaded
#     with milvus-migrate from a local-directory profile);
#  4. runs `milvus-migrate copy --from configs/a.yaml --to configs/b.yaml -n my_backup`,
#     runs it again to show that nothing is copied twice, and shows the result in B;
#  5. stops the stores.
# Later issues extend this to a full Milvus A -> Milvus B migration.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=${MM_DEMO_DIR:-/tmp/milvus-migrate-demo}

bash scripts/install-deps.sh
# shellcheck source=/dev/null
source scripts/env.sh
unset AWS_CA_BUNDLE
cargo build --release --locked
bin=$top/target/release/milvus-migrate

rm -rf "$work"
mkdir -p "$work"
trap 'bash "$top/scripts/s3-stores.sh" stop "$work/stores" || true' EXIT
bash scripts/s3-stores.sh start "$work/stores"

echo "== generating a sample backup in milvus-backup's layout"
sample=$work/local-backups
python3 scripts/sample_backup.py "$sample/backup/my_backup"
cat > "$work/local.yaml" <<YAML
minio:
  storageType: local
  rootPath: $sample/files
  backupRootPath: $sample/backup
YAML

echo "== uploading it to store A (bucket-a/backup/my_backup)"
"$bin" copy --from "$work/local.yaml" --to configs/a.yaml -n my_backup --state-dir "$work/state"

echo
echo "== milvus-migrate copy --from configs/a.yaml --to configs/b.yaml -n my_backup"
"$bin" copy --from configs/a.yaml --to configs/b.yaml -n my_backup --state-dir "$work/state"

echo
echo "== the same command again: everything is already there and identical"
"$bin" copy --from configs/a.yaml --to configs/b.yaml -n my_backup --state-dir "$work/state" --json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("copied", r["objects_copied"], "skipped", r["objects_skipped"], "failed", r["objects_failed"])'

echo
echo "== store B now holds:"
(cd "$work/stores/b/bucket-b" && find backup -type f | sort | head -20 && echo "... $(find backup -type f | wc -l) objects, $(du -sh backup | cut -f1)")
echo
echo "== byte-for-byte comparison of A and B"
diff -r "$work/stores/a/bucket-a/backup/my_backup" "$work/stores/b/bucket-b/backup/my_backup" && echo "identical"
