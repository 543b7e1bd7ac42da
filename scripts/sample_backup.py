#!/usr/bin/env python3
"""Writes a sample backup in milvus-backup's layout (meta/*.json and binlogs/...) into a
directory, for the demo and benchmarks. Binlog contents are random bytes of realistic sizes:
this sample exercises the copier, it is not restorable into Milvus."""
import json, os, random, sys, uuid

def main(dest: str) -> None:
    rng = random.Random(42)
    # Real Milvus ids have 18 digits; these are shorter because s3s-fs (the demo's S3 server)
    # cannot hold multipart uploads of keys longer than about 133 bytes (it names side files
    # after the base64 of the key, and file names stop at 255 bytes).
    coll, part = 446000100, 446000101
    segments = [446000200 + i for i in range(6)]
    fields = [0, 1, 100, 101, 102]
    files = []
    for seg in segments:
        for field in fields:
            # Vector field logs are large: one of them crosses the multipart threshold.
            size = {101: 24 << 20, 100: 256 << 10}.get(field, 64 << 10)
            if seg == segments[0] and field == 101:
                size = 72 << 20
            log = seg * 10 + field
            files.append((f"binlogs/insert_log/{coll}/{part}/{seg}/{seg}/{field}/{log}", size))
        files.append((f"binlogs/delta_log/{coll}/{part}/{seg}/{seg}/{seg * 10 + 9}", 4 << 10))
    for rel, size in files:
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
    name = os.path.basename(dest.rstrip("/"))
    total = sum(s for _, s in files)
    backup = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "name": name, "size": total,
              "milvus_version": "v2.3.5"}
    os.makedirs(os.path.join(dest, "meta"), exist_ok=True)
    for fname, doc in [("backup_meta.json", backup), ("collection_meta.json", {"infos": []}),
                       ("partition_meta.json", {"infos": []}), ("segment_meta.json", {"infos": []}),
                       ("full_meta.json", dict(backup, collection_backups=[]))]:
        with open(os.path.join(dest, "meta", fname), "w") as f:
            json.dump(doc, f)
    print(f"sample backup {name}: {len(files) + 5} objects, {total / (1 << 20):.0f} MiB in {dest}")

if __name__ == "__main__":
    main(sys.argv[1])
