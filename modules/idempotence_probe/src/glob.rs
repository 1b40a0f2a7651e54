//! Shell-style patterns for paths, names and keys: `*` and `?` (never across `/`), classes
//! (`[a-z]`, `[!.]`), and `**` as a whole path component for any number of directories.
//! Matching works on bytes, so file names that are not UTF-8 match too.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether `text` contains pattern characters (and so is not a literal path or name).
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Whether one name (no `/`) matches one pattern component.
pub fn match_name(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative wildcard matching with one backtrack point: linear enough for file names and
    // free of the exponential blow-up of naive recursion on `*a*a*a*b`.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(&pattern[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unclosed `[` is a literal.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                literal if literal == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches a `[...]` class at the start of `pattern` against `byte`: `(matched, class length)`,
/// or `None` when the class is not closed.
fn match_class(pattern: &[u8], byte: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let c = pattern[i];
        if c == b']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            if (c..=pattern[i + 2]).contains(&byte) {
                matched = true;
            }
            i += 3;
        } else {
            if c == byte {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Whether a whole path matches a pattern whose components are separated by `/`, where a `**`
/// component matches zero or more components.
pub fn match_path(pattern: &[u8], path: &[u8]) -> bool {
    let pattern: Vec<&[u8]> = pattern.split(|&b| b == b'/').collect();
    let path: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    match_components(&pattern, &path)
}

fn match_components(pattern: &[&[u8]], path: &[&[u8]]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if *first == b"**" => {
            (0..=path.len()).any(|skip| match_components(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => match_name(first, name) && match_components(rest, path_rest),
            None => false,
        },
    }
}

/// An exclude pattern: with a `/` it is matched against the whole absolute path, without one
/// against the entry's name alone (`*.pyc`, `__pycache__`).
#[derive(Debug, Clone)]
pub struct Exclude {
    pattern: Vec<u8>,
    whole_path: bool,
}

impl Exclude {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let trimmed = pattern.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("an empty pattern excludes nothing; remove it".into());
        }
        let whole_path = trimmed.contains('/');
        if whole_path && !trimmed.starts_with('/') {
            return Err(format!(
                "{pattern:?}: a pattern with '/' must be an absolute path; \
                 write a bare name pattern to match names anywhere"
            ));
        }
        Ok(Exclude {
            pattern: trimmed.as_bytes().to_vec(),
            whole_path,
        })
    }

    pub fn matches(&self, path: &Path) -> bool {
        if self.whole_path {
            match_path(&self.pattern, path.as_os_str().as_bytes())
        } else {
            path.file_name()
                .is_some_and(|name| match_name(&self.pattern, name.as_bytes()))
        }
    }
}

/// The existing paths that an absolute pattern matches, in no particular order. Symlinks are
/// not followed into, and with `skip_mounts` a `**` does not descend into another file system
/// listed in `mounts`.
pub fn expand(pattern: &str, mounts: Option<&std::collections::HashSet<PathBuf>>) -> Vec<PathBuf> {
    let components: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let mut found = Vec::new();
    expand_from(PathBuf::from("/"), &components, mounts, &mut found);
    found.sort();
    found.dedup();
    found
}

fn expand_from(
    base: PathBuf,
    components: &[&str],
    mounts: Option<&std::collections::HashSet<PathBuf>>,
    found: &mut Vec<PathBuf>,
) {
    let Some((first, rest)) = components.split_first() else {
        if std::fs::symlink_metadata(&base).is_ok() {
            found.push(base);
        }
        return;
    };
    if *first == "**" {
        // Zero directories, then each subdirectory in turn.
        expand_from(base.clone(), rest, mounts, found);
        for child in list_dir(&base) {
            let is_dir = std::fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir());
            let other_fs = mounts.is_some_and(|m| m.contains(&child));
            if is_dir && !other_fs {
                expand_from(child, components, mounts, found);
            }
        }
    } else if is_pattern(first) {
        for child in list_dir(&base) {
            let matched = child
                .file_name()
                .is_some_and(|name| match_name(first.as_bytes(), name.as_bytes()));
            if matched {
                expand_from(child, rest, mounts, found);
            }
        }
    } else {
        expand_from(base.join(first), rest, mounts, found);
    }
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_stars_questions_and_classes() {
        assert!(match_name(b"*.conf", b"sshd.conf"));
        assert!(!match_name(b"*.conf", b"sshd.conf.bak"));
        assert!(match_name(b"file?", b"file1"));
        assert!(match_name(b"[a-c]x", b"bx"));
        assert!(!match_name(b"[!a-c]x", b"bx"));
        assert!(match_name(b"*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!match_name(b"*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(match_name(b"[unclosed", b"[unclosed"));
    }

    #[test]
    fn double_star_spans_directories_and_single_star_does_not() {
        assert!(match_path(b"/var/log/**", b"/var/log"));
        assert!(match_path(b"/var/log/**", b"/var/log/apt/history.log"));
        assert!(match_path(b"/etc/**/*.conf", b"/etc/a/b/c.conf"));
        assert!(match_path(b"/etc/**/*.conf", b"/etc/c.conf"));
        assert!(!match_path(b"/etc/*.conf", b"/etc/a/c.conf"));
    }

    #[test]
    fn excludes_without_a_slash_match_names_anywhere() {
        let exclude = Exclude::new("*.pyc").unwrap();
        assert!(exclude.matches(Path::new("/srv/app/x/y.pyc")));
        assert!(!exclude.matches(Path::new("/srv/app/x.pyc.d/y")));
        let exclude = Exclude::new("/srv/app/cache/").unwrap();
        assert!(exclude.matches(Path::new("/srv/app/cache")));
        assert!(Exclude::new("relative/path").is_err());
    }

    #[test]
    fn expansion_finds_existing_matches_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/one.conf"), b"").unwrap();
        std::fs::write(root.join("a/b/two.conf"), b"").unwrap();
        std::fs::write(root.join("a/b/other.txt"), b"").unwrap();
        let pattern = format!("{}/**/*.conf", root.display());
        let found = expand(&pattern, None);
        assert_eq!(
            found,
            vec![root.join("a/b/two.conf"), root.join("a/one.conf")]
        );
        assert!(expand(&format!("{}/nothing*", root.display()), None).is_empty());
    }
}
