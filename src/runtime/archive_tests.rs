//! Image archives built here, byte by byte, with the `tar` writer: no engine.

use super::*;

/// One entry of a test layer.
pub(crate) enum E<'a> {
    Dir(&'a str, u32, u64),
    File(&'a str, u32, u64, &'a [u8]),
    /// A file with a `security.capability` PAX record.
    Caps(&'a str, u32, &'a [u8]),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

pub(crate) fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p, mode, uid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                (p, b"")
            }
            E::File(p, mode, uid, data) => {
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                (p, data)
            }
            E::Caps(p, mode, raw) => {
                b.append_pax_extensions([("SCHILY.xattr.security.capability", *raw)])
                    .unwrap();
                h.set_mode(*mode);
                (p, b"\x7fELF")
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_mode(0o777);
                (p, b"")
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name(target).unwrap();
                h.set_mode(0o755);
                (p, b"")
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// A `docker save` tar of `config` and `layers`.
pub(crate) fn docker_save(config: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let hex = "ab".repeat(32);
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::json!([{
        "Config": format!("{hex}.json"), "RepoTags": ["acme/db:1"], "Layers": names
    }]);
    add(&mut b, "manifest.json", manifest.to_string().as_bytes());
    for (n, l) in names.iter().zip(layers) {
        add(&mut b, n, l);
    }
    add(&mut b, &format!("{hex}.json"), config.as_bytes());
    b.into_inner().unwrap()
}

/// vfs_cap_data v2 with `bits` permitted (effective bit set).
pub(crate) fn caps_v2(bits: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x0200_0001u32, bits as u32, 0, (bits >> 32) as u32, 0] {
        v.extend(w.to_le_bytes());
    }
    v
}

fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    f
}

const CONFIG: &str = r#"{"architecture":"amd64","config":{"User":"","Entrypoint":["docker-entrypoint.sh"],
"Cmd":["postgres"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Volumes":{"/var/lib/db":{}},
"ExposedPorts":{"5432/tcp":{}},"StopSignal":"SIGINT","Healthcheck":{"Test":["CMD","pg_isready"]}}}"#;

#[test]
fn layers_apply_in_order_with_whiteouts_and_opaque_dirs() {
    let base = layer(&[
        E::Dir("etc/", 0o755, 0),
        E::File("etc/passwd", 0o644, 0, b"root:x:0:0::/root:/bin/sh\n"),
        E::Dir("old/", 0o755, 0),
        E::File("old/a", 0o644, 0, b"a"),
        E::Dir("keep/", 0o755, 0),
        E::File("keep/gone", 0o644, 0, b"x"),
        E::File("keep/stays", 0o644, 0, b"x"),
        E::File("usr/bin/su", 0o4755, 0, b"\x7fELF"),
    ]);
    let top = layer(&[
        E::Dir("old/", 0o700, 999),
        E::File("old/.wh..wh..opq", 0o644, 0, b""),
        E::File("old/b", 0o644, 0, b"b"),
        E::File("keep/.wh.gone", 0o644, 0, b""),
        E::File(
            "./etc/passwd",
            0o644,
            0,
            b"root:x:0:0::/root:/bin/sh\ndb:x:999:999::/:/bin/sh\n",
        ),
    ]);
    let tar = write_tmp(&docker_save(CONFIG, &[base, top]));
    let image = read(tar.path()).unwrap();
    assert_eq!(image.digest, format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(image.tags, ["acme/db:1"]);
    assert_eq!(image.layers, 2);
    let paths: Vec<&str> = image.files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "etc",
            "etc/passwd",
            "keep",
            "keep/stays",
            "old",
            "old/b",
            "usr/bin/su"
        ]
    );
    let old = &image.files["old"];
    assert_eq!((old.mode, old.uid, &old.kind), (0o700, 999, &Kind::Dir));
    assert_eq!(image.files["usr/bin/su"].mode, 0o4755);
    assert!(image.texts["etc/passwd"].contains("db:x:999"));
    let c = &image.config;
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["docker-entrypoint.sh".to_string()][..])
    );
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert!(c.volumes.as_ref().unwrap().contains_key("/var/lib/db"));
    assert!(c.healthcheck.is_some());
}

#[test]
fn a_whiteout_removes_a_whole_directory_and_a_later_layer_may_recreate_it() {
    let l1 = layer(&[
        E::Dir("d/", 0o755, 0),
        E::File("d/x", 0o644, 0, b"#!/bin/sh\n"),
        E::Link("d/l", "x"),
    ]);
    let l2 = layer(&[E::File(".wh.d", 0o644, 0, b"")]);
    let l3 = layer(&[E::File("d/y", 0o644, 0, b"y")]);
    let tar = write_tmp(&docker_save(CONFIG, &[l1, l2, l3]));
    let image = read(tar.path()).unwrap();
    assert_eq!(image.files.keys().collect::<Vec<_>>(), ["d/y"]);
    assert!(image.texts.is_empty());
}

#[test]
fn file_capabilities_come_from_pax_records_and_decode_to_names() {
    let raw = caps_v2(1 << 10 | 1 << 13);
    let l = layer(&[
        E::Caps("usr/bin/srv", 0o755, &raw),
        E::Hard("usr/bin/srv2", "usr/bin/srv"),
    ]);
    let tar = write_tmp(&docker_save(CONFIG, &[l]));
    let image = read(tar.path()).unwrap();
    let node = &image.files["usr/bin/srv"];
    let (caps, effective) = decode_file_caps(node.file_caps.as_ref().unwrap()).unwrap();
    assert_eq!(caps, ["NET_BIND_SERVICE", "NET_RAW"]);
    assert!(effective);
    assert_eq!(image.files["usr/bin/srv2"].kind, Kind::File);
    assert!(decode_file_caps(b"\x00\x00\x00\x02").is_none());
    let mut v3 = caps_v2(1 << 39);
    v3.extend(0u32.to_le_bytes());
    v3[3] = 0x03;
    assert_eq!(decode_file_caps(&v3).unwrap().0, ["BPF"]);
}

#[test]
fn an_oci_layout_directory_with_gzip_layers_and_a_nested_index() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(blobs.join(name), bytes).unwrap();
    let raw = layer(&[E::File(
        "entrypoint.sh",
        0o755,
        0,
        b"#!/bin/sh\nexec gosu app \"$@\"\n",
    )]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    put("l1", &gz.finish().unwrap());
    put("cfg", CONFIG.as_bytes());
    put(
        "man",
        br#"{"config":{"digest":"sha256:cfg","mediaType":"application/vnd.oci.image.config.v1+json"},
            "layers":[{"digest":"sha256:l1","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]}"#,
    );
    put(
        "idx",
        br#"{"manifests":[{"digest":"sha256:nope","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"arm64"}},
            {"digest":"sha256:man","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"amd64"}}]}"#,
    );
    std::fs::write(
        dir.path().join("index.json"),
        br#"{"manifests":[{"digest":"sha256:idx","mediaType":"application/vnd.oci.image.index.v1+json",
            "annotations":{"org.opencontainers.image.ref.name":"1"}}]}"#,
    )
    .unwrap();
    let image = read(dir.path()).unwrap();
    assert_eq!(image.digest, "sha256:cfg");
    assert_eq!(image.tags, ["1"]);
    assert!(image.texts["entrypoint.sh"].contains("gosu"));
}

#[test]
fn not_an_image_archive_is_an_error_that_says_why() {
    let tar = write_tmp(&layer(&[E::File("x", 0o644, 0, b"x")]));
    let e = read(tar.path()).unwrap_err();
    assert!(e.to_string().contains("neither manifest.json"), "{e}");
}
