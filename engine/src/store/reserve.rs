//! Space kept back for a full disk.
//!
//! When the disk fills, SQLite cannot even delete: a delete is written to
//! the write-ahead log first. So the store keeps a file of
//! [`Reserve::BYTES`] next to the database. When writes fail, the sweeper
//! removes it and, with that room, deletes the jobs past their retention;
//! the pages they free are reused by the writes that were waiting. Once the
//! store takes writes again and the disk has room for it several times
//! over, the file is made again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file kept back, next to the database.
#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    /// Held while the file is being made or removed.
    busy: Mutex<()>,
}

impl Reserve {
    /// Bytes kept back: room for the sweeper's deletes (a delete logs the
    /// pages it changes, not the rows it removes).
    pub const BYTES: u64 = 8 * 1024 * 1024;

    /// The reserve of the database file `db` (`DB-reserve`); not made yet.
    pub fn new(db: &Path) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push("-reserve");
        Reserve {
            path: PathBuf::from(name),
            busy: Mutex::new(()),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is there, whole (one cut short by a crash while it
    /// was made is made again).
    pub fn is_held(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() == Self::BYTES)
    }

    /// Makes the file unless it is there already or the disk has less than
    /// four times its size free (it would only hasten the disk filling).
    /// Real blocks, not a sparse file. Returns whether it is held now.
    pub fn take(&self) -> bool {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_held() {
            return true;
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        let free = rustix::fs::statvfs(dir.unwrap_or(Path::new(".")))
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(0);
        if free < 4 * Self::BYTES {
            return false;
        }
        let made = (|| {
            let mut file = std::fs::File::create(&self.path)?;
            let chunk = vec![0u8; 64 * 1024];
            for _ in 0..Self::BYTES / chunk.len() as u64 {
                file.write_all(&chunk)?;
            }
            file.sync_all()
        })();
        match made {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "cannot make the store's reserve");
                let _ = std::fs::remove_file(&self.path);
                false
            }
        }
    }

    /// Removes the file, giving its space to the store. Returns whether it
    /// was there.
    pub fn release(&self) -> bool {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::remove_file(&self.path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_it_is_a_real_file_of_its_size_and_released_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::new(&dir.path().join("jobs.db"));
        assert_eq!(reserve.path(), dir.path().join("jobs.db-reserve"));
        assert!(!reserve.is_held());
        assert!(reserve.take());
        let meta = std::fs::metadata(reserve.path()).unwrap();
        assert_eq!(meta.len(), Reserve::BYTES);
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= Reserve::BYTES, "not sparse");
        assert!(reserve.take(), "taking it again keeps it");
        assert!(reserve.release());
        assert!(!reserve.is_held());
        assert!(!reserve.release(), "nothing left to release");
    }
}
