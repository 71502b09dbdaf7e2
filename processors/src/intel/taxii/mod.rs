//! TAXII 2.1 client: the one place `processors` does HTTP (see `DESIGN.md`, "Threat intel").
//!
//! - [`TaxiiClient`]: discovery (`GET /taxii2/`), API root information, collections, and
//!   `GET {api_root}/collections/{id}/objects/` with `added_after`, `match[type]`,
//!   `match[version]`, `limit` and `next`; `Accept: application/taxii+json;version=2.1`;
//!   basic, bearer or API-key-header authentication; TLS verification always on, optional
//!   extra CA certificates; redirects only within the same origin; request and connect
//!   timeouts; response bodies read as a stream and refused past `max_response_bytes`.
//!   Each call makes one request and returns a typed [`TaxiiError`]: a 429/503 is
//!   [`TaxiiError::RateLimited`] carrying the server's `Retry-After`; waiting and retrying is
//!   the caller's loop's job.
//! - [`CollectionPoll`] ([`TaxiiClient::poll_collection`]): pages through one collection from
//!   a checkpoint, keeping the same filters and `limit` with every `next`, and gives the new
//!   checkpoint after each page: the `X-TAXII-Date-Added-Last` header (or the newest
//!   `date_added`/`modified` seen when a server does not send it), one microsecond earlier
//!   while more pages follow, so that a batch sharing one `date_added` across a page boundary
//!   is re-read rather than lost after a restart (see [`PollPage::checkpoint`]).
//!   [`CheckpointRecord`] is what goes to the compacted `secflow.intel.checkpoints` topic.
//! - [`config`]: the serde configuration (`deny_unknown_fields`), with secrets by reference
//!   ([`SecretSource`], `{env: NAME}` or `{file: PATH}`) resolved once at start.
//!
//! `match[version]` defaults to `all`: every version of every object is fetched, so a
//! revocation or a changed pattern is never lost to the way a server combines its default
//! `last` with `added_after`; [`crate::intel::indicator::Deduplicator`] then writes each
//! (`id`, `modified`) once and never an older version after a newer one.
//!
//! A poll loop, in outline:
//!
//! ```no_run
//! # async fn run(client: processors::intel::taxii::TaxiiClient,
//! #              collection: processors::intel::taxii::CollectionConfig,
//! #              stored: Option<String>) -> Result<(), processors::intel::taxii::TaxiiError> {
//! use processors::intel::indicator::{map_objects, Markings};
//! let mut poll = client.poll_collection(&collection, stored)?;
//! let mut markings = Markings::new();
//! loop {
//!     match poll.next_page().await {
//!         Ok(Some(page)) => {
//!             let _dispositions = map_objects(&page.objects, poll.source(), &mut markings, 0);
//!             // publish them, then store page.checkpoint
//!         }
//!         Ok(None) => break,
//!         Err(e) if e.retry_after().is_some() => { /* sleep e.retry_after(), then loop */ }
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(()) }
//! ```

mod client;
pub mod config;
mod poll;

pub use client::{
    parse_retry_after, ApiRootInfo, CollectionInfo, Discovery, ObjectsPage, ObjectsQuery,
    TaxiiClient, TaxiiError, MAX_RETRY_AFTER, TAXII_MEDIA_TYPE,
};
pub use config::{
    ApiKeyAuthConfig, AuthConfig, BasicAuthConfig, BearerAuthConfig, CollectionConfig, Credentials,
    SecretError, SecretSource, TaxiiServerConfig,
};
pub use poll::{CheckpointRecord, CollectionPoll, PollPage};
