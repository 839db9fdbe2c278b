//! The comment key (`comment-key`) as it appears in comment markers and report file names.

/// Encoded keys longer than this are cut and end in a hash of the whole key.
const MAX_ENCODED_KEY: usize = 200;

/// A key as it appears in markers (`keep_slash`) and file names: ASCII letters, digits and
/// `-`, `_`, `.` kept, every other UTF-8 byte percent-encoded, so distinct keys stay distinct
/// and nothing in the key can end an HTML comment or leave a folder. An empty key is
/// `default`.
pub fn encode_key(key: &str, keep_slash: bool) -> String {
    if key.is_empty() {
        return "default".to_string();
    }
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.len() > MAX_ENCODED_KEY {
        // `~` is always encoded above, so this suffix cannot come from a key.
        let mut cut = MAX_ENCODED_KEY;
        while out[..cut].ends_with('%') || out[..cut.saturating_sub(1)].ends_with('%') {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], fnv1a(key.as_bytes()));
    }
    out
}

/// FNV-1a, 64 bits: a stable hash that needs no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
