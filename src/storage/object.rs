//! Object-store locations (S3 and S3-compatible services, Azure Blob
//! Storage, Google Cloud Storage) through the `object_store` crate.
