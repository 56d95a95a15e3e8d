//! Duration strings, `"250ms"` to `"1h30m"`, as `interval` and `--shutdown-timeout` accept them.
//!
//! A copy of `memo-macros/src/duration_text.rs`, so that flags read durations exactly as the macro
//! reads attribute values (a crate cannot include another's file and still be packaged); the test
//! `durations_read_alike` keeps the two in step.

/// `"250ms"`, `"10s"`, `"1.5s"`, `"1m"`, `"2h"`, `"1h30m"`.
pub(crate) fn parse_text(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{rest}` has no unit"))?;
        if number_end == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let number: f64 = number.parse().map_err(|_| format!("`{number}` is not a number"))?;
        let unit_nanos = match unit.trim() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" | "secs" => 1e9,
            "m" | "min" | "mins" => 60e9,
            "h" | "hr" | "hrs" => 3600e9,
            other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
        };
        let nanos = number * unit_nanos;
        if !nanos.is_finite() || nanos >= u64::MAX as f64 {
            return Err("it is too large".to_owned());
        }
        total = total.checked_add(nanos.round() as u64).ok_or("it is too large")?;
        rest = after;
    }
    Ok(total)
}
