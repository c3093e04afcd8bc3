//! Walking a repository's commit history the way the commits API does:
//! resolving a ref (branch, tag, full or short sha) to a commit, and
//! comparing two commits as `git log BASE..HEAD` and `HEAD..BASE` would.

use std::collections::HashSet;

use crate::state::{Commit, State};

/// GitHub accepts abbreviated shas; git's default abbreviation is 7.
const MIN_SHORT_SHA: usize = 7;

/// The commit `reference` names in `repo`: a branch or tag (bare or under
/// `refs/heads/`, `refs/tags/`), a full sha or an unambiguous prefix of one.
pub(crate) fn resolve<'a>(state: &'a State, repo: &str, reference: &str) -> Option<&'a Commit> {
    let entry = state.repo(repo)?;
    let full = entry.full_name();
    let named = if let Some(branch) = reference.strip_prefix("refs/heads/") {
        entry.heads.get(branch)
    } else if let Some(tag) = reference.strip_prefix("refs/tags/") {
        entry.tags.get(tag)
    } else {
        entry.heads.get(reference).or_else(|| entry.tags.get(reference))
    };
    if let Some(sha) = named {
        return state.commit_by_sha(&full, sha);
    }
    if let Some(commit) = state.commit_by_sha(&full, reference) {
        return Some(commit);
    }
    let hex = reference.len() >= MIN_SHORT_SHA && reference.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        return None;
    }
    let prefix = reference.to_ascii_lowercase();
    let mut matches = state.commits.values().filter(|c| c.repo == full && c.sha.starts_with(&prefix));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        // Ambiguous or unknown: git would refuse both.
        _ => None,
    }
}

/// `start` and everything reachable from it through parents.
fn reachable(state: &State, repo: &str, start: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut stack = vec![start.to_owned()];
    while let Some(sha) = stack.pop() {
        if !seen.insert(sha.clone()) {
            continue;
        }
        if let Some(commit) = state.commit_by_sha(repo, &sha) {
            stack.extend(commit.parents.iter().cloned());
        }
    }
    seen
}

/// What GitHub's compare reports about `base...head`.
pub(crate) struct Comparison<'a> {
    pub base: &'a Commit,
    pub head: &'a Commit,
    /// The newest commit both sides share.
    pub merge_base: &'a Commit,
    /// In `head` but not in `base`, oldest first (the API's order).
    pub ahead: Vec<&'a Commit>,
    pub behind_by: usize,
}

impl Comparison<'_> {
    /// `ahead`, `behind`, `identical` or `diverged`.
    pub fn status(&self) -> &'static str {
        match (self.ahead.is_empty(), self.behind_by == 0) {
            (true, true) => "identical",
            (false, true) => "ahead",
            (true, false) => "behind",
            (false, false) => "diverged",
        }
    }
}

/// Compares two resolved commits of `repo`. Every history in the fake grows
/// from the repository's first commit, so there is always a merge base.
pub(crate) fn compare<'a>(state: &'a State, repo: &str, base: &'a Commit, head: &'a Commit) -> Comparison<'a> {
    let from_base = reachable(state, repo, &base.sha);
    let from_head = reachable(state, repo, &head.sha);
    let commits = |shas: &HashSet<String>| -> Vec<&'a Commit> {
        let mut list: Vec<&Commit> = shas.iter().filter_map(|sha| state.commit_by_sha(repo, sha)).collect();
        list.sort_by_key(|c| c.seq);
        list
    };
    let ahead = commits(&from_head.difference(&from_base).cloned().collect());
    let behind_by = from_base.difference(&from_head).count();
    let shared = commits(&from_base.intersection(&from_head).cloned().collect());
    let merge_base = shared.last().copied().unwrap_or(base);
    Comparison { base, head, merge_base, ahead, behind_by }
}
