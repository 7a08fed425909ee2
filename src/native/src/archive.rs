//! The payload archive natively: a directory (`GATEWAY_ARCHIVE_DIR`, `archive/` beside the database unless set)
//! with one folder per expiry day and one file per archived request, `YYYY-MM-DD/<request id>.json`, readable
//! by the gateway's user only (0700 folders, 0600 files: they hold prompts and answers). Files are written aside
//! and renamed, off the worker threads (tokio's blocking pool). A sweep thread deletes the folders of days gone
//! by, at start and every `GATEWAY_ARCHIVE_SWEEP_MS`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gateway_core::StoreError;

#[derive(Clone)]
pub struct Archive {
    dir: Arc<PathBuf>,
}

impl Archive {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir: Arc::new(dir) }
    }

    /// The file of a key the core made (checked again here: a key never names a path outside the directory).
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !gateway_core::archive::valid_key(key) {
            return Err(StoreError::new(format!("not an archive key: {key}")));
        }
        Ok(self.dir.join(key))
    }

    pub async fn put(&self, key: &str, document: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_aside(&path, &document))
            .await
            .map_err(StoreError::new)?
            .map_err(|e| {
                eprintln!("gateway: payload not archived: {e}");
                StoreError::new(e)
            })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::new(e)),
        })
        .await
        .map_err(StoreError::new)?
    }
}

fn write_aside(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let day = path.parent().ok_or(std::io::ErrorKind::InvalidInput)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(day)?;
    let name = path
        .file_name()
        .ok_or(std::io::ErrorKind::InvalidInput)?
        .to_string_lossy();
    let aside = day.join(format!(".{name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&aside)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(&aside, path)
}

/// Deletes the folders of expired days; returns how many files went with them.
pub fn sweep(dir: &Path, now_ms: i64) -> std::io::Result<u64> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() && gateway_core::archive::expired(&name, now_ms) {
            removed += fs::read_dir(entry.path())?.count() as u64;
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(removed)
}

pub fn spawn_sweeper(dir: PathBuf, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("archive-sweep".into())
        .spawn(move || loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            match sweep(&dir, now) {
                Ok(0) => {}
                Ok(n) => eprintln!("gateway: archive: {n} expired payload(s) deleted"),
                Err(e) => eprintln!("gateway: archive sweep of {} failed: {e}", dir.display()),
            }
            std::thread::sleep(every);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_private_files_and_days_gone_by_are_swept() {
        let dir = std::env::temp_dir().join(format!("gateway-archive-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let archive = Archive::new(dir.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            archive
                .put("2020-01-01/req_01.json", b"{}".to_vec())
                .await
                .unwrap();
            archive
                .put("2999-01-01/req_02.json", b"{\"a\":1}".to_vec())
                .await
                .unwrap();
            assert!(archive.put("../x/req_03.json", Vec::new()).await.is_err());
            assert_eq!(
                archive.get("2999-01-01/req_02.json").await.unwrap(),
                Some(b"{\"a\":1}".to_vec())
            );
            assert_eq!(archive.get("2999-01-01/req_09.json").await.unwrap(), None);
        });
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("2999-01-01/req_02.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::create_dir_all(dir.join("notes")).unwrap();
        assert_eq!(sweep(&dir, 1_800_000_000_000).unwrap(), 1);
        assert!(!dir.join("2020-01-01").exists());
        assert!(dir.join("2999-01-01/req_02.json").exists());
        assert!(
            dir.join("notes").exists(),
            "what is not a day is left alone"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
