//! "Did you mean ...?": the closest of a set of valid names to a wrong one.

/// The candidate closest to `word`, when one is close enough to be a likely
/// typo (same letters in another case, or a small edit distance).
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            strsim::damerau_levenshtein(&lower, &candidate.to_lowercase())
        };
        let limit = (word.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` or the list of valid names (`one of: a, b, c`).
pub fn hint(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if candidates.is_empty() => "there is nothing of that kind to refer to".to_owned(),
        None => format!("one of: {}", list(candidates)),
    }
}

/// `a, b, c` (with backticks), at most 12 names.
pub fn list(candidates: &[&str]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for c in candidates {
        if !unique.contains(c) {
            unique.push(c);
        }
    }
    let mut shown: Vec<String> = unique.iter().take(12).map(|c| format!("`{c}`")).collect();
    if unique.len() > 12 {
        shown.push(format!("... ({} more)", unique.len() - 12));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_should_prefer_a_case_only_difference() {
        assert_eq!(
            closest("employeeID", ["employeeId", "employeeType"]),
            Some("employeeId")
        );
    }

    #[test]
    fn closest_should_find_a_small_typo() {
        assert_eq!(
            closest("projections", ["projection", "provisioning"]),
            Some("projection")
        );
        assert_eq!(closest("emial", ["email", "displayName"]), Some("email"));
    }

    #[test]
    fn closest_should_offer_nothing_for_an_unrelated_word() {
        assert_eq!(closest("ldap", ["csv", "jsonl", "sqlite"]), None);
    }
}
