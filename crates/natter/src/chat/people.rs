//! Finding people by name, to start a direct conversation with someone
//! no shared room leads to. A search sees only the caller's community
//! (communities.rs), never deactivated accounts or natter's own system
//! user, and answers a short page: it finds people, it does not list a
//! directory.

use super::{Caller, Chat, Community, Limit, invalid};
use crate::error::{ChatError, ChatResult};
use crate::model::User;
use crate::store::PeopleQuery;

/// The longest search text, in characters.
const MAX_QUERY_CHARS: usize = 64;

/// The most people one search answers with.
pub const MAX_PEOPLE: usize = 50;

impl Chat {
    /// People of the caller's community whose name holds `text`, the
    /// caller left out.
    pub async fn search_people(
        &self,
        caller: &Caller,
        text: &str,
        limit: Option<usize>,
    ) -> ChatResult<Vec<User>> {
        if !self.config.people_search {
            return Err(ChatError::NotAllowed(
                "finding people by name is turned off on this server",
            ));
        }
        let text = name_query(text)?;
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_PEOPLE).contains(&limit) {
            return Err(invalid(
                "invalid_limit",
                format!("limit must be 1..={MAX_PEOPLE}"),
            ));
        }
        self.limits
            .by_user(Limit::PeopleSearch, caller.user)
            .await?;
        let community = self.community_of(caller.user).await?;
        let (username_prefix, local_only) = match &community {
            _ if self.config.shared_community => (None, false),
            Community::Site(site) => (Some(format!("{site}:")), false),
            Community::Local => (None, true),
            Community::Everyone => (None, false),
        };
        // One more than asked, in case the caller is among them.
        let found = self
            .store
            .search_people(PeopleQuery {
                text: text.to_owned(),
                username_prefix,
                local_only,
                limit: limit + 1,
            })
            .await?;
        Ok(found
            .into_iter()
            .filter(|u| u.id != caller.user && Community::of_user(u) != Community::Everyone)
            .take(limit)
            .collect())
    }
}

/// The text of a search by name, trimmed: 1 to 64 characters, none of
/// them a control character or the mark of bytes that were not UTF-8.
pub(super) fn name_query(text: &str) -> ChatResult<&str> {
    let text = text.trim();
    let chars = text.chars().count();
    // U+FFFD: the query's bytes were not UTF-8 (decoding replaced them).
    let garbled = text.chars().any(|c| c.is_control() || c == '\u{FFFD}');
    if chars == 0 || chars > MAX_QUERY_CHARS || garbled {
        return Err(invalid(
            "invalid_query",
            format!("q must be 1..={MAX_QUERY_CHARS} characters of a name"),
        ));
    }
    Ok(text)
}
