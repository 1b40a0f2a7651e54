//! The `memory` setting: the most memory that may be in use.

use crate::args::check_params;
use ansible_module::types::Percent;

check_params! {
advisory pub struct MemoryParams {
    #[serde(default = "default_memory_percent")]
    pub max_used_percent: Percent,
}
}

fn default_memory_percent() -> Percent {
    Percent(90.0)
}
