//! Where an export writes: the `--out` directory, refused when it already
//! holds something (unless `--force`), and each file written under a
//! hidden temporary name, synced, then renamed into place, so an export
//! that is interrupted or fails never leaves a partial file under a name
//! that looks complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ExportError;

/// Creates `out` if needed (then returns true); refuses a non-empty one
/// unless `force`.
pub fn prepare(out: &Path, force: bool) -> Result<bool, ExportError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if !force && entries.next().is_some() {
                return Err(ExportError::Usage(format!(
                    "--out {} is not empty; export into an empty or new directory, or add \
                     --force to write into it anyway (files of the same name are replaced)",
                    out.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir_all(out)
            .map(|()| true)
            .map_err(|e| ExportError::io(out, "create", e)),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(ExportError::Usage(format!(
            "{} exists and is not a directory; name a directory for --out",
            out.display()
        ))),
        Err(e) => Err(ExportError::io(out, "read", e)),
    }
}

/// A file being written; dropped without [`commit`](Self::commit), its
/// temporary file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: PathBuf) -> Result<AtomicFile, ExportError> {
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(|e| ExportError::io(&dir, "create", e))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let file = File::create(&temp).map_err(|e| ExportError::io(&temp, "create", e))?;
        Ok(AtomicFile {
            target,
            temp,
            writer: Some(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        match self.writer.as_mut() {
            Some(w) => w
                .write_all(bytes)
                .map_err(|e| ExportError::io(&self.temp, "write", e)),
            None => Err(ExportError::io(
                &self.temp,
                "write",
                io::Error::other("the file was already finished"),
            )),
        }
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<PathBuf, ExportError> {
        let Some(writer) = self.writer.take() else {
            return Ok(self.target.clone());
        };
        let file = writer
            .into_inner()
            .map_err(|e| ExportError::io(&self.temp, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| ExportError::io(&self.temp, "sync", e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| ExportError::io(&self.target, "rename into place", e))?;
        if let Some(dir) = self.target.parent() {
            // Makes the rename itself durable; a failure here loses nothing
            // that was not already written.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(self.target.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("db").join("c.json");
        let mut f = AtomicFile::create(target.clone()).unwrap();
        f.write_all(b"{}\n").unwrap();
        assert!(!target.exists());
        drop(f);
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("db")).unwrap().count(),
            0,
            "temp removed"
        );
        let mut f = AtomicFile::create(target.clone()).unwrap();
        f.write_all(b"{}\n").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}\n");
        assert_eq!(std::fs::read_dir(dir.path().join("db")).unwrap().count(), 1);
    }

    #[test]
    fn a_non_empty_directory_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), false).unwrap();
        let fresh = dir.path().join("new/deeper");
        prepare(&fresh, false).unwrap();
        assert!(fresh.is_dir());
        std::fs::write(dir.path().join("x"), "x").unwrap();
        let e = prepare(dir.path(), false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        prepare(dir.path(), true).unwrap();
        let e = prepare(&dir.path().join("x"), false).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }
}
