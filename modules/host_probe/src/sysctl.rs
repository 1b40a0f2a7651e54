//! Kernel parameters as `/proc/sys` shows them (`net.ipv4.ip_forward` is
//! `/proc/sys/net/ipv4/ip_forward`), whitespace normalised the way `sysctl -n` prints them.

use std::path::{Path, PathBuf};

pub const PROC_SYS: &str = "/proc/sys";

/// The file behind a dotted key under `proc_sys`. `None` for keys that could escape it.
pub fn key_path(proc_sys: &Path, key: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = key.split(['.', '/']).collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == ".." || *part == ".")
    {
        return None;
    }
    Some(
        parts
            .iter()
            .fold(proc_sys.to_path_buf(), |path, part| path.join(part)),
    )
}

/// The dotted key of a file under `proc_sys`.
pub fn path_key(proc_sys: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(proc_sys).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("."))
}

/// A key's value with runs of whitespace (tabs between the fields of `net.ipv4.tcp_rmem`)
/// folded into one space. `Ok(None)` when the key does not exist.
pub fn read_value(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            String::from_utf8_lossy(&bytes)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_map_to_proc_sys_files_and_back() {
        let root = Path::new("/proc/sys");
        let path = key_path(root, "net.ipv4.ip_forward").unwrap();
        assert_eq!(path, Path::new("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(path_key(root, &path).unwrap(), "net.ipv4.ip_forward");
        assert_eq!(key_path(root, "net..x"), None);
        assert_eq!(key_path(root, "../etc/passwd"), None);
    }

    #[test]
    fn values_are_whitespace_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tcp_rmem");
        std::fs::write(&file, "4096\t131072\t6291456\n").unwrap();
        assert_eq!(read_value(&file).unwrap().unwrap(), "4096 131072 6291456");
        assert_eq!(read_value(&dir.path().join("missing")).unwrap(), None);
    }
}
