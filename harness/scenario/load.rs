//! Parsing scenario files (placeholder until the positions work lands).
use std::path::{Path, PathBuf};

use super::Scenario;

/// A mistake in a scenario file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {field}: {message}", file.display())]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.into(),
        line: 0,
        column: 0,
        field: String::new(),
        message: e.to_string(),
    })?;
    load_str(path, &text)
}

pub fn load_str(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    toml::from_str(text).map_err(|e| ScenarioError {
        file: path.into(),
        line: 0,
        column: 0,
        field: String::new(),
        message: e.to_string(),
    })
}
