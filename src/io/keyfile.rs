//! Reading and writing this host's private key file (`keygen`, `pubkey`,
//! `run`, `check`), with the permission checks an operator would expect: a
//! key that others can read is refused.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::proto::keys::{KeyError, PrivateKey, PublicKey};

/// Why the key file could not be loaded or written; each message names the
/// file and, where there is one, the command that fixes it.
#[derive(Debug)]
pub enum KeyFileError {
    /// The file is not there or cannot be looked at.
    Missing {
        path: PathBuf,
        source: io::Error,
    },
    NotAFile {
        path: PathBuf,
    },
    /// Group or others may read it: refused, the key would not be secret.
    TooOpen {
        path: PathBuf,
        mode: u32,
    },
    Unreadable {
        path: PathBuf,
        source: io::Error,
    },
    /// It holds no valid key.
    Invalid {
        path: PathBuf,
        source: KeyError,
    },
    /// `keygen` without `--force` on an existing file.
    Exists {
        path: PathBuf,
    },
    Create {
        path: PathBuf,
        source: io::Error,
    },
    SetMode {
        path: PathBuf,
        source: io::Error,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    /// `keygen`: the system's random source failed.
    NoRandomness,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Missing { path, source } => {
                let shown = path.display();
                write!(
                    f,
                    "cannot read key file {shown}: {source}; create this host's key with `mcast-relay keygen -o {shown}` and put the public_key it prints in this host's [[member]]"
                )
            }
            KeyFileError::NotAFile { path } => {
                write!(f, "key file {} is not a regular file", path.display())
            }
            KeyFileError::TooOpen { path, mode } => {
                let shown = path.display();
                write!(
                    f,
                    "key file {shown} has mode {mode:04o}: group or others can read this host's private key; fix with `chmod 600 {shown}`"
                )
            }
            KeyFileError::Unreadable { path, source } => {
                write!(f, "cannot read key file {}: {source}", path.display())
            }
            KeyFileError::Invalid { path, source } => {
                let shown = path.display();
                write!(
                    f,
                    "key file {shown}: {source}; write a new one with `mcast-relay keygen -o {shown} --force` and put the public_key it prints in this host's [[member]] on every host"
                )
            }
            KeyFileError::Exists { path } => write!(
                f,
                "{} already exists, so it is not replaced: a new key is a new public key, which every host's [[member]] entry for this host must then carry (`mcast-relay pubkey -k {}` prints the current one; use --force to overwrite)",
                path.display(),
                path.display()
            ),
            KeyFileError::Create { path, source } => {
                write!(f, "cannot create {}: {source}", path.display())
            }
            KeyFileError::SetMode { path, source } => {
                write!(f, "cannot set mode 0600 on {}: {source}", path.display())
            }
            KeyFileError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            KeyFileError::NoRandomness => {
                write!(f, "{}; no key was written", KeyError::NoRandomness)
            }
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Missing { source, .. }
            | KeyFileError::Unreadable { source, .. }
            | KeyFileError::Create { source, .. }
            | KeyFileError::SetMode { source, .. }
            | KeyFileError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The line of this host's `[[member]]` that carries `key`, as `keygen`
/// and `pubkey` print it.
pub fn public_key_line(key: &PublicKey) -> String {
    format!("public_key = \"{key}\"")
}

/// `keygen`: a new private key written to `path` (see [`write`]), and its
/// public key.
pub fn generate(path: &Path, force: bool) -> Result<PublicKey, KeyFileError> {
    let key = PrivateKey::generate().map_err(|_| KeyFileError::NoRandomness)?;
    write(path, &key, force)?;
    Ok(key.public())
}

/// `pubkey`: the public key of the private key at `path`, checked as
/// `run` checks it.
pub fn public_key(path: &Path) -> Result<PublicKey, KeyFileError> {
    load(path).map(|k| k.public())
}

/// Loads the key, refusing a file that group or others may read.
pub fn load(path: &Path) -> Result<PrivateKey, KeyFileError> {
    let path_buf = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Missing {
        path: path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile { path: path_buf() });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Unreadable {
        path: path_buf(),
        source,
    })?;
    let text = zeroize::Zeroizing::new(text);
    PrivateKey::parse(&text).map_err(|source| KeyFileError::Invalid {
        path: path_buf(),
        source,
    })
}

/// Writes `key` to a new file with mode 0600. Refuses to overwrite an
/// existing file unless `force`: replacing a key cuts this host off its
/// cluster until every host's file carries the new public key.
pub fn write(path: &Path, key: &PrivateKey, force: bool) -> Result<(), KeyFileError> {
    let path_buf = || path.to_path_buf();
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyFileError::Exists { path: path_buf() }
        } else {
            KeyFileError::Create {
                path: path_buf(),
                source,
            }
        }
    })?;
    // An existing file keeps its old mode when truncated: tighten it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| KeyFileError::SetMode {
            path: path_buf(),
            source,
        })?;
    f.write_all(key.to_file_text().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| KeyFileError::Write {
            path: path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcast-relay-keyfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn write_then_load() {
        let p = tmp("ok");
        let k = PrivateKey::generate().expect("rng");
        write(&p, &k, false).expect("writes");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&p).expect("loads").public(), k.public());
        let other = PrivateKey::generate().expect("rng");
        let e = write(&p, &other, false).expect_err("no overwrite");
        assert!(matches!(e, KeyFileError::Exists { .. }), "{e:?}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(load(&p).expect("kept").public(), k.public());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&p, &other, true).expect("forced overwrite");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an overwritten key is made private again");
        assert_eq!(load(&p).expect("loads").public(), other.public());
        std::fs::remove_file(&p).expect("cleanup");
    }

    #[test]
    fn pubkey_prints_what_keygen_printed() {
        let p = tmp("pair");
        let made = generate(&p, false).expect("keygen");
        let line = public_key_line(&made);
        assert!(
            line.starts_with("public_key = \"") && line.ends_with('"'),
            "{line}"
        );
        assert_eq!(public_key_line(&public_key(&p).expect("pubkey")), line);
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = generate(&p, false).expect_err("refuses to overwrite");
        assert!(matches!(e, KeyFileError::Exists { .. }), "{e:?}");
        assert_eq!(public_key(&p).expect("pubkey"), made, "the key is kept");
        assert_ne!(generate(&p, true).expect("forced"), made);
        std::fs::remove_file(&p).expect("cleanup");
    }

    #[test]
    fn refuses_readable_key() {
        let p = tmp("open");
        write(&p, &PrivateKey::generate().expect("rng"), false).expect("writes");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load(&p).expect_err("refused");
        assert!(
            matches!(e, KeyFileError::TooOpen { mode: 0o644, .. }),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::remove_file(&p).expect("cleanup");
    }

    #[test]
    fn missing_and_garbage() {
        let p = tmp("missing");
        let e = load(&p).expect_err("missing");
        assert!(matches!(e, KeyFileError::Missing { .. }), "{e:?}");
        assert!(e.to_string().contains("keygen"));
        std::fs::write(&p, "garbage!").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = load(&p).expect_err("garbage");
        assert!(
            matches!(
                e,
                KeyFileError::Invalid {
                    source: KeyError::NotBase64,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("base64"));
        std::fs::remove_file(&p).expect("cleanup");
    }
}
