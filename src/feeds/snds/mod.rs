//! Microsoft SNDS ("Smart Network Data Services") automated data access,
//! pure: the two CSV exports in, typed rows (or the reason they are refused)
//! out; the HTTP answer classified ([`fetch`] is the I/O at the edge).
//!
//! The exports, as Microsoft's automated-access page and the collectors that
//! read them (sndslib, AbuseIO's SNDS collector, check_mk's `snds_check.sh`)
//! describe them: no header line, one record a line (CRLF), comma-separated.
//!
//! * `ipStatus.aspx?key=K`: the blocked ranges, `first IP, last IP, blocked
//!   (Yes/No), reason`.
//! * `data.aspx?key=K[&date=MMDDYY]`: per IP for one day, `IP, activity
//!   start, activity end, RCPT commands, DATA commands, message recipients,
//!   filter result (GREEN/YELLOW/RED), complaint rate ("< 0.1%", "2.3%"),
//!   trap message period start, end, trap hits, sample HELO, sample MAIL
//!   FROM, comments`. Times read `M/D/YYYY h:mm AM`. A day with no data is an
//!   empty body: it is "no data", never zero.
//!
//! Everything here is hostile input: a row with the wrong number of columns,
//! an address that is not one, a count that is not a number or a filter result
//! not in the closed set refuses the whole export (a format change is said,
//! not half-read); remote text is cut to [`MAX_TEXT`] characters with control
//! characters removed, and an export has at most [`MAX_ROWS`] rows.

pub mod fetch;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The most rows read from one export (SNDS registrations are ranges: a /16 is 65,536).
pub const MAX_ROWS: usize = 200_000;
/// How far back a red day still counts for the verdict (days): an IP SNDS
/// has not reported since (it stopped sending to Microsoft) is not judged on it.
pub const RED_DAYS: i64 = 7;
/// The longest remote text kept (a reason, a HELO, a MAIL FROM, a comment).
pub const MAX_TEXT: usize = 255;

crate::spelling::closed_set! {
    /// SNDS's filter result for an IP and day: the share of its mail that
    /// Microsoft's spam filter judged spam (green < 10 %, yellow 10-90 %, red > 90 %).
    pub enum FilterResult {
        /// Under 10 % judged spam.
        Green = "GREEN",
        /// Between 10 % and 90 %.
        Yellow = "YELLOW",
        /// Over 90 %: Microsoft treats (nearly) all of it as spam.
        Red = "RED",
    }
}

/// One range of the IP status export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpStatus {
    /// First address of the range.
    pub first: IpAddr,
    /// Last address of the range.
    pub last: IpAddr,
    /// Microsoft blocks mail from the range.
    pub blocked: bool,
    /// Why (remote text).
    pub reason: String,
}

impl IpStatus {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.first, self.last, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }

    /// `a.b.c.d` or `a.b.c.d-e.f.g.h`.
    pub fn range(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

/// A complaint rate as SNDS gives it: a percentage, or "under" a bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRate {
    /// The percentage (the bound when `below`).
    pub percent: f64,
    /// "< 0.1%": under `percent`, not equal to it.
    pub below: bool,
}

impl std::fmt::Display for ComplaintRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.below {
            write!(f, "< {} %", self.percent)
        } else {
            write!(f, "{} %", self.percent)
        }
    }
}

/// One IP's day in the data export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// The sending IP.
    pub ip: IpAddr,
    /// First mail of the activity period (`YYYY-MM-DD HH:MM`, as SNDS gives it).
    pub activity_start: Option<String>,
    /// Last mail of the activity period.
    pub activity_end: Option<String>,
    /// RCPT commands.
    pub rcpt: u64,
    /// DATA commands.
    pub data: u64,
    /// Message recipients.
    pub recipients: u64,
    /// Filter result.
    pub filter: FilterResult,
    /// Complaint rate (absent when SNDS gives none).
    pub complaint: Option<ComplaintRate>,
    /// First trap hit of the day.
    pub trap_start: Option<String>,
    /// Last trap hit.
    pub trap_end: Option<String>,
    /// Trap hits.
    pub trap_hits: u64,
    /// A HELO seen (remote text).
    pub helo: String,
    /// A MAIL FROM seen (remote text).
    pub mail_from: String,
    /// SNDS's comment (remote text).
    pub comments: String,
}

impl DayRow {
    /// Whether Microsoft refuses this IP's mail that day (filter result red).
    pub fn refused(&self) -> bool {
        self.filter == FilterResult::Red
    }
}

/// Why an export was refused (the whole export: never half-read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A row with a number of columns the format does not have.
    #[error("line {line}: {got} columns, the {export} export has {want}")]
    Columns {
        /// 1-based line.
        line: usize,
        /// Which export.
        export: &'static str,
        /// Columns found.
        got: usize,
        /// Columns expected.
        want: &'static str,
    },
    /// A field that is not what its column holds.
    #[error("line {line}: {column} {value:?} is not {want}")]
    Field {
        /// 1-based line.
        line: usize,
        /// The column's name.
        column: &'static str,
        /// The value (cut to 40 characters).
        value: String,
        /// What it should be.
        want: &'static str,
    },
    /// More rows than [`MAX_ROWS`].
    #[error("more than {MAX_ROWS} rows")]
    TooManyRows,
    /// Not text.
    #[error("not UTF-8 text")]
    NotText,
}

/// Splits one CSV line: commas, with double-quoted fields (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if cur.is_empty() => quoted = true,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Remote text as kept: trimmed, control characters removed, at most [`MAX_TEXT`] characters.
pub fn clean_text(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

fn cut(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// The lines of an export: `\r\n` or `\n`, blank lines skipped, with their 1-based numbers.
fn lines(body: &[u8]) -> Result<impl Iterator<Item = (usize, &str)>, CsvError> {
    let text = std::str::from_utf8(body).map_err(|_| CsvError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let n = text.lines().filter(|l| !l.trim().is_empty()).count();
    if n > MAX_ROWS {
        return Err(CsvError::TooManyRows);
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l)))
}

fn field_err(line: usize, column: &'static str, value: &str, want: &'static str) -> CsvError {
    CsvError::Field {
        line,
        column,
        value: cut(value),
        want,
    }
}

fn ip(line: usize, column: &'static str, v: &str) -> Result<IpAddr, CsvError> {
    v.trim()
        .parse::<IpAddr>()
        .map(crate::target::normalise_ip)
        .map_err(|_| field_err(line, column, v, "an IP address"))
}

fn count(line: usize, column: &'static str, v: &str) -> Result<u64, CsvError> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(0);
    }
    t.parse::<u64>()
        .map_err(|_| field_err(line, column, v, "a count"))
}

/// `M/D/YYYY h:mm AM` (or 24-hour `H:mm`, or a bare date) as `YYYY-MM-DD HH:MM`; empty is `None`.
fn parse_when(v: &str) -> Result<Option<String>, ()> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let mut parts = t.split_whitespace();
    let date = parts.next().ok_or(())?;
    let d: Vec<&str> = date.split('/').collect();
    let [m, dd, y] = d.as_slice() else {
        return Err(());
    };
    let (m, dd, y): (u32, u32, u32) = (
        m.parse().map_err(|_| ())?,
        dd.parse().map_err(|_| ())?,
        y.parse().map_err(|_| ())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || !(1990..=9999).contains(&y) {
        return Err(());
    }
    let (mut h, mi) = match parts.next() {
        None => (0, 0),
        Some(hm) => {
            let (h, mi) = hm.split_once(':').ok_or(())?;
            let h: u32 = h.parse().map_err(|_| ())?;
            let mi: u32 = mi.get(..2).unwrap_or(mi).parse().map_err(|_| ())?;
            (h, mi)
        }
    };
    match parts.next().map(|s| s.to_ascii_uppercase()) {
        None => {}
        Some(ap) if (ap == "AM" || ap == "PM") && (1..=12).contains(&h) => {
            h %= 12;
            if ap == "PM" {
                h += 12;
            }
        }
        Some(_) => return Err(()),
    }
    if parts.next().is_some() || h > 23 || mi > 59 {
        return Err(());
    }
    Ok(Some(format!("{y:04}-{m:02}-{dd:02} {h:02}:{mi:02}")))
}

fn when(line: usize, column: &'static str, v: &str) -> Result<Option<String>, CsvError> {
    parse_when(v).map_err(|_| field_err(line, column, v, "a time (M/D/YYYY h:mm AM)"))
}

/// `< 0.1%`, `2.3%`, `2.3`; empty is `None`.
fn parse_rate(v: &str) -> Result<Option<ComplaintRate>, ()> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let (below, rest) = match t.strip_prefix('<') {
        Some(r) => (true, r.trim()),
        None => (false, t),
    };
    let n = rest.strip_suffix('%').unwrap_or(rest).trim();
    let percent: f64 = n.parse().map_err(|_| ())?;
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(());
    }
    Ok(Some(ComplaintRate { percent, below }))
}

/// The IP status export: every range, blocked or not.
pub fn parse_ip_status(body: &[u8]) -> Result<Vec<IpStatus>, CsvError> {
    let mut out = Vec::new();
    for (n, l) in lines(body)? {
        let f = split_csv(l);
        if f.len() < 4 {
            return Err(CsvError::Columns {
                line: n,
                export: "IP status",
                got: f.len(),
                want: "4",
            });
        }
        let first = ip(n, "first IP", &f[0])?;
        let last = ip(n, "last IP", &f[1])?;
        if first.is_ipv4() != last.is_ipv4() || last < first {
            return Err(field_err(n, "last IP", &f[1], "an address after the first"));
        }
        let blocked = match f[2].trim().to_ascii_lowercase().as_str() {
            "yes" => true,
            "no" => false,
            _ => return Err(field_err(n, "blocked", &f[2], "Yes or No")),
        };
        // a reason holding a comma unquoted: the rest of the line is the reason
        out.push(IpStatus {
            first,
            last,
            blocked,
            reason: clean_text(&f[3..].join(",")),
        });
    }
    Ok(out)
}

/// The daily data export: one row per IP (13 columns, or 14 with SNDS's comment).
pub fn parse_data(body: &[u8]) -> Result<Vec<DayRow>, CsvError> {
    let mut out = Vec::new();
    for (n, l) in lines(body)? {
        let f = split_csv(l);
        if !(13..=14).contains(&f.len()) {
            return Err(CsvError::Columns {
                line: n,
                export: "data",
                got: f.len(),
                want: "13 or 14",
            });
        }
        let addr = ip(n, "IP", &f[0])?;
        let filter = f[6]
            .trim()
            .to_ascii_uppercase()
            .parse::<FilterResult>()
            .map_err(|_| field_err(n, "filter result", &f[6], "GREEN, YELLOW or RED"))?;
        out.push(DayRow {
            ip: addr,
            activity_start: when(n, "activity start", &f[1])?,
            activity_end: when(n, "activity end", &f[2])?,
            rcpt: count(n, "RCPT commands", &f[3])?,
            data: count(n, "DATA commands", &f[4])?,
            recipients: count(n, "message recipients", &f[5])?,
            filter,
            complaint: parse_rate(&f[7])
                .map_err(|_| field_err(n, "complaint rate", &f[7], "a percentage"))?,
            trap_start: when(n, "trap message start", &f[8])?,
            trap_end: when(n, "trap message end", &f[9])?,
            trap_hits: count(n, "trap hits", &f[10])?,
            helo: clean_text(&f[11]),
            mail_from: clean_text(&f[12]),
            comments: f.get(13).map(|c| clean_text(c)).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The `date=` parameter of the data export for a UTC day `YYYY-MM-DD`: `MMDDYY`.
pub fn date_param(day: &str) -> Option<String> {
    let mut p = day.split('-');
    let (y, m, d) = (p.next()?, p.next()?, p.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Some(format!("{m}{d}{}", &y[2..]))
}

/// What SNDS says about an IP, as the verdict and the target page say it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The IP (or the blocked range holding it).
    pub ip: String,
    /// Blocked in the IP status export.
    pub blocked: Option<String>,
    /// The last day SNDS filtered it red, with that day's figures.
    pub red: Option<(String, DayRow)>,
}

impl Refusal {
    /// "SNDS: 192.0.2.10 blocked (reason); filter result RED on 2026-12-05 (complaint rate 4.2 %, 12 trap hits, 950 recipients)".
    pub fn evidence(&self) -> String {
        let mut parts = Vec::new();
        if let Some(why) = &self.blocked {
            parts.push(if why.is_empty() {
                "blocked".to_string()
            } else {
                format!("blocked ({why})")
            });
        }
        if let Some((day, r)) = &self.red {
            let rate = r
                .complaint
                .as_ref()
                .map(|c| format!("complaint rate {c}, "))
                .unwrap_or_default();
            parts.push(format!(
                "filter result RED on {day} ({rate}{} trap hits, {} recipients)",
                r.trap_hits, r.recipients
            ));
        }
        format!("SNDS: {} {}", self.ip, parts.join("; "))
    }
}
