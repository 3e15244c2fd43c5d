use crate::facts::ServiceFacts;
use crate::rules::{Diagnostic, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Reports services with `privileged: true`. It is never fixed automatically.
    ///
    /// ## Why is this bad?
    /// A privileged container gets every capability, every device, and no seccomp or
    /// AppArmor confinement; `cap_drop` is ignored. Escaping it to the host is trivial.
    /// CIS Docker Benchmark 5.5, OWASP Docker rule #3.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   agent:
    ///     image: acme/agent
    ///     privileged: true
    /// ```
    ///
    /// ## Use instead
    /// Grant what the service really uses: the devices it needs (`devices:`) and the
    /// capabilities it needs (`cap_add:`), with `cap_drop: [ALL]`.
    ///
    /// ## Fix safety
    /// No fix: removing `privileged` breaks Docker-in-Docker, device access and
    /// hardware monitoring, and what to grant instead depends on the service.
    pub struct Privileged;
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    if !f.privileged {
        return None;
    }
    let mut d = rule("CH005").diagnostic(
        f,
        format!(
            "{} runs privileged: every capability and device, no confinement",
            f.name()
        ),
    );
    if let Some((k, _, _)) = f.doc.tree.lookup(f.service.map, "privileged") {
        let (line, col) = f.doc.pos(k);
        (d.line, d.column, d.offset) = (line, col, f.doc.tree.node(k).start());
    }
    d.reason = "needs a human: grant the devices and capabilities it uses instead".into();
    Some(d)
}
