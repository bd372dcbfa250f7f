//! Why a simulator task failed: the user's input is invalid (the CLI exits with status 2) or the run itself
//! failed (status 1).

/// A task's failure: invalid input or a failed run.
#[derive(Debug)]
pub enum Failure {
    /// The user's input is invalid; the message says where and what was expected.
    Invalid(String),
    /// Something went wrong while running.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

impl From<crate::scenario::diag::ScenarioError> for Failure {
    fn from(e: crate::scenario::diag::ScenarioError) -> Self {
        Failure::Invalid(e.to_string())
    }
}
