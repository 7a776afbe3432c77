//! Reading a legacy data directory (FORMAT.md). Nothing here writes, and
//! nothing under the directory is ever changed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// The fixed end of every library file's name.
pub const CSV_SUFFIX: &str = "_steam_library_with_achievements.csv";
pub const IMAGE_DIR: &str = "static/achievement_images";
const HEADER: [&str; 8] = [
    "appid",
    "game_name",
    "playtime_forever",
    "achievement_api_name",
    "achievement_name",
    "achievement_description",
    "achieved",
    "unlock_time",
];
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why the directory cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("users.json is missing from {0}")]
    NoUsers(PathBuf),
    #[error("{file} cannot be read: {error}")]
    Unreadable { file: String, error: String },
}

fn read_json(path: &Path, file: &str) -> Result<Value, SourceError> {
    let bytes =
        std::fs::read(path).map_err(|e| SourceError::Unreadable { file: file.to_owned(), error: e.to_string() })?;
    parse_json(&bytes, file)
}

/// The JSON value in `bytes` (an optional BOM first), or why not.
pub fn parse_json(bytes: &[u8], file: &str) -> Result<Value, SourceError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| SourceError::Unreadable { file: file.to_owned(), error: e.to_string() })
}

/// Optional text: null, "" and non-strings (numbers become their digits)
/// are told apart from real values.
pub fn opt_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// One entry of users.json.
#[derive(Debug, Clone)]
pub struct LegacyUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub steam_api_key: Option<String>,
    pub steam_id: Option<String>,
    pub created_at: Option<String>,
    pub is_admin: bool,
}

/// users.json, sorted by username in byte order (the collision rule).
pub fn read_users(dir: &Path) -> Result<Vec<LegacyUser>, SourceError> {
    if !dir.is_dir() {
        return Err(SourceError::NotADirectory(dir.to_owned()));
    }
    let path = dir.join("users.json");
    if !path.is_file() {
        return Err(SourceError::NoUsers(dir.to_owned()));
    }
    users_from_json(read_json(&path, "users.json")?)
}

/// The users of a parsed users.json, sorted by username in byte order.
pub fn users_from_json(value: Value) -> Result<Vec<LegacyUser>, SourceError> {
    let Value::Object(map) = value else {
        return Err(SourceError::Unreadable { file: "users.json".into(), error: "not a JSON object".into() });
    };
    let mut users: Vec<LegacyUser> = map
        .into_iter()
        .map(|(name, v)| LegacyUser {
            password_hash: v.get("password_hash").and_then(Value::as_str).map(str::to_owned),
            email: opt_text(v.get("email")),
            steam_api_key: opt_text(v.get("steam_api_key")),
            steam_id: opt_text(v.get("steam_id")),
            created_at: opt_text(v.get("created_at")),
            is_admin: v.get("is_admin").and_then(Value::as_bool).unwrap_or(false),
            name,
        })
        .collect();
    users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(users)
}

/// custom_achievements.json as (username, entries); none when absent.
pub fn read_custom(dir: &Path) -> Result<Vec<(String, Vec<Value>)>, SourceError> {
    let path = dir.join("custom_achievements.json");
    if !path.exists() {
        return Ok(Vec::new());
    }
    match read_json(&path, "custom_achievements.json")? {
        Value::Object(map) => {
            Ok(map.into_iter().map(|(k, v)| (k, if let Value::Array(list) = v { list } else { Vec::new() })).collect())
        }
        _ => {
            Err(SourceError::Unreadable { file: "custom_achievements.json".into(), error: "not a JSON object".into() })
        }
    }
}

/// shared_achievements.json; none when absent.
pub fn read_shared(dir: &Path) -> Result<Vec<Value>, SourceError> {
    let path = dir.join("shared_achievements.json");
    if !path.exists() {
        return Ok(Vec::new());
    }
    match read_json(&path, "shared_achievements.json")? {
        Value::Array(list) => Ok(list),
        _ => Err(SourceError::Unreadable { file: "shared_achievements.json".into(), error: "not a JSON list".into() }),
    }
}

/// `YYYY-MM-DD HH:MM:SS` or ISO 8601, UTC unless an offset says otherwise.
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// A library file and the username its name gives.
#[derive(Debug, Clone)]
pub struct CsvFile {
    pub username: String,
    pub file_name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Every `{username}_steam_library_with_achievements.csv`, by name.
pub fn list_csv(dir: &Path) -> Result<Vec<CsvFile>, SourceError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SourceError::Unreadable { file: dir.display().to_string(), error: e.to_string() })?;
    let mut files: Vec<CsvFile> = entries
        .flatten()
        .filter_map(|e| {
            let file_name = e.file_name().to_str()?.to_owned();
            let username = file_name.strip_suffix(CSV_SUFFIX)?.to_owned();
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some(CsvFile { username, file_name, path: e.path(), size: meta.len() })
        })
        .filter(|f| !f.username.is_empty())
        .collect();
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(files)
}

/// One achievement of one game in a user's file.
#[derive(Debug, Clone)]
pub struct AchievementRow {
    pub display_name: String,
    pub description: String,
    pub achieved: bool,
    /// `None` when not achieved or the time is unknown.
    pub unlocked_at: Option<i64>,
}

/// One game in a user's file.
#[derive(Debug, Clone, Default)]
pub struct GameRows {
    pub name: String,
    pub playtime_minutes: i64,
    pub achievements: BTreeMap<String, AchievementRow>,
}

/// A parsed library file.
#[derive(Debug, Default)]
pub struct Library {
    pub games: BTreeMap<i64, GameRows>,
    /// Achievement rows read (duplicates included).
    pub achievement_rows: u64,
    /// (line, reason) of every row that could not be read.
    pub skipped: Vec<(u64, String)>,
    /// (line, appid, api_name) of every duplicate merged into an earlier row.
    pub duplicates: Vec<(u64, i64, String)>,
    /// (line, appid, what was kept) of every game row merged into the same
    /// game's earlier rows: a repeated row of a game without achievements,
    /// or a row whose playtime disagrees with the game's earlier rows.
    pub game_merges: Vec<(u64, i64, String)>,
}

/// The longest line a library file may have; a longer one is skipped as
/// malformed without ever being held in memory whole.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Hands a reader's bytes on line by line, replacing every line longer
/// than `max` bytes with an empty one (so line numbers stay right) and
/// noting its number. Memory stays at one line however long the input.
struct BoundedLines<R> {
    inner: R,
    max: usize,
    line: u64,
    pending: Vec<u8>,
    pos: usize,
    overlong: std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<u64>>>,
}

impl<R: BufRead> BoundedLines<R> {
    /// Loads the next line (with its `\n`) into `pending`; empty at the end.
    fn next_line(&mut self) -> std::io::Result<()> {
        self.pending.clear();
        self.pos = 0;
        let mut too_long = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (take, ends) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !too_long && self.pending.len() + take > self.max + 1 {
                too_long = true;
                self.pending.clear();
            }
            if !too_long {
                self.pending.extend_from_slice(&buf[..take]);
            }
            self.inner.consume(take);
            if ends {
                break;
            }
        }
        if self.pending.is_empty() && !too_long {
            return Ok(());
        }
        self.line += 1;
        if too_long {
            self.overlong.borrow_mut().insert(self.line);
            self.pending.push(b'\n');
        }
        Ok(())
    }
}

impl<R: BufRead> Read for BoundedLines<R> {
    /// As many lines as fit (one read per line would mean a call per row).
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            if self.pos >= self.pending.len() {
                self.next_line()?;
                if self.pending.is_empty() {
                    break; // the end
                }
            }
            let n = (out.len() - written).min(self.pending.len() - self.pos);
            out[written..written + n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            written += n;
        }
        Ok(written)
    }
}

fn achieved(raw: &str) -> Option<bool> {
    match raw.trim() {
        "1" | "True" | "true" | "TRUE" => Some(true),
        "0" | "False" | "false" | "FALSE" | "" => Some(false),
        _ => None,
    }
}

/// Reads one library file, row by row (RFC 4180, LF or CRLF, optional BOM).
/// An unreadable file as a whole is an `Err` with the reason.
pub fn read_library(path: &Path) -> Result<Library, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    parse_library(BufReader::with_capacity(256 * 1024, file))
}

/// [`read_library`] on any reader (the fuzzer feeds it bytes).
pub fn parse_library(reader: impl Read) -> Result<Library, String> {
    parse_library_bounded(reader, MAX_LINE_BYTES)
}

fn parse_library_bounded(mut reader: impl Read, max_line: usize) -> Result<Library, String> {
    let mut head = [0u8; 3];
    let n = read_up_to(&mut reader, &mut head).map_err(|e| e.to_string())?;
    let prefix: Vec<u8> = if head[..n] == *BOM { Vec::new() } else { head[..n].to_vec() };
    let overlong = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeSet::new()));
    let lines = BoundedLines {
        inner: std::io::BufReader::new(std::io::Cursor::new(prefix).chain(reader)),
        max: max_line,
        line: 0,
        pending: Vec::new(),
        pos: 0,
        overlong: overlong.clone(),
    };
    // Records end at LF; a CR before it stays at the end of the last field
    // and is trimmed with it. With CRLF as a terminator the csv crate counts
    // a record's line before the LF of the previous one, one too low.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(lines);
    let mut lib = Library::default();
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => record.position().map(|p| p.line()).unwrap_or(0),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(e.to_string());
                }
                lib.skipped.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        if first {
            first = false;
            if record.iter().map(str::trim).ne(HEADER.iter().copied()) {
                return Err("the first line is not the expected header".into());
            }
            continue;
        }
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue; // a blank line
        }
        if record.len() != HEADER.len() {
            lib.skipped.push((line, format!("{} columns instead of {}", record.len(), HEADER.len())));
            continue;
        }
        let Ok(appid) = record[0].trim().parse::<i64>() else {
            lib.skipped.push((line, format!("appid `{}` is not a number", &record[0])));
            continue;
        };
        if appid <= 0 {
            lib.skipped.push((line, format!("appid `{appid}` is not a Steam app id")));
            continue;
        }
        let Ok(playtime) = record[2].trim().parse::<i64>() else {
            lib.skipped.push((line, format!("playtime_forever `{}` is not a whole number", &record[2])));
            continue;
        };
        if !(0..=i32::MAX as i64).contains(&playtime) {
            lib.skipped.push((line, format!("playtime_forever `{playtime}` is out of range")));
            continue;
        }
        let api_name = record[3].trim();
        let Some(got) = achieved(&record[6]) else {
            lib.skipped.push((line, format!("achieved `{}` is neither 1/0 nor True/False", &record[6])));
            continue;
        };
        let time = record[7].trim().parse::<i64>().ok().filter(|t| *t > 0);
        let seen = lib.games.contains_key(&appid);
        let game = lib.games.entry(appid).or_insert_with(|| GameRows {
            name: record[1].to_owned(),
            playtime_minutes: playtime,
            ..Default::default()
        });
        if seen && (api_name.is_empty() || playtime != game.playtime_minutes) {
            // Every merge is a change the report lists.
            let kept = game.playtime_minutes.max(playtime);
            let what = if api_name.is_empty() {
                format!("a second row of app {appid}: merged into one game, playtime {kept} (the highest)")
            } else {
                format!(
                    "playtime {playtime} disagrees with {} on an earlier row of app {appid}: kept {kept} (the highest)",
                    game.playtime_minutes
                )
            };
            lib.game_merges.push((line, appid, what));
        }
        game.playtime_minutes = game.playtime_minutes.max(playtime);
        if api_name.is_empty() {
            continue;
        }
        lib.achievement_rows += 1;
        let row = AchievementRow {
            display_name: record[4].to_owned(),
            description: record[5].to_owned(),
            achieved: got,
            unlocked_at: if got { time } else { None },
        };
        match game.achievements.get_mut(api_name) {
            None => {
                game.achievements.insert(api_name.to_owned(), row);
            }
            Some(kept) => {
                // Keep one: unlocked if either is, earliest known time.
                lib.duplicates.push((line, appid, api_name.to_owned()));
                if row.achieved {
                    kept.unlocked_at = match (kept.achieved, kept.unlocked_at, row.unlocked_at) {
                        (true, Some(a), Some(b)) => Some(a.min(b)),
                        (true, a, None) => a,
                        (true, None, b) => b,
                        (false, _, b) => b,
                    };
                    kept.achieved = true;
                }
            }
        }
    }
    if first {
        return Err("the file is empty".into());
    }
    // An overlong line reached the parser as an empty one, which it skips
    // without a word: report each here, in line order with the rest.
    let overlong = overlong.borrow();
    if !overlong.is_empty() {
        lib.skipped.extend(overlong.iter().map(|l| (*l, format!("the line is longer than {max_line} bytes"))));
        lib.skipped.sort_by_key(|(l, _)| *l);
    }
    Ok(lib)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(text: &str) -> Library {
        let dir = std::env::temp_dir().join(format!("ql-csv-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.csv");
        std::fs::write(&path, text).unwrap();
        let out = read_library(&path).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        out
    }

    const H: &str = "appid,game_name,playtime_forever,achievement_api_name,achievement_name,achievement_description,achieved,unlock_time";

    #[test]
    fn quoted_fields_crlf_and_a_bom_are_read() {
        let text = format!(
            "\u{feff}{H}\r\n400,\"Portal, the \"\"game\"\"\",60,A1,\"Line\nbreak\",,True,1600000000\r\n570,Dota 2,10,,,,,\r\n"
        );
        let l = lib(&text);
        assert_eq!(l.games[&400].name, "Portal, the \"game\"");
        assert_eq!(l.games[&400].achievements["A1"].display_name, "Line\nbreak");
        assert_eq!(l.games[&400].achievements["A1"].unlocked_at, Some(1_600_000_000));
        assert!(l.games[&570].achievements.is_empty());
        assert!(l.skipped.is_empty());
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line_and_duplicates_merged() {
        let text = format!(
            "{H}\n400,Portal,60,A1,a,,0,0\nx400,Portal,60,A2,b,,1,5\n400,Portal,sixty,A3,c,,1,5\n400,Portal,60\n\
             400,Portal,60,A1,a,,1,200\n400,Portal,60,A1,a,,1,100\n"
        );
        let l = lib(&text);
        let lines: Vec<u64> = l.skipped.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5]);
        let a1 = &l.games[&400].achievements["A1"];
        assert!(a1.achieved);
        assert_eq!(a1.unlocked_at, Some(100), "the earliest non-zero time");
        assert_eq!(l.duplicates.len(), 2);
        assert_eq!(l.achievement_rows, 3);
    }

    #[test]
    fn line_numbers_are_right_with_crlf_endings_a_bom_and_quoted_line_breaks() {
        for (bom, eol) in [("", "\n"), ("", "\r\n"), ("\u{feff}", "\r\n"), ("\u{feff}", "\n")] {
            let text = format!(
                "{bom}{H}{eol}400,Portal,60,A1,\"two{eol}lines\",,1,5{eol}400,Portal,60,A2{eol}570,Dota 2,10,,,,,{eol}x,y{eol}"
            );
            let l = lib(&text);
            let lines: Vec<u64> = l.skipped.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, [4, 6], "bom {bom:?}, eol {eol:?}");
            assert_eq!(l.games[&400].achievements["A1"].display_name, format!("two{eol}lines"));
            assert_eq!(l.games[&400].achievements["A1"].unlocked_at, Some(5), "no CR left on the last field");
        }
    }

    #[test]
    fn an_unclosed_quote_is_reported_on_the_line_it_starts() {
        let l = lib(&format!("{H}\r\n400,Portal,60,A1,a,,1,5\r\n400,\"Portal,60,A2,b,,1,5\r\n"));
        let lines: Vec<u64> = l.skipped.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3]);
    }

    #[test]
    fn repeated_rows_of_a_game_without_achievements_are_merged_and_reported() {
        let l = lib(&format!("{H}\r\n556,Z,5,,,,,\r\n556,Z,5,,,,,\r\n556,Z,900,,,,,\r\n"));
        assert_eq!(l.games[&556].playtime_minutes, 900);
        let lines: Vec<u64> = l.game_merges.iter().map(|(l, _, _)| *l).collect();
        assert_eq!(lines, [3, 4]);
        assert!(l.game_merges[1].2.contains("900"), "{:?}", l.game_merges);
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_as_malformed_without_being_held_whole() {
        let long = "x".repeat(5000);
        let text = format!("{H}\n400,Portal,60,A1,a,,1,5\n400,Portal,60,A2,{long},,1,5\n570,Dota 2,10,,,,,\n");
        let l = parse_library_bounded(text.as_bytes(), 1000).unwrap();
        assert_eq!(l.skipped.len(), 1);
        assert_eq!(l.skipped[0].0, 3);
        assert!(l.skipped[0].1.contains("longer than 1000 bytes"));
        assert!(l.games[&400].achievements.contains_key("A1") && l.games.contains_key(&570));
        assert!(!l.games[&400].achievements.contains_key("A2"));
    }

    #[test]
    fn both_timestamp_forms_are_understood() {
        assert_eq!(parse_time("2024-03-02 10:11:12").unwrap().to_rfc3339(), "2024-03-02T10:11:12+00:00");
        assert_eq!(parse_time("2024-03-02T10:11:12Z").unwrap().to_rfc3339(), "2024-03-02T10:11:12+00:00");
        assert_eq!(parse_time("2024-03-02T12:11:12+02:00").unwrap().to_rfc3339(), "2024-03-02T10:11:12+00:00");
        assert!(parse_time("yesterday").is_none());
    }
}
