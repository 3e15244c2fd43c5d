use crate::facts::ServiceFacts;
use crate::rules::{Diagnostic, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Reports services that mount the Docker (or Podman) socket. It is never fixed
    /// automatically, and such services get no `user:` or capability changes either.
    ///
    /// ## Why is this bad?
    /// Whoever can talk to the Docker socket can start a privileged container that mounts
    /// the host's root filesystem: the socket is root on the host. CIS Docker Benchmark
    /// 5.32, OWASP Docker rule #1.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   proxy:
    ///     image: traefik:v3.2
    ///     volumes:
    ///       - /var/run/docker.sock:/var/run/docker.sock
    /// ```
    ///
    /// ## Use instead
    /// Put a filtering proxy in front of the socket (for example one that allows only
    /// read-only container listing), mount it read-only (`:ro` limits the file, not the
    /// API), or give the service what it needs some other way.
    ///
    /// ## Fix safety
    /// No fix: a non-root user would lose access to the socket unless `group_add` names
    /// the host's docker group id, which only the host knows.
    pub struct DockerSocket;
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    let item = f.docker_socket?;
    let mut d = rule("CH006").diagnostic(
        f,
        format!(
            "{} mounts the Docker socket, which is root on the host",
            f.name()
        ),
    );
    let (line, col) = f.doc.pos(item);
    (d.line, d.column, d.offset) = (line, col, f.doc.tree.node(item).start());
    d.reason = "needs a human: restrict access to the socket or remove the mount".into();
    Some(d)
}
