//! Any text through every reader the gate has (YAML, dotenv, INI, the line scanner) and the
//! rules over every value they yield: a parse error is an answer, a panic or an abort (stack
//! overflow on deep nesting) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_gate::{formats, rules};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let config = rules::RuleConfig::default();
    if let Ok(leaves) = formats::parse_yaml(&text) {
        for leaf in &leaves {
            let _ = leaf.key_path();
        }
    }
    for leaf in formats::parse_dotenv(&text)
        .iter()
        .chain(formats::parse_ini(&text).iter())
    {
        let _ = leaf.key_path();
    }
    let _ = rules::scan_lines(&text, &config, 0);
    for line in text.lines().take(64) {
        if let Some((key, value)) = line.split_once(':') {
            let _ = rules::classify(key, value, &config);
        }
    }
});
