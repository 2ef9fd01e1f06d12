//! Reading and writing the cluster key file, with the permission checks an
//! operator would expect: a key that others can read is refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::proto::crypto::ClusterKey;

/// Loads the key, refusing a file that group or others may read.
pub fn load(path: &Path) -> Result<ClusterKey, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("cannot read key file {shown}: {e}; create it with `mcast-relay keygen -o {shown}` on one node and copy it to the others")
    })?;
    if !meta.is_file() {
        return Err(format!("key file {shown} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {shown} has mode {mode:04o}: group or others can read the cluster key; fix with `chmod 600 {shown}`"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read key file {shown}: {e}"))?;
    ClusterKey::parse(&text).map_err(|e| {
        format!("key file {shown}: {e}; write a new one with `mcast-relay keygen -o {shown}`")
    })
}

/// Writes `key` to a new file with mode 0600. Refuses to overwrite an
/// existing file unless `force`: replacing a key cuts a node off its cluster.
pub fn write(path: &Path, key: &ClusterKey, force: bool) -> Result<(), String> {
    let shown = path.display();
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{shown} already exists; every node must keep the same key, so it is not replaced (use --force to overwrite)")
        } else {
            format!("cannot create {shown}: {e}")
        }
    })?;
    // An existing file keeps its old mode when truncated: tighten it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set mode 0600 on {shown}: {e}"))?;
    f.write_all(key.to_file_text().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {shown}: {e}"))
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
        let k = ClusterKey::generate().expect("rng");
        write(&p, &k, false).expect("writes");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(load(&p).is_ok());
        let e = write(&p, &k, false).expect_err("no overwrite");
        assert!(e.contains("--force"), "{e}");
        write(&p, &k, true).expect("forced overwrite");
        std::fs::remove_file(&p).expect("cleanup");
    }

    #[test]
    fn refuses_readable_key() {
        let p = tmp("open");
        write(&p, &ClusterKey::generate().expect("rng"), false).expect("writes");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load(&p).expect_err("refused");
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::remove_file(&p).expect("cleanup");
    }

    #[test]
    fn missing_and_garbage() {
        let p = tmp("missing");
        assert!(load(&p).expect_err("missing").contains("keygen"));
        std::fs::write(&p, "garbage!").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(load(&p).expect_err("garbage").contains("base64"));
        std::fs::remove_file(&p).expect("cleanup");
    }
}
