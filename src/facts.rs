//! What the rules need to know about one service, worked out once: its image and profile,
//! who it runs as, and the settings that change the picture (privileged, host namespaces,
//! the Docker socket, bind mounts).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ServiceOverride;

use crate::dockerfile::{self, BuildFacts};
use crate::document::{Document, Service};
use crate::editor::Editor;
use crate::env::Env;
use crate::knowledge::{self, Class, Confidence, ImageRef, Profile};
use crate::yaml::{Kind, NodeId};

/// Options that change what the rules propose.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Docker daemon remaps users (`userns-remap`).
    pub userns_remap: bool,
    /// Switch root-then-drop images to their own non-root `uid:gid` instead of adding caps back.
    pub set_user: bool,
    /// The `user:` proposed (as an unverified fix) for images we know nothing about.
    pub default_user: String,
    /// Profiles from configuration; they take precedence over the built-in ones.
    pub extra_profiles: Vec<Profile>,
    /// Per-service overrides from configuration, by service name.
    pub overrides: BTreeMap<String, ServiceOverride>,
    /// The project root ([`crate::project`]): build files outside it are not read.
    pub root: Option<std::path::PathBuf>,
    /// Read build files outside the project root too (`--allow-outside`).
    pub allow_outside: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            userns_remap: false,
            set_user: false,
            default_user: "10001:10001".into(),
            extra_profiles: Vec::new(),
            overrides: BTreeMap::new(),
            root: None,
            allow_outside: false,
        }
    }
}

/// Who the service's main process starts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserState {
    /// No `user:` key: the image decides.
    Unset,
    /// An explicit root user (`root`, `0`, `0:0`).
    Root(String),
    /// An explicit non-root user.
    NonRoot(String),
    /// A value we cannot judge (`${UID}`).
    Unknown(String),
}

/// A list-valued key (`cap_add`, `cap_drop`, `security_opt`) as the service has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKey {
    Absent,
    /// Written in the service's own mapping, as a sequence.
    Local {
        seq: NodeId,
        items: Vec<String>,
    },
    /// Written in the service's own mapping with no value (`cap_add:`).
    Null {
        key: NodeId,
    },
    /// Inherited through a merge key.
    Merged {
        items: Vec<String>,
    },
    /// Anything else (a scalar, a tagged value such as `!reset []`): left alone.
    Other,
}

pub struct ServiceFacts<'a> {
    pub doc: &'a Document,
    pub service: &'a Service,
    pub settings: &'a Settings,
    pub editor: Editor<'a>,
    pub image: Option<ImageRef>,
    pub profile: Option<&'a Profile>,
    pub build: Option<BuildFacts>,
    pub user: UserState,
    pub privileged: bool,
    /// The volume entry that mounts the Docker socket.
    pub docker_socket: Option<NodeId>,
    pub network_host: bool,
    pub pid_host: bool,
    pub bind_mounts: bool,
    /// Host bind mounts a root process may find owned by another user: writable ones, and
    /// read-only ones of host paths outside the project (`/var/log`), as `source` texts.
    pub host_binds: Vec<String>,
    /// The file sets `entrypoint:`: the image's entrypoint (its chown and user switch) does
    /// not run.
    pub entrypoint_overridden: bool,
    /// The confidence the profile gives this service: the row's own, or at most `pattern`
    /// when the service's tag is unknown or outside the tags the row was checked for.
    pub profile_confidence: Confidence,
    /// Why the profile's confidence was lowered, for reasons (`None` when it was not).
    pub tag_note: Option<String>,
    /// Why a base file named by `extends: {file: …}` was not read (what it sets is unknown).
    pub extends_problem: Option<String>,
    /// CH001 is off for this service (`--ignore`, a config `skip`, an inline suppression):
    /// nothing will write the `user:` that [`ServiceFacts::own_user`] relies on.
    pub own_user_off: bool,
    /// Which variables of the image were unset and substituted as empty, for reasons.
    pub env_note: Option<String>,
    /// The service's own `command` and `entrypoint`, joined.
    pub command: String,
    /// Every definition of the service, in file order (one unless files are merged).
    pub stack: Vec<(&'a Document, &'a Service)>,
}

/// Every Linux capability name (capabilities(7)), without `CAP_`.
pub const LINUX_CAPS: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// Normalise a capability name: upper case, no `CAP_` prefix.
pub fn cap_name(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").unwrap_or(&up).to_string()
}

fn is_true(s: &str) -> bool {
    matches!(
        s.trim(),
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON"
    )
}

pub fn classify_user(u: &str) -> UserState {
    let v = u.trim();
    if v.is_empty() {
        return UserState::Unknown(v.to_string());
    }
    if v.contains('$') {
        // `${UID:-1000}:${GID:-1000}` runs as its defaults unless the variables are set.
        return match knowledge::interpolate(v) {
            Some(d) if !d.is_empty() => match classify_user(&d) {
                UserState::Root(_) => UserState::Unknown(v.to_string()),
                UserState::NonRoot(_) => UserState::NonRoot(v.to_string()),
                other => other,
            },
            _ => UserState::Unknown(v.to_string()),
        };
    }
    let uid = v.split(':').next().unwrap_or("");
    if uid == "root" || uid.parse::<u64>() == Ok(0) {
        UserState::Root(v.to_string())
    } else {
        UserState::NonRoot(v.to_string())
    }
}

impl<'a> ServiceFacts<'a> {
    pub fn new(
        doc: &'a Document,
        service: &'a Service,
        settings: &'a Settings,
        dir: Option<&Path>,
    ) -> ServiceFacts<'a> {
        ServiceFacts::layered(doc, service, settings, dir, vec![(doc, service)])
    }

    /// Facts for a service that several files of one project define (`-f a -f b`): `stack`
    /// holds every definition in file order, `doc`/`service` is the one edits go to.
    /// Later files win for single values; lists (`cap_add`, `volumes` …) append.
    pub fn layered(
        doc: &'a Document,
        service: &'a Service,
        settings: &'a Settings,
        dir: Option<&Path>,
        stack: Vec<(&'a Document, &'a Service)>,
    ) -> ServiceFacts<'a> {
        let scalar = |key: &str| last_value(&stack, key);
        let build = stack.iter().rev().find_map(|(d, s)| {
            d.tree
                .lookup(s.map, "build")
                .map(|(_, v, _)| dockerfile::inspect(d, v, dir, settings))
        });
        let env = dir.map(Env::load).unwrap_or_default();
        let (image, unset) = match &build {
            // A build's final stage decides what runs, whatever `image:` names (the tag of the result).
            Some(b) => (b.base.clone(), Vec::new()),
            None => scalar("image").map_or((None, Vec::new()), |i| image_ref(&i, &env)),
        };
        let env_note = (!unset.is_empty()).then(|| {
            let names: Vec<String> = unset.iter().map(|v| format!("${{{v}}}")).collect();
            format!(
                "{} is not set (no .env value): Compose substitutes an empty string",
                names.join(", ")
            )
        });
        let profile = image
            .as_ref()
            .and_then(|i| knowledge::lookup(&settings.extra_profiles, i));
        let user = match scalar("user") {
            None => UserState::Unset,
            Some(u) if u.contains('$') => {
                let i = env.interpolate(&u);
                if i.failed || !i.unset.is_empty() || i.text.trim().is_empty() {
                    UserState::Unknown(u)
                } else {
                    match classify_user(&i.text) {
                        UserState::Root(_) => UserState::Root(u),
                        UserState::NonRoot(_) => UserState::NonRoot(u),
                        other => other,
                    }
                }
            }
            Some(u) => classify_user(&u),
        };
        let mut command = String::new();
        for key in ["entrypoint", "command"] {
            if let Some((d, v)) = stack
                .iter()
                .rev()
                .find_map(|(d, s)| d.tree.lookup(s.map, key).map(|(_, v, _)| (*d, v)))
            {
                collect_text(d, v, &mut command);
            }
        }
        let (mut docker_socket, mut bind_mounts, mut host_binds) = (None, false, Vec::new());
        for (d, s) in &stack {
            let (sock, bind, hosts) = volumes(d, s.map);
            host_binds.extend(hosts);
            if std::ptr::eq(*d, doc) {
                docker_socket = docker_socket.or(sock);
            } else if sock.is_some() && docker_socket.is_none() {
                // Point at the service key when the mount is in another file.
                docker_socket = Some(service.key);
            }
            bind_mounts |= bind;
        }
        let entrypoint_overridden = stack
            .iter()
            .any(|(d, s)| d.tree.lookup(s.map, "entrypoint").is_some());
        let (profile_confidence, tag_note) = match (profile, &image) {
            (Some(p), Some(i)) => tag_confidence(p, i),
            _ => (Confidence::Unverified, None),
        };
        ServiceFacts {
            doc,
            service,
            settings,
            editor: Editor::new(doc),
            image,
            profile,
            host_binds,
            entrypoint_overridden,
            profile_confidence,
            tag_note,
            env_note,
            extends_problem: None,
            own_user_off: false,
            build,
            user,
            privileged: scalar("privileged").is_some_and(|s| is_true(&s)),
            docker_socket,
            network_host: scalar("network_mode").as_deref() == Some("host"),
            pid_host: scalar("pid").as_deref() == Some("host"),
            bind_mounts,
            command,
            stack,
        }
    }

    /// Every entry of a list-valued key across all files that define the service.
    pub fn items(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (d, s) in &self.stack {
            let tree = &d.tree;
            if let Some((_, v, _)) = tree.lookup(s.map, key) {
                if tree.tag(v) == Some("!reset") || tree.tag(v) == Some("!override") {
                    out.clear();
                }
                for &i in tree.items(tree.resolve(v)) {
                    if let Some(x) = tree.scalar(i) {
                        out.push(x.to_string());
                    }
                }
            }
        }
        out
    }

    /// A single value across all files that define the service (the last one wins).
    pub fn value(&self, key: &str) -> Option<String> {
        last_value(&self.stack, key)
    }

    /// The state of a list-valued hardening key.
    pub fn list(&self, key: &str) -> ListKey {
        let tree = &self.doc.tree;
        let Some((k, v, local)) = tree.lookup(self.service.map, key) else {
            return ListKey::Absent;
        };
        let node = tree.node(v);
        if tree.tag(v).is_some() {
            return ListKey::Other;
        }
        if local && tree.is_null(v) && matches!(node.kind, Kind::Scalar { .. }) {
            return ListKey::Null { key: k };
        }
        let rv = tree.resolve(v);
        if !tree.is_sequence(rv) {
            return ListKey::Other;
        }
        let items = tree
            .items(rv)
            .iter()
            .filter_map(|&i| tree.scalar(i).map(str::to_string))
            .collect();
        if local && rv == v && tree.anchor(v).is_none() {
            ListKey::Local { seq: v, items }
        } else if local {
            // `cap_add: *caps` or `cap_add: &caps [...]`: the list is shared with other
            // nodes; appending to it would change them too.
            ListKey::Other
        } else {
            ListKey::Merged { items }
        }
    }

    /// Whether the service's main process will run as a non-root user.
    pub fn runs_non_root(&self) -> Option<bool> {
        match &self.user {
            UserState::NonRoot(_) => Some(true),
            UserState::Root(_) => Some(false),
            UserState::Unknown(_) => None,
            UserState::Unset => {
                if let Some(b) = &self.build
                    && let Some(user) = &b.user
                {
                    return match classify_user(user) {
                        UserState::NonRoot(_) => Some(true),
                        UserState::Root(_) => Some(false),
                        _ => None,
                    };
                }
                self.profile.map(|p| p.class == Class::NonRoot)
            }
        }
    }

    /// Whether the image's own start-up steps down from root by itself (a root-then-drop
    /// entrypoint the file does not replace, or a daemon that starts unprivileged workers).
    pub fn image_drops_root(&self) -> bool {
        match self.profile.map(|p| p.class) {
            Some(Class::RootThenDrop) => !self.entrypoint_overridden,
            Some(Class::SelfDroppingDaemon) => true,
            _ => false,
        }
    }

    /// The image's own non-root `uid:gid` when the service should run as it: a root-then-drop
    /// image whose profile names its user, started with its own entrypoint, no `user:` in
    /// the file, no capability the file adds (it would be dead as non-root), no low port on
    /// the host network, and data only in named volumes (or none): a host directory would
    /// have to be owned by that uid first. `--set-user` asks for it with bind mounts too.
    pub fn own_user(&self) -> Option<String> {
        if self.own_user_off {
            return None;
        }
        let p = self.profile?;
        let fits = p.class == Class::RootThenDrop
            && self.extends_problem.is_none()
            && self.user == UserState::Unset
            && self.build.is_none()
            && !self.entrypoint_overridden
            && (self.settings.set_user || !self.bind_mounts)
            && if self.settings.set_user {
                self.profile_confidence.is_trusted()
            } else {
                // By default only where the row was read from the image's sources or run.
                self.profile_confidence >= Confidence::FromSource
            }
            && self.items("cap_add").is_empty()
            && self
                .overrides()
                .and_then(|o| o.cap_add.as_ref())
                .is_none_or(|c| c.is_empty())
            && (!self.network_host || p.low_ports.is_empty());
        if fits { p.user.clone() } else { None }
    }

    /// The text of the service's `healthcheck.test`, if any.
    pub fn healthcheck(&self) -> Option<String> {
        let (d, v) = self.stack.iter().rev().find_map(|(d, s)| {
            d.tree
                .lookup(s.map, "healthcheck")
                .and_then(|(_, h, _)| d.tree.lookup(d.tree.resolve(h), "test"))
                .map(|(_, t, _)| (*d, t))
        })?;
        let mut out = String::new();
        collect_text(d, v, &mut out);
        Some(out)
    }

    /// The configuration's override for this service, if any.
    pub fn overrides(&self) -> Option<&'a ServiceOverride> {
        self.settings.overrides.get(&self.service.name)
    }

    /// `service "db"` for messages.
    pub fn name(&self) -> String {
        format!("service {:?}", self.service.name)
    }

    /// The image for messages: `postgres:16`, `build ./app (FROM node:22)` or `unknown image`.
    pub fn image_label(&self) -> String {
        match (&self.build, &self.image) {
            (Some(b), _) => b.label(),
            (None, Some(i)) => i.display(),
            (None, None) => "an image we cannot resolve".into(),
        }
    }
}

/// The image an `image:` value names after interpolation with the project's `.env`, and
/// the variables that were unset. A tag that is unset (or empty) is unknown.
fn image_ref(raw: &str, env: &Env) -> (Option<ImageRef>, Vec<String>) {
    if !raw.contains('$') {
        return (ImageRef::parse(raw), Vec::new());
    }
    let (repo_raw, tag_raw) = split_tag_outside_braces(raw);
    let repo = env.interpolate(repo_raw);
    let tag = tag_raw.map(|t| env.interpolate(t));
    if repo.failed || tag.as_ref().is_some_and(|t| t.failed) {
        return (None, Vec::new());
    }
    let mut unset = repo.unset.clone();
    let Some(mut image) = ImageRef::parse(repo.text.split('@').next().unwrap_or("")) else {
        return (None, unset);
    };
    if let Some(t) = tag {
        unset.extend(t.unset.iter().cloned());
        let text = t.text.split('@').next().unwrap_or("").to_ascii_lowercase();
        if !t.unset.is_empty() || text.is_empty() {
            (image.tag, image.tag_unknown) = (None, true);
        } else {
            image.tag = Some(text);
        }
    }
    (Some(image), unset)
}

/// `repo` and `tag` of an image value whose variables may hold `:` (`${TAG:-1}`).
fn split_tag_outside_braces(raw: &str) -> (&str, Option<&str>) {
    let (mut depth, mut slash, mut colon) = (0usize, 0usize, None);
    for (i, c) in raw.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => (slash, colon) = (i + 1, None),
            ':' if depth == 0 && i >= slash => colon = Some(i),
            _ => {}
        }
    }
    match colon {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    }
}

/// The scalar value of `key` in the last definition that sets it (later files win).
fn last_value(stack: &[(&Document, &Service)], key: &str) -> Option<String> {
    stack.iter().rev().find_map(|(d, s)| {
        d.tree
            .lookup(s.map, key)
            .and_then(|(_, v, _)| d.tree.scalar(v).map(str::to_string))
    })
}

fn collect_text(doc: &Document, id: NodeId, out: &mut String) {
    let tree = &doc.tree;
    let id = tree.resolve(id);
    if let Some(s) = tree.scalar(id) {
        out.push_str(s);
        out.push(' ');
    }
    for &i in tree.items(id) {
        collect_text(doc, i, out);
    }
}

/// The profile's confidence for `image`: a row vouches only for the tags it was checked
/// for (its `checked_tags`; when empty, its own `tags`, or any tag when it has none), and
/// never for a tag that could not be resolved.
pub fn tag_confidence(p: &Profile, image: &ImageRef) -> (Confidence, Option<String>) {
    let checked: Vec<&str> = if !p.checked_tags.is_empty() {
        p.checked_tags.iter().map(String::as_str).collect()
    } else {
        p.tags.iter().map(String::as_str).collect()
    };
    let any = checked.is_empty() || checked.contains(&"*");
    let note = if image.tag_unknown && !any {
        Some(
            "its tag is not resolved (an unset variable), so the row's tags cannot be checked"
                .to_string(),
        )
    } else if any {
        None
    } else {
        let tag = image.tag.as_deref().unwrap_or("latest");
        if checked.iter().any(|t| knowledge::glob(t, tag)) {
            None
        } else {
            Some(format!(
                "the row was checked for tags {}, not {tag}",
                checked.join(", ")
            ))
        }
    };
    match note {
        None => (p.confidence, None),
        Some(n) => (p.confidence.min(Confidence::Pattern), Some(n)),
    }
}

/// Read-only binds of these host paths are readable by any user.
const WORLD_READABLE: &[&str] = &[
    "/etc/localtime",
    "/etc/timezone",
    "/etc/machine-id",
    "/etc/hostname",
    "/etc/os-release",
    "/usr/share/zoneinfo",
    "/etc/ssl/certs",
];

/// The Docker socket mount (if any), whether any bind mount exists, and the host paths a
/// root process may find owned by another user (see [`ServiceFacts::host_binds`]).
fn volumes(doc: &Document, map: NodeId) -> (Option<NodeId>, bool, Vec<String>) {
    let tree = &doc.tree;
    let Some((_, v, _)) = tree.lookup(map, "volumes") else {
        return (None, false, Vec::new());
    };
    let (mut sock, mut bind, mut hosts) = (None, false, Vec::new());
    for &item in tree.items(tree.resolve(v)) {
        let item_r = tree.resolve(item);
        let (source, is_bind, read_only) = if let Some(s) = tree.scalar(item_r) {
            let parts: Vec<&str> = s.split(':').collect();
            let src = parts[0];
            let is_bind =
                s.contains(':') && (src.starts_with(['/', '.', '~', '$']) || src.contains('/'));
            let ro = parts.len() > 2 && parts[parts.len() - 1].split(',').any(|o| o == "ro");
            (src.to_string(), is_bind, ro)
        } else if tree.is_mapping(item_r) {
            let get = |k: &str| {
                tree.lookup(item_r, k)
                    .and_then(|(_, v, _)| tree.scalar(v).map(str::to_string))
            };
            let src = get("source").unwrap_or_default();
            let ro = get("read_only").is_some_and(|s| is_true(&s));
            (src, get("type").as_deref() == Some("bind"), ro)
        } else {
            continue;
        };
        bind |= is_bind;
        if source.ends_with("docker.sock") || source.ends_with("podman.sock") {
            sock.get_or_insert(item);
            continue;
        }
        let outside = source.starts_with(['/', '~', '$']);
        let harmless =
            read_only && (!outside || WORLD_READABLE.iter().any(|w| source.starts_with(w)));
        if is_bind && !harmless {
            hosts.push(source);
        }
    }
    (sock, bind, hosts)
}
