//! One file per check kind. Each turns its parameters into [`crate::check::Planned`] checks.

pub mod container;
pub mod disk;
pub mod gpu;
pub mod http;
pub mod load;
pub mod memory;
pub mod systemd;
pub mod tcp;
pub mod tls;

/// A percentage with one decimal, for messages.
pub(crate) fn percent(value: f64) -> String {
    format!("{:.1}%", value)
}

/// Rounds a ratio to two decimals for `details`.
pub(crate) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
