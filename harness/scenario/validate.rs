//! Rules a scenario must follow (placeholder until the rules land).
use std::path::Path;

use super::{load::ScenarioError, Scenario};

/// A static warning about a profile: a known client-configuration mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub profile: String,
    pub message: String,
}

pub fn validate(_path: &Path, _text: &str, _scenario: &Scenario) -> Result<(), Vec<ScenarioError>> {
    Ok(())
}

pub fn lint(_scenario: &Scenario) -> Vec<Lint> {
    Vec::new()
}
