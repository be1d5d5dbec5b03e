//! Writes a large XML chat archive in the PHP chat's layout (see
//! crates/natter/src/archive/), for measuring `natter import-xml`: group
//! chats in date folders, one-to-one chats in hash folders, Chinese text
//! with emoticon codes and entities, a members file per chat and day.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What was written.
pub struct Written {
    pub files: u64,
    pub messages: u64,
    pub bytes: u64,
}

const LINES: [&str; 6] = [
    "同学们好，今天的作业是第三章的练习题 [微笑]",
    "老师，第二题我不太明白 &amp; 第五题也是",
    "明天早上八点在操场集合，记得带水 [强]",
    "收到！Thanks :thumbsup:",
    "这道题的答案是 x &lt; 3，对吗？",
    "周末愉快，下周一见 [再见]",
];

/// Writes about `megabytes` of archive under `out` (which must not exist).
pub fn write(out: &Path, megabytes: u64, groups: u64, pairs: u64) -> anyhow::Result<Written> {
    anyhow::ensure!(!out.exists(), "{} exists already", out.display());
    let target = megabytes * 1024 * 1024;
    let mut done = Written {
        files: 0,
        messages: 0,
        bytes: 0,
    };
    // Day 15,398 (2012-02-28) onwards, one chat file per chat and day.
    let mut day: i64 = 15_398;
    let mut time: i64 = day * 86_400;
    let per_day = 2_000u64;
    while done.bytes < target {
        // The paper gives the date folders no format; any name will do.
        let date = format!("day-{day}");
        for chat in 0..groups + pairs {
            let (folder, mass) = if chat < groups {
                (out.join(&date), format!("{}", 100 + chat))
            } else {
                let hash = format!("{:032x}", 0xabcdef_u128 * (chat as u128 + 1));
                (out.join(hash).join(&date), format!("{}", 9000 + chat))
            };
            std::fs::create_dir_all(&folder)?;
            let people: Vec<u64> = if chat < groups {
                (0..30).map(|i| 1 + (chat * 7 + i) % 5_000).collect()
            } else {
                vec![1 + chat % 5_000, 2 + (chat * 13) % 5_000]
            };
            let mut content = BufWriter::new(File::create(folder.join(format!("{mass}.xml")))?);
            let mut written = 0u64;
            written += write_str(
                &mut content,
                &format!("<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>{mass}</mass>\n"),
            )?;
            let messages = if chat < groups { per_day } else { per_day / 10 };
            for n in 0..messages {
                let who = people[(n as usize * 7 + chat as usize) % people.len()];
                time += 1;
                let line = LINES[(n as usize + chat as usize) % LINES.len()];
                written += write_str(
                    &mut content,
                    &format!(
                        "<chatcontent>\n<username>用户{who}</username>\n<userid>{who}</userid>\n<content>{line} #{n}</content>\n<pubtime>{time}.{:04}</pubtime>\n<headpic>image/NoPictures.jpg</headpic>\n</chatcontent>\n",
                        n % 10_000
                    ),
                )?;
            }
            written += write_str(&mut content, "</chatroom>\n")?;
            content.flush()?;
            let mut members = BufWriter::new(File::create(folder.join(format!("{mass}-m.xml")))?);
            written += write_str(
                &mut members,
                &format!(
                    "<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>{mass}</mass>\n<member>{}</member>\n<lastmodify>{time}</lastmodify>\n",
                    people.len()
                ),
            )?;
            for who in &people {
                written += write_str(
                    &mut members,
                    &format!(
                        "<chatmember>\n<username>用户{who}</username>\n<userid>{who}</userid>\n<logtime>{time}</logtime>\n<mlastmodify>{time}</mlastmodify>\n<chatlastmodify>{time}</chatlastmodify>\n<headpic>image/NoPictures.jpg</headpic>\n<chatkey>0</chatkey>\n</chatmember>\n"
                    ),
                )?;
            }
            written += write_str(&mut members, "</chatroom>\n")?;
            members.flush()?;
            done.files += 2;
            done.messages += messages;
            done.bytes += written;
        }
        day += 1;
        time = time.max(day * 86_400);
    }
    Ok(done)
}

fn write_str(out: &mut impl Write, text: &str) -> std::io::Result<u64> {
    out.write_all(text.as_bytes())?;
    Ok(text.len() as u64)
}
