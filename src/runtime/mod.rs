//! Everything that talks to a container engine: the Docker client, the lifecycle runner
//! behind `verify`, the `/proc` reader, image inspection and `learn`.
//!
//! This family uses the facts and the knowledge base; nothing outside it calls into it
//! except the commands in [`crate::app`]. The rules never do: a check or a fix stays a
//! pure function of the files.
