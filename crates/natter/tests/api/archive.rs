//! The PHP chat's XML archive: `natter import-xml` and `natter export-xml`
//! on archives these tests write (dates, group and one-to-one chats,
//! Chinese text and emoticon codes, entities and CDATA, a BOM, a GBK file,
//! a file cut off mid-record, a malformed one, an empty chat, equal
//! pubtimes), checked message by message through the API as the site's
//! own users see it.

use std::path::Path;
use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, natter_command};
use crate::sso::{school_user, site};

const CONFIG: &str = r#"
[[sites]]
id = "school"
issuer = "https://school.test"
algorithm = "HS256"
secret = "school-secret-of-at-least-32-bytes!!"
"#;

/// One `<chatcontent>`: (username, userid, content as written in XML, pubtime).
fn entry(name: &str, id: &str, content: &str, pubtime: &str) -> String {
    format!(
        "<chatcontent>\n<username>{name}</username>\n<userid>{id}</userid>\n<content>{content}</content>\n<pubtime>{pubtime}</pubtime>\n<headpic>image/NoPictures.jpg</headpic>\n</chatcontent>\n"
    )
}

fn content_file(mass: &str, entries: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>{mass}</mass>\n{}</chatroom>\n",
        entries.concat()
    )
}

fn members_file(mass: &str, people: &[(&str, &str)]) -> String {
    let members: String = people
        .iter()
        .map(|(name, id)| {
            format!(
                "<chatmember>\n<username>{name}</username>\n<userid>{id}</userid>\n<logtime>1330408062</logtime>\n<mlastmodify>1330408401.5468</mlastmodify>\n<chatlastmodify>1330408524.13\n</chatlastmodify>\n<headpic>upload/album/{id}/hpic/{id}hpic1323655\n62.jpg</headpic>\n<chatkey>13304084053759047</chatkey>\n</chatmember>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>{mass}</mass>\n<member>{}</member>\n<lastmodify>1330408401.5466</lastmodify>\n{members}</chatroom>\n",
        people.len()
    )
}

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The messages chat 215 holds, as natter must show them: (sender's site
/// id, sender name, text, ms).
fn class_messages() -> Vec<(&'static str, &'static str, &'static str, i64)> {
    vec![
        ("56", "王振兴", "你好 [微笑]", 1_330_408_066_371),
        (
            "96",
            "郭小宝",
            "嘿嘿 & <b>不是粗体</b> ©",
            1_330_408_077_383,
        ),
        ("96", "郭小宝", "第一行\n第二行 [强]", 1_330_408_077_383),
        (
            "56",
            "王振兴",
            "<script>alert(1)</script> 在 CDATA 里",
            1_330_408_090_000,
        ),
        ("56", "王振兴", "第二天 :wave:", 1_330_494_400_123),
    ]
}

/// Writes the archive the tests import.
fn archive(root: &Path) {
    write(
        root,
        "2012-02-28/215.xml",
        content_file(
            "215",
            &[
                entry("王振兴", "56", "你好 [微笑]", "1330408066.3712"),
                entry(
                    "郭小宝",
                    "96",
                    "嘿嘿 &amp; &lt;b&gt;不是粗体&lt;/b&gt; &#169;",
                    "1330408077.3831",
                ),
                // The same second, the same sender: two messages all the same.
                entry("郭小宝", "96", "第一行\r\n第二行 [强]", "1330408077.3831"),
                entry(
                    "王振兴",
                    "56",
                    "<![CDATA[<script>alert(1)</script> 在 CDATA 里]]>",
                    "1330408090",
                ),
            ],
        )
        .as_bytes(),
    );
    write(
        root,
        "2012-02-28/215m.xml",
        members_file(
            "215",
            &[("王振兴", "56"), ("郭小宝", "96"), ("李老师", "7")],
        )
        .as_bytes(),
    );
    // The next day's file was saved by an editor that adds a BOM.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        content_file(
            "215",
            &[entry("王振兴", "56", "第二天 :wave:", "1330494400.123")],
        )
        .as_bytes(),
    );
    write(root, "more/2012/02/29/215.xml", &bom);
    // Chat 216 in GBK, then cut off mid-record the next day.
    let gbk_text = content_file("216", &[entry("李老师", "7", "请交作业", "1330408100.5")])
        .replace(
            "<?xml version=\"1.0\" ?>",
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>",
        );
    let (gbk, _, bad) = encoding_rs::GBK.encode(&gbk_text);
    assert!(!bad);
    write(root, "2012-02-28/216.xml", &gbk);
    let whole = content_file(
        "216",
        &[
            entry("李老师", "7", "明天考试", "1330494500"),
            entry("李老师", "7", "这条写到一半", "1330494600"),
        ],
    );
    let cut = &whole[..whole.find("这条写到一半").unwrap()];
    write(root, "2012-02-29/216.xml", cut.as_bytes());
    // Chat 217 has a broken file: none of it is imported.
    write(
        root,
        "2012-02-28/217.xml",
        content_file("217", &[entry("王振兴", "56", "fine", "1330408200")]).as_bytes(),
    );
    write(
        root,
        "2012-02-29/217.xml",
        content_file("217", &[entry("王振兴", "56", "broken", "1330494700")])
            .replace("</userid>", "</useri>")
            .as_bytes(),
    );
    // Chat 218 has members and has said nothing.
    write(
        root,
        "2012-02-28/218-members.xml",
        members_file("218", &[("李老师", "7"), ("王振兴", "56")]).as_bytes(),
    );
    // A one-to-one chat, in its hash folder.
    let hash = "0123456789abcdef0123456789abcdef";
    write(
        root,
        &format!("{hash}/2012-02-28/chat.xml"),
        content_file(
            "9001",
            &[
                entry("王振兴", "56", "在吗？", "1330408300"),
                entry("郭小宝", "96", "在", "1330408310"),
            ],
        )
        .as_bytes(),
    );
    write(root, "notes.txt", b"not part of the archive");
}

fn run(data: &Path, config: &Path, args: &[&str]) -> Output {
    let output = natter_command(&[])
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NATTER_LOG", "warn")
        .output()
        .expect("run natter");
    assert!(
        output.status.success(),
        "natter {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The caller's rooms by title (direct ones by the peer's site id).
async fn rooms(client: &Client) -> Vec<Value> {
    let (status, body) = client.get("/api/v1/rooms").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rooms"].as_array().unwrap().clone()
}

/// A room's messages as (sender username, sender name, text, ts).
async fn history(client: &Client, room: i64) -> Vec<(String, String, String, i64)> {
    let (status, body) = client
        .get(&format!("/api/v1/rooms/{room}/messages?limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, members) = client.get(&format!("/api/v1/rooms/{room}/members")).await;
    let username = |id: &Value| {
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == *id)
            .map(|m| m["username"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| {
            (
                username(&m["sender_id"]),
                m["sender_name"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
                m["ts"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn titled<'a>(rooms: &'a [Value], title: &str) -> &'a Value {
    rooms
        .iter()
        .find(|r| r["title"] == title)
        .unwrap_or_else(|| panic!("no room {title:?} in {rooms:?}"))
}

async fn server_on(data: tempfile::TempDir) -> TestServer {
    TestServer::start_in(data, |c| {
        c.chat.sites = vec![site("school", "https://school.test", "HS256")];
    })
    .await
}

#[tokio::test]
async fn an_archive_is_imported_once_faithfully_and_exported_back() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("archive");
    archive(&source);
    let config = work.path().join("natter.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let titles = work.path().join("titles.txt");
    std::fs::write(&titles, "# our classes\n215 = 三年二班\n").unwrap();
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let import = |extra: &[&str]| {
        let mut args = vec!["import-xml", source.to_str().unwrap(), "--site", "school"];
        args.extend(["--titles", titles.to_str().unwrap()]);
        args.extend(["--headpic-base", "https://school.test"]);
        args.extend(extra);
        run(&data, &config, &args)
    };

    // A dry run says what it would do and writes nothing.
    let dry = stdout(&import(&["--dry-run"]));
    assert!(dry.contains("would import 4 chats"), "{dry}");
    assert!(dry.contains("messages in the archive: 9"), "{dry}");
    let first = stdout(&import(&[]));
    assert!(first.contains("imported 4 chats from 9 files"), "{first}");
    assert!(first.contains("users 3 new, 0 known"), "{first}");
    assert!(
        first.contains("rooms 3 new, direct conversations 1 new"),
        "{first}"
    );
    assert!(
        first.contains("messages: 9 imported, 0 imported before"),
        "{first}"
    );
    // What was left out is said, with file and line.
    assert!(first.contains("2012-02-29/217.xml:"), "{first}");
    assert!(first.contains("chat mass:217 is skipped"), "{first}");
    assert!(
        first.contains("2012-02-29/216.xml:11: the file ends mid-record"),
        "{first}"
    );

    // Again: nothing twice. With a new day: only the new day.
    let again = stdout(&import(&[]));
    assert!(
        again.contains("messages: 0 imported, 9 imported before"),
        "{again}"
    );
    write(
        &source,
        "2012-03-01/215.xml",
        content_file("215", &[entry("郭小宝", "96", "新的一天", "1330580000")]).as_bytes(),
    );
    let more = stdout(&import(&[]));
    assert!(
        more.contains("messages: 1 imported, 9 imported before"),
        "{more}"
    );
    assert!(more.contains("rooms 0 new"), "{more}");

    // The site's own users sign in and see their history.
    let server = server_on(folder).await;
    let wang = school_user(&server, "56").await;
    let listed = rooms(&wang).await;
    assert_eq!(listed.len(), 3, "215, 218 and the direct chat: {listed:?}");
    let class = titled(&listed, "三年二班")["id"].as_i64().unwrap();
    let mut expected: Vec<(String, String, String, i64)> = class_messages()
        .into_iter()
        .map(|(id, name, text, ms)| (format!("school:{id}"), name.into(), text.into(), ms))
        .collect();
    expected.push((
        "school:96".into(),
        "郭小宝".into(),
        "新的一天".into(),
        1_330_580_000_000,
    ));
    assert_eq!(history(&wang, class).await, expected);
    let (_, members) = wang.get(&format!("/api/v1/rooms/{class}/members")).await;
    let teacher = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "school:7")
        .expect("members from the members file are members");
    assert_eq!(teacher["display_name"], "李老师");
    assert_eq!(
        teacher["avatar_url"],
        "https://school.test/upload/album/7/hpic/7hpic132365562.jpg"
    );
    let quiet = titled(&listed, "mass 218")["id"].as_i64().unwrap();
    assert!(history(&wang, quiet).await.is_empty());
    let direct = listed.iter().find(|r| r["kind"] == "direct").unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        history(&wang, direct).await,
        [
            (
                "school:56".into(),
                "王振兴".into(),
                "在吗？".into(),
                1_330_408_300_000
            ),
            (
                "school:96".into(),
                "郭小宝".into(),
                "在".into(),
                1_330_408_310_000
            ),
        ]
    );
    let teacher = school_user(&server, "7").await;
    let theirs = rooms(&teacher).await;
    let homework = titled(&theirs, "mass 216")["id"].as_i64().unwrap();
    let texts: Vec<String> = history(&teacher, homework)
        .await
        .into_iter()
        .map(|m| m.2)
        .collect();
    assert_eq!(
        texts,
        ["请交作业", "明天考试"],
        "GBK decoded; the cut-off record left out"
    );
    assert!(
        theirs.iter().all(|r| r["title"] != "mass 217"),
        "a chat with a malformed file is not imported at all"
    );
    let before = (
        history(&wang, class).await,
        history(&wang, direct).await,
        history(&teacher, homework).await,
    );
    let folder = server.stop().await;

    // Export, then import the export into a fresh folder: the same history.
    let exported = work.path().join("exported");
    let out = stdout(&run(
        &folder.path().join("data"),
        &config,
        &["export-xml", exported.to_str().unwrap(), "--site", "school"],
    ));
    assert!(
        out.contains("exported 3 rooms and 1 direct conversations, 10 messages"),
        "{out}"
    );
    assert!(exported.join("2012-02-28/215.xml").exists(), "by UTC day");
    let fresh = tempfile::tempdir().unwrap();
    let round = stdout(&run(
        &fresh.path().join("data"),
        &config,
        &[
            "import-xml",
            exported.to_str().unwrap(),
            "--site",
            "school",
            "--titles",
            exported.join("titles.txt").to_str().unwrap(),
        ],
    ));
    assert!(round.contains("messages: 10 imported"), "{round}");
    let server = server_on(fresh).await;
    let wang = school_user(&server, "56").await;
    let teacher = school_user(&server, "7").await;
    let listed = rooms(&wang).await;
    let class = titled(&listed, "三年二班")["id"].as_i64().unwrap();
    let direct = listed.iter().find(|r| r["kind"] == "direct").unwrap()["id"]
        .as_i64()
        .unwrap();
    let homework = titled(&rooms(&teacher).await, "mass 216")["id"]
        .as_i64()
        .unwrap();
    let after = (
        history(&wang, class).await,
        history(&wang, direct).await,
        history(&teacher, homework).await,
    );
    assert_eq!(after, before, "export then import gives the same history");
}

/// Whole-second pubtimes make many messages share a millisecond: each
/// keeps its own identity however the senders interleave; two folders of
/// one pair share its one conversation; and a re-run never puts back
/// someone who has left.
#[tokio::test]
async fn equal_times_two_folders_for_one_pair_and_leavers() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("archive");
    write(
        &source,
        "d1/300.xml",
        content_file(
            "300",
            &[
                entry("A", "1", "a first", "1330400000"),
                entry("B", "2", "b", "1330400000"),
                entry("A", "1", "a second", "1330400000"),
                entry("A", "1", "a third", "1330400000"),
            ],
        )
        .as_bytes(),
    );
    write(
        &source,
        "aaaaaaaaaaaaaaaaaaaa/d1/x.xml",
        content_file("1", &[entry("A", "1", "to b", "1330400100")]).as_bytes(),
    );
    write(
        &source,
        "bbbbbbbbbbbbbbbbbbbb/d1/x.xml",
        content_file("2", &[entry("B", "2", "to a", "1330400200")]).as_bytes(),
    );
    for folder in ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"] {
        write(
            &source,
            &format!("{folder}/d1/m.xml"),
            members_file("1", &[("A", "1"), ("B", "2")]).as_bytes(),
        );
    }
    let config = work.path().join("natter.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let args = ["import-xml", source.to_str().unwrap(), "--site", "school"];
    let out = stdout(&run(&data, &config, &args));
    assert!(
        out.contains("messages: 6 imported, 0 imported before, 0 changed"),
        "{out}"
    );
    let server = server_on(folder).await;
    let b = school_user(&server, "2").await;
    let listed = rooms(&b).await;
    let group = titled(&listed, "mass 300")["id"].as_i64().unwrap();
    let texts: Vec<String> = history(&b, group).await.into_iter().map(|m| m.2).collect();
    assert_eq!(texts, ["a first", "b", "a second", "a third"]);
    let direct: Vec<&Value> = listed.iter().filter(|r| r["kind"] == "direct").collect();
    assert_eq!(direct.len(), 1, "one conversation per pair: {listed:?}");
    let id = direct[0]["id"].as_i64().unwrap();
    let texts: Vec<String> = history(&b, id).await.into_iter().map(|m| m.2).collect();
    assert_eq!(texts, ["to b", "to a"]);
    let (status, _) = b
        .post(&format!("/api/v1/rooms/{group}/leave"), json!({}))
        .await;
    assert!(status.is_success(), "{status}");
    let folder = server.stop().await;

    write(
        &source,
        "d2/300.xml",
        content_file("300", &[entry("B", "2", "after leaving", "1330500000")]).as_bytes(),
    );
    let again = stdout(&run(&folder.path().join("data"), &config, &args));
    assert!(
        again.contains("messages: 0 imported, 6 imported before"),
        "{again}"
    );
    assert!(
        again.contains("have left their room since: 1 (not added)"),
        "{again}"
    );
    let server = server_on(folder).await;
    let b = school_user(&server, "2").await;
    assert!(
        rooms(&b).await.iter().all(|r| r["id"] != group),
        "not put back into the room"
    );
}

#[tokio::test]
async fn without_a_site_people_become_local_accounts_and_bad_options_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("archive");
    archive(&source);
    let config = work.path().join("natter.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let out = stdout(&run(
        &data,
        &config,
        &["import-xml", source.to_str().unwrap()],
    ));
    assert!(out.contains("users 3 new"), "{out}");
    // No password signs an imported local account in.
    let server = TestServer::start_in(folder, |_| {}).await;
    let (status, body) = server
        .client()
        .post(
            "/api/v1/sessions",
            json!({"username": "xml-56", "password": "password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    drop(server);

    let refused = natter_command(&[])
        .arg("--data-dir")
        .arg(work.path().join("other"))
        .args(["import-xml", source.to_str().unwrap(), "--site", "nowhere"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no host site of that id"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let not_empty = natter_command(&[])
        .arg("--data-dir")
        .arg(work.path().join("other"))
        .args(["export-xml", source.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!not_empty.status.success());
    assert!(String::from_utf8_lossy(&not_empty.stderr).contains("is not empty"));
}

#[tokio::test]
async fn overlapping_files_merge_in_pubtime_order_and_ids_without_an_account_are_reported() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("archive");
    // Two files of one chat whose times interleave (a day file written
    // past midnight, say): the room's seqs follow the times.
    write(
        &source,
        "2012-02-28/400.xml",
        content_file(
            "400",
            &[
                entry("Ann", "1", "first", "1330400100"),
                entry("Ann", "1", "third", "1330400300"),
                entry("Ann", "1", "fifth", "1330400500"),
            ],
        )
        .as_bytes(),
    );
    let long_id = "a".repeat(30);
    write(
        &source,
        "2012-02-29/400.xml",
        content_file(
            "400",
            &[
                entry("Bob", "2", "second", "1330400200"),
                entry("Bob", "2", "fourth", "1330400400"),
                entry("Long", &long_id, "lost in the account name", "1330400450"),
                entry("Upper", "AB", "mine", "1330400460"),
                entry("Lower", "ab", "and mine", "1330400470"),
            ],
        )
        .as_bytes(),
    );
    let config = work.path().join("natter.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let dir = source.to_str().unwrap();

    let dry = stdout(&run(&data, &config, &["import-xml", dir, "--dry-run"]));
    assert!(dry.contains("users 3 new, 0 known"), "{dry}");
    let out = stdout(&run(&data, &config, &["import-xml", dir]));
    assert!(out.contains("users 3 new, 0 known"), "{out}");
    assert!(out.contains("messages: 6 imported"), "{out}");
    assert!(
        out.contains(&format!(
            "user {long_id}: too long for a local account name"
        )),
        "{out}"
    );
    assert!(
        out.contains("user ab: differs from user AB only in case"),
        "{out}"
    );
    // A second dry run knows the people now.
    let dry = stdout(&run(&data, &config, &["import-xml", dir, "--dry-run"]));
    assert!(dry.contains("users 0 new, 3 known"), "{dry}");

    // Read through an export: local accounts have no password to sign in with.
    let exported = work.path().join("exported");
    run(&data, &config, &["export-xml", exported.to_str().unwrap()]);
    let mut files = Vec::new();
    for entry in walk(&exported) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if text.contains("<chatcontent>") {
            files.push(text);
        }
    }
    assert_eq!(files.len(), 1, "one chat, one content file");
    let order: Vec<usize> = ["first", "second", "third", "fourth", ">mine<", "fifth"]
        .iter()
        .map(|t| {
            files[0]
                .find(t)
                .unwrap_or_else(|| panic!("{t} in {}", files[0]))
        })
        .collect();
    assert!(order.is_sorted(), "time order: {order:?}\n{}", files[0]);
    assert!(!files[0].contains("lost in the account name"));
    assert!(!files[0].contains("and mine"));
}

/// Every file under `root`.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
