//! `ConfigError`, `LoadError` (a configuration error or this host's key
//! file), and the `Ctx` that turns a byte span of the file into the line,
//! column and dotted key the error names.
//!
//! Every check of the file reports through `Ctx`, so all errors point at
//! the value in the same way; serde's own errors carry a span but no key,
//! and `err_guess_key` recovers it from the text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::io::keyfile::KeyFileError;

/// A configuration problem, located in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not at a place in the file.
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `interface.address`; empty when not known.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why [`crate::config::Config::load`] failed: the file, or this host's
/// key file (kept apart because the two have their own exit status).
#[derive(Debug)]
pub enum LoadError {
    Config(ConfigError),
    Key(KeyFileError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(e) => write!(f, "{e}"),
            LoadError::Key(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Config(e) => Some(e),
            LoadError::Key(e) => Some(e),
        }
    }
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> Self {
        LoadError::Config(e)
    }
}

pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        // An offset inside a multi-byte character (the parser should never
        // give one) moves back to the character's start instead of panicking.
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// For serde's errors, which carry a span but no key: the key is the
    /// one assigned on that line, inside the nearest table header above.
    pub(super) fn err_guess_key(&self, span: Range<usize>, message: String) -> ConfigError {
        let (line, _) = self.line_col(span.start);
        let lines: Vec<&str> = self.text.lines().collect();
        let here = lines.get(line.saturating_sub(1)).map_or("", |l| l.trim());
        let table = |l: &str| l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        let key = if here.starts_with('[') {
            table(here)
        } else {
            let section = lines[..line.saturating_sub(1).min(lines.len())]
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| l.starts_with('['))
                .map(table);
            let name = here.split('=').next().unwrap_or("").trim().to_string();
            match section {
                Some(s) if !name.is_empty() => format!("{s}.{name}"),
                Some(s) => s,
                None => name,
            }
        };
        self.err(span, &key, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixture::{err, with};

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = err(&with("listen = ", "lisen = "));
        assert_eq!((e.line, e.column), (4, 1));
        assert_eq!(e.key, "node.lisen");
        assert!(e.message.contains("unknown field `lisen`"), "{}", e.message);
        assert!(
            e.message.contains("`listen`"),
            "suggests the right key: {}",
            e.message
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("/etc/mcast-relay/test.toml:4:1: node.lisen: "),
            "{shown}"
        );
    }

    #[test]
    fn wrong_type_names_key() {
        let e = err(&with("mode = \"tun\"", "mode = \"tun\"\nmtu = \"big\""));
        assert_eq!(e.key, "interface.mtu");
        assert_eq!(e.line, 10);
    }

    #[test]
    fn positions_inside_a_character_do_not_panic() {
        let cx = Ctx {
            path: Path::new("x.toml"),
            text: "a = \"é\"\nb",
        };
        // Byte 6 is inside the two-byte é.
        assert_eq!(cx.line_col(6), (1, 6));
        assert_eq!(cx.line_col(100), (2, 2));
    }

    #[test]
    fn syntax_error_has_a_place() {
        let e = err("[node\n");
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("test.toml:1:"), "{e}");
    }
}
