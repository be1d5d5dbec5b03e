//! The query of `GET /api/v1/events`, read in one pass.
//!
//! Every delivery of a long poll is answered and followed by a new poll,
//! so this query is parsed once per delivery: through axum's `Query`
//! (serde_urlencoded behind serde_path_to_error) that cost about as many
//! instructions as checking the cursor's HMAC tag, for four parameters.
//! This reads them in one pass with `form_urlencoded` (what
//! serde_urlencoded decodes with), borrowing every value that has nothing
//! to decode, and copies only the cursor and the watched rooms.
//!
//! It accepts what `Query` accepted: `application/x-www-form-urlencoded`
//! (`+` is a space, `%XX` a byte, invalid UTF-8 replaced), unknown
//! parameters ignored, a repeated known one refused, an empty value an
//! empty string (and so no number).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::error::ApiError;

/// The parameters of a poll.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollQuery {
    pub cursor: Option<String>,
    /// Seconds to wait when nothing is new.
    pub timeout: Option<u64>,
    /// Events in the answer at most (a slow link asks for fewer).
    pub limit: Option<usize>,
    /// The rooms the page has open, comma separated (docs/protocol.md,
    /// "Presence").
    pub watch: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PollQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        PollQuery::parse(parts.uri.query().unwrap_or_default())
    }
}

impl PollQuery {
    /// Reads `cursor`, `timeout`, `limit` and `watch` from a query string.
    pub fn parse(query: &str) -> Result<PollQuery, ApiError> {
        let mut q = PollQuery::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "cursor" => set(&mut q.cursor, "cursor", value.into_owned())?,
                "watch" => set(&mut q.watch, "watch", value.into_owned())?,
                "timeout" => set(&mut q.timeout, "timeout", number("timeout", &value)?)?,
                "limit" => set(&mut q.limit, "limit", number("limit", &value)?)?,
                _ => {}
            }
        }
        Ok(q)
    }
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(invalid(format!("duplicate field `{name}`")));
    }
    *slot = Some(value);
    Ok(())
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| invalid(format!("{name}: {e}")))
}

fn invalid(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("Failed to deserialize query string: {detail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<PollQuery, String> {
        PollQuery::parse(query).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn reads_the_four_parameters() {
        assert_eq!(
            parse("cursor=AbC-_9&timeout=30&limit=5&watch=1,2&other=x"),
            Ok(PollQuery {
                cursor: Some("AbC-_9".into()),
                timeout: Some(30),
                limit: Some(5),
                watch: Some("1,2".into()),
            })
        );
        assert_eq!(parse(""), Ok(PollQuery::default()));
        assert_eq!(
            parse("&&cursor=&watch"),
            Ok(PollQuery {
                cursor: Some(String::new()),
                watch: Some(String::new()),
                ..PollQuery::default()
            })
        );
    }

    #[test]
    fn decodes_as_forms_do() {
        let q = parse("cursor=a%2Bb+c%2&watch=1%2C2&%74imeout=%33").unwrap();
        assert_eq!(q.cursor.as_deref(), Some("a+b c%2"));
        assert_eq!(q.watch.as_deref(), Some("1,2"));
        assert_eq!(q.timeout, Some(3));
        let q = parse("cursor=%FF%FEok").unwrap();
        assert_eq!(q.cursor.as_deref(), Some("\u{fffd}\u{fffd}ok"));
    }

    #[test]
    fn refuses_repeats_and_non_numbers() {
        for bad in [
            "cursor=a&cursor=b",
            "timeout=1&timeout=1",
            "timeout=x",
            "timeout=",
            "timeout=-1",
            "limit=1.5",
            "limit=99999999999999999999999",
        ] {
            let error = PollQuery::parse(bad).expect_err(bad);
            assert!(format!("{error:?}").contains("invalid_query"), "{bad}");
        }
    }
}
