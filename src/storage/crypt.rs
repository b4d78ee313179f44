//! Encryption at rest with age (X25519 recipients).
