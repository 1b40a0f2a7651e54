//! Readers of host state that the snapshot records. They only read and never judge.

pub mod accounts;
pub mod files;
pub mod packages;
pub mod sysctl;
