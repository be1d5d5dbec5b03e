//! Host sites sign their users in with short-lived tokens: every check of
//! the JWT pitfalls list has its own refusal code, and nothing is created
//! by a refused token.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use natter::chat::Site;
use natter::config::SiteSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, assert_error};

const SECRET: &str = "school-secret-of-at-least-32-bytes!!";
const OTHER_SECRET: &str = "another-secret-of-at-least-32-bytes!";

/// Test-only keys, made with `openssl genpkey` for these tests.
const ED_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIG3+fOb+6IqqPrKePlRRbkjy76Dnmp+9RrRaj06y2+ew
-----END PRIVATE KEY-----";
const ED_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAU3G5LO/3hh7Kz+zeslL6MO+cJ46KCaYxZVVWx9PHfVk=
-----END PUBLIC KEY-----";
const RSA_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDtArPZA3Z/j0IO
c1d5KI+Q8dFBe6acUGsJSjaDj0jLJJcxrHhNvFzcC3mOnMc5+QMhA4FNpCvjMFzU
5lgXjjsKBPaVuATNvNRrAhIAsl4jAHnQ6o0NMQ3bkPTHJYgK0/+VZv1i4yzS90ua
TRB6MSMryJ/DxRmgY4WuKiLit4jfIjzlsSkupsLVwe28dhfpxsc/qig5J+kcKwVB
hguaMBkRTX9tx2TmsrEHvt3zbdrL08I/c+Y3k/PdyMUZp8aBu3pzbf7V2RfChXay
LKQ8eqJ52ZFlRwgLw/CLVe97WBrevNjrrgX/MJwlPpZ0LIMFV/vfJ9+zYv9IkC1r
EyJ8aAU/AgMBAAECggEAPOlj5VMRgkkEFgioo3e8Jekv+V9Y+3VjfNi41+jcMXEu
9lI3/Op7BwZf8Dn0rb6EgliPQ6/8o3/La9/jJfKk07dg1Cud+G4ePX4juFAfB2nY
5MtTAt/nitVfQ0svAnFnjzMPzflKjNGHeZlysaStQFRoUvz10BWjxpYHrzKyF34L
d2XJIhyiwER/mM/wTJG8DQOydWm8S0JvBhvj8z4BO2tBD08qe4RmfLgDg5POYaYZ
qso9HyVSEzl47SpH8H7+H8fiO0YHoZ5A8vBitY9+vgtFrWOo4siusR0AGKlZoJXa
TbjCxFClZUs0QuaEmXXFDuQG39QZkWzpO9hXhBD+IQKBgQD8tLhpDRp0FkfuGozp
fLuofSb9m5gPVRrXEjVGh+OmdJpuuGdrKAE9euNOrfZ05YdORamHF16E6nNX2dAJ
MrGUMMNt7mksuIUSdKlCb9oB2YdCNawM3qhcloYXVI9bjprVOUTbxyGsWQ1w3oZV
zgbjMbSh0ZUWf+9zRNMC+QlLUQKBgQDwGZtQITeaxpnnWskjx18pijQEX2TuwKc9
qiBUPvB4Xbyt2CmUsLYxhetRU15pRFQnetkpZ/EzbBU8/1lyo3S9h6+JNfuN9u2k
cFGruqDlfFB9Wd6FrgDhhVh/Qa4RfvwUNa9sYUHQE+xNHbc1Ewu/8ycBkufdDqDH
Jf+gn8UDjwJ/f1aRll4D9ntDw7edSgqQhVaLT0AYX6GC5N1H+0J+dGJNb318n4KJ
HXHPGNaQWldO1yJDSs970X5SoPIg4oGo+gOYdsysMtzIMYSXxeKW+Fek0Lg6+kE4
lW9EIn15v6kcXFV/XT/6t94n57g5+QLYdaOWYfQ6LBxLjMohil3zUQKBgQCqwXtc
zJLwJ4hzKnTcVkGOmHSQG4v75NXMHD8ryytYX0n91TsVPWwF4nlN+F2vveGfxlXF
hd/bs2WTYQMrbaZr2KD1k4fZGiE+job2/B7LttLDo3OHXQ3RVfVvY7W5SbdbZCbj
jHOy2Uh4O8b9HxN/Kx21l9YAuBOOLq8TfC0wbwKBgQDAxIPEll/jtLEB44dBV8NY
zV3YVZEV9RbkYIBVVsmzfOqh6VNpS1TkCSOSO1bmY9Q5y4IzuBZ8ZrvbDhk/iMTG
bY6/WYwNY8jpFLEGJ5liPtdxgiKTBdUIRXpXBdZZJ+QsPUllZJYmrUufeX2wqvg9
phdiD675OzF/HOTR3CNTFw==
-----END PRIVATE KEY-----";
const RSA_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7QKz2QN2f49CDnNXeSiP
kPHRQXumnFBrCUo2g49IyySXMax4Tbxc3At5jpzHOfkDIQOBTaQr4zBc1OZYF447
CgT2lbgEzbzUawISALJeIwB50OqNDTEN25D0xyWICtP/lWb9YuMs0vdLmk0QejEj
K8ifw8UZoGOFrioi4reI3yI85bEpLqbC1cHtvHYX6cbHP6ooOSfpHCsFQYYLmjAZ
EU1/bcdk5rKxB77d823ay9PCP3PmN5Pz3cjFGafGgbt6c23+1dkXwoV2siykPHqi
edmRZUcIC8Pwi1Xve1ga3rzY664F/zCcJT6WdCyDBVf73yffs2L/SJAtaxMifGgF
PwIDAQAB
-----END PUBLIC KEY-----";

pub fn site(id: &str, issuer: &str, algorithm: &str) -> Arc<Site> {
    let mut settings = SiteSettings {
        id: id.into(),
        issuer: issuer.into(),
        algorithm: algorithm.into(),
        origins: vec!["http://school.test:8000".into()],
        ..SiteSettings::default()
    };
    match algorithm {
        "HS256" => settings.secret = Some(SECRET.into()),
        "RS256" => settings.public_key = Some(RSA_PUBLIC.into()),
        _ => settings.public_key = Some(ED_PUBLIC.into()),
    }
    Arc::new(Site::from_settings(settings).unwrap())
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.chat.sites = vec![
            site("school", "https://school.test", "HS256"),
            site("forum", "https://forum.test", "RS256"),
            site("saas", "https://saas.test", "EdDSA"),
        ];
    })
    .await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims a school would sign, valid for two minutes.
pub fn claims(sub: &str) -> Value {
    json!({
        "sub": sub, "name": "Li Lei", "avatar": "https://school.test/a/42.png",
        "iss": "https://school.test", "aud": "natter", "iat": now(), "exp": now() + 120,
    })
}

fn sign(claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

pub fn hs(claims: &Value) -> String {
    sign(
        claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

pub async fn exchange(client: &Client, body: Value) -> crate::common::Reply {
    if let Some(token) = body["token"].as_str() {
        crate::common::log_check::secret(token);
    }
    crate::common::log_check::secret(SECRET);
    client.post("/api/v1/sessions/sso", body).await
}

/// A signed-in client for the school's user `sub`.
pub async fn school_user(server: &TestServer, sub: &str) -> Client {
    let (status, body) = exchange(&server.client(), json!({"token": hs(&claims(sub))})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut client = server.client();
    client.token = Some(body["token"].as_str().unwrap().to_owned());
    client.user_id = body["user"]["id"].as_i64().unwrap();
    client
}

#[tokio::test]
async fn refused_tokens_each_say_why_and_create_nothing() {
    let server = server().await;
    let anon = server.client();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("42");
        f(&mut c);
        c
    };
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims("42").to_string())
        )
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"token": sign(&claims("42"), Algorithm::HS256, &EncodingKey::from_secret(OTHER_SECRET.as_bytes()))}),
            StatusCode::UNAUTHORIZED,
            "token_bad_signature",
        ),
        (
            json!({"token": unsigned}),
            StatusCode::UNAUTHORIZED,
            "token_wrong_algorithm",
        ),
        // HS/RS confusion: an HS256 token "signed" with the RSA site's public key.
        (
            json!({"site": "forum", "token": sign(&with(&|c| c["iss"] = json!("https://forum.test")), Algorithm::HS256, &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()))}),
            StatusCode::UNAUTHORIZED,
            "token_wrong_algorithm",
        ),
        (
            json!({"token": hs(&with(&|c| { c["iat"] = json!(now() - 600); c["exp"] = json!(now() - 300); }))}),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            json!({"token": hs(&with(&|c| c["exp"] = json!(now() + 3600)))}),
            StatusCode::UNAUTHORIZED,
            "token_lifetime_too_long",
        ),
        (
            json!({"token": hs(&with(&|c| c["iat"] = json!(now() + 600)))}),
            StatusCode::UNAUTHORIZED,
            "token_not_yet_valid",
        ),
        (
            json!({"token": hs(&with(&|c| c["aud"] = json!("someone-else")))}),
            StatusCode::UNAUTHORIZED,
            "token_wrong_audience",
        ),
        (
            json!({"site": "school", "token": hs(&with(&|c| c["iss"] = json!("https://evil.test")))}),
            StatusCode::UNAUTHORIZED,
            "token_wrong_issuer",
        ),
        (
            json!({"token": hs(&with(&|c| c["iss"] = json!("https://unknown.test")))}),
            StatusCode::UNAUTHORIZED,
            "token_unknown_site",
        ),
        (
            json!({"site": "nosuchsite", "token": hs(&claims("42"))}),
            StatusCode::UNAUTHORIZED,
            "token_unknown_site",
        ),
        (
            json!({"token": hs(&with(&|c| { c.as_object_mut().unwrap().remove("exp"); }))}),
            StatusCode::UNAUTHORIZED,
            "token_missing_claim",
        ),
        (
            json!({"token": hs(&with(&|c| { c.as_object_mut().unwrap().remove("sub"); }))}),
            StatusCode::UNAUTHORIZED,
            "token_missing_claim",
        ),
        (
            json!({"token": hs(&with(&|c| c["name"] = json!("bad\u{0}name")))}),
            StatusCode::BAD_REQUEST,
            "token_invalid_claim",
        ),
        (
            json!({"token": hs(&with(&|c| c["avatar"] = json!("javascript:alert(1)")))}),
            StatusCode::BAD_REQUEST,
            "token_invalid_claim",
        ),
        (
            json!({"token": "not-a-jwt"}),
            StatusCode::BAD_REQUEST,
            "token_malformed",
        ),
        (
            json!({"token": "a.b.c"}),
            StatusCode::BAD_REQUEST,
            "token_malformed",
        ),
        (
            json!({"token": "x".repeat(9000)}),
            StatusCode::BAD_REQUEST,
            "token_malformed",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(&exchange(&anon, body).await, status, code);
    }
    assert_error(
        &exchange(&anon, json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );

    // Replay: a jti is good once.
    let once = hs(&with(&|c| c["jti"] = json!("token-1")));
    let (status, first) = exchange(&anon, json!({"token": once})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Nothing before this was created: this is the first user.
    assert_eq!(first["user"]["id"], 1);
    assert_error(
        &exchange(&anon, json!({"token": once})).await,
        StatusCode::UNAUTHORIZED,
        "token_replayed",
    );
}

#[tokio::test]
async fn a_good_token_signs_in_and_updates_the_user() {
    let server = server().await;
    let mut local = server.client();
    local.register_and_login("alice").await;
    // The school's teacher makes the room: its pupils can join only rooms
    // of their own community.
    let teacher = school_user(&server, "teacher").await;
    let room = teacher.create_room("Class 3", "public").await;

    let anon = server.client();
    let mut token_claims = claims("alice");
    token_claims["rooms"] = json!([room, 999_999]);
    let (status, body) = exchange(&anon, json!({"token": hs(&token_claims)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Namespaced: the site's "alice" is not the local alice.
    assert_ne!(body["user"]["id"], local.user_id);
    assert_eq!(body["user"]["username"], "school:alice");
    assert_eq!(body["user"]["display_name"], "Li Lei");
    assert_eq!(body["user"]["avatar_url"], "https://school.test/a/42.png");
    let mut site_user = server.client();
    site_user.token = Some(body["token"].as_str().unwrap().to_owned());
    let (_, rooms) = site_user.get("/api/v1/rooms").await;
    assert_eq!(
        rooms["rooms"][0]["id"], room,
        "joined the room the token names"
    );

    // The next sign-in updates the profile, same user.
    let mut renamed = claims("alice");
    renamed["name"] = json!("Li Lei (3-2)");
    let (_, again) = exchange(&anon, json!({"token": hs(&renamed)})).await;
    assert_eq!(again["user"]["id"], body["user"]["id"]);
    assert_eq!(again["user"]["display_name"], "Li Lei (3-2)");

    // Nobody can use a password as the site user.
    let reply = anon
        .post(
            "/api/v1/sessions",
            json!({"username": "school:alice", "password": ""}),
        )
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn rs256_and_eddsa_sites_and_namespaces() {
    let server = server().await;
    let anon = server.client();
    let mut forum = claims("42");
    forum["iss"] = json!("https://forum.test");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let (status, a) = exchange(
        &anon,
        json!({"token": sign(&forum, Algorithm::RS256, &rsa)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let mut saas = claims("42");
    saas["iss"] = json!("https://saas.test");
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let (status, b) = exchange(&anon, json!({"token": sign(&saas, Algorithm::EdDSA, &ed)})).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    // Two sites' user "42" are two people.
    assert_ne!(a["user"]["id"], b["user"]["id"]);
    assert_eq!(a["user"]["username"], "forum:42");
    assert_eq!(b["user"]["username"], "saas:42");
    // An EdDSA token for the RS256 site is refused.
    assert_error(
        &exchange(
            &anon,
            json!({"site": "forum", "token": sign(&forum, Algorithm::EdDSA, &ed)}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "token_wrong_algorithm",
    );
}

#[tokio::test]
async fn only_the_sites_origins_may_frame_natter_or_call_its_api() {
    let server = server().await;
    let http = reqwest::Client::new();
    let allowed = "http://school.test:8000";

    let page = http
        .get(format!("{}/embed/widget?site=school", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.ends_with(&format!("frame-ancestors {allowed}")),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-mode="widget""#) && html.contains(r#"data-site="school""#));
    let unknown = http
        .get(format!("{}/embed/rooms/1?site=<script>", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );

    let preflight = |origin: &'static str, path: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight(allowed, "/api/v1/rooms").await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    assert_eq!(ok.headers()["access-control-max-age"], "600");
    assert_eq!(ok.headers()["vary"], "origin");
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let refused = preflight("https://evil.test", "/api/v1/rooms")
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let admin = preflight(allowed, "/api/v1/admin/rooms").await.unwrap();
    assert!(
        !admin.headers().contains_key("access-control-allow-origin"),
        "never for the admin API"
    );

    let simple = http
        .get(format!("{}/api/v1/rooms/public", server.base))
        .header("Origin", allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], allowed);
    assert_eq!(simple.headers()["vary"], "origin");
    let other = http
        .get(format!("{}/api/v1/rooms/public", server.base))
        .header("Origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    assert_eq!(
        other.headers()["vary"],
        "origin",
        "the answer depends on the origin, so caches must know"
    );
}

#[tokio::test]
async fn a_token_joins_only_public_group_rooms() {
    let server = server().await;
    let owner = school_user(&server, "owner").await;
    let bob = school_user(&server, "bob").await;
    let public = owner.create_room("open", "public").await;
    let private = owner.create_room("closed", "private").await;
    let (_, direct) = owner
        .post("/api/v1/direct", json!({"user_id": bob.user_id}))
        .await;
    let direct = direct["room"]["id"].as_i64().unwrap();
    owner.say(private, "p", "secret plans").await;

    let mut c = claims("7");
    c["rooms"] = json!([public, private, direct]);
    let (status, body) = exchange(&server.client(), json!({"token": hs(&c)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut user = server.client();
    user.token = Some(body["token"].as_str().unwrap().to_owned());
    let (_, rooms) = user.get("/api/v1/rooms").await;
    let ids: Vec<i64> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![public],
        "private rooms and direct conversations are not joined"
    );
    assert_error(
        &user.get(&format!("/api/v1/rooms/{private}/messages")).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    let mut many = claims("8");
    many["rooms"] = json!((1..=51).collect::<Vec<i64>>());
    assert_error(
        &exchange(&server.client(), json!({"token": hs(&many)})).await,
        StatusCode::BAD_REQUEST,
        "token_invalid_claim",
    );
}

#[test]
fn site_settings_are_checked_at_start() {
    let base = || SiteSettings {
        id: "school".into(),
        issuer: "https://school.test".into(),
        algorithm: "HS256".into(),
        secret: Some(SECRET.into()),
        ..SiteSettings::default()
    };
    assert!(Site::from_settings(base()).is_ok());
    for bad_origin in [
        "https://a.example https:",
        "https://A.example",
        "https://a.example/path",
        "ftp://a.example",
        "https://",
        "https://a.example:99999x",
        "*",
    ] {
        let settings = SiteSettings {
            origins: vec![bad_origin.into()],
            ..base()
        };
        assert!(Site::from_settings(settings).is_err(), "{bad_origin}");
    }
    let reserved = SiteSettings {
        id: "natter".into(),
        ..base()
    };
    assert!(Site::from_settings(reserved).is_err());
    let short = SiteSettings {
        secret: Some("short".into()),
        ..base()
    };
    assert!(Site::from_settings(short).is_err());
    let confused = SiteSettings {
        algorithm: "RS256".into(),
        ..base()
    };
    assert!(
        Site::from_settings(confused).is_err(),
        "RS256 needs a public key"
    );
    let forever = SiteSettings {
        max_token_lifetime_secs: Some(10_000_000),
        ..base()
    };
    assert!(Site::from_settings(forever).is_err());
    let two = natter::config::Settings {
        sites: Some(vec![
            base(),
            SiteSettings {
                id: "other".into(),
                ..base()
            },
        ]),
        ..natter::config::Settings::default()
    };
    assert!(
        natter::Config::from_settings(two).is_err(),
        "two sites with one issuer"
    );
}

#[tokio::test]
async fn a_token_refused_for_any_claim_creates_no_user_and_keeps_its_jti() {
    let server = server().await;
    let anon = server.client();
    let mut bad_rooms = claims("42");
    bad_rooms["jti"] = json!("once-only");
    bad_rooms["rooms"] = json!((1..=51).collect::<Vec<i64>>());
    let reply = exchange(&anon, json!({"token": hs(&bad_rooms)})).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "token_invalid_claim");
    bad_rooms["rooms"] = json!([0]);
    let reply = exchange(&anon, json!({"token": hs(&bad_rooms)})).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "token_invalid_claim");
    // The same jti in a good token still works once: nothing was claimed.
    let mut good = claims("42");
    good["jti"] = json!("once-only");
    let (status, body) = exchange(&anon, json!({"token": hs(&good)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["id"], 1, "the refused tokens created no user");
}

#[tokio::test]
async fn a_site_may_require_jti_and_sets_how_long_its_sessions_last() {
    let mut settings = SiteSettings {
        id: "school".into(),
        issuer: "https://school.test".into(),
        algorithm: "HS256".into(),
        secret: Some(SECRET.into()),
        require_jti: Some(true),
        session_ttl_secs: Some(600),
        ..SiteSettings::default()
    };
    let strict = Arc::new(Site::from_settings(settings.clone()).unwrap());
    let server = TestServer::start_with(|c| c.chat.sites = vec![strict]).await;
    let anon = server.client();
    let reply = exchange(&anon, json!({"token": hs(&claims("7"))})).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "token_missing_claim");
    let mut with_jti = claims("7");
    with_jti["jti"] = json!("j-1");
    let (status, body) = exchange(&anon, json!({"token": hs(&with_jti)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lifetime_ms = body["expires_at"].as_i64().unwrap() - now() * 1000;
    assert!(
        (590_000..=610_000).contains(&lifetime_ms),
        "a site session lasts the site's session_ttl_secs: {lifetime_ms} ms"
    );
    // The default is a few hours, not the 30 days of a password login.
    settings.require_jti = None;
    settings.session_ttl_secs = None;
    assert_eq!(
        Site::from_settings(settings).unwrap().session_ttl,
        std::time::Duration::from_secs(4 * 3600)
    );
}

#[tokio::test]
async fn closed_registration_and_deactivation_also_hold_for_site_users() {
    use crate::admin::{KEY, admin};
    let server = TestServer::start_with(|c| {
        c.chat.sites = vec![site("school", "https://school.test", "HS256")];
        c.chat.admin_keys = natter::chat::Secrets(vec![KEY.into()]);
        c.chat.registration = natter::chat::RegistrationMode::Closed;
    })
    .await;
    let anon = server.client();
    let mut token = claims("42");
    token["jti"] = json!("first");
    let reply = exchange(&anon, json!({"token": hs(&token)})).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "registration_closed");
    // The site's backend may still bring its users in; then they sign in,
    // with the same jti: the refusal did not use it up.
    let (status, room) = admin(
        &anon,
        "POST",
        "/api/v1/admin/rooms",
        Some(json!({"title": "c"})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = room["room"]["id"].as_i64().unwrap();
    let (status, added) = admin(
        &anon,
        "POST",
        &format!("/api/v1/admin/rooms/{id}/members"),
        Some(json!({"site": "school", "external_id": "42"})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let (status, body) = exchange(&anon, json!({"token": hs(&token)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user = body["user"]["id"].as_i64().unwrap();
    let (status, _) = admin(
        &anon,
        "POST",
        &format!("/api/v1/admin/users/{user}/deactivate"),
        None,
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    token["jti"] = json!("second");
    let reply = exchange(&anon, json!({"token": hs(&token)})).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "account_deactivated");
}
