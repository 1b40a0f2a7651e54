//! The `disks` entries: a path, and the space and inode limits of its filesystem.

use crate::args::check_params;
use ansible_module::types::Shorthand;
use ansible_module::types::{ByteSize, Percent};

check_params! {
pub struct DiskParams {
    pub path: String,
    #[serde(default = "default_disk_percent")]
    pub max_used_percent: Percent,
    #[serde(default)]
    pub min_free: Option<ByteSize>,
    #[serde(default = "default_disk_percent")]
    pub max_inodes_used_percent: Percent,
}
}

fn default_disk_percent() -> Percent {
    Percent(90.0)
}

impl Shorthand for DiskParams {
    const FIELD: &'static str = "path";
}
