//! Files customers send (proofs of purchase; claim photos later), kept under the data directory,
//! outside anything served as static content. A stored file's name is random and carries no
//! personal data; the database row that points at it decides who may fetch it.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A kind of stored file and the folder it lives in under the data directory.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    Proofs,
    ClaimPhotos,
}

impl Store {
    fn dir(self, data_dir: &Path) -> PathBuf {
        data_dir.join(match self {
            Store::Proofs => "proofs",
            Store::ClaimPhotos => "claim-photos",
        })
    }
}

/// Whether `name` is one this module could have made: the day's folder, then 32 hex digits, a
/// dot and a short extension (`2026-11-28/0f…e1.pdf`). Anything else (another path, "..")
/// never reaches the file system.
fn valid_name(name: &str) -> bool {
    match name.split_once('/') {
        Some((day, file)) => valid_day(day) && valid_file(file),
        None => false,
    }
}

fn valid_day(day: &str) -> bool {
    day.len() == 10 && chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok()
}

fn valid_file(name: &str) -> bool {
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
/// written beside its final name, synced and renamed, so a crash never leaves half a file
/// under it; only the portal's user can read it.
pub async fn save(
    data_dir: &Path,
    store: Store,
    bytes: &[u8],
    extension: &str,
) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let day = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let dir = store.dir(data_dir).join(&day);
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let file_name = format!("{}.{extension}", random_hex());
    let name = format!("{day}/{file_name}");
    let tmp = dir.join(format!(".{file_name}.part"));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, dir.join(&file_name)).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(anyhow::Error::new(e).context(format!("storing a file in {}", dir.display())));
    }
    Ok(name)
}

/// Files stored today or yesterday (and half-written ones) that are older than `min_age`: where
/// a crash between writing a file and committing its row would have left one. A sweep compares
/// them with the rows that name them; older folders never need looking at again.
pub async fn recent(
    data_dir: &Path,
    store: Store,
    min_age: std::time::Duration,
) -> anyhow::Result<Vec<String>> {
    let today = chrono::Utc::now().date_naive();
    let mut found = Vec::new();
    for day in [today, today - chrono::Days::new(1)] {
        let day = day.format("%Y-%m-%d").to_string();
        let mut dir = match tokio::fs::read_dir(store.dir(data_dir).join(&day)).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = dir.next_entry().await? {
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let old = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            let name = format!("{day}/{file}");
            if old && (valid_name(&name) || part_of(&name).is_some()) {
                found.push(name);
            }
        }
    }
    Ok(found)
}

/// Whether `name` is a half-written file (`DAY/.FILE.part`); such a file is never named by a row.
pub fn is_partial(name: &str) -> bool {
    part_of(name).is_some()
}

/// The final name of a half-written file `DAY/.FILE.part`.
fn part_of(name: &str) -> Option<String> {
    let (day, file) = name.split_once('/')?;
    let file = file.strip_prefix('.')?.strip_suffix(".part")?;
    let full = format!("{day}/{file}");
    valid_name(&full).then_some(full)
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

/// Removes stored files (after the rows that named them are gone), and half-written ones;
/// missing ones are fine.
pub async fn remove(data_dir: &Path, store: Store, names: &[String]) {
    for name in names
        .iter()
        .filter(|n| valid_name(n) || part_of(n).is_some())
    {
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
        let made = format!("2026-11-28/{}.pdf", random_hex());
        assert!(valid_name(&made));
        for bad in [
            "../../etc/passwd",
            "2026-11-28/0123456789abcdef0123456789abcdef",
            "2026-11-28/0123456789abcdef0123456789abcdef.PDF",
            "2026-11-28/0123456789abcdef0123456789abcdeg.pdf",
            "2026-11-28/0123456789abcdef0123456789abcdef.pdf/x",
            "2026-11-28/../0123456789abcdef0123456789abcd.pdf",
            "/0123456789abcdef0123456789abcde.pdf",
            "",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        let (day, file) = made.split_once('/').unwrap();
        assert_eq!(part_of(&format!("{day}/.{file}.part")), Some(made.clone()));
        assert_eq!(part_of(".../x.part"), None);
        assert!(
            !valid_name("0123456789abcdef0123456789abcdef.pdf"),
            "no folder"
        );
        assert!(!valid_name(
            "2026-13-01/0123456789abcdef0123456789abcdef.pdf"
        ));
        assert!(valid_name(
            "2026-02-28/0123456789abcdef0123456789abcdef.pdf"
        ));
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
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("proofs").join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the portal reads it");
        assert_eq!(
            recent(&dir, Store::Proofs, std::time::Duration::ZERO)
                .await
                .unwrap(),
            vec![name.clone()]
        );
        assert!(
            recent(&dir, Store::Proofs, std::time::Duration::from_secs(3600))
                .await
                .unwrap()
                .is_empty()
        );
        remove(&dir, Store::Proofs, std::slice::from_ref(&name)).await;
        assert_eq!(read(&dir, Store::Proofs, &name).await.unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
