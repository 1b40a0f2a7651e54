//! Small text helpers shared by the parsers and the rules: line-break normalisation (so CRLF and
//! lone-CR files get the same line numbers as LF files), entropy, masking.

/// Rewrites CRLF and lone CR line breaks to LF. Every break stays exactly one break, so a line
/// number counted on the result is the line number an editor shows for the original.
pub fn normalize_line_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\r') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0usize; 256];
    let mut total = 0usize;
    for b in value.bytes() {
        counts[usize::from(b)] += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// A hint that helps a person find the value without revealing it: two leading characters of a
/// long value, nothing of a short one.
pub fn masked_hint(value: &str) -> String {
    let count = value.chars().count();
    if count >= 12 {
        let head: String = value.chars().take(2).collect();
        format!("{head}****")
    } else {
        "****".to_string()
    }
}

/// Strips one pair of matching quotes around a value, as INI inventories, dotenv files and
/// shell-like configs allow.
pub fn unquote(value: &str) -> &str {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_lone_cr_become_one_break_each() {
        assert_eq!(normalize_line_breaks("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn entropy_of_a_repeated_character_is_zero() {
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!(shannon_entropy("aZ3$kQ9!") > 2.9);
    }

    #[test]
    fn a_short_value_gives_no_characters_in_its_hint() {
        assert_eq!(masked_hint("hunter2"), "****");
        assert_eq!(masked_hint("hunter2-is-long"), "hu****");
    }
}
