//! The `disks` entries: a path, the space and inode limits of its filesystem, and what the mount
//! that holds it must be (a mount point of its own, a filesystem type, mount options).

use crate::args::check_params;
use ansible_module::types::Shorthand;
use ansible_module::types::{ByteSize, List, Percent};
use serde::Deserialize;

check_params! {
pub struct DiskParams {
    pub path: String,
    #[serde(default = "default_disk_percent")]
    pub max_used_percent: Percent,
    #[serde(default)]
    pub min_free: Option<ByteSize>,
    #[serde(default = "default_disk_percent")]
    pub max_inodes_used_percent: Percent,
    /// `true`: the path must be a mount point of its own. `false`: it may lie on any
    /// filesystem, `/` included, without a warning. Unset: a path other than `/` that lies on
    /// the root filesystem passes with a warning.
    #[serde(default, deserialize_with = "ansible_module::types::optional_boolean")]
    pub mount: Option<bool>,
    /// The filesystem types accepted (`xfs`, `[ext4, xfs]`, `fuse.sshfs`), as /proc/mounts
    /// names them.
    #[serde(default)]
    pub fstype: Option<Names>,
    /// Mount options that must all be in force (`rw`, `noexec`, `[rw, nosuid]`).
    #[serde(default)]
    pub options: Option<Names>,
}
}

fn default_disk_percent() -> Percent {
    Percent(90.0)
}

impl Shorthand for DiskParams {
    const FIELD: &'static str = "path";
}

/// A list of names (`xfs`, `[rw, noexec]`, or `"rw, noexec"` as Ansible's `list` type allows)
/// with at least one entry and no empty one: an empty list would require nothing, or something
/// no mount has.
#[derive(Debug, Clone, PartialEq)]
pub struct Names(pub Vec<String>);

impl Names {
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Names {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let List(names) = List::<String>::deserialize(deserializer)?;
        if names.is_empty() || names.iter().any(|name| name.trim().is_empty()) {
            return Err(serde::de::Error::custom(
                "expected a name or a list of names, without empty entries",
            ));
        }
        Ok(Names(names))
    }
}

impl schemars::JsonSchema for Names {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        List::<String>::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        List::<String>::json_schema(generator)
    }
}
