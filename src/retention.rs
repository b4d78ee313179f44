//! Retention (work in progress).
