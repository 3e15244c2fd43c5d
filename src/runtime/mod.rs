//! Everything that talks to a container engine: the Docker client, the lifecycle runner
//! behind `verify`, the `/proc` reader, image inspection and `learn`.
//!
//! This family uses the facts and the knowledge base; nothing outside it calls into it
//! except the commands in [`crate::app`]. The rules never do: a check or a fix stays a
//! pure function of the files.
//!
//! - [`docker`]: the engine (`Engine::connect()`: DOCKER_HOST, the docker context, or a
//!   Podman socket) and `Engine::call`, the `docker` CLI with a timeout and the stop flag.
//! - [`model`]: the resolved Compose model (`Project::resolve`), the rewrites a run makes
//!   (no fixed host port, container name or volume name; never pull; private bind
//!   mounts), [`model::Hardening`] applied as an override, and why a service is skipped.
//! - [`lifecycle`]: one run of a project through first start, ready, restart and stop:
//!   `lifecycle::run(&engine, &project, &services, &overrides, &Options::new(stop))`
//!   gives a [`state::Run`] per service (its phases, processes, restarts, exit code, log);
//!   `run.failed()` is the first failed phase. This API is stable: `learn` builds on it.
//! - [`state`]: container states from `docker inspect` and the ready/stop judgements.
//! - [`procfs`]: `/proc/<pid>/status` (uid, gid, CapEff, CapBnd, NoNewPrivs), cap names.
//! - [`verdict`]: two runs to a verdict with the advisor's advice; the JSON report.
//! - [`archive`]: an image from a `docker save` or OCI archive, with no engine.
//! - [`inspect`]: what an image says about itself, as evidence and an `inspected` row.
//! - [`learn`]: the least-privilege cap set found by runs (delta debugging over a trial).

pub mod archive;
pub mod docker;
pub mod filecaps;
pub mod inspect;
pub mod learn;
pub mod lifecycle;
pub mod model;
pub mod procfs;
pub mod state;
pub mod verdict;
