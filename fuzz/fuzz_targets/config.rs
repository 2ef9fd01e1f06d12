//! Fuzzes the config parser: UTF-8 input goes to `Config::parse`; any
//! other input is written to a file for `Config::load` (the daemon's entry
//! point, which must refuse it) and its lossy UTF-8 conversion goes to
//! `Config::parse`. Property: never a panic; every mistake comes back as an
//! error value naming the file, with a message and a line inside the text.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use mcast_relay::config::{Config, LoadError};
use mcast_relay::proto::keys::PrivateKey;

fn check(path: &Path, text: &str) {
    // A fixed host key: inputs that are valid cluster files go on to the
    // search for this host's member.
    let key = PrivateKey::from_bytes([1; 32]);
    if let Err(e) = Config::parse(path, text, Some(&key)) {
        assert_eq!(e.file, path, "an error naming another file");
        assert!(!e.message.is_empty(), "an error without a message");
        assert!(
            e.line <= text.matches('\n').count() + 1,
            "an error at line {} of a shorter text",
            e.line
        );
        assert!(!e.to_string().is_empty());
    }
}

/// One scratch file per fuzzing process.
fn scratch() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("mcast-relay-fuzz-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.toml");
    match std::str::from_utf8(data) {
        Ok(text) => check(path, text),
        Err(_) => {
            let file = scratch();
            if std::fs::write(file, data).is_ok() {
                match Config::load(file, None) {
                    Err(LoadError::Config(e)) => {
                        assert_eq!(&e.file, file);
                        assert!(!e.message.is_empty());
                    }
                    other => panic!("a file that is not UTF-8 gave {other:?}"),
                }
            }
            check(path, &String::from_utf8_lossy(data));
        }
    }
});
