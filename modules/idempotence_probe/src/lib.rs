//! `idempotence_probe`: snapshot host state, then compare the host against the snapshot, to
//! prove that a second Ansible run changed nothing, even where its tasks reported `ok`.
//!
//! `state: snapshot` records files and trees (type, content SHA-256, mode, owner, symlink
//! target, mtime, presence), systemd units (over D-Bus), dpkg packages, sysctl keys, users and
//! groups into a JSON Lines file in `snapshot_dir`, streamed and written atomically with mode
//! 0600. `state: compare` walks the same watch set again and lists every difference as `drift`.
//!
//! ```no_run
//! // The binary is `ansible_module::main::<IdempotenceProbe>()`; a run can also be driven
//! // from code with an args value:
//! let response = ansible_module::run_value::<idempotence_probe::IdempotenceProbe>(
//!     serde_json::json!({"state": "snapshot", "name": "before", "paths": ["/etc/ssh"],
//!                        "snapshot_dir": "/tmp/snapshots"}),
//! );
//! assert!(!response.is_failed());
//! ```
//!
//! Module layout: [`args`] (parameters), [`walk`] (ordered, parallel-hashing tree walk),
//! [`store`] (the snapshot file), [`sections`] (units, packages, sysctl, accounts),
//! [`compare`] (drift rules), [`probe`] (the two states). The host state itself is read by
//! `host_probe` (files, packages, sysctl, accounts, and systemd over D-Bus, shared with
//! health_check).

pub mod args;
pub mod compare;
mod error;
pub mod glob;
pub mod probe;
pub mod sections;
pub mod store;
pub mod walk;

pub use error::Error;

use ansible_module::{Context, Module, Response};

/// The module.
pub struct IdempotenceProbe;

impl Module for IdempotenceProbe {
    type Args = args::Args;
    const NAME: &'static str = "idempotence_probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Snapshot host state (files, units, packages, sysctl, accounts) and report drift from it.";
    const SUPPORTS_CHECK_MODE: bool = true;

    /// Types, defaults and choices from [`args::Args`]' schema, so that `--parameters` can be
    /// checked against the sidecar doc (tests/test_parameter_docs.py).
    fn argument_spec() -> serde_json::Map<String, serde_json::Value> {
        ansible_module::spec::argument_spec::<args::Args>()
    }

    fn run(args: args::Args, ctx: &Context) -> Result<Response, ansible_module::Error> {
        let outcome = match args.state {
            args::State::Snapshot => probe::snapshot(&args, ctx),
            args::State::Compare => probe::compare(&args, ctx),
        };
        Ok(outcome.unwrap_or_else(|err| Response::failed(err.to_string())))
    }
}
