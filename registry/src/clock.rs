//! UTC timestamps and run ids without a date-time dependency: the registry only ever needs
//! "now" in two fixed formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down UTC time.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Utc {
    fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// Gregorian (year, month, day) of a count of days since 1970-01-01 (Hinnant's algorithm:
/// shift to eras of 400 years starting in March so leap days fall at the end of a year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn unix_now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        // A clock before 1970 is broken; timestamps then sort first rather than failing a run.
        Err(_) => (0, 0),
    }
}

/// The current time as RFC 3339 UTC with second precision, e.g. `2026-11-28T23:20:00Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(unix_now().0)
}

pub(crate) fn format_rfc3339(unix_secs: i64) -> String {
    let t = Utc::from_unix(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A new run id: `YYYYMMDDTHHMMSSZ-<8 hex>`. Ids sort by start time; the suffix keeps two runs
/// started in the same second apart.
pub fn new_run_id() -> String {
    let (secs, nanos) = unix_now();
    format_run_id(secs, &random_suffix(secs, nanos))
}

fn format_run_id(unix_secs: i64, suffix: &str) -> String {
    let t = Utc::from_unix(unix_secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{suffix}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// 8 hex characters that differ between processes and between calls in one process. Not
/// cryptographic; it only has to avoid collisions between runs of one workspace.
fn random_suffix(secs: i64, nanos: u32) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&secs.to_le_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.update(format!("{:?}", std::thread::current().id()).as_bytes());
    hasher.finalize().to_hex()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 is a leap day in a year divisible by 400.
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_798_499_999), "2026-12-28T23:19:59Z");
        assert_eq!(
            format_run_id(1_798_499_999, "0123abcd"),
            "20261228T231959Z-0123abcd"
        );
    }

    #[test]
    fn run_ids_are_distinct_and_well_formed() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261128T232000Z-0123abcd".len());
        assert!(a.as_bytes()[8] == b'T' && a.as_bytes()[15] == b'Z' && a.as_bytes()[16] == b'-');
        assert!(a[17..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
