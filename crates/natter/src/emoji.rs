//! What may be a reaction: one emoji, or one emoticon code the web client
//! shows as an emoji (`:smile:`, `[强]`).
//!
//! The codes are read from the web client's own table
//! (`web/app/emoticons.js`), embedded at build time, so the server and the
//! client can never disagree about which codes exist.

use std::collections::HashSet;
use std::sync::OnceLock;

const EMOTICONS_JS: &str = include_str!("../../../web/app/emoticons.js");

/// Longest emoji sequence accepted, in bytes (the longest family and flag
/// sequences are about 35).
const MAX_EMOJI_BYTES: usize = 64;

/// The codes of `web/app/emoticons.js`'s `CODES` table.
fn codes() -> &'static HashSet<&'static str> {
    static CODES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    CODES.get_or_init(|| {
        let start = EMOTICONS_JS
            .find("new Map([")
            .expect("emoticons.js has its CODES table");
        let table = &EMOTICONS_JS[start..];
        let table = &table[..table.find("]);").expect("the CODES table ends")];
        // Entries look like `[':smile:', '😄']`: the code is the first
        // quoted string after each `['`.
        table
            .split("['")
            .skip(1)
            .filter_map(|entry| entry.split('\'').next())
            .collect()
    })
}

/// Whether `text` is one of the web client's emoticon codes.
pub fn is_known_code(text: &str) -> bool {
    codes().contains(text)
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1F1E5 | 0x1F200..=0x1F3FA | 0x1F400..=0x1FAFF
        | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x24C2 | 0x25A0..=0x25FF
        | 0x2600..=0x27BF | 0x2934 | 0x2935 | 0x2B00..=0x2BFF
        | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139)
}

fn is_regional_indicator(c: char) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&(c as u32))
}

fn is_skin_tone(c: char) -> bool {
    (0x1F3FB..=0x1F3FF).contains(&(c as u32))
}

fn is_tag(c: char) -> bool {
    (0xE0020..=0xE007E).contains(&(c as u32))
}

const VARIATION_EMOJI: char = '\u{FE0F}';
const JOINER: char = '\u{200D}';
const KEYCAP: char = '\u{20E3}';
const CANCEL_TAG: char = '\u{E007F}';

/// Whether `text` is exactly one emoji: a pictograph (with its emoji
/// presentation selector and skin tone), a flag, a keycap, a subdivision
/// flag, or such elements joined by zero-width joiners (families, jobs).
/// Letters, digits on their own, spaces and two emoji side by side are not.
pub fn is_single_emoji(text: &str) -> bool {
    if text.is_empty() || text.len() > MAX_EMOJI_BYTES {
        return false;
    }
    let mut chars = text.chars().peekable();
    loop {
        // One element.
        let Some(first) = chars.next() else {
            return false;
        };
        if is_regional_indicator(first) {
            if !chars.next().is_some_and(is_regional_indicator) {
                return false;
            }
        } else if first.is_ascii_digit() || first == '#' || first == '*' {
            chars.next_if_eq(&VARIATION_EMOJI);
            if chars.next() != Some(KEYCAP) {
                return false;
            }
        } else if is_pictograph(first) {
            let selected = chars.next_if_eq(&VARIATION_EMOJI).is_some();
            if !selected && chars.next_if(|&c| is_skin_tone(c)).is_some() {
                chars.next_if_eq(&VARIATION_EMOJI);
            }
            if chars.peek().is_some_and(|&c| is_tag(c)) {
                while chars.next_if(|&c| is_tag(c)).is_some() {}
                if chars.next() != Some(CANCEL_TAG) {
                    return false;
                }
            }
        } else {
            return false;
        }
        match chars.next() {
            None => return true,
            Some(JOINER) => continue,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_emoji_is_accepted_and_anything_else_refused() {
        for good in [
            "👍",
            "👍🏽",
            "❤️",
            "☕",
            "🇨🇳",
            "1️⃣",
            "#️⃣",
            "👩‍💻",
            "👨‍👩‍👧‍👦",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "🏳️‍🌈",
            "©",
        ] {
            assert!(is_single_emoji(good), "{good:?}");
        }
        for bad in [
            "",
            "a",
            "1",
            "👍👍",
            "👍 ",
            " 👍",
            "🇨",
            "👍\u{200D}",
            "\u{200D}👍",
            "x👍",
            "👍\u{FE0F}\u{FE0F}",
            "hello",
            "<b>",
            &"👍\u{200D}".repeat(20),
        ] {
            assert!(!is_single_emoji(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_web_clients_codes_are_known() {
        assert!(is_known_code(":smile:"));
        assert!(is_known_code("[强]"));
        assert!(is_known_code("[OK]"));
        assert!(!is_known_code(":nope:"));
        assert!(!is_known_code("['"));
        assert!(codes().len() > 100, "{}", codes().len());
    }
}
