//! Opening the store a URL names, and naming it in messages without its secrets.

use std::sync::Arc;

use cache::Cache;

use crate::fail::Failure;

/// The store at `url`, or a failure naming it. `url` is `None` when neither `--url` nor
/// `CACHE_URL` was given.
pub(crate) async fn open(url: Option<&str>) -> Result<(Arc<dyn Cache>, String), Failure> {
    let Some(url) = url else {
        return Err(Failure::usage("no store given: pass --url URL or set CACHE_URL (e.g. memory://)"));
    };
    let name = describe(url);
    match cache::open(url).await {
        Ok(store) => Ok((store, name)),
        Err(error) => Err(Failure::store(&name, "open", &error)),
    }
}

/// `url` as it may be shown: scheme, host and path, without a password or query settings
/// (a query may carry credentials, such as a token for a hosted store).
pub(crate) fn describe(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split(['?', '#']).next().unwrap_or_default().to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    // Userinfo ends at the last `@` of the authority; a password may itself contain `@`.
    let host = match authority.rfind('@') {
        Some(at) => {
            // `redis://:password@host` has no user: show the host alone, not `@host`.
            match authority[..at].split(':').next().unwrap_or_default() {
                "" => authority[at + 1..].to_owned(),
                user => format!("{user}@{}", &authority[at + 1..]),
            }
        }
        None => authority.to_owned(),
    };
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn described_urls_keep_no_secret() {
        assert_eq!(describe("redis://app:s3cr@t@10.0.0.1:6379/0?prefix=a:"), "redis://app@10.0.0.1:6379/0");
        assert_eq!(describe("mongodb://h:27017/db?password=x"), "mongodb://h:27017/db");
        assert_eq!(describe("redis://:s3cr@t@10.0.0.1:6379/0"), "redis://10.0.0.1:6379/0");
        assert_eq!(describe("dynamodb://AKID:s3cr@t@table?region=x"), "dynamodb://AKID@table");
        assert_eq!(describe("file:///var/cache/app?prefix=web:"), "file:///var/cache/app");
        assert_eq!(describe("memory://"), "memory://");
        assert_eq!(describe("not a url?token=x"), "not a url");
    }
}
