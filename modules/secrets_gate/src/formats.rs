//! Reading each file format into leaves (key path, value, position) for the rules: YAML
//! (anchors and aliases, multi-document, block scalars, tags), JSON (through the YAML parser,
//! which keeps positions), INI inventories and ansible.cfg, dotenv. Aliases are never expanded:
//! a secret is judged once, where it is written.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// How deep YAML may nest before the file is reported as a parse error instead of walked.
pub const MAX_DEPTH: usize = 256;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A scalar value with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub document: usize,
    pub path: Vec<Segment>,
    pub value: String,
    /// 1-based line and column of the value (of its first content line for a block scalar).
    pub line: usize,
    pub column: usize,
    /// Lines of a literal block scalar start on the line after `line`.
    pub literal_block: bool,
    pub tag: Option<String>,
    /// Keys under which YAML aliases of this value are used (`db_password: *shared`): the
    /// value is judged under them too, and reported here, where it is written.
    pub alias_keys: Vec<String>,
}

impl Leaf {
    /// The nearest mapping key above the value: what the value is.
    pub fn key(&self) -> &str {
        self.path
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .unwrap_or("")
    }

    /// `db.users[0].password`, with `[doc N]` in front for documents after the first.
    pub fn key_path(&self) -> String {
        let mut out = if self.document > 0 {
            format!("[doc {}]", self.document)
        } else {
            String::new()
        };
        for segment in &self.path {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out.trim_start_matches('.').to_string()
    }
}

/// Why a structured parse gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub line: usize,
    pub message: String,
}

enum Frame {
    Map {
        key: Option<String>,
        expecting_key: bool,
        is_key: bool,
    },
    Seq {
        index: usize,
        is_key: bool,
    },
}

fn tag_name(tag: Option<&yaml_rust2::parser::Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

/// Walks YAML (or JSON) text into leaves. `text` must have LF line breaks only.
pub fn parse_yaml(text: &str) -> Result<Vec<Leaf>, ParseFailure> {
    let mut parser = Parser::new_from_str(text);
    let mut leaves = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut document = 0usize;
    let mut started = false;
    let mut anchors: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    loop {
        let (event, mark) = parser.next_token().map_err(|err| ParseFailure {
            line: err.marker().line(),
            message: err.to_string(),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                if started {
                    document += 1;
                }
                started = true;
                stack.clear();
            }
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(Frame::Map {
                    key, expecting_key, ..
                }) = stack.last_mut()
                {
                    if *expecting_key {
                        *key = Some(value);
                        *expecting_key = false;
                        continue;
                    }
                }
                let path = scalar_path(&mut stack);
                if anchor > 0 {
                    anchors.insert(anchor, leaves.len());
                }
                leaves.push(Leaf {
                    document,
                    path,
                    value,
                    line: mark.line(),
                    column: mark.col() + 1,
                    literal_block: style == TScalarStyle::Literal,
                    tag: tag_name(tag.as_ref()),
                    alias_keys: Vec::new(),
                });
                advance(&mut stack);
            }
            Event::Alias(id) => {
                // Judged where the anchor is written, never again at each use.
                if let Some(Frame::Map {
                    expecting_key: true,
                    ..
                }) = stack.last()
                {
                    if let Some(Frame::Map {
                        key, expecting_key, ..
                    }) = stack.last_mut()
                    {
                        *key = Some("*alias".into());
                        *expecting_key = false;
                    }
                    continue;
                }
                if let Some(&index) = anchors.get(&id) {
                    let key = current_path(&stack).iter().rev().find_map(|s| match s {
                        Segment::Key(k) => Some(k.clone()),
                        Segment::Index(_) => None,
                    });
                    if let (Some(key), Some(leaf)) = (key, leaves.get_mut(index)) {
                        leaf.alias_keys.push(key);
                    }
                }
                advance(&mut stack);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseFailure {
                        line: mark.line(),
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Map {
                        expecting_key: true,
                        ..
                    })
                );
                if is_key {
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some("?".into());
                    }
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        key: None,
                        expecting_key: true,
                        is_key,
                    }
                } else {
                    Frame::Seq { index: 0, is_key }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let was_key = match stack.pop() {
                    Some(Frame::Map { is_key, .. } | Frame::Seq { is_key, .. }) => is_key,
                    None => false,
                };
                if was_key {
                    if let Some(Frame::Map { expecting_key, .. }) = stack.last_mut() {
                        *expecting_key = false;
                    }
                } else {
                    advance(&mut stack);
                }
            }
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(leaves)
}

fn current_path(stack: &[Frame]) -> Vec<Segment> {
    stack
        .iter()
        .filter_map(|frame| match frame {
            Frame::Map { key: Some(k), .. } => Some(Segment::Key(k.clone())),
            Frame::Map { key: None, .. } => None,
            Frame::Seq { index, .. } => Some(Segment::Index(*index)),
        })
        .collect()
}

/// The path of a scalar value: [`current_path`], but the innermost mapping key is moved into
/// it rather than copied (one allocation less per value): after a value its mapping expects
/// the next key, which replaces it, or ends.
fn scalar_path(stack: &mut [Frame]) -> Vec<Segment> {
    let Some((last, outer)) = stack.split_last_mut() else {
        return Vec::new();
    };
    let mut path = Vec::with_capacity(outer.len() + 1);
    path.extend(outer.iter().filter_map(|frame| match frame {
        Frame::Map { key: Some(k), .. } => Some(Segment::Key(k.clone())),
        Frame::Map { key: None, .. } => None,
        Frame::Seq { index, .. } => Some(Segment::Index(*index)),
    }));
    match last {
        Frame::Map { key, .. } => path.extend(key.take().map(Segment::Key)),
        Frame::Seq { index, .. } => path.push(Segment::Index(*index)),
    }
    path
}

/// After a value: a mapping expects its next key, a sequence its next item.
fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { expecting_key, .. }) => *expecting_key = true,
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

/// `KEY=value` pairs of a dotenv file, with double-quoted values unescaped (`\n`) and
/// multi-line quoted values joined. Lines are 1-based.
pub fn parse_dotenv(text: &str) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let start_line = i + 1;
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, rest)) = body.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let rest = rest.trim();
        let column = line.len() - trimmed.len() + body.len() - rest.len() + 1;
        let value = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let mut collected = rest[1..].to_string();
            while !collected.trim_end().ends_with(q) && i < lines.len() {
                collected.push('\n');
                collected.push_str(lines[i]);
                i += 1;
            }
            let inner = collected
                .trim_end()
                .strip_suffix(q)
                .unwrap_or(&collected)
                .to_string();
            if q == '"' {
                inner.replace("\\n", "\n").replace("\\\"", "\"")
            } else {
                inner
            }
        } else {
            match rest.find(" #") {
                Some(pos) => rest[..pos].trim().to_string(),
                None => rest.to_string(),
            }
        };
        leaves.push(Leaf {
            document: 0,
            path: vec![Segment::Key(key.to_string())],
            value,
            line: start_line,
            column,
            literal_block: false,
            tag: None,
            alias_keys: Vec::new(),
        });
    }
    leaves
}

/// INI inventories and ansible.cfg: `[section]`, `key = value` lines and host lines with
/// `var=value` pairs. Key paths are `section.key` / `section.host.var`.
pub fn parse_ini(text: &str) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    let mut section = String::new();
    for (index, line) in text.split('\n').enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].to_string();
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let first = trimmed.split_whitespace().next().unwrap_or("");
        // `key = value` / `key=value` (one token before `=`), unlike a host line
        // `web1 ansible_host=...` whose first token has no `=`.
        let key_value_line = section.ends_with(":vars")
            || trimmed
                .split_once('=')
                .is_some_and(|(before, _)| !before.trim().contains(char::is_whitespace));
        if key_value_line {
            if let Some((key, value)) = trimmed.split_once('=') {
                let value = value.trim();
                let column = indent + trimmed.len() - value.len() + 1;
                leaves.push(leaf(
                    &section,
                    None,
                    key.trim(),
                    crate::text::unquote(value),
                    index + 1,
                    column,
                ));
                continue;
            }
        }
        // A host line: the host name, then `var=value` pairs.
        let host = first;
        let mut offset = indent + first.len();
        let rest = &line[offset.min(line.len())..];
        for (key, value, pos) in host_pairs(rest) {
            offset = indent + first.len() + pos;
            leaves.push(leaf(
                &section,
                Some(host),
                &key,
                &value,
                index + 1,
                offset + 1,
            ));
        }
    }
    leaves
}

fn leaf(
    section: &str,
    host: Option<&str>,
    key: &str,
    value: &str,
    line: usize,
    column: usize,
) -> Leaf {
    let mut path = Vec::new();
    if !section.is_empty() {
        path.push(Segment::Key(section.to_string()));
    }
    if let Some(host) = host {
        path.push(Segment::Key(host.to_string()));
    }
    path.push(Segment::Key(key.to_string()));
    Leaf {
        document: 0,
        path,
        value: value.to_string(),
        line,
        column,
        literal_block: false,
        tag: None,
        alias_keys: Vec::new(),
    }
}

/// Splits `a=1 b="x y" c='z'` into (key, unquoted value, byte offset of the value).
fn host_pairs(rest: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let bytes: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != '=' && !bytes[i].is_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != '=' {
            continue;
        }
        let key: String = bytes[key_start..i].iter().collect();
        i += 1;
        let value_start = i;
        let value: String = if i < bytes.len() && (bytes[i] == '"' || bytes[i] == '\'') {
            let q = bytes[i];
            i += 1;
            let s = i;
            while i < bytes.len() && bytes[i] != q {
                i += 1;
            }
            let v: String = bytes[s..i.min(bytes.len())].iter().collect();
            i += 1;
            v
        } else {
            let s = i;
            while i < bytes.len() && !bytes[i].is_whitespace() {
                i += 1;
            }
            bytes[s..i].iter().collect()
        };
        let byte_pos = bytes[..value_start].iter().map(|c| c.len_utf8()).sum();
        out.push((key, value, byte_pos));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(text: &str) -> Vec<(String, String, usize)> {
        parse_yaml(text)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.key_path(), l.value, l.line))
            .collect()
    }

    #[test]
    fn an_alias_is_not_a_second_leaf() {
        let got = leaves("base: &pw Qz8-mP2q-R7tY\nother: *pw\nmerged:\n  <<: *pw\n");
        assert_eq!(got, [("base".to_string(), "Qz8-mP2q-R7tY".to_string(), 1)]);
    }

    #[test]
    fn documents_after_the_first_are_numbered_in_the_key_path() {
        let got = leaves("---\na: 1\n---\nb: 2\n");
        assert_eq!(got[1].0, "[doc 1].b");
        assert_eq!(got[1].2, 4);
    }

    #[test]
    fn tags_are_kept_and_block_scalars_point_at_their_first_content_line() {
        let doc = parse_yaml(
            "x: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\ny: !unsafe '{{ raw }}'\n",
        )
        .unwrap_or_default();
        assert_eq!(doc[0].tag.as_deref(), Some("!vault"));
        assert_eq!(doc[0].line, 2);
        assert!(doc[0].literal_block);
        assert_eq!(doc[1].tag.as_deref(), Some("!unsafe"));
    }

    #[test]
    fn nested_sequences_and_dotted_keys_build_the_key_path() {
        let got = leaves("users:\n  - name: a\n    password: b1\n\"db.password\": x\n");
        assert_eq!(got[1].0, "users[0].password");
        assert_eq!(got[2].0, "db.password");
    }

    #[test]
    fn json_keeps_line_numbers_and_unescapes_newlines() {
        let doc =
            parse_yaml("{\n  \"a\": 1,\n  \"key\": \"-----BEGIN\\nX\"\n}\n").unwrap_or_default();
        assert_eq!(doc[1].line, 3);
        assert!(doc[1].value.contains('\n'));
    }

    #[test]
    fn deep_nesting_is_a_parse_failure_not_a_stack_overflow() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_yaml(&deep).is_err());
        let nested_maps = format!("{}1{}", "{a: ".repeat(300), "}".repeat(300));
        let err = parse_yaml(&nested_maps).err();
        assert!(
            err.is_some_and(|e| e.message.contains("nesting") || e.message.contains("recursion"))
        );
    }

    #[test]
    fn dotenv_values_are_unquoted_and_multiline_quotes_joined() {
        let got = parse_dotenv("# c\nexport A=1\nB=\"x\\ny\"\nC='multi\nline'\nD=plain # note\n");
        let values: Vec<_> = got
            .iter()
            .map(|l| (l.key_path(), l.value.clone(), l.line))
            .collect();
        assert_eq!(values[1], ("B".into(), "x\ny".into(), 3));
        assert_eq!(values[2], ("C".into(), "multi\nline".into(), 4));
        assert_eq!(values[3], ("D".into(), "plain".into(), 6));
    }

    #[test]
    fn ini_inventories_give_group_vars_and_host_vars() {
        let got = parse_ini("[web]\nweb1 ansible_host=10.0.0.1 ansible_password=\"a b\"\n[web:vars]\nhttp_port=80\n[defaults]\nvault_password_file = ~/.vp\n");
        let values: Vec<_> = got
            .iter()
            .map(|l| (l.key_path(), l.value.clone(), l.line))
            .collect();
        assert_eq!(
            values[1],
            ("web.web1.ansible_password".into(), "a b".into(), 2)
        );
        assert_eq!(values[2], ("web:vars.http_port".into(), "80".into(), 4));
        assert_eq!(
            values[3],
            ("defaults.vault_password_file".into(), "~/.vp".into(), 6)
        );
    }
}
