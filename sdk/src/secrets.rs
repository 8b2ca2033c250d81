//! Secrets granted to the task, by `scope/key` name.

use crate::{TaskError, host};

/// The value of secret `name` (`scope/key`).
///
/// A name the task was not granted is denied by the host; that is a permanent error (retrying
/// cannot grant it). Never print the value, put it in the output or publish it as a value.
pub fn reveal(name: &str) -> Result<String, TaskError> {
    host::secret_reveal(name).map_err(|e| TaskError::permanent(format!("secret `{name}` was denied: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;

    #[test]
    fn granted_and_denied() {
        MockHost::new().secret("db/password", "hunter2").install();
        assert_eq!(reveal("db/password").unwrap(), "hunter2");
        let e = reveal("db/other").unwrap_err();
        assert!(e.is_permanent());
        assert!(e.message().starts_with("secret `db/other` was denied: "), "{e}");
    }
}
