//! "Did you mean …?": the known name nearest to a mistyped one, for an unknown command and an
//! unknown config key alike, with one idea of "near enough".

/// How alike (Jaro-Winkler, 0 to 1) a known name must be to a mistyped one to be suggested:
/// below this, a suggestion is more often a distraction than a help.
const NEAR_ENOUGH: f64 = 0.8;

/// How alike two names are, from 0 (nothing in common) to 1 (the same).
pub fn similarity(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b)
}

/// The candidate nearest to `name`, if any is near enough.
pub fn did_you_mean<'a, S: AsRef<str>>(name: &str, candidates: &'a [S]) -> Option<&'a str> {
    nearest(candidates.iter().map(AsRef::as_ref), |c| {
        similarity(name, c)
    })
}

/// The candidate that `score` (a [`similarity`]) rates highest, if it is near enough. For
/// names compared by their parts, as config keys are (`table.leaf`).
pub fn nearest<T: Copy>(
    candidates: impl IntoIterator<Item = T>,
    score: impl Fn(T) -> f64,
) -> Option<T> {
    candidates
        .into_iter()
        .map(|c| (score(c), c))
        .filter(|(score, _)| *score > NEAR_ENOUGH)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_picks_the_nearest() {
        let names: Vec<String> = ["list", "show", "stats", "retry"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(did_you_mean("lst", &names), Some("list"));
        assert_eq!(did_you_mean("stat", &names), Some("stats"));
        assert_eq!(did_you_mean("retyr", &names), Some("retry"));
        assert_eq!(did_you_mean("zzzz", &names), None);
    }
}
