//! Integration tests: scenario.
