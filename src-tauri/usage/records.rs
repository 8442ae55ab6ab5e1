//! The request log's daily files (`requests.YYYY-MM-DD.jsonl`) as usage reads them: each
//! line into a small struct that borrows its strings from the line, only the fields usage
//! needs; a line that does not parse (cut by a crash, edited by hand) is skipped.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

/// Days since 1970-01-01, UTC: the log files' days.
pub type Day = i64;

pub const SECONDS_PER_DAY: i64 = 86_400;

/// One request record, as much of it as usage reads.
#[derive(Debug, Deserialize)]
pub struct Line<'a> {
    #[serde(borrow, default)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub time: Text<'a>,
    #[serde(borrow, default)]
    pub method: Text<'a>,
    #[serde(borrow, default)]
    pub origin: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub provider: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub model: Option<Text<'a>>,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub latency_ms: f64,
    #[serde(default)]
    pub ttft_ms: Option<f64>,
    #[serde(default)]
    pub usage: Option<Tokens>,
    /// Only whether there is one.
    #[serde(default)]
    pub error: Option<IgnoredAny>,
    /// `hit` or `coalesced`: answered without an upstream call of its own.
    #[serde(borrow, default)]
    pub cache: Option<Text<'a>>,
    /// The member whose token the request carried (team mode).
    #[serde(borrow, default)]
    pub member: Option<Text<'a>>,
}

/// A string of the line, borrowed from it unless it had to be unescaped. (serde's own
/// `Cow<str>` is always a copy, and `&str` fails on an escaped string.)
#[derive(Debug, Default, PartialEq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

impl Line<'_> {
    /// Parses one line; `None` for a line that is not a record.
    pub fn parse(line: &[u8]) -> Option<Line<'_>> {
        serde_json::from_slice(line).ok()
    }

    /// Parses one line as the log writes it (`Record::write_json`), reading only what
    /// usage needs: the prompt and the answer, most of a line, come after every field
    /// read here but `cache`. So the line is cut before `,"prompt":` (that comma becomes
    /// the closing brace: the line must be writable) and `cache` is found in the rest by
    /// a byte search; both are sound because a `"` inside a JSON string is always
    /// escaped, so `,"prompt":` and `,"cache":"` can only be the keys. Four times faster
    /// on a month of records than parsing every line whole; a line without a prompt key
    /// is parsed whole, as is one not in the log's order (the log's own start with
    /// `{"id":`). `None` for a line that is not a record.
    pub fn parse_in_place(line: &mut [u8]) -> Option<Line<'_>> {
        /// `,"member":"` and the longest name (64 characters of up to 4 bytes), `"}`.
        const MEMBER_TAIL: usize = 12 + 64 * 4 + 2;
        use memchr::memmem::Finder;
        use std::sync::LazyLock;
        static PROMPT: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"prompt\":"));
        static CACHE: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"cache\":\""));
        static MEMBER: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"member\":\""));
        let at = match PROMPT.find(line) {
            Some(at) if line.starts_with(b"{\"id\":") => at,
            _ => return Line::parse(line),
        };
        line[at] = b'}';
        let line: &[u8] = line;
        let (head, tail) = line.split_at(at + 1);
        let mut parsed: Line = serde_json::from_slice(head).ok()?;
        // Neither holds an escape: a cache kind, a member name (see `members::check_name`).
        fn after<'a>(finder: &Finder, within: &'a [u8]) -> Option<Option<Text<'a>>> {
            let Some(start) = finder.find(within) else {
                return Some(None);
            };
            let value = &within[start + finder.needle().len()..];
            let end = memchr::memchr(b'"', value)?;
            let text = std::str::from_utf8(&value[..end]).ok()?;
            Some(Some(Text(Cow::Borrowed(text))))
        }
        parsed.cache = after(&CACHE, tail)?;
        // The member is the record's last field: only the line's end is searched.
        let last = &tail[tail.len().saturating_sub(MEMBER_TAIL)..];
        parsed.member = after(&MEMBER, last)?;
        Some(parsed)
    }

    /// Answered from the cache or by another client's identical call: no upstream cost.
    pub fn cached(&self) -> bool {
        self.cache.is_some()
    }

    pub fn failed(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }
}

/// The daily files in `dir` for days `first..=last`, oldest first. A missing folder has
/// none.
pub fn day_files(dir: &Path, first: Day, last: Day) -> Vec<(Day, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<(Day, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let day = name
                .to_str()?
                .strip_prefix("requests.")?
                .strip_suffix(".jsonl")
                .and_then(parse_day)?;
            (first..=last).contains(&day).then(|| (day, e.path()))
        })
        .collect();
    files.sort();
    files
}

/// The file of day `day` in `dir`.
pub fn day_file(dir: &Path, day: Day) -> PathBuf {
    dir.join(format!("requests.{}.jsonl", day_name(day)))
}

/// Where each non-empty line of `bytes` is, for [`Line::parse_in_place`]; found with
/// memchr: a byte-by-byte split was a fifth of a month's summary.
pub fn line_ranges(bytes: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes)
        .chain(std::iter::once(bytes.len()))
        .map(move |end| {
            let range = start.min(end)..end;
            start = end + 1;
            range
        })
        .filter(|r| !bytes[r.clone()].iter().all(u8::is_ascii_whitespace))
}

/// `YYYY-MM-DD` as a [`Day`].
pub fn parse_day(text: &str) -> Option<Day> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = number(&b[0..4])? as i32;
    let month = time::Month::try_from(number(&b[5..7])? as u8).ok()?;
    let day = time::Date::from_calendar_date(year, month, number(&b[8..10])? as u8).ok()?;
    Some(Day::from(day.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// A [`Day`] as `YYYY-MM-DD`.
pub fn day_name(day: Day) -> String {
    match time::Date::from_julian_day((day + UNIX_EPOCH_JULIAN_DAY) as i32) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        Err(_) => "0000-00-00".into(),
    }
}

const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Seconds since the Unix epoch of an RFC 3339 time (`2026-12-07T17:26:10.123456Z`, or
/// with an offset); fractions are dropped. Written out, not through a general parser:
/// it runs once per record, a hundred thousand times for a month.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day = parse_day(text.get(..10)?)?;
    let (h, m, s) = (
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
    );
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let minutes = number(hh)? * 60 + number(&[*m1, *m2])?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    Some(day * SECONDS_PER_DAY + h * 3600 + m * 60 + s - offset)
}

/// The UTC day of an RFC 3339 time.
pub fn day_of(text: &str) -> Option<Day> {
    unix_seconds(text).map(|s| s.div_euclid(SECONDS_PER_DAY))
}

/// Now, in seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An RFC 3339 UTC time for `seconds` since the epoch.
pub fn rfc3339(seconds: i64) -> String {
    let day = seconds.div_euclid(SECONDS_PER_DAY);
    let s = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_name(day),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_are_read_as_the_log_writes_them() {
        let t = unix_seconds("2026-12-07T17:26:10.123456Z").unwrap();
        assert_eq!(t, 1_796_664_370);
        assert_eq!(rfc3339(t), "2026-12-07T17:26:10Z");
        assert_eq!(unix_seconds("2026-12-07T19:26:10+02:00"), Some(t));
        assert_eq!(
            day_name(day_of("2026-12-07T23:59:59Z").unwrap()),
            "2026-12-07"
        );
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn a_line_borrows_what_it_reads_and_bad_lines_are_none() {
        let text = br#"{"id":"a1","time":"2026-12-07T10:00:00Z","method":"POST","path":"/v1/chat/completions","origin":null,"provider":"openai","model":"gpt-4o-mini","status":200,"latency_ms":12.5,"ttft_ms":3.0,"bytes_out":10,"usage":{"input_tokens":9,"output_tokens":2},"error":null,"prompt":"hi \"there\"","answer":"yo","cache":"hit"}"#;
        let line = Line::parse(text).unwrap();
        assert_eq!(
            line.provider,
            Some(Text(Cow::Borrowed("openai"))),
            "not copied"
        );
        assert!(matches!(line.time, Text(Cow::Borrowed(_))));
        assert_eq!(line.usage.unwrap().input_tokens, 9);
        assert!(line.cached() && !line.failed());
        assert!(Line::parse(b"{\"id\": \"cut off").is_none());
        assert!(Line::parse(b"not json").is_none());
    }

    #[test]
    fn a_line_as_the_log_writes_it_is_read_alike_cut_or_whole() {
        // Every field usage reads, set, as `Record::write_json` writes them: should that
        // order ever put one after the prompt, this fails.
        let record = crate::request_log::Record {
            id: "r1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            method: "POST".into(),
            origin: Some("https://a.example".into()),
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            status: 502,
            latency_ms: 12.5,
            ttft_ms: Some(3.0),
            usage: Some(crate::chat::Usage {
                input_tokens: 9,
                output_tokens: 2,
            }),
            error: Some("boom".into()),
            prompt: Some(r#"a prompt with ,"cache":"hit" and ,"prompt": in it"#.into()),
            answer: Some("an answer".into()),
            cache: Some("coalesced"),
            member: Some("ana@example.com".into()),
            ..Default::default()
        };
        let mut line = Vec::new();
        record.write_json(&mut line).unwrap();
        let whole = format!("{:?}", Line::parse(&line).unwrap());
        let cut = format!("{:?}", Line::parse_in_place(&mut line.clone()).unwrap());
        assert_eq!(cut, whole);
        assert!(
            whole.contains("coalesced")
                && whole.contains("input_tokens: 9")
                && whole.contains("ana@example.com"),
            "{whole}"
        );
        let mut uncached = Vec::new();
        crate::request_log::Record {
            cache: None,
            ..record
        }
        .write_json(&mut uncached)
        .unwrap();
        assert!(Line::parse_in_place(&mut uncached).unwrap().cache.is_none());
        assert!(Line::parse_in_place(&mut b"{\"id\": \"cut off".to_vec()).is_none());
    }

    #[test]
    fn lines_are_split_on_newlines_blank_ones_left_out() {
        fn all(text: &[u8]) -> Vec<&[u8]> {
            line_ranges(text).map(|r| &text[r]).collect()
        }
        assert_eq!(all(b"a\n\nb\r\n  \nc"), [&b"a"[..], b"b\r", b"c"]);
        assert_eq!(all(b"a\n"), [&b"a"[..]]);
        assert!(all(b"").is_empty());
    }

    #[test]
    fn only_the_days_asked_for_are_read() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "requests.2026-12-01.jsonl",
            "requests.2026-12-07.jsonl",
            "requests.2026-11-01.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let last = parse_day("2026-12-07").unwrap();
        let files = day_files(dir.path(), last - 6, last);
        let names: Vec<_> = files.iter().map(|(d, _)| day_name(*d)).collect();
        assert_eq!(names, ["2026-12-01", "2026-12-07"]);
        assert_eq!(
            day_file(dir.path(), last),
            dir.path().join("requests.2026-12-07.jsonl")
        );
    }
}
