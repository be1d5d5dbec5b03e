//! Mentions: a message names a person with the token `<@id>` in its text.
//!
//! The token holds the user's id, not their name, so a rename breaks no
//! mention: clients draw it as `@` and the person's name as it is now.
//! The store keeps who a message mentions (for the room list's mention
//! counts) and the wire lists the ids beside the text; both read them
//! from the text with [`mentioned`], so the two can never disagree.

use crate::model::UserId;

/// Mentions counted in one message at most; tokens past these stay text.
pub const MAX_MENTIONS: usize = 50;

/// The users `text` mentions, each once, in the order first named.
pub fn mentioned(text: &str) -> Vec<UserId> {
    let mut found: Vec<UserId> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        // One spelling per id, as in paths: no leading zero.
        let canonical = digits > 0 && digits <= 18 && rest.as_bytes()[0] != b'0';
        if !canonical || rest.as_bytes().get(digits) != Some(&b'>') {
            continue;
        }
        let id = UserId(
            rest[..digits]
                .parse()
                .expect("1 to 18 ASCII digits fit an i64"),
        );
        rest = &rest[digits + 1..];
        if id.0 > 0 && !found.contains(&id) {
            found.push(id);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{MAX_MENTIONS, mentioned};
    use crate::model::UserId;

    /// The token that mentions `user`, as the web app writes it.
    fn token(user: UserId) -> String {
        format!("<@{}>", user.0)
    }

    fn ids(text: &str) -> Vec<i64> {
        mentioned(text).into_iter().map(|u| u.0).collect()
    }

    #[test]
    fn tokens_name_users_once_each_in_order() {
        assert_eq!(ids("hi <@12> and <@3>, <@12> again"), [12, 3]);
        assert_eq!(ids("<@7><@8>"), [7, 8]);
        assert_eq!(ids("李雷 <@42> 你好"), [42]);
        assert_eq!(ids(&token(UserId(9))), [9]);
    }

    #[test]
    fn near_misses_are_plain_text() {
        for text in [
            "<@>",
            "<@12",
            "<@ 12>",
            "<@12 >",
            "<@-3>",
            "<@0>",
            "<@1x>",
            "@12",
            "<12>",
            "<@99999999999999999999>",
            "<<@@12>>",
            "<@012>",
            "<@000000000000000002>",
        ] {
            assert_eq!(ids(text), Vec::<i64>::new(), "{text}");
        }
        // A broken token does not hide a good one after it.
        assert_eq!(ids("<@<@5>"), [5]);
    }

    #[test]
    fn a_message_counts_a_bounded_number_of_mentions() {
        let text: String = (1..=200).map(|i| format!("<@{i}> ")).collect();
        assert_eq!(mentioned(&text).len(), MAX_MENTIONS);
    }
}
