//! The one error type of the engine: every failure on user data ends here with a message that
//! names the file (or input) and the problem, never a panic.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A model file is unreadable, truncated, corrupt or inconsistent.
    Model { file: String, problem: String },
    /// The GPU could not be found, refused a request, or failed while running.
    Gpu(String),
    /// The model (or a request) does not fit the adapter's limits.
    Limits(String),
    /// Bad input from the user that is not a file (prompt, options, token ids).
    Input(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn model(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Model { file: file.into(), problem: problem.into() }
    }

    /// The variant's name for programs (the page's structured errors): "model", "gpu",
    /// "limits" or "input".
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Model { .. } => "model",
            Error::Gpu(_) => "gpu",
            Error::Limits(_) => "limits",
            Error::Input(_) => "input",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Model { file, problem } => write!(f, "{file}: {problem}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Limits(m) => write!(f, "does not fit this GPU: {m}"),
            Error::Input(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}
