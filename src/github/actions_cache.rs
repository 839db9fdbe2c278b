//! The repository's GitHub Actions cache through the REST API (`actions: read`):
//! `GET /repos/{owner}/{repo}/actions/cache/usage` (`active_caches_size_in_bytes`,
//! `active_caches_count`) and `GET /repos/{owner}/{repo}/actions/caches` (`total_count`,
//! `actions_caches[]` with `key`, `ref`, `size_in_bytes`, `last_accessed_at`; `Link`
//! pagination, 100 per page at most). What the entries mean to BuildKit is
//! `analysis::gha_cache`.

use std::fmt;

use chrono::Utc;

use crate::analysis::gha_cache::{CacheListing, GhaCache, GhaRun, summarize};
use crate::github::error::ApiError;

/// Pages of 100 entries read at most, most recently used first: a repository with more
/// entries is reported as truncated.
pub const MAX_PAGES: u32 = 20;

/// What the usage endpoint says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub bytes: Option<u64>,
    pub entries: Option<u64>,
}

/// The calls the cache lookup makes; the REST client implements them.
pub trait ActionsCacheApi {
    fn actions_cache_usage(&self) -> impl Future<Output = Result<CacheUsage, ApiError>> + Send;
    /// Up to `max_pages` pages of entries, most recently used first; `true` when more remain.
    fn list_actions_caches(
        &self,
        max_pages: u32,
    ) -> impl Future<Output = Result<CacheListing, ApiError>> + Send;
}

/// Why the cache could not be read: always a warning, never a failed step.
#[derive(Debug, thiserror::Error)]
pub struct CacheLookupError(pub ApiError);

impl fmt::Display for CacheLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitHub Actions cache not read: {}", self.0)?;
        if self.0.is_forbidden() {
            f.write_str(
                " (the job's token needs `actions: read` to read the repository's caches)",
            )?;
        }
        Ok(())
    }
}

/// The repository's cache as it concerns a build using `scopes`, read for `run`.
pub async fn read(
    github: &impl ActionsCacheApi,
    run: GhaRun,
    scopes: Vec<String>,
) -> Result<GhaCache, CacheLookupError> {
    let (usage, listing) = tokio::join!(
        github.actions_cache_usage(),
        github.list_actions_caches(MAX_PAGES)
    );
    let mut listing = listing.map_err(CacheLookupError)?;
    // The listing is what the findings need; the usage only refines the total.
    if let Ok(usage) = usage {
        listing.usage_bytes = usage.bytes;
        listing.usage_entries = usage.entries;
    }
    Ok(summarize(listing, run, scopes, Utc::now()))
}
