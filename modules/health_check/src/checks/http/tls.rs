//! Just enough DER to read a certificate's notAfter: no X.509 crate for one field.

/// The certificate's notAfter as seconds since the Unix epoch, or `None` when the bytes are not
/// a certificate this reader understands.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, certificate, _) = read_tlv(der)?;
    expect(tag, 0x30)?;
    let (tag, tbs, _) = read_tlv(certificate)?;
    expect(tag, 0x30)?;
    let mut rest = tbs;
    let (tag, _, after) = read_tlv(rest)?;
    if tag == 0xA0 {
        // [0] EXPLICIT version, present from X.509 v2 on.
        rest = after;
    }
    // serialNumber, signature, issuer: skipped.
    for _ in 0..3 {
        rest = read_tlv(rest)?.2;
    }
    let (tag, validity, _) = read_tlv(rest)?;
    expect(tag, 0x30)?;
    let (_, _, after_not_before) = read_tlv(validity)?;
    let (tag, not_after, _) = read_tlv(after_not_before)?;
    let text = std::str::from_utf8(not_after).ok()?;
    match tag {
        0x17 => parse_time(text, true),
        0x18 => parse_time(text, false),
        _ => None,
    }
}

fn expect(tag: u8, wanted: u8) -> Option<()> {
    (tag == wanted).then_some(())
}

/// One tag-length-value: (tag, contents, the bytes after it). Single-byte tags only, which is
/// all a certificate uses up to its validity.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let mut len = 0usize;
        for &byte in &rest[..octets] {
            len = (len << 8) | usize::from(byte);
        }
        rest = &rest[octets..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, UTC only (RFC 5280 4.1.2.5).
fn parse_time(text: &str, two_digit_year: bool) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = if two_digit_year {
        let yy: i64 = digits.get(..2)?.parse().ok()?;
        (
            if yy >= 50 { 1900 + yy } else { 2000 + yy },
            digits.get(2..)?,
        )
    } else {
        (digits.get(..4)?.parse().ok()?, digits.get(4..)?)
    };
    if rest.len() != 10 {
        return None;
    }
    let field = |range: std::ops::Range<usize>| rest.get(range)?.parse::<u32>().ok();
    let (month, day) = (field(0..2)?, field(2..4)?);
    let (hour, minute, second) = (field(4..6)?, field(6..8)?, field(8..10)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = ansible_module::time::days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=fixture -days 3650`;
    /// `openssl x509 -enddate` says notAfter=Nov 22 10:58:00 2036 GMT.
    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/cert.der");

    #[test]
    fn reads_not_after_of_a_real_certificate() {
        let secs = not_after(FIXTURE).unwrap();
        assert_eq!(
            ansible_module::time::rfc3339_from_unix(secs),
            "2036-11-22T10:58:00Z"
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        for cut in 0..FIXTURE.len().min(200) {
            let _ = not_after(&FIXTURE[..cut]);
        }
    }

    #[test]
    fn both_time_forms() {
        assert_eq!(parse_time("500101000000Z", true), Some(-631_152_000));
        assert_eq!(parse_time("20500101000000Z", false), Some(2_524_608_000));
        assert_eq!(parse_time("20501301000000Z", false), None);
    }
}
