//! One line of `mcast-relay check`'s report: ok, warning or error, with its
//! text. Its own module so that the checks (host, toolconf) and the report
//! that gathers them all use it without depending on one another.

use std::fmt;

/// One finding of `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Warning(String),
    Error(String),
}

impl Finding {
    pub fn is_error(&self) -> bool {
        matches!(self, Finding::Error(_))
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Ok(m) => write!(f, "ok:      {m}"),
            Finding::Warning(m) => write!(f, "warning: {m}"),
            Finding::Error(m) => write!(f, "error:   {m}"),
        }
    }
}
