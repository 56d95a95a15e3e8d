//! Medians of rounds, and number formatting for the table.

use std::time::Duration;

/// The results of one figure over several rounds.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// The median: robust to the odd round disturbed by another process on a shared machine.
    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// Every round, in order, for the JSON output.
    pub fn rounds(&self) -> &[f64] {
        &self.0
    }

    /// The JSON form: the median and every round.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "median": self.median(), "rounds": self.rounds() })
    }
}

/// Per-round ratios `a[i] / b[i]`. Taking the ratio within a round, where subject and baseline
/// ran back to back, cancels most of the noise that a ratio of medians would keep.
pub fn paired_ratios(a: &Samples, b: &Samples) -> Samples {
    Samples(a.0.iter().zip(&b.0).map(|(a, b)| a / b).collect())
}

/// Per-round differences `a[i] - b[i]`, paired like [`paired_ratios`].
pub fn paired_differences(a: &Samples, b: &Samples) -> Samples {
    Samples(a.0.iter().zip(&b.0).map(|(a, b)| a - b).collect())
}

/// Operations per second.
pub fn per_second(operations: usize, elapsed: Duration) -> f64 {
    operations as f64 / elapsed.as_secs_f64()
}

/// Nanoseconds per operation.
pub fn nanos_per(operations: usize, elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e9 / operations as f64
}

/// CPU time used so far by every thread of this process, including threads that have exited
/// (the runtime's worker threads end with each operator run), from Linux's `/proc/self/stat`
/// (user + system time, in clock ticks of 10 ms: a run should last a second or more for a
/// precise figure); `None` where that is not available.
pub fn process_cpu_time() -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it start after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// `1234567.8` as `"1,234,568"`.
pub fn grouped(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < -0.5 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_rounds() {
        let mut samples = Samples::default();
        for value in [5.0, 1.0, 3.0] {
            samples.push(value);
        }
        assert_eq!(samples.median(), 3.0);
        samples.push(4.0);
        assert_eq!(samples.median(), 3.5);
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(1_234_567.8), "1,234,568");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(-1234.0), "-1,234");
        assert_eq!(grouped(0.2), "0");
    }
}
