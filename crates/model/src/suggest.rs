//! "Did you mean ...?": the closest of a set of valid names to a wrong one,
//! for every message that names something unknown (configuration keys and
//! names, connector settings, run profiles, run statuses, functions, time
//! zones).
//!
//! One rule everywhere: names compare without regard to case (a case-only
//! difference is the best match), by Damerau-Levenshtein distance (a swap
//! of two neighbours is one edit: `emial` is one edit from `email`), and a
//! candidate is offered when that distance is at most a third of the
//! longer name's length (at least 1). Among equally close candidates the
//! first one given wins.

/// The candidate closest to `word`, when one is close enough to be a likely
/// typo (same letters in another case, or a small edit distance). A
/// candidate equal to `word` is never offered.
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
        let candidate_lower = candidate.to_lowercase();
        let distance = if candidate_lower == lower {
            0
        } else {
            strsim::damerau_levenshtein(&lower, &candidate_lower)
        };
        let limit = (word.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// ``did you mean `x`?`` for the closest candidate, if one is close enough.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// ``did you mean `x`?`` or the list of valid names (``one of: `a`, `b` ``).
pub fn hint(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(h) => h,
        None if candidates.is_empty() => "there is nothing of that kind to refer to".to_owned(),
        None => format!("one of: {}", list(candidates)),
    }
}

/// `a, b, c` (with backticks, each name once), at most 12 names.
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

/// The one sentence for an unknown management agent, wherever it is
/// named (the CLI, the service, the engine, the API): the closest name,
/// else every name in alphabetical order.
pub fn unknown_ma<'a>(ma: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    format!("no management agent named `{ma}` ({})", hint(ma, &names))
}

/// The one sentence for a run profile `ma` does not have: the closest
/// name, else every profile of the MA in alphabetical order.
pub fn unknown_profile<'a>(
    ma: &str,
    profile: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    format!(
        "management agent `{ma}` has no run profile `{profile}` ({})",
        hint(profile, &names)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_said_one_way_with_a_suggestion_or_the_sorted_list() {
        assert_eq!(
            unknown_ma("hrr", ["hr", "app"]),
            "no management agent named `hrr` (did you mean `hr`?)"
        );
        assert_eq!(
            unknown_ma("payroll", ["hr", "app"]),
            "no management agent named `payroll` (one of: `app`, `hr`)"
        );
        assert_eq!(
            unknown_profile("hr", "delta-imprt", ["full-import", "delta-import"]),
            "management agent `hr` has no run profile `delta-imprt` (did you mean `delta-import`?)"
        );
    }

    #[test]
    fn closest_should_prefer_a_case_only_difference() {
        assert_eq!(
            closest("employeeID", ["employeeId", "employeeType"]),
            Some("employeeId")
        );
        assert_eq!(closest("UPPER", ["lower", "upper"]), Some("upper"));
    }

    #[test]
    fn closest_should_find_a_small_typo() {
        assert_eq!(
            closest("projections", ["projection", "provisioning"]),
            Some("projection")
        );
        assert_eq!(closest("hrr", ["hr", "directory"]), Some("hr"));
        assert_eq!(
            closest("delimeter", ["path", "delimiter"]),
            Some("delimiter")
        );
    }

    #[test]
    fn closest_should_count_a_swap_of_neighbours_as_one_edit() {
        assert_eq!(closest("emial", ["email", "displayName"]), Some("email"));
        assert_eq!(closest("trmi", ["trim", "lower"]), Some("trim"));
        assert_eq!(closest("tabel", ["path", "table"]), Some("table"));
    }

    #[test]
    fn closest_should_offer_nothing_for_an_unrelated_word() {
        assert_eq!(closest("ldap", ["csv", "jsonl", "sqlite"]), None);
        assert_eq!(closest("zzzzzz", ["hr", "directory"]), None);
        assert_eq!(closest("ab", ["hr"]), None);
    }

    #[test]
    fn closest_should_never_offer_the_word_itself() {
        assert_eq!(closest("hr", ["hr"]), None);
        assert_eq!(closest("hr", ["hr", "Hr"]), Some("Hr"));
    }

    #[test]
    fn closest_should_take_the_first_of_equally_close_candidates() {
        assert_eq!(closest("cat", ["bat", "hat"]), Some("bat"));
        assert_eq!(closest("cat", ["hat", "bat"]), Some("hat"));
    }

    #[test]
    fn the_limit_should_grow_with_the_longer_name() {
        // Two edits: too many for names of three to five letters, allowed
        // from six on.
        assert_eq!(closest("abcde", ["abcxy"]), None);
        assert_eq!(closest("abcdef", ["abcdxy"]), Some("abcdxy"));
    }

    #[test]
    fn did_you_mean_should_word_the_suggestion() {
        assert_eq!(
            did_you_mean("sucess", ["failed", "success"]).as_deref(),
            Some("did you mean `success`?")
        );
        assert_eq!(did_you_mean("ldap", ["csv"]), None);
    }

    #[test]
    fn hint_should_fall_back_to_the_valid_names() {
        assert_eq!(hint("emial", &["email"]), "did you mean `email`?");
        assert_eq!(hint("ldap", &["csv", "jsonl"]), "one of: `csv`, `jsonl`");
        assert_eq!(hint("x", &[]), "there is nothing of that kind to refer to");
    }

    #[test]
    fn list_should_show_each_name_once_and_at_most_twelve() {
        assert_eq!(list(&["a", "b", "a"]), "`a`, `b`");
        let many: Vec<String> = (0..14).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let shown = list(&refs);
        assert!(shown.ends_with("`n11`, ... (2 more)"), "{shown}");
    }
}
