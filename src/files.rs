//! Files customers send (proofs of purchase; claim photos later), kept under the data directory,
//! outside anything served as static content. A stored file's name is random and carries no
//! personal data; the database row that points at it decides who may fetch it.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A kind of stored file and the folder it lives in under the data directory.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    Proofs,
}

impl Store {
    fn dir(self, data_dir: &Path) -> PathBuf {
        data_dir.join(match self {
            Store::Proofs => "proofs",
        })
    }
}

/// Whether `name` is one this module could have made: 32 hex digits, a dot, a short extension.
/// Anything else (a path, "..") never reaches the file system.
fn valid_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((stem, ext)) => {
            stem.len() == 32
                && stem.bytes().all(|b| b.is_ascii_hexdigit())
                && (1..=4).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_lowercase())
        }
        None => false,
    }
}

/// Writes `bytes` under a new random name with `extension` and returns the name. The file is
/// written beside its final name and renamed, so a crash never leaves half a file under it.
pub async fn save(
    data_dir: &Path,
    store: Store,
    bytes: &[u8],
    extension: &str,
) -> anyhow::Result<String> {
    let dir = store.dir(data_dir);
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("{}.{extension}", random_hex());
    let tmp = dir.join(format!(".{name}.part"));
    tokio::fs::write(&tmp, bytes)
        .await
        .with_context(|| format!("writing {}", tmp.display()))?;
    tokio::fs::rename(&tmp, dir.join(&name))
        .await
        .context("storing the file")?;
    Ok(name)
}

/// The content of a stored file; `None` when the name is not one of ours or the file is gone.
pub async fn read(data_dir: &Path, store: Store, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    if !valid_name(name) {
        return Ok(None);
    }
    match tokio::fs::read(store.dir(data_dir).join(name)).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes stored files (after the rows that named them are gone); missing ones are fine.
pub async fn remove(data_dir: &Path, store: Store, names: &[String]) {
    for name in names.iter().filter(|n| valid_name(n)) {
        let path = store.dir(data_dir).join(name);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, path = %path.display(), "could not remove a stored file");
        }
    }
}

fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_we_make_are_valid() {
        let made = format!("{}.pdf", random_hex());
        assert!(valid_name(&made));
        for bad in [
            "../../etc/passwd",
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef.PDF",
            "0123456789abcdef0123456789abcdeg.pdf",
            "0123456789abcdef0123456789abcdef.pdf/x",
            "/0123456789abcdef0123456789abcde.pdf",
            "",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn saved_files_read_back_and_remove() {
        let dir = std::env::temp_dir().join(format!("files-test-{}", random_hex()));
        let name = save(&dir, Store::Proofs, b"%PDF-1.4 x", "pdf")
            .await
            .unwrap();
        assert_eq!(
            read(&dir, Store::Proofs, &name).await.unwrap().as_deref(),
            Some(&b"%PDF-1.4 x"[..])
        );
        assert_eq!(read(&dir, Store::Proofs, "../x").await.unwrap(), None);
        remove(&dir, Store::Proofs, std::slice::from_ref(&name)).await;
        assert_eq!(read(&dir, Store::Proofs, &name).await.unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
