//! Validated user input: every name, title, password and message passes
//! through one of these parsers before it reaches the domain or a store, so
//! the rules are the same whatever database sits underneath.

use std::fmt;

/// A refused input, with a stable machine-readable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Refuses NUL and other control characters. Newline, carriage return and
/// tab are allowed only where `multiline` is set (message bodies). JSON may legally carry
/// `\u0000`, but no database should ever receive it.
fn check_characters(field: &str, value: &str, multiline: bool) -> Result<(), Invalid> {
    let bad = value.chars().find(|&c| {
        let allowed_ws = multiline && matches!(c, '\n' | '\r' | '\t');
        (c.is_control() && !allowed_ws) || c == '\u{2028}' || c == '\u{2029}'
    });
    match bad {
        Some(c) => Err(Invalid::new(
            "control_characters",
            format!("{field} contains a control character (U+{:04X})", c as u32),
        )),
        None => Ok(()),
    }
}

/// Unicode format characters (general category Cf: bidi controls,
/// zero-width characters, invisible operators, tags) and the fillers that
/// render as nothing. In a name they let one person pass for another
/// (`"\u{202e}ecila"` shows as "alice" backwards, `"ali\u{200b}ce"`
/// looks like "alice") or look like no name at all.
fn is_format_or_filler(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}' | '\u{0891}' | '\u{08E2}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Marks that draw nothing on their own: variation selectors and
/// combining marks. A name made only of these looks empty.
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE00}'..='\u{FE0F}' | '\u{FE20}'..='\u{FE2F}')
}

/// The one format character a name may hold: the zero-width joiner
/// between two symbols, which builds emoji such as 👩‍💻. Next to a
/// letter or digit it would only hide something.
fn is_emoji_joiner(before: Option<char>, c: char, after: Option<char>) -> bool {
    let symbol = |c: Option<char>| {
        c.is_some_and(|c| c >= '\u{2000}' && !c.is_alphanumeric() && !is_format_or_filler(c))
    };
    c == '\u{200D}' && symbol(before) && symbol(after)
}

/// Checks the shared rules for one-line names: trimmed, not empty, at most
/// `max` characters, no control or format characters, and something
/// visible in it.
fn one_line(field: &str, value: &str, max: usize, code: &'static str) -> Result<String, Invalid> {
    check_characters(field, value, false)?;
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        if (is_format_or_filler(c) || c == '\u{200D}') && !is_emoji_joiner(before, c, after) {
            return Err(Invalid::new(
                code,
                format!(
                    "{field} contains an invisible or format character (U+{:04X})",
                    c as u32
                ),
            ));
        }
    }
    let trimmed = value.trim();
    if !trimmed
        .chars()
        .any(|c| !c.is_whitespace() && !is_mark(c) && c != '\u{200D}')
    {
        return Err(Invalid::new(code, format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(Invalid::new(
            code,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Names that belong to natter itself: the system user signs admin
/// notices as "natter", and an account called `admin` or `system` would
/// pass for the operator.
const RESERVED_NAMES: [&str; 7] = [
    "natter",
    "system",
    "admin",
    "administrator",
    "root",
    "moderator",
    "support",
];

/// The prefix of the local accounts an archive import makes; no one
/// registers a name with it.
pub const IMPORTED_PREFIX: &str = "xml-";

/// A name folded for comparison with the reserved ones: lower case,
/// full-width Latin as ASCII, spaces, dots, dashes and underscores gone.
fn folded(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_reserved(name: &str) -> bool {
    let name = folded(name);
    RESERVED_NAMES.contains(&name.as_str())
}

/// A login name: 3–32 characters of `a-z 0-9 _ . -`, starting with a letter
/// or digit. Stored lower-case, so `Alice` and `alice` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

/// The longest login name, in characters.
pub const USERNAME_MAX_CHARS: usize = 32;

impl Username {
    /// Applies the username rules stated in docs/api.md.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let lower = value.to_ascii_lowercase();
        let len = lower.chars().count();
        let ok_chars = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        let ok_start = lower
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !(3..=USERNAME_MAX_CHARS).contains(&len) || !ok_chars || !ok_start {
            return Err(Invalid::new(
                "invalid_username",
                "username must be 3-32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
            ));
        }
        Ok(Username(lower))
    }

    /// A name for a new account: the rules above, and none of natter's
    /// own names. (Logins use [`Username::parse`], so an account made
    /// before a name was reserved still signs in.)
    pub fn parse_new(value: &str) -> Result<Self, Invalid> {
        let name = Self::parse(value)?;
        // `xml-<id>` names the accounts an archive import makes
        // (archive/import.rs): registered first, one would receive that
        // person's history.
        if is_reserved(&name.0) || name.0.starts_with(IMPORTED_PREFIX) {
            return Err(Invalid::new(
                "reserved_name",
                format!("the username {:?} is reserved", name.0),
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8–1024 bytes. The upper bound keeps hashing cost bounded.
pub struct Password(String);

impl Password {
    /// Applies the length rules; any characters are allowed.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.chars().count() < 8 {
            return Err(Invalid::new(
                "invalid_password",
                "password must be at least 8 characters",
            ));
        }
        if value.len() > 1024 {
            return Err(Invalid::new(
                "invalid_password",
                "password must be at most 1024 bytes",
            ));
        }
        Ok(Password(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name shown next to a user's messages: 1–64 characters, one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    /// Trims and checks a display name a host site or the admin API
    /// gives: the site is the authority on its users' names.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        one_line(
            "display_name",
            value,
            Self::MAX_CHARS,
            "invalid_display_name",
        )
        .map(DisplayName)
    }

    /// A display name people choose for themselves: the rules above, and
    /// none of natter's own names.
    pub fn parse_chosen(value: &str) -> Result<Self, Invalid> {
        let name = Self::parse(value)?;
        if is_reserved(&name.0) {
            return Err(Invalid::new(
                "reserved_name",
                format!("the display name {:?} is reserved", name.0),
            ));
        }
        Ok(name)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A group room's title: 1–100 characters, one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomTitle(String);

impl RoomTitle {
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks a room title.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        one_line("title", value, Self::MAX_CHARS, "invalid_title").map(RoomTitle)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A user-chosen avatar: an `http(s)://` URL or a path on this server, at
/// most 512 characters. Anything else (`javascript:`, `data:`) is refused
/// because clients put it in an `<img src>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    /// Checks the scheme and length of an avatar URL.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        check_characters("avatar_url", value, false)?;
        let lower = value.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("https://")
            || lower.starts_with("http://")
            || (value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\"));
        if !scheme_ok || value.chars().count() > 512 || value.contains(char::is_whitespace) {
            return Err(Invalid::new(
                "invalid_avatar_url",
                "avatar_url must be an http(s) URL or a path starting with '/', at most 512 characters",
            ));
        }
        Ok(AvatarUrl(value.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A message body: 1..=`max_chars` characters, newlines and tabs allowed,
/// kept exactly as sent (emoticon codes included) but never blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Checks a message body against the configured length limit.
    pub fn parse(value: &str, max_chars: usize) -> Result<Self, Invalid> {
        check_characters("text", value, true)?;
        if value.trim().is_empty() {
            return Err(Invalid::new("empty_text", "text must not be empty"));
        }
        if value.chars().count() > max_chars {
            return Err(Invalid::new(
                "text_too_long",
                format!("text must be at most {max_chars} characters"),
            ));
        }
        Ok(MessageText(value.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A reaction: exactly one emoji, or one emoticon code the web client
/// knows ([`crate::emoji`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionText(String);

impl ReactionText {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if crate::emoji::is_single_emoji(value) || crate::emoji::is_known_code(value) {
            Ok(ReactionText(value.to_owned()))
        } else {
            Err(Invalid::new(
                "invalid_reaction",
                "a reaction is one emoji or one emoticon code such as :smile: or [强]",
            ))
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The sender's own id for a message, which makes retries safe:
/// 1–64 characters of `A-Z a-z 0-9 _ -` (a UUID fits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// Checks the charset and length of a client message id.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(Invalid::new(
                "invalid_client_msg_id",
                "client_msg_id must be 1-64 characters of A-Z, a-z, 0-9, '_', '-'",
            ));
        }
        Ok(ClientMsgId(value.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("Alice_1").unwrap().as_str(), "alice_1");
        for bad in ["ab", "_abc", "a b c", "ali\u{0}ce", "ällo", &"a".repeat(33)] {
            assert_eq!(Username::parse(bad).unwrap_err().code, "invalid_username");
        }
    }

    #[test]
    fn message_text_rules() {
        assert!(MessageText::parse("hi\r\n\tthere [微笑] :smile: 😀", 100).is_ok());
        assert_eq!(
            MessageText::parse("  \n", 100).unwrap_err().code,
            "empty_text"
        );
        assert_eq!(
            MessageText::parse("a\u{0}b", 100).unwrap_err().code,
            "control_characters"
        );
        assert_eq!(
            MessageText::parse("a\u{1b}[31m", 100).unwrap_err().code,
            "control_characters"
        );
        assert_eq!(
            MessageText::parse("abcd", 3).unwrap_err().code,
            "text_too_long"
        );
        // Length counts characters, not bytes.
        assert!(MessageText::parse("微笑微", 3).is_ok());
    }

    #[test]
    fn names_refuse_format_characters_and_invisible_fillers() {
        for bad in [
            "\u{202e}ecila",
            "ali\u{200b}ce",
            "\u{3164}",
            "\u{115f}\u{1160}",
            "a\u{2066}b",
            "\u{feff}bob",
            "bob\u{e0041}",
            "x\u{200d}y",
            "\u{0301}\u{0301}",
            "\u{fe0f}",
            "\u{2800}",
            " \u{3000} ",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert_eq!(err.code, "invalid_display_name", "{bad:?}");
            assert!(RoomTitle::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "李雷",
            "Zoë",
            "👩\u{200d}💻 dev",
            "🏳\u{fe0f}\u{200d}🌈",
            "Ренат",
            "José",
        ] {
            assert!(DisplayName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn natters_own_names_are_reserved() {
        for name in [
            "natter",
            "Natter",
            "ｎａｔｔｅｒ",
            "n a t t e r",
            "System",
            "ADMIN",
        ] {
            let err = DisplayName::parse_chosen(name).unwrap_err();
            assert_eq!(err.code, "reserved_name", "{name}");
            assert!(
                DisplayName::parse(name).is_ok(),
                "a site may name its user {name}"
            );
        }
        for name in ["natter", "admin", "root", "sys.tem", "support"] {
            let err = Username::parse_new(name).unwrap_err();
            assert_eq!(err.code, "reserved_name", "{name}");
            assert!(Username::parse(name).is_ok(), "logins still parse {name}");
        }
        assert!(Username::parse_new("natterfan").is_ok());
        assert!(DisplayName::parse_chosen("natter fan").is_ok());
    }

    #[test]
    fn names_and_urls() {
        assert_eq!(DisplayName::parse("  Bob  ").unwrap().into_string(), "Bob");
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(RoomTitle::parse(&"x".repeat(101)).is_err());
        assert!(AvatarUrl::parse("https://example.com/a.png").is_ok());
        assert!(AvatarUrl::parse("/api/v1/users/1/avatar.svg").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,xx",
            "//evil.example/x",
            "/\\evil.example/x",
        ] {
            assert!(AvatarUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(ClientMsgId::parse("3f2a-99_x").is_ok());
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse("a b").is_err());
    }
}
