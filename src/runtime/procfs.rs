//! What a process really runs with, read from `/proc/<pid>/status`: its uid and gid, its
//! effective and bounding capability sets and no-new-privileges. After gosu or a worker
//! step-down CapEff is 0 whatever the compose file says: only the bounding set of every
//! process shows what `cap_add` allowed.

use serde::Serialize;

/// Capability names by number (linux/capability.h), without `CAP_`.
pub const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The names of the capabilities in a mask (unknown bits as `CAP_<n>`).
pub fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAP_NAMES
                .get(b as usize)
                .map_or_else(|| format!("CAP_{b}"), |n| n.to_string())
        })
        .collect()
}

/// One process of a container, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// Inside the container's user namespace (host uids under userns-remap are mapped back).
    pub uid: u32,
    pub gid: u32,
    pub command: String,
    pub cap_eff: String,
    pub cap_bnd: String,
    pub caps_bnd: Vec<String>,
    pub no_new_privs: bool,
}

/// Parse the text of `/proc/<pid>/status`. `None` when a field we need is missing.
pub fn parse_status(pid: u32, text: &str) -> Option<Process> {
    let mut name = None;
    let (mut uid, mut gid, mut eff, mut bnd, mut nnp) = (None, None, None, None, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        // Uid/Gid: real, effective, saved, filesystem; the effective one decides.
        let second = || value.split_whitespace().nth(1)?.parse::<u32>().ok();
        match key {
            "Name" => name = Some(value.to_string()),
            "Uid" => uid = second(),
            "Gid" => gid = second(),
            "CapEff" => eff = Some(value.to_string()),
            "CapBnd" => bnd = Some(value.to_string()),
            "NoNewPrivs" => nnp = value == "1",
            _ => {}
        }
    }
    let cap_bnd: String = bnd?;
    let mask = u64::from_str_radix(&cap_bnd, 16).ok()?;
    Some(Process {
        pid,
        uid: uid?,
        gid: gid?,
        command: name.unwrap_or_default(),
        cap_eff: eff?,
        caps_bnd: cap_names(mask),
        cap_bnd,
        no_new_privs: nnp,
    })
}

/// Map a host id back into the namespace with `uid_map`/`gid_map` lines
/// (`inside outside count`); ids outside every range stay as they are.
pub fn map_back(id: u32, map: &str) -> u32 {
    for line in map.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, count] = f[..]
            && (outside..outside + count).contains(&(id as u64))
        {
            return (inside + (id as u64 - outside)) as u32;
        }
    }
    id
}

/// Read one process on this host (the engine's host), ids mapped back into its namespace.
pub fn read_host(pid: u32) -> Option<Process> {
    let dir = format!("/proc/{pid}");
    let text = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let mut p = parse_status(pid, &text)?;
    if let Ok(m) = std::fs::read_to_string(format!("{dir}/uid_map")) {
        p.uid = map_back(p.uid, &m);
    }
    if let Ok(m) = std::fs::read_to_string(format!("{dir}/gid_map")) {
        p.gid = map_back(p.gid, &m);
    }
    Some(p)
}

/// Whether host pid `pid` belongs to container `id` (its cgroup path names the id): only
/// then is this host's `/proc` the engine's.
pub fn belongs_to(pid: u32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id))
}

/// Parse the output of a shell loop that prints `== <pid>` then that process's status, run
/// inside the container when this host's `/proc` is not the engine's.
pub fn parse_many(text: &str) -> Vec<Process> {
    let mut out = Vec::new();
    for chunk in text.split("== ").skip(1) {
        let (head, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
        if let Ok(pid) = head.trim().parse::<u32>()
            && let Some(p) = parse_status(pid, body)
        {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTGRES: &str = "Name:\tpostgres\nUmask:\t0077\nState:\tS (sleeping)\nTgid:\t4242\n\
Uid:\t999\t999\t999\t999\nGid:\t999\t999\t999\t999\nCapInh:\t0000000000000000\n\
CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t00000000000000c3\n\
CapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";

    #[test]
    fn reads_a_stepped_down_postgres() {
        let p = parse_status(4242, POSTGRES).unwrap();
        assert_eq!(p.uid, 999);
        assert_eq!(p.gid, 999);
        assert_eq!(p.command, "postgres");
        assert_eq!(p.cap_eff, "0000000000000000");
        assert_eq!(p.caps_bnd, ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"]);
        assert!(p.no_new_privs);
    }

    #[test]
    fn uses_the_effective_uid() {
        let text = POSTGRES.replace("Uid:\t999\t999", "Uid:\t0\t101");
        assert_eq!(parse_status(1, &text).unwrap().uid, 101);
    }

    #[test]
    fn a_status_without_caps_is_not_a_process() {
        assert_eq!(
            parse_status(1, "Name:\tx\nUid:\t0 0 0 0\nGid:\t0 0 0 0\n"),
            None
        );
    }

    #[test]
    fn decodes_docker_default_set() {
        assert_eq!(
            cap_names(0xa80425fb),
            [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "FSETID",
                "KILL",
                "SETGID",
                "SETUID",
                "SETPCAP",
                "NET_BIND_SERVICE",
                "NET_RAW",
                "SYS_CHROOT",
                "MKNOD",
                "AUDIT_WRITE",
                "SETFCAP"
            ]
        );
        assert_eq!(cap_names(1 << 40), ["CHECKPOINT_RESTORE"]);
        assert_eq!(cap_names(1 << 50), ["CAP_50"]);
        assert!(cap_names(0).is_empty());
    }

    #[test]
    fn maps_remapped_uids_back() {
        let map = "         0     100000      65536\n";
        assert_eq!(map_back(100999, map), 999);
        assert_eq!(map_back(100000, map), 0);
        // Outside the range (or no namespace): unchanged.
        assert_eq!(map_back(999, map), 999);
        assert_eq!(map_back(5, "0 0 4294967295\n"), 5);
    }

    #[test]
    fn parses_the_in_container_loop() {
        let text = format!("== 1\n{POSTGRES}== 7\n{}== x\nnot a status\n", POSTGRES);
        let ps = parse_many(&text);
        assert_eq!(ps.iter().map(|p| p.pid).collect::<Vec<_>>(), [1, 7]);
    }
}
