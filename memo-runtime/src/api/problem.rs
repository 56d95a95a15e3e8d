//! What the checks before an operator starts report, as `Error::Startup` carries it.

use std::fmt;

/// One reason the registered handlers cannot run, found by [`Operator::run`](crate::Operator::run)
/// before it handles anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    code: &'static str,
    message: String,
}

impl Problem {
    /// A problem of kind `code` (one of the codes in the crate's diagnostics).
    pub(crate) fn new(code: &'static str, message: String) -> Self {
        Problem { code, message }
    }

    /// The stable code of this kind of problem (`"M0001"`, ...), documented in the crate docs.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What is wrong, naming the handlers and their locations.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}
