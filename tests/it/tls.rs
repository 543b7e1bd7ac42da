//! Milvus behind TLS, on real servers: a Milvus 2.3.5 that takes TLS connections only migrated
//! into one that wants a client certificate too, with profiles written as milvus-backup's
//! `backup.yaml` writes TLS (`tlsMode`, `caCertPath`, `serverName`, `mtlsCertPath`,
//! `mtlsKeyPath`); and a TLS setting that does not fit the server named in the error.

use std::path::Path;

use crate::milvus::{run, run_json, seed, unique};
use crate::support::single::Single;

/// `path` with each `(from, to)` line replacement applied, written as `dir/file`.
fn edited(path: &Path, dir: &Path, file: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from} not in {text}");
        text = text.replacen(from, to, 1);
    }
    let out = dir.join(file);
    std::fs::write(&out, text).unwrap();
    out.to_str().unwrap().to_string()
}

/// The error line of a command that must fail with exit code 2.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn milvus_behind_tls_migrates_into_milvus_with_mutual_tls_and_a_wrong_setting_is_named() {
    let (src, dst) = (Single::milvus_23_tls(), Single::milvus_23_mtls());
    let tmp = tempfile::tempdir().unwrap();
    let a = src.profile(tmp.path(), "tls.yaml", &tmp.path().join("backups-a"));
    let b = dst.profile(tmp.path(), "mtls.yaml", &tmp.path().join("backups-b"));
    let coll = unique("tls");
    let target = format!("{coll}_bak");
    seed(&a, &coll, &["--rows", "3000", "--dim", "8"]);

    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["rows_b"].as_u64(), Some(3000), "{report}");
    assert_eq!(c["verified_by"], "content (sample)", "{report}");

    let verify = |from: &str, to: &str| {
        fails(&[
            "verify", "--from", from, "--to", to, "-c", &coll, "--target", &target,
        ])
    };
    // No TLS against a server that takes TLS only.
    let plain = edited(
        Path::new(a),
        tmp.path(),
        "plain.yaml",
        &[("tlsMode: 1", "tlsMode: 0")],
    );
    let e = verify(&plain, b);
    assert!(e.contains("set `milvus.tlsMode` to 1"), "{e}");
    // TLS without its CA: the server's certificate is not a public CA's.
    let ca = src.tls_dir.as_ref().unwrap().join("ca.pem");
    let ca_line = format!("  caCertPath: \"{}\"\n", ca.display());
    let no_ca = edited(Path::new(a), tmp.path(), "noca.yaml", &[(&ca_line, "")]);
    let e = verify(&no_ca, b);
    assert!(e.contains("give its CA in `milvus.caCertPath`"), "{e}");
    // A name the certificate does not hold.
    let named = edited(
        Path::new(a),
        tmp.path(),
        "name.yaml",
        &[(
            "serverName: \"localhost\"",
            "serverName: \"milvus.example\"",
        )],
    );
    let e = verify(&named, b);
    assert!(
        e.contains("not valid for `milvus.example` (`milvus.serverName`)"),
        "{e}"
    );
    // TLS without a client certificate against a server that wants one.
    let dir = dst.tls_dir.as_ref().unwrap();
    let one_way = edited(
        Path::new(b),
        tmp.path(),
        "oneway.yaml",
        &[
            ("tlsMode: 2", "tlsMode: 1"),
            (
                &format!("  mtlsCertPath: \"{}\"\n", dir.join("client.pem").display()),
                "",
            ),
            (
                &format!("  mtlsKeyPath: \"{}\"\n", dir.join("client.key").display()),
                "",
            ),
        ],
    );
    let e = verify(a, &one_way);
    assert!(
        e.contains("set `milvus.tlsMode: 2` with `milvus.mtlsCertPath`"),
        "{e}"
    );
}
