//! The embedded fault engine.
