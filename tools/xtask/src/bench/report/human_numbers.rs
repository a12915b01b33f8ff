//! Figures as a reader takes them in: about three significant digits, thousands grouped, a
//! dash for a missing figure. Shared by the table and the charts so both say the same.

/// What is shown where a figure is missing.
pub const MISSING: &str = "—";

/// `value` with three significant digits or all its integer digits, thousands grouped with
/// commas: 12,345 · 123 · 12.3 · 1.23 · 0.0123.
pub fn figure(value: f64) -> String {
    if !value.is_finite() {
        return MISSING.to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    // Rounded to three significant digits first, so a carry (99.96 → 100) is seen.
    let scientific = format!("{value:.2e}");
    let (_, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    if exponent >= 2 {
        return group_thousands(value.round());
    }
    let decimals = (2 - exponent) as usize;
    format!("{value:.decimals$}")
}

/// An optional figure, or the dash.
pub fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| MISSING.to_string(), figure)
}

/// A whole number in full, thousands grouped: `131,072`.
pub fn whole(value: u64) -> String {
    group_thousands(value as f64)
}

/// A ratio: `3.2×`.
pub fn ratio(value: f64) -> String {
    format!("{}×", figure(value))
}

fn group_thousands(whole: f64) -> String {
    let digits = format!("{:.0}", whole.abs());
    let mut grouped = String::new();
    for (place, digit) in digits.chars().enumerate() {
        if place > 0 && (digits.len() - place) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if whole < 0.0 {
        grouped.insert(0, '-');
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_three_significant_digits_or_every_whole_one() {
        assert_eq!(figure(1_234_567.4), "1,234,567");
        assert_eq!(figure(12_345.0), "12,345");
        assert_eq!(figure(999.6), "1,000");
        assert_eq!(figure(123.4), "123");
        assert_eq!(figure(12.34), "12.3");
        assert_eq!(figure(1.234), "1.23");
        assert_eq!(figure(0.01234), "0.0123");
        assert_eq!(figure(99.96), "100");
        assert_eq!(figure(9.996), "10.0");
        assert_eq!(figure(0.1), "0.100");
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(-4.5), "-4.50");
        assert_eq!(figure(-12_345.0), "-12,345");
        assert_eq!(figure(f64::NAN), MISSING);
        assert_eq!(optional(None), MISSING);
        assert_eq!(ratio(3.21), "3.21×");
        assert_eq!(whole(9), "9");
        assert_eq!(whole(131_072), "131,072");
    }
}
