//! [`TaskError`]: why an attempt failed, and whether retrying can help.

use std::fmt;

/// Why a task failed.
///
/// * [`TaskError::Transient`] — the failure may go away on its own (a flaky dependency, a
///   timeout, a store hiccup). The scheduler retries the task according to its retry policy.
/// * [`TaskError::Permanent`] — retrying cannot help (bad parameters, malformed input, a denied
///   secret). The attempt fails without retry.
///
/// Build them with [`TaskError::transient`] / [`TaskError::permanent`], or let `?` convert
/// common errors: parse errors, JSON errors and UTF-8 errors become permanent, I/O errors are
/// classified by their [`std::io::ErrorKind`]. For any other error type use
/// [`ResultExt::permanent`] / [`ResultExt::transient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// May be retried by the scheduler.
    Transient(String),
    /// Fails the attempt without retry.
    Permanent(String),
}

impl TaskError {
    /// A failure that may be retried.
    pub fn transient(message: impl fmt::Display) -> Self {
        TaskError::Transient(message.to_string())
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl fmt::Display) -> Self {
        TaskError::Permanent(message.to_string())
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        match self {
            TaskError::Transient(m) | TaskError::Permanent(m) => m,
        }
    }

    /// `true` for [`TaskError::Transient`].
    pub fn is_transient(&self) -> bool {
        matches!(self, TaskError::Transient(_))
    }

    /// `true` for [`TaskError::Permanent`].
    pub fn is_permanent(&self) -> bool {
        matches!(self, TaskError::Permanent(_))
    }

    /// Prefix the message with some context, keeping the kind: `"{context}: {message}"`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        match self {
            TaskError::Transient(m) => TaskError::Transient(format!("{context}: {m}")),
            TaskError::Permanent(m) => TaskError::Permanent(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Transient(m) => write!(f, "transient: {m}"),
            TaskError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for TaskError {}

macro_rules! permanent_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for TaskError {
            fn from(e: $t) -> Self {
                TaskError::permanent(e)
            }
        }
    )*};
}

// Deterministic failures: the same input fails the same way on every attempt.
permanent_from!(
    serde_json::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::str::ParseBoolError,
    std::char::ParseCharError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::fmt::Error,
);

impl From<std::io::Error> for TaskError {
    /// Kinds that cannot change between attempts (`NotFound`, `PermissionDenied`,
    /// `InvalidInput`, `InvalidData`, `Unsupported`, ...) are permanent; the rest (interrupted,
    /// timed out, would block, broken pipe, ...) are transient.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotFound | PermissionDenied | AlreadyExists | InvalidInput | InvalidData | Unsupported | UnexpectedEof
            | OutOfMemory => TaskError::permanent(e),
            _ => TaskError::transient(e),
        }
    }
}

/// Turn any `Result<T, E: Display>` into a `Result<T, TaskError>` of the kind you choose.
///
/// ```
/// use sluice_sdk::{ResultExt, TaskError};
/// fn parse_day(s: &str) -> Result<u8, TaskError> {
///     let day: u8 = s.parse().permanent_with("param `day`")?;
///     Ok(day)
/// }
/// assert!(parse_day("x").unwrap_err().message().starts_with("param `day`: "));
/// ```
pub trait ResultExt<T> {
    /// Map the error to [`TaskError::Permanent`].
    fn permanent(self) -> Result<T, TaskError>;
    /// Map the error to [`TaskError::Transient`].
    fn transient(self) -> Result<T, TaskError>;
    /// Map the error to [`TaskError::Permanent`], prefixed by `"{context}: "`.
    fn permanent_with(self, context: impl fmt::Display) -> Result<T, TaskError>;
    /// Map the error to [`TaskError::Transient`], prefixed by `"{context}: "`.
    fn transient_with(self, context: impl fmt::Display) -> Result<T, TaskError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, TaskError> {
        self.map_err(TaskError::permanent)
    }
    fn transient(self) -> Result<T, TaskError> {
        self.map_err(TaskError::transient)
    }
    fn permanent_with(self, context: impl fmt::Display) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::permanent(format!("{context}: {e}")))
    }
    fn transient_with(self, context: impl fmt::Display) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::transient(format!("{context}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_conversions() {
        fn f() -> Result<u32, TaskError> {
            Ok("nope".parse::<u32>()?)
        }
        assert!(f().unwrap_err().is_permanent());

        fn g() -> Result<(), TaskError> {
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))?
        }
        assert!(g().unwrap_err().is_transient());

        fn h() -> Result<(), TaskError> {
            Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))?
        }
        assert!(h().unwrap_err().is_permanent());
    }

    #[test]
    fn context_keeps_kind() {
        let e = TaskError::transient("later").context("fetching");
        assert_eq!(e, TaskError::Transient("fetching: later".into()));
        assert_eq!(e.to_string(), "transient: fetching: later");
    }
}
