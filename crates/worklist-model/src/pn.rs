//! Person names (PN): the case folding and normalization that C-FIND matching uses, and
//! the search key the store keeps of each patient name so that a name query with a
//! literal start (`Sim*`, `DOE^J*`) reads an index range instead of every row.
//!
//! The SCP's matcher (`mwl-scp`) uses [`fold_char`] and [`normalize_pn`] from here, so
//! that the stored key and the query's prefix are folded by one definition.
//!
//! # The key
//!
//! For a patient name with one component group (the alphabetic one; no `=` once
//! normalized), [`name_search_key`] gives the folded, normalized name (`Simpson^Homer`:
//! `simpson^homer`) and a group count of 1. A name with several groups (`Yamada^Tarou=山田^太郎`)
//! has no key and counts its groups: a query is compared with each group of such a name,
//! so these entries stay candidates of every name query. No name: no key, 0 groups.
//!
//! A query whose every value has a literal start before its first wildcard in the family
//! component (see `MwlQuery::candidate_filter` in mwl-scp) can only match names whose key
//! starts with that literal start: the store reads the key range
//! `[prefix, prefix_upper_bound(prefix))` (SQLite compares TEXT as UTF-8 bytes, whose
//! order is code point order) and the multi-group names.

/// Folds one character for case-insensitive comparison, keeping one character per
/// character so that `?` still stands for exactly one: its lower case when that is one
/// character, else the character itself (`İ`, whose lower case is two characters).
pub fn fold_char(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// A string folded character by character ([`fold_char`]), as characters.
pub fn fold_chars(s: &str) -> Vec<char> {
    s.chars().map(fold_char).collect()
}

/// A string folded character by character ([`fold_char`]).
pub fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Which case folding wrote the stored keys: [`fold_char`] follows the Unicode tables of
/// the Rust standard library it was built with, so keys written by a build on another
/// Unicode version are recomputed when the store opens.
pub fn fold_version() -> String {
    let (major, minor, update) = std::char::UNICODE_VERSION;
    format!("unicode-{major}.{minor}.{update}")
}

/// A PN value with padding removed: each component trimmed, trailing empty components
/// and trailing empty component groups dropped (`DOE^JOHN^^^` is `DOE^JOHN`).
pub fn normalize_pn(s: &str) -> String {
    let mut groups: Vec<String> = s
        .split('=')
        .map(|g| {
            let mut comps: Vec<&str> = g.split('^').map(|c| c.trim_matches(' ')).collect();
            while comps.last().is_some_and(|c| c.is_empty()) {
                comps.pop();
            }
            comps.join("^")
        })
        .collect();
    while groups.last().is_some_and(|g| g.is_empty()) {
        groups.pop();
    }
    groups.join("=")
}

/// The search key of a patient name and its number of component groups (see the
/// [module documentation](self)): `(Some(folded name), 1)` for a name of one group,
/// `(None, n)` for a name of `n` > 1 groups, `(None, 0)` without a name (or an empty one).
pub fn name_search_key(name: Option<&str>) -> (Option<String>, i64) {
    let Some(name) = name else {
        return (None, 0);
    };
    let normalized = normalize_pn(name);
    if normalized.is_empty() {
        return (None, 0);
    }
    let groups = normalized.split('=').count();
    if groups > 1 {
        return (None, i64::try_from(groups).unwrap_or(i64::MAX));
    }
    (Some(fold(&normalized)), 1)
}

/// The smallest string greater than every string that starts with `prefix`, in code
/// point order: `prefix` with its last character incremented (skipping the surrogate gap,
/// dropping trailing `char::MAX`). `None` when there is none (`prefix` is empty or only
/// `char::MAX`): every string from `prefix` on starts with it.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_one_character_per_character() {
        assert_eq!(fold("Élise^ÖZGÜR"), "élise^özgür");
        assert_eq!(fold("ΣΊΣΥΦΟΣ"), "σίσυφοσ");
        // `İ` lower-cases to two characters: kept as is.
        assert_eq!(fold("İZMİR"), "İzmİr");
        assert_eq!(fold_chars("Ab"), vec!['a', 'b']);
        assert!(fold_version().starts_with("unicode-"));
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize_pn("DOE^JOHN^^^"), "DOE^JOHN");
        assert_eq!(normalize_pn(" DOE ^ JOHN "), "DOE^JOHN");
        assert_eq!(normalize_pn("^^^^"), "");
        assert_eq!(normalize_pn("DOE^JOHN=="), "DOE^JOHN");
        assert_eq!(
            normalize_pn("Yamada^Tarou=山田^太郎="),
            "Yamada^Tarou=山田^太郎"
        );
    }

    #[test]
    fn search_keys() {
        assert_eq!(name_search_key(None), (None, 0));
        assert_eq!(name_search_key(Some("")), (None, 0));
        assert_eq!(name_search_key(Some("^^ ^")), (None, 0));
        assert_eq!(
            name_search_key(Some(" Simpson ^Homer^^")),
            (Some("simpson^homer".into()), 1)
        );
        assert_eq!(
            name_search_key(Some("DOE^JOHN==")),
            (Some("doe^john".into()), 1)
        );
        assert_eq!(name_search_key(Some("Élise")), (Some("élise".into()), 1));
        assert_eq!(name_search_key(Some("Yamada^Tarou=山田^太郎")), (None, 2));
        assert_eq!(name_search_key(Some("=山田^太郎")), (None, 2));
        assert_eq!(name_search_key(Some("A==B")), (None, 3));
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("sim").as_deref(), Some("sin"));
        assert_eq!(prefix_upper_bound("a^").as_deref(), Some("a_"));
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
        assert_eq!(prefix_upper_bound("z").as_deref(), Some("{"));
        assert_eq!(prefix_upper_bound("a\u{7F}").as_deref(), Some("a\u{80}"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{10FFFF}\u{10FFFF}").as_deref(),
            Some("b")
        );
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    /// The range `[p, prefix_upper_bound(p))` holds exactly the strings starting with
    /// `p`, in UTF-8 byte order (what SQLite's BINARY collation compares).
    #[test]
    fn upper_bound_range_is_exactly_the_prefix() {
        let alphabet = [
            "a",
            "b",
            "z",
            "é",
            "ê",
            "\u{7F}",
            "\u{80}",
            "\u{7FF}",
            "\u{800}",
            "\u{D7FF}",
            "\u{E000}",
            "\u{FFFF}",
            "\u{10000}",
            "\u{10FFFF}",
            "^",
            "_",
        ];
        let mut strings = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for s in &strings {
                for a in alphabet {
                    next.push(format!("{s}{a}"));
                }
            }
            strings.extend(next);
            strings.sort();
            strings.dedup();
        }
        for p in strings
            .iter()
            .filter(|s| !s.is_empty() && s.chars().count() <= 2)
        {
            let hi = prefix_upper_bound(p);
            for s in &strings {
                let in_range = s.as_bytes() >= p.as_bytes()
                    && hi.as_ref().is_none_or(|h| s.as_bytes() < h.as_bytes());
                assert_eq!(in_range, s.starts_with(p.as_str()), "{p:?} {s:?} {hi:?}");
            }
        }
    }
}
