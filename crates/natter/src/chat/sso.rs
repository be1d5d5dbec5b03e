//! Signing in with a host site's token: the site's backend signs a short
//! JWT for its logged-in user, and natter exchanges it for a session,
//! creating or updating the user from the claims.
//!
//! The checks follow the usual JWT pitfalls: the algorithm is the one
//! configured for the site (never `none`, never HS/RS confusion), `exp`,
//! `iat`, `sub`, `aud` and `iss` are required and checked, the lifetime is
//! bounded, clock skew is bounded, and a `jti` can be used once. Users of a
//! site live in the site's namespace, so no site can sign in a local user
//! or another site's.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Chat, Limit, Login};
use crate::error::{ChatError, ChatResult};
use crate::model::{RoomId, UserId, now_ms};
use crate::source::Source;
use crate::text::{AvatarUrl, DisplayName};

/// A configured host site, with its verification key ready.
pub struct Site {
    pub id: String,
    pub issuer: String,
    pub audience: String,
    pub algorithm: Algorithm,
    key: DecodingKey,
    /// Origins whose pages may embed natter and call its API.
    pub origins: Vec<String>,
    pub max_lifetime: Duration,
    pub clock_skew: Duration,
    /// Tokens without a `jti` are refused, so none can be replayed.
    pub require_jti: bool,
    /// How long a session made from this site's token lasts; the widget
    /// signs in again with a fresh token before it runs out.
    pub session_ttl: Duration,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// Checks a `[[sites]]` entry and prepares its key; errors name the site.
    pub fn from_settings(s: crate::config::SiteSettings) -> anyhow::Result<Site> {
        let id_ok = (1..=32).contains(&s.id.len())
            && s.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        anyhow::ensure!(id_ok, "site id {:?}: use 1-32 of a-z 0-9 _ -", s.id);
        anyhow::ensure!(s.id != "natter", "site id \"natter\" is natter's own");
        anyhow::ensure!(!s.issuer.is_empty(), "site {}: issuer is required", s.id);
        let (algorithm, key) = match s.algorithm.as_str() {
            "HS256" => {
                let secret = s.secret.as_deref().unwrap_or_default();
                anyhow::ensure!(
                    secret.len() >= 32,
                    "site {}: HS256 needs a secret of at least 32 bytes",
                    s.id
                );
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                )
            }
            "RS256" | "EdDSA" => {
                let pem = s.public_key.as_deref().unwrap_or_default().as_bytes();
                let key = if s.algorithm == "RS256" {
                    DecodingKey::from_rsa_pem(pem)
                } else {
                    DecodingKey::from_ed_pem(pem)
                };
                let key = key.map_err(|e| {
                    anyhow::anyhow!(
                        "site {}: public_key is not a {} PEM key: {e}",
                        s.id,
                        s.algorithm
                    )
                })?;
                anyhow::ensure!(
                    s.secret.is_none(),
                    "site {}: {} takes a public_key, not a secret",
                    s.id,
                    s.algorithm
                );
                let algorithm = if s.algorithm == "RS256" {
                    Algorithm::RS256
                } else {
                    Algorithm::EdDSA
                };
                (algorithm, key)
            }
            other => anyhow::bail!(
                "site {}: algorithm {other:?} is not HS256, RS256 or EdDSA",
                s.id
            ),
        };
        for origin in &s.origins {
            anyhow::ensure!(
                valid_origin(origin),
                "site {}: origin {origin:?} must be http(s)://host[:port] in lower case",
                s.id
            );
        }
        let lifetime = s.max_token_lifetime_secs.unwrap_or(300);
        let skew = s.clock_skew_secs.unwrap_or(30);
        anyhow::ensure!(
            (1..=86_400).contains(&lifetime) && skew <= 600,
            "site {}: max_token_lifetime_secs must be 1..=86400 and clock_skew_secs at most 600",
            s.id
        );
        let session_ttl = s.session_ttl_secs.unwrap_or(4 * 3600);
        anyhow::ensure!(
            (60..=30 * 86_400).contains(&session_ttl),
            "site {}: session_ttl_secs must be 60..=2592000",
            s.id
        );
        Ok(Site {
            audience: s.audience.unwrap_or_else(|| "natter".into()),
            id: s.id,
            issuer: s.issuer,
            algorithm,
            key,
            origins: s.origins,
            max_lifetime: Duration::from_secs(lifetime),
            clock_skew: Duration::from_secs(skew),
            require_jti: s.require_jti.unwrap_or(false),
            session_ttl: Duration::from_secs(session_ttl),
        })
    }

    /// Whether pages from `origin` may embed natter for this site.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// `http(s)://host[:port]`, exactly as browsers send it in `Origin`: lower
/// case, no path, nothing else that could widen a CSP or CORS rule.
fn valid_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

/// The claims natter reads; `aud`, `iss`, `exp` and `nbf` are checked by
/// the JWT library.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    name: Option<String>,
    avatar: Option<String>,
    jti: Option<String>,
    #[serde(default)]
    rooms: Vec<i64>,
}

/// A refused token: each reason has its own code.
fn refused(code: &'static str, message: impl Into<String>) -> ChatError {
    ChatError::TokenRefused {
        code,
        message: message.into(),
    }
}

/// The token's header and payload, read without checking the signature,
/// only to choose the site and report a wrong algorithm clearly.
fn peek(token: &str) -> ChatResult<(String, Option<String>)> {
    let malformed = || refused("token_malformed", "the token is not a JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = |part: &str| -> ChatResult<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        serde_json::from_slice(&bytes).map_err(|_| malformed())
    };
    let alg = json(header)?["alg"]
        .as_str()
        .ok_or_else(malformed)?
        .to_owned();
    let iss = json(payload)?["iss"].as_str().map(str::to_owned);
    Ok((alg, iss))
}

impl Chat {
    pub(super) fn site(&self, id: &str) -> Option<&std::sync::Arc<Site>> {
        self.config.sites.iter().find(|s| s.id == id)
    }

    /// Whether some site lets pages of `origin` call the API.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.config.sites.iter().any(|s| s.allows_origin(origin))
    }

    /// The configured site by id.
    pub fn site_by_id(&self, id: &str) -> Option<std::sync::Arc<Site>> {
        self.site(id).cloned()
    }

    /// Exchanges a site's signed token for a session. `site` names the site;
    /// without it the token's `iss` chooses.
    pub async fn sso_login(
        &self,
        source: Source,
        site: Option<&str>,
        token: &str,
    ) -> ChatResult<Login> {
        self.limits.by_source(Limit::SiteSignIn, source).await?;
        if token.len() > 8192 {
            return Err(refused("token_malformed", "the token is too long"));
        }
        let (alg, iss) = peek(token)?;
        let site = match site {
            Some(id) => self.site(id),
            None => iss
                .as_deref()
                .and_then(|iss| self.config.sites.iter().find(|s| s.issuer == iss)),
        }
        .cloned()
        .ok_or_else(|| {
            refused(
                "token_unknown_site",
                "no configured site matches this token",
            )
        })?;
        let expected = format!("{:?}", site.algorithm);
        if alg != expected {
            return Err(refused(
                "token_wrong_algorithm",
                format!("this site's tokens are signed with {expected}, not {alg}"),
            ));
        }
        let mut validation = Validation::new(site.algorithm);
        validation.set_audience(&[&site.audience]);
        validation.set_issuer(&[&site.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.leeway = site.clock_skew.as_secs();
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &site.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => {
                    refused("token_bad_signature", "the signature does not match")
                }
                ErrorKind::ExpiredSignature => refused("token_expired", "the token has expired"),
                ErrorKind::ImmatureSignature => {
                    refused("token_not_yet_valid", "the token is not valid yet")
                }
                ErrorKind::InvalidAudience => refused(
                    "token_wrong_audience",
                    format!("aud must be {:?}", site.audience),
                ),
                ErrorKind::InvalidIssuer => refused(
                    "token_wrong_issuer",
                    format!("iss must be {:?}", site.issuer),
                ),
                ErrorKind::InvalidAlgorithm => refused("token_wrong_algorithm", "wrong algorithm"),
                ErrorKind::MissingRequiredClaim(c) => {
                    refused("token_missing_claim", format!("the token has no {c}"))
                }
                _ => refused("token_malformed", "the token cannot be read"),
            })?
            .claims;
        let missing =
            |claim: &str| refused("token_missing_claim", format!("the token has no {claim}"));
        let sub = claims.sub.as_deref().ok_or_else(|| missing("sub"))?;
        let iat = claims.iat.ok_or_else(|| missing("iat"))?;
        let exp = claims.exp.ok_or_else(|| missing("exp"))?;
        let now = now_ms() / 1000;
        let skew = site.clock_skew.as_secs() as i64;
        if iat < 0 || iat > now + skew {
            return Err(refused("token_not_yet_valid", "iat is in the future"));
        }
        if exp
            .checked_sub(iat)
            .is_none_or(|life| life > site.max_lifetime.as_secs() as i64)
        {
            return Err(refused(
                "token_lifetime_too_long",
                format!("tokens may live at most {} s", site.max_lifetime.as_secs()),
            ));
        }
        let sub = sub.trim();
        if sub.is_empty() || sub.len() > 128 || sub.chars().any(char::is_control) {
            return Err(refused(
                "token_invalid_claim",
                "sub must be 1-128 characters",
            ));
        }
        let name = match claims.name.as_deref() {
            Some(name) => DisplayName::parse(name)
                .map_err(|e| refused("token_invalid_claim", format!("name: {}", e.message)))?
                .into_string(),
            None => sub.chars().take(DisplayName::MAX_CHARS).collect(),
        };
        let avatar = claims
            .avatar
            .as_deref()
            .map(|a| {
                AvatarUrl::parse(a)
                    .map(AvatarUrl::into_string)
                    .map_err(|e| refused("token_invalid_claim", format!("avatar: {}", e.message)))
            })
            .transpose()?;
        // Every claim is checked before anything is written or claimed: a
        // refused token changes nothing, not even its jti.
        if claims.rooms.len() > 50 {
            return Err(refused(
                "token_invalid_claim",
                "rooms lists at most 50 rooms",
            ));
        }
        if claims.rooms.iter().any(|&room| room < 1) {
            return Err(refused(
                "token_invalid_claim",
                "rooms lists positive room ids",
            ));
        }
        if claims
            .jti
            .as_ref()
            .is_some_and(|jti| jti.is_empty() || jti.len() > 128)
        {
            return Err(refused(
                "token_invalid_claim",
                "jti must be 1-128 characters",
            ));
        }
        if site.require_jti && claims.jti.is_none() {
            return Err(refused(
                "token_missing_claim",
                "this site's tokens must carry a jti",
            ));
        }
        // Whether the user may sign in at all, also before the jti is used up.
        match self.store.site_user(&site.id, sub).await? {
            None if self.config.registration == super::RegistrationMode::Closed => {
                return Err(ChatError::RegistrationClosed);
            }
            Some(known) if self.store.is_deactivated(known.id).await? == Some(true) => {
                return Err(ChatError::AccountDeactivated);
            }
            _ => {}
        }
        if let Some(jti) = &claims.jti {
            let fresh = self
                .store
                // Remembered as long as the token could still be accepted.
                .claim_token_id(&site.id, jti, (exp + skew).saturating_mul(1000), now_ms())
                .await?;
            if !fresh {
                return Err(refused("token_replayed", "this token was already used"));
            }
        }
        let user = self
            .store
            .upsert_site_user(&site.id, sub, name, avatar, now_ms())
            .await?;
        self.remember_name(&user);
        for room in claims.rooms {
            self.join_as_site(RoomId(room), user.id).await?;
        }
        self.open_session(user, site.session_ttl).await
    }

    /// Adds a site user to a public group room its token names, as if the
    /// user had joined it. Other rooms (private ones, direct conversations,
    /// ones that do not exist) are skipped: a token cannot open a door the
    /// user could not open themselves (nor one of another community).
    /// Private rooms get their members through the admin API.
    async fn join_as_site(&self, room: RoomId, user: UserId) -> ChatResult<()> {
        let community = self.community_of(user).await?;
        let joinable = self.store.room(room).await?.is_some_and(|r| {
            r.kind == crate::model::RoomKind::Group
                && r.visibility == crate::model::Visibility::Public
                && self.reaches(&community, &super::Community::of_room(&r))
        });
        if joinable {
            self.add_member(room, user, user).await?;
        }
        Ok(())
    }
}
