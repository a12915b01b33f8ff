//! What several rounds of one measurement say together: the median, and the lowest and
//! highest value, so that a reader sees how far a loaded host moved the figure.
//!
//! `cargo xtask bench` runs each comparison in alternating rounds (exo, Linux, exo, Linux,
//! …) and takes the ratio within each round; a row's ratio is the median of those, its
//! spread their lowest and highest. Pure arithmetic on the figures it is given.

/// The median and range of some rounds' values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub lowest: f64,
    pub highest: f64,
    /// How many values (rounds) it was taken over.
    pub rounds: usize,
}

impl Spread {
    /// The spread of the finite values among `values`; `None` if there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values
            .into_iter()
            .filter(|value| value.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        Some(Spread {
            median: median_of_sorted(&values)?,
            lowest: *values.first()?,
            highest: *values.last()?,
            rounds: values.len(),
        })
    }
}

/// The median of the finite values among `values`: the middle one, or the mean of the two
/// middle ones for an even count; `None` if there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    Spread::of(values).map(|spread| spread.median)
}

fn median_of_sorted(sorted: &[f64]) -> Option<f64> {
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        count if !count.is_multiple_of(2) => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([7.0]), Some(7.0));
        assert_eq!(median([]), None);
    }

    #[test]
    fn a_spread_runs_from_the_lowest_to_the_highest_round() {
        let spread = Spread::of([4.4, 3.8, 4.1]).unwrap();
        assert_eq!(
            spread,
            Spread {
                median: 4.1,
                lowest: 3.8,
                highest: 4.4,
                rounds: 3
            }
        );
    }

    #[test]
    fn values_that_are_not_finite_are_left_out() {
        let spread = Spread::of([f64::NAN, 2.0, f64::INFINITY, 1.0]).unwrap();
        assert_eq!((spread.median, spread.rounds), (1.5, 2));
        assert_eq!(Spread::of([f64::NAN]), None);
    }
}
