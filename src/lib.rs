//! compose-harden: least privilege for every service of a Docker Compose file, written as
//! lossless edits (only the hardening lines change) and shown as a reviewable diff.
//!
//! The pipeline for one file: [`document::Document::parse`] builds a read-only, span-aware
//! view; [`fixer::check`] runs the [`rules`] over each service's [`facts`]; rules return
//! [`edit::Fix`]es (byte ranges and text) built by the [`editor`] in the file's own style;
//! [`fixer::fix`] applies them, re-parses, checks that nothing but hardening keys changed,
//! and that a second run would change nothing.
//!
//! The library never prints: commands in [`app`] write to the streams they are given.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod advisor;
pub mod app;
pub mod cli;
pub mod config;
pub mod diff;
pub mod discover;
pub mod dockerfile;
pub mod document;
pub mod edit;
pub mod editor;
pub mod env;
pub mod escape;
pub mod evidence;
pub mod extends;
pub mod facts;
pub mod fixer;
pub mod fsread;
pub mod knowledge;
pub mod overlay;
pub mod project;
pub mod report;
pub mod rules;
pub mod runtime;
pub mod source;
pub mod write;
pub mod yaml;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A small deterministic generator (xorshift) for generated test cases: each call gives
    /// a number below `n`.
    pub fn numbers(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
    }
}
