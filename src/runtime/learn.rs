//! `learn`: the least-privilege `cap_add` a service needs under `cap_drop: [ALL]` and
//! no-new-privileges, measured by running it through the whole lifecycle of `verify`.
//!
//! The search only ever adds Docker's 14 default capabilities (never one outside them,
//! such as DAC_READ_SEARCH). It guesses with the failure advisor (each failure's advice is
//! added back), falls back to all 14 when the advisor has nothing to say, then removes
//! each kept capability once (delta debugging, one at a time): a capability stays only
//! when the run fails without it, and that failure is recorded as its reason. The search
//! is a pure function of a `trial` (one run under one hardening), so it is tested here
//! without an engine.

use serde::Serialize;

use super::model::Hardening;

/// Docker's default capability set (moby `oci/caps/defaults.go`), sorted.
pub const DEFAULT_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// How one trial ended: `None` passed every phase; otherwise the first failed phase,
/// its detail and the advisor's capabilities for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub phase: String,
    pub detail: String,
    pub advice: Vec<String>,
}

/// A kept capability and the failure seen without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Needed {
    pub cap: String,
    pub phase: String,
    pub failure: String,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Learned {
    /// `None`: no set of default capabilities made it pass.
    pub cap_add: Option<Vec<String>>,
    pub nnp: bool,
    pub needed: Vec<Needed>,
    /// The user tried with no capabilities (the image's own non-root uid), and whether
    /// that passed (with the failure when not).
    pub as_user: Option<(String, Result<(), String>)>,
    pub runs: usize,
    /// Why the search gave up, when it did.
    pub gave_up: Option<String>,
}

/// Most advisor rounds before falling back to every default capability.
const MAX_GUESSES: usize = 6;

fn defaults() -> Vec<String> {
    DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Search a service's minimal set. `start` is the first guess (the knowledge base's or the
/// inspection's set, or none); `user` is a non-root `uid:gid` to try with no capabilities
/// (named volumes only); `trial` runs the service once under a hardening.
pub fn search(
    start: &[String],
    start_nnp: bool,
    user: Option<&str>,
    mut trial: impl FnMut(&Hardening) -> Result<Option<Failure>, String>,
) -> Result<Learned, String> {
    let mut runs = 0;
    let mut run = |h: &Hardening| {
        runs += 1;
        trial(h)
    };
    let only_defaults = |caps: &[String]| -> Vec<String> {
        sorted(
            caps.iter()
                .filter(|c| DEFAULT_CAPS.contains(&c.as_str()))
                .cloned()
                .collect(),
        )
    };
    let hard = |caps: &[String], nnp: bool| Hardening {
        user: None,
        cap_add: caps.to_vec(),
        nnp,
    };
    let mut nnp = start_nnp;
    let mut caps = only_defaults(start);
    let mut passing = None;
    for _ in 0..MAX_GUESSES {
        match run(&hard(&caps, nnp))? {
            None => {
                passing = Some(caps.clone());
                break;
            }
            Some(f) => {
                let more: Vec<String> = only_defaults(&f.advice)
                    .into_iter()
                    .filter(|c| !caps.contains(c))
                    .collect();
                if more.is_empty() {
                    break;
                }
                caps = sorted([caps, more].concat());
            }
        }
    }
    if passing.is_none() && nnp && run(&hard(&caps, false))?.is_none() {
        // The advisor has nothing to add: the guess may only need no-new-privileges off.
        passing = Some(caps.clone());
        nnp = false;
    }
    if passing.is_none() {
        // The advisor ran out: every default capability, then without no-new-privileges.
        for n in [true, false] {
            if run(&hard(&defaults(), n))?.is_none() {
                passing = Some(defaults());
                nnp = n;
                break;
            }
        }
    }
    let Some(mut keep) = passing else {
        return Ok(Learned {
            cap_add: None,
            nnp: true,
            needed: Vec::new(),
            as_user: None,
            runs,
            gave_up: Some(
                "it fails even with all of Docker's default capabilities, with and without no-new-privileges".into(),
            ),
        });
    };
    let mut needed = Vec::new();
    for cap in keep.clone() {
        let without: Vec<String> = keep.iter().filter(|c| **c != cap).cloned().collect();
        match run(&hard(&without, nnp))? {
            None => keep = without,
            Some(f) => needed.push(Needed {
                cap,
                phase: f.phase,
                failure: f.detail,
            }),
        }
    }
    let as_user = match user {
        Some(u) => {
            let h = Hardening {
                user: Some(u.to_string()),
                cap_add: Vec::new(),
                nnp,
            };
            let r = run(&h)?.map_or(Ok(()), |f| Err(format!("{}: {}", f.phase, f.detail)));
            Some((u.to_string(), r))
        }
        None => None,
    };
    Ok(Learned {
        cap_add: Some(keep),
        nnp,
        needed,
        as_user,
        runs,
        gave_up: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that needs `needs` (and fails naming the first one missing), optionally
    /// breaking under no-new-privileges.
    fn service(
        needs: &'static [&'static str],
        breaks_nnp: bool,
        advise: bool,
    ) -> impl FnMut(&Hardening) -> Result<Option<Failure>, String> {
        move |h: &Hardening| {
            if h.user.is_some() {
                return Ok(Some(Failure {
                    phase: "first-start".into(),
                    detail: "permission denied".into(),
                    advice: vec![],
                }));
            }
            if breaks_nnp && h.nnp {
                return Ok(Some(Failure {
                    phase: "first-start".into(),
                    detail: "sudo: no new privileges".into(),
                    advice: vec![],
                }));
            }
            Ok(needs
                .iter()
                .find(|c| !h.cap_add.iter().any(|a| a == *c))
                .map(|c| Failure {
                    phase: "first-start".into(),
                    detail: format!("needs {c}"),
                    advice: if advise { vec![c.to_string()] } else { vec![] },
                }))
        }
    }

    #[test]
    fn the_advisor_guides_then_each_kept_cap_is_shown_needed() {
        let l = search(
            &[],
            true,
            Some("999:999"),
            service(&["CHOWN", "SETUID", "SETGID"], false, true),
        )
        .unwrap();
        assert_eq!(l.cap_add.unwrap(), ["CHOWN", "SETGID", "SETUID"]);
        assert!(l.nnp);
        let why: Vec<(&str, &str)> = l
            .needed
            .iter()
            .map(|n| (n.cap.as_str(), n.failure.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                ("CHOWN", "needs CHOWN"),
                ("SETGID", "needs SETGID"),
                ("SETUID", "needs SETUID")
            ]
        );
        // 4 guesses ([], [CHOWN], [CHOWN SETUID], all three), 3 removals, 1 as the user.
        assert_eq!(l.runs, 8);
        assert_eq!(
            l.as_user,
            Some((
                "999:999".into(),
                Err("first-start: permission denied".into())
            ))
        );
    }

    #[test]
    fn without_advice_all_defaults_are_tried_and_reduced() {
        let l = search(&[], true, None, service(&["KILL"], false, false)).unwrap();
        assert_eq!(l.cap_add.unwrap(), ["KILL"]);
        // One guess, the guess without nnp, all 14, then 14 removals.
        assert_eq!(l.runs, 1 + 1 + 1 + 14);
    }

    #[test]
    fn a_service_that_needs_nnp_off_is_learned_without_it() {
        let l = search(
            &["SETUID".into(), "DAC_READ_SEARCH".into()],
            true,
            None,
            service(&["SETUID"], true, true),
        )
        .unwrap();
        assert!(!l.nnp);
        assert_eq!(l.cap_add.unwrap(), ["SETUID"]);
        // The guess, the guess without nnp, one removal.
        assert_eq!(l.runs, 3);
    }

    #[test]
    fn a_non_default_cap_is_never_added() {
        let mut seen = Vec::new();
        let trial = |h: &Hardening| {
            seen.push(h.cap_add.clone());
            Ok(Some(Failure {
                phase: "ready".into(),
                detail: "x".into(),
                advice: vec!["DAC_READ_SEARCH".into(), "SYS_ADMIN".into()],
            }))
        };
        let l = search(&["SYS_ADMIN".into()], true, None, trial).unwrap();
        assert!(l.cap_add.is_none());
        assert!(l.gave_up.is_some());
        assert!(
            seen.iter()
                .flatten()
                .all(|c| DEFAULT_CAPS.contains(&c.as_str()))
        );
    }

    #[test]
    fn a_service_that_needs_nothing_costs_one_run() {
        let l = search(&[], true, None, service(&[], false, true)).unwrap();
        assert_eq!(l.cap_add.unwrap(), Vec::<String>::new());
        assert_eq!(l.runs, 1);
    }
}
