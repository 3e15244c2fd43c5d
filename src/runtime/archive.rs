//! Reading an image from an archive, with no engine: `docker save` output (a tar, or the
//! directory it unpacks to) or an OCI image layout (a directory, or a tar of one). The
//! layers are applied in order with whiteouts (`.wh.NAME` and `.wh..wh..opq`), keeping
//! each path's owner, mode, link target and file capabilities, and the text of small
//! scripts (and of `/etc/passwd` and `/etc/group`) for the evidence reader.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest JSON document (manifest, index, config) read.
const MAX_JSON: u64 = 4 << 20;
/// Largest script whose text is kept, and the most script text kept in all.
const MAX_SCRIPT: u64 = 256 << 10;
const MAX_SCRIPTS_TOTAL: usize = 32 << 20;
/// Most paths one image may hold.
const MAX_PATHS: usize = 2_000_000;

/// The image configuration, as Docker writes it (`config` of the image JSON).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub env: Option<Vec<String>>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    Other,
}

/// One path of the image's filesystem after all layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Raw `security.capability` (vfs_cap_data), when the file carries one.
    #[serde(skip)]
    pub file_caps: Option<Vec<u8>>,
}

/// An image read from an archive.
#[derive(Debug, Default)]
pub struct Image {
    /// `sha256:…` of the image configuration (the image ID).
    pub digest: String,
    pub tags: Vec<String>,
    pub config: ImageConfig,
    /// Every path (no leading `/`), after whiteouts.
    pub files: BTreeMap<String, Node>,
    /// The text of small scripts (`#!` first) and of `etc/passwd`, `etc/group`.
    pub texts: HashMap<String, String>,
    pub layers: usize,
}

/// Where the archive's small JSON members are found: a directory, or those read from a
/// tar stream (layers are summarised as they stream by).
enum Store {
    Dir(PathBuf),
    Stream(HashMap<String, Vec<u8>>),
}

impl Store {
    fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => d.join(name).is_file(),
            Store::Stream(m) => m.contains_key(name),
        }
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> io::Result<T> {
        let text = match self {
            Store::Dir(d) => {
                let mut text = Vec::new();
                File::open(d.join(name))?
                    .take(MAX_JSON + 1)
                    .read_to_end(&mut text)?;
                if text.len() as u64 > MAX_JSON {
                    return Err(invalid(format!("{name} is larger than 4 MiB")));
                }
                text
            }
            Store::Stream(m) => m.get(name).ok_or_else(|| missing(name))?.clone(),
        };
        serde_json::from_slice(&text).map_err(|e| invalid(format!("{name}: {e}")))
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{name} is not in the archive"),
    )
}

fn invalid(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

/// A member or layer path: no `./`, no leading or trailing `/`.
fn clean(p: &str) -> String {
    let p = p.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: ImageConfig,
}

fn blob(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Read an image archive (`docker save` tar or directory, OCI layout tar or directory).
pub fn read(path: &Path) -> io::Result<Image> {
    if !path.is_dir() {
        return read_stream(File::open(path)?);
    }
    let store = Store::Dir(path.to_path_buf());
    let (mut image, layers) = locate(&store)?;
    for layer in &layers {
        let summary = summarise(Box::new(File::open(path.join(layer))?))
            .map_err(|e| io::Error::new(e.kind(), format!("layer {layer}: {e}")))?;
        apply(&mut image, summary)?;
    }
    Ok(image)
}

/// Read an image archive from a tar stream (a file, or `docker save` writing to a pipe):
/// each layer is summarised as it passes, and applied in the manifest's order at the end.
pub fn read_stream(r: impl Read) -> io::Result<Image> {
    let mut jsons = HashMap::new();
    let mut archive = tar::Archive::new(r);
    let mut layers: HashMap<String, Summary> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut kept = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = clean(&entry.path()?.to_string_lossy());
        if entry.header().entry_type() == tar::EntryType::Symlink {
            // `docker save` links a layer it has already written (`../<id>/layer.tar`).
            if let Some(target) = entry.link_name()? {
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                let resolved = resolve_member(dir, &target.to_string_lossy());
                aliases.insert(name, resolved);
            }
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let small = entry.size() <= MAX_JSON;
        let summary = if small && (name.ends_with(".json") || name.starts_with("blobs/")) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            if bytes
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{' || *b == b'[')
            {
                jsons.insert(name, bytes);
                continue;
            }
            summarise_counted(Box::new(io::Cursor::new(bytes)), &mut kept)
        } else if name.ends_with(".tar") || name.starts_with("blobs/") {
            summarise_counted(Box::new(entry), &mut kept)
        } else {
            continue;
        };
        let summary =
            summary.map_err(|e| io::Error::new(e.kind(), format!("layer {name}: {e}")))?;
        layers.insert(name, summary);
    }
    let (mut image, order) = locate(&Store::Stream(jsons))?;
    for layer in &order {
        let mut name = layer;
        for _ in 0..8 {
            match aliases.get(name) {
                Some(target) => name = target,
                None => break,
            }
        }
        // A layer listed twice is applied twice: summaries are kept until the end.
        let summary = layers.get(name).ok_or_else(|| missing(layer))?;
        apply(&mut image, summary.clone())?;
    }
    Ok(image)
}

/// A member path `target` relative to directory `dir` of the archive.
fn resolve_member(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The manifest's config and layers, as an image with its config and no files yet.
fn locate(store: &Store) -> io::Result<(Image, Vec<String>)> {
    let (config, digest, tags, layers) = if store.has("manifest.json") {
        let m: Vec<SaveManifest> = store.json("manifest.json")?;
        let m = m
            .into_iter()
            .next()
            .ok_or_else(|| invalid("manifest.json is empty".into()))?;
        let hex = m
            .config
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".json");
        let digest = format!("sha256:{hex}");
        (
            m.config.clone(),
            digest,
            m.repo_tags.unwrap_or_default(),
            m.layers,
        )
    } else if store.has("index.json") {
        oci(store)?
    } else {
        return Err(invalid(
            "neither manifest.json (docker save) nor index.json (OCI layout) is in it".into(),
        ));
    };
    let cfg: ConfigFile = store.json(&config)?;
    let image = Image {
        digest,
        tags,
        config: cfg.config,
        layers: layers.len(),
        ..Image::default()
    };
    Ok((image, layers.into_iter().map(|l| clean(&l)).collect()))
}

/// An OCI layout: the first image manifest of the index (through a nested index, the
/// linux/amd64 one when there are several).
fn oci(store: &Store) -> io::Result<(String, String, Vec<String>, Vec<String>)> {
    let index: OciIndex = store.json("index.json")?;
    let mut desc = pick(index.manifests)?;
    let mut tags: Vec<String> = desc
        .annotations
        .get("org.opencontainers.image.ref.name")
        .cloned()
        .into_iter()
        .collect();
    for _ in 0..4 {
        if !desc.media_type.contains("index") && !desc.media_type.contains("manifest.list") {
            break;
        }
        let inner: OciIndex = store.json(&blob(&desc.digest))?;
        desc = pick(inner.manifests)?;
    }
    if let Some(t) = desc.annotations.get("org.opencontainers.image.ref.name") {
        tags.push(t.clone());
    }
    let m: OciManifest = store.json(&blob(&desc.digest))?;
    let layers = m.layers.iter().map(|l| blob(&l.digest)).collect();
    Ok((blob(&m.config.digest), m.config.digest, tags, layers))
}

fn pick(mut list: Vec<Descriptor>) -> io::Result<Descriptor> {
    let amd64 = list.iter().position(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.architecture == "amd64")
    });
    match amd64 {
        Some(i) => Ok(list.swap_remove(i)),
        None if !list.is_empty() => Ok(list.swap_remove(0)),
        None => Err(invalid("the index lists no manifest".into())),
    }
}

/// A layer's entries, gzip-compressed or not.
fn layer_archive<'a>(mut r: Box<dyn Read + 'a>) -> io::Result<tar::Archive<Box<dyn Read + 'a>>> {
    let mut magic = [0u8; 2];
    let n = read_full(&mut r, &mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let joined: Box<dyn Read + 'a> = Box::new(head.chain(r));
    Ok(tar::Archive::new(if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(joined))
    } else {
        joined
    }))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One entry of a layer, as it will be applied.
#[derive(Clone)]
struct Added {
    path: String,
    node: Node,
    text: Option<String>,
    hardlink: Option<String>,
}

/// What one layer does: directories it makes opaque, paths it removes, entries it adds.
#[derive(Clone)]
struct Summary {
    opaque: Vec<String>,
    removed: Vec<String>,
    added: Vec<Added>,
}

fn summarise(r: Box<dyn Read + '_>) -> io::Result<Summary> {
    summarise_counted(r, &mut 0)
}

fn summarise_counted(r: Box<dyn Read + '_>, kept: &mut usize) -> io::Result<Summary> {
    let mut archive = layer_archive(r)?;
    let mut s = Summary {
        opaque: Vec::new(),
        removed: Vec::new(),
        added: Vec::new(),
    };
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&entry.path()?.to_string_lossy());
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            s.opaque.push(dir);
        } else if let Some(gone) = name.strip_prefix(".wh.") {
            s.removed.push(join(&dir, gone));
        } else if !path.is_empty() {
            s.added.push(read_entry(&mut entry, path, kept)?);
        }
        if s.added.len() > MAX_PATHS {
            return Err(invalid("more than 2,000,000 paths".into()));
        }
    }
    Ok(s)
}

/// Apply a layer over the ones below it: its whiteouts hide lower paths, then its entries land.
fn apply(image: &mut Image, s: Summary) -> io::Result<()> {
    for dir in s.opaque {
        remove_under(image, &dir, false);
    }
    for path in s.removed {
        remove_under(image, &path, true);
    }
    for a in s.added {
        if let Some(target) = a.hardlink {
            if let Some(t) = image.texts.get(&target).cloned() {
                image.texts.insert(a.path.clone(), t);
            }
        } else if let Some(t) = a.text {
            image.texts.insert(a.path.clone(), t);
        } else {
            image.texts.remove(&a.path);
        }
        image.files.insert(a.path, a.node);
        if image.files.len() > MAX_PATHS {
            return Err(invalid("more than 2,000,000 paths".into()));
        }
    }
    Ok(())
}

fn read_entry(
    entry: &mut tar::Entry<Box<dyn Read + '_>>,
    path: String,
    kept: &mut usize,
) -> io::Result<Added> {
    let header = entry.header();
    let (mode, uid, gid) = (
        header.mode().unwrap_or(0),
        header.uid().unwrap_or(0),
        header.gid().unwrap_or(0),
    );
    let kind_byte = header.entry_type();
    let link = entry.link_name()?.map(|l| l.to_string_lossy().to_string());
    let mut file_caps = None;
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts.flatten() {
            if ext.key_bytes() == b"SCHILY.xattr.security.capability" {
                file_caps = Some(ext.value_bytes().to_vec());
            }
        }
    }
    let (kind, hardlink) = match kind_byte {
        tar::EntryType::Directory => (Kind::Dir, None),
        tar::EntryType::Symlink => (Kind::Symlink(link.unwrap_or_default()), None),
        tar::EntryType::Link => (Kind::File, link.map(|l| clean(&l))),
        tar::EntryType::Regular | tar::EntryType::Continuous => (Kind::File, None),
        _ => (Kind::Other, None),
    };
    let mut text = None;
    let wanted = path == "etc/passwd" || path == "etc/group";
    if kind == Kind::File
        && hardlink.is_none()
        && entry.size() <= MAX_SCRIPT
        && *kept < MAX_SCRIPTS_TOTAL
    {
        let mut buf = Vec::new();
        entry.take(MAX_SCRIPT).read_to_end(&mut buf)?;
        if (wanted || buf.starts_with(b"#!"))
            && let Ok(s) = String::from_utf8(buf)
        {
            *kept += s.len();
            text = Some(s);
        }
    }
    Ok(Added {
        path,
        node: Node {
            kind,
            mode,
            uid,
            gid,
            file_caps,
        },
        text,
        hardlink,
    })
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Remove everything under `path` (and `path` itself when `itself`).
fn remove_under(image: &mut Image, path: &str, itself: bool) {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let doomed: Vec<String> = image
        .files
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        image.files.remove(&k);
        image.texts.remove(&k);
    }
    if itself {
        image.files.remove(path);
        image.texts.remove(path);
    }
}

/// Decode a `security.capability` value (vfs_cap_data v1, v2 or v3) into the names of its
/// permitted set (sorted) and whether its effective bit is set. `None` when it is not a
/// valid value. The decoding is [`super::filecaps`]'s, shared with `verify`.
pub fn decode_file_caps(raw: &[u8]) -> Option<(Vec<String>, bool)> {
    let mask = super::filecaps::decode(raw)?;
    let mut names = super::procfs::cap_names(mask);
    names.sort();
    Some((names, raw.first().is_some_and(|b| b & 1 == 1)))
}

#[cfg(test)]
#[path = "archive_tests.rs"]
pub(crate) mod tests;
