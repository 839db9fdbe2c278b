//! The repository's GitHub Actions cache as BuildKit's `type=gha` cache uses it: its entries
//! per git ref and scope, the total against the repository's limit, and the entries GitHub
//! is about to evict. Pure: the entries come from `github::actions_cache`.
//!
//! BuildKit writes two kinds of entries (`cache/remotecache/gha`): one per layer,
//! `buildkit-blob-1-sha256:<digest>` (content-addressed, shared by every scope), and one
//! index per scope and ref, `index-<scope>-1-<8 hex digits>`, replaced on every export. The
//! default scope is the literal `buildkit`. GitHub isolates caches by ref: a run restores
//! entries of its own ref, of the default branch, and on a pull request of its base branch.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Build;

/// GitHub's cache limit per repository: beyond it, the least recently used entries are
/// evicted.
pub const REPOSITORY_LIMIT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// GitHub removes entries not accessed for this many days.
pub const UNUSED_DAYS: i64 = 7;

/// The scope BuildKit uses when `scope` is not set.
pub const DEFAULT_SCOPE: &str = "buildkit";

/// One cache entry as GitHub lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: String,
    pub git_ref: String,
    pub size_in_bytes: u64,
    pub last_accessed_at: Option<DateTime<Utc>>,
}

/// What an entry is to BuildKit, from its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A layer blob: `buildkit-blob-1-sha256:...`.
    Blob,
    /// The index of a scope: `index-<scope>-1-<hash>`.
    Index { scope: String },
    /// Not BuildKit's (actions/cache and others).
    Other,
}

pub fn classify(key: &str) -> EntryKind {
    if key.starts_with("buildkit-blob-") {
        return EntryKind::Blob;
    }
    // The scope may contain `-`: the version and the hash are the last two parts.
    if let Some(rest) = key.strip_prefix("index-")
        && let Some((head, hash)) = rest.rsplit_once('-')
        && let Some((scope, version)) = head.rsplit_once('-')
        && !scope.is_empty()
        && version.chars().all(|c| c.is_ascii_digit())
        && hash.len() == 8
        && hash.chars().all(|c| c.is_ascii_hexdigit())
    {
        return EntryKind::Index {
            scope: scope.to_string(),
        };
    }
    EntryKind::Other
}

/// The run whose build is reported, for which refs it can restore from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GhaRun {
    /// `refs/heads/main`, `refs/tags/v1.2.0`, `refs/pull/7/merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// `refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// A pull request's base branch, `refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ref: Option<String>,
}

impl GhaRun {
    pub fn is_tag(&self) -> bool {
        self.git_ref
            .as_deref()
            .is_some_and(|r| r.starts_with("refs/tags/"))
    }

    /// The refs whose cache entries this run can restore, as GitHub documents it.
    pub fn reachable(&self, git_ref: &str) -> bool {
        [&self.git_ref, &self.default_branch, &self.base_ref]
            .iter()
            .any(|r| r.as_deref() == Some(git_ref))
    }
}

/// The repository's cache, as it concerns this build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GhaCache {
    /// When the entries were read: ages are counted from here.
    pub observed_at: DateTime<Utc>,
    pub run: GhaRun,
    /// The scopes this build imports or exports.
    pub scopes: Vec<String>,
    /// `active_caches_size_in_bytes` and `active_caches_count` of the usage endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_entries: Option<u64>,
    pub limit_bytes: u64,
    /// Entries read from the listing (all of the repository's, BuildKit's or not).
    pub entries_listed: u64,
    /// The listing has more entries than were read.
    #[serde(default, skip_serializing_if = "crate::model::is_false")]
    pub listing_truncated: bool,
    /// BuildKit's entries per ref, largest first.
    pub refs: Vec<GhaRefEntries>,
    /// BuildKit entries not accessed for [`UNUSED_DAYS`] days: GitHub evicts them.
    pub unused_entries: u64,
    pub unused_bytes: u64,
}

/// BuildKit's entries of one ref.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GhaRefEntries {
    pub git_ref: String,
    /// This run can restore from it.
    pub reachable: bool,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// One index per scope exported on this ref.
    pub indexes: Vec<GhaIndex>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GhaIndex {
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_at: Option<DateTime<Utc>>,
}

impl GhaCache {
    /// The index of `scope` on a ref this run can restore from.
    pub fn reachable_index(&self, scope: &str) -> Option<&GhaRefEntries> {
        self.refs
            .iter()
            .filter(|r| r.reachable)
            .find(|r| r.indexes.iter().any(|i| i.scope == scope))
    }

    /// The repository's total: the usage endpoint's, else the sum of what was listed.
    pub fn total_bytes(&self) -> u64 {
        self.usage_bytes.unwrap_or_else(|| {
            self.refs
                .iter()
                .map(|r| r.blob_bytes)
                .fold(0, u64::saturating_add)
        })
    }
}

/// What the listing and the usage endpoint gave.
#[derive(Clone, Debug, Default)]
pub struct CacheListing {
    pub entries: Vec<CacheEntry>,
    pub truncated: bool,
    pub usage_bytes: Option<u64>,
    pub usage_entries: Option<u64>,
}

/// The scopes a build imports from or exports to `type=gha` caches, `None` when it uses none.
pub fn gha_scopes(build: &Build) -> Option<Vec<String>> {
    let imports = build
        .cache_imports
        .iter()
        .filter(|i| i.cache_type.as_deref() == Some("gha"))
        .map(|i| &i.attrs);
    let exports = build
        .cache_exports
        .iter()
        .filter(|e| e.cache_type.as_deref() == Some("gha"))
        .map(|e| &e.attrs);
    let mut any = false;
    let mut scopes: Vec<String> = Vec::new();
    for attrs in imports.chain(exports) {
        any = true;
        let scope = attrs
            .get("scope")
            .cloned()
            .unwrap_or_else(|| DEFAULT_SCOPE.to_string());
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    any.then_some(scopes)
}

/// The repository's cache as it concerns a build using `scopes`.
pub fn summarize(
    listing: CacheListing,
    run: GhaRun,
    scopes: Vec<String>,
    now: DateTime<Utc>,
) -> GhaCache {
    let unused_before = now - Duration::days(UNUSED_DAYS);
    let mut refs: Vec<GhaRefEntries> = Vec::new();
    let (mut unused_entries, mut unused_bytes) = (0u64, 0u64);
    let entries_listed = listing.entries.len() as u64;
    for entry in listing.entries {
        let kind = classify(&entry.key);
        if kind == EntryKind::Other {
            continue;
        }
        if entry.last_accessed_at.is_some_and(|t| t <= unused_before) {
            unused_entries += 1;
            unused_bytes = unused_bytes.saturating_add(entry.size_in_bytes);
        }
        let position = match refs.iter().position(|r| r.git_ref == entry.git_ref) {
            Some(i) => i,
            None => {
                refs.push(GhaRefEntries {
                    reachable: run.reachable(&entry.git_ref),
                    git_ref: entry.git_ref.clone(),
                    blobs: 0,
                    blob_bytes: 0,
                    indexes: Vec::new(),
                });
                refs.len() - 1
            }
        };
        let slot = &mut refs[position];
        match kind {
            EntryKind::Blob => {
                slot.blobs += 1;
                slot.blob_bytes = slot.blob_bytes.saturating_add(entry.size_in_bytes);
            }
            EntryKind::Index { scope } => slot.indexes.push(GhaIndex {
                scope,
                last_accessed_at: entry.last_accessed_at,
            }),
            EntryKind::Other => {}
        }
    }
    refs.sort_by(|a, b| {
        b.blob_bytes
            .cmp(&a.blob_bytes)
            .then_with(|| a.git_ref.cmp(&b.git_ref))
    });
    GhaCache {
        observed_at: now,
        run,
        scopes,
        usage_bytes: listing.usage_bytes,
        usage_entries: listing.usage_entries,
        limit_bytes: REPOSITORY_LIMIT_BYTES,
        entries_listed,
        listing_truncated: listing.truncated,
        refs,
        unused_entries,
        unused_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn entry(key: &str, git_ref: &str, size: u64, accessed: &str) -> CacheEntry {
        CacheEntry {
            key: key.into(),
            git_ref: git_ref.into(),
            size_in_bytes: size,
            last_accessed_at: Some(at(accessed)),
        }
    }

    #[test]
    fn keys_as_buildkit_writes_them() {
        assert_eq!(
            classify(
                "buildkit-blob-1-sha256:0f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
            ),
            EntryKind::Blob
        );
        assert_eq!(
            classify("index-buildkit-1-4b5e3f2a"),
            EntryKind::Index {
                scope: "buildkit".into()
            }
        );
        assert_eq!(
            classify("index-web-app-1-0011aabb"),
            EntryKind::Index {
                scope: "web-app".into()
            }
        );
        assert_eq!(classify("Linux-node-958aff96db2d75d6"), EntryKind::Other);
        assert_eq!(classify("index-1-0011aabb"), EntryKind::Other);
    }

    #[test]
    fn entries_per_ref_and_scope_with_what_is_unused() {
        let listing = CacheListing {
            entries: vec![
                entry(
                    "index-buildkit-1-aaaa0000",
                    "refs/heads/main",
                    2_000,
                    "2026-11-20T10:00:00Z",
                ),
                entry(
                    "buildkit-blob-1-sha256:01",
                    "refs/heads/main",
                    300_000_000,
                    "2026-11-20T10:00:00Z",
                ),
                entry(
                    "buildkit-blob-1-sha256:02",
                    "refs/tags/v1.0.0",
                    200_000_000,
                    "2026-11-01T10:00:00Z",
                ),
                entry(
                    "index-buildkit-1-bbbb0000",
                    "refs/tags/v1.0.0",
                    2_000,
                    "2026-11-01T10:00:00Z",
                ),
                entry(
                    "Linux-node-958aff",
                    "refs/heads/main",
                    50_000_000,
                    "2026-11-01T10:00:00Z",
                ),
            ],
            truncated: false,
            usage_bytes: Some(550_004_000),
            usage_entries: Some(5),
        };
        let run = GhaRun {
            git_ref: Some("refs/tags/v1.1.0".into()),
            default_branch: Some("refs/heads/main".into()),
            base_ref: None,
        };
        let cache = summarize(
            listing,
            run,
            vec!["buildkit".into()],
            at("2026-11-21T10:00:00Z"),
        );
        assert!(cache.run.is_tag());
        assert_eq!(cache.refs.len(), 2);
        assert_eq!(cache.refs[0].git_ref, "refs/heads/main");
        assert!(cache.refs[0].reachable);
        assert_eq!(
            (cache.refs[0].blobs, cache.refs[0].blob_bytes),
            (1, 300_000_000)
        );
        // Another tag's entries are out of this tag run's reach.
        assert!(!cache.refs[1].reachable);
        assert_eq!(
            cache.reachable_index("buildkit").unwrap().git_ref,
            "refs/heads/main"
        );
        assert!(cache.reachable_index("web").is_none());
        // Only BuildKit's entries count as unused: the tag's blob and index.
        assert_eq!((cache.unused_entries, cache.unused_bytes), (2, 200_002_000));
        assert_eq!(cache.total_bytes(), 550_004_000);
        assert_eq!(cache.entries_listed, 5);
    }
}
