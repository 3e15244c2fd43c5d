use crate::facts::ServiceFacts;
use crate::rules::{Diagnostic, declare_rule};

declare_rule! {
    /// ## What it does
    /// Reports `# compose-harden: ignore[...]` comments that suppress nothing: the rule
    /// they name does not fire for the service they sit on, or they sit on no service.
    ///
    /// ## Why is this bad?
    /// A stale suppression hides the next real finding on that service, and tells readers
    /// something that is no longer true.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   # compose-harden: ignore[CH003]
    ///   web:
    ///     image: nginx:1.27
    ///     cap_drop: [ALL]
    ///     cap_add: [CHOWN, SETGID, SETUID]
    /// ```
    ///
    /// ## Use instead
    /// Remove the comment, or name only the rules that still fire.
    ///
    /// Suppressions go on the service's key line or on the line above it:
    /// `# compose-harden: ignore[CH001,CH004]` (ids or names), or
    /// `# compose-harden: ignore` for every rule.
    ///
    /// ## Fix safety
    /// No fix: removing a comment is the author's call.
    pub struct UnusedSuppression;
}

/// Suppressions are matched by the fixer after the other rules ran; see `fixer::suppress`.
pub fn check(_: &ServiceFacts) -> Option<Diagnostic> {
    None
}
