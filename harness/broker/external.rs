//! external broker backend.
