//! Image uploads: checked by decoding (never by name or declared type),
//! re-encoded so no metadata survives, thumbnailed, stored once per content
//! behind [`storage::Storage`], and served only to those allowed to see them.

pub mod model;
pub mod process;
pub mod serve;

pub use crate::infra::storage::{LocalStorage, Storage};
pub use model::{Image, ImageRef, StoredImage};
pub use process::{process, process_bounded, ImageError, Processed, MAX_UPLOAD_BYTES};

/// The image routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    serve::routes(cfg);
}
