//! Copying a committed backup to another location, and deleting one from
//! an object store, keeping the rule that holds everywhere: a backup is
//! complete exactly when its manifest is there, so the manifest is written
//! last and removed first.

use std::path::Path;

use super::object::ObjectLocation;
use super::{block_on, validate_rel_path, FileEntry, Location, StorageError};
use crate::catalog::MANIFEST_FILE;

/// Copies backup `job/id`, committed in directory `src` with the files of
/// `files` and the manifest `manifest_json`, to `target`. Every file is
/// streamed and its checksum checked on the way (a damaged source is not
/// copied); the manifest goes last. Leftovers of an earlier, interrupted
/// copy are replaced.
pub async fn copy_backup(
    src: &Path,
    files: &[FileEntry],
    manifest_json: &[u8],
    target: &Location,
    job: &str,
    id: &str,
) -> Result<(), StorageError> {
    for f in files {
        validate_rel_path(&f.path)?;
    }
    match target {
        Location::Object(o) => {
            let prefix = format!("{job}/{id}/");
            // An interrupted copy left objects but no manifest; start over
            // so nothing stale is mixed in.
            let leftovers: Vec<String> =
                o.list(&prefix).await?.into_iter().map(|i| i.key).collect();
            if !leftovers.is_empty() {
                o.delete_many(leftovers).await?;
            }
            for f in files {
                o.put_file(&format!("{prefix}{}", f.path), &src.join(&f.path), f)
                    .await?;
            }
            o.put_bytes(&format!("{prefix}{MANIFEST_FILE}"), manifest_json.to_vec())
                .await
        }
        Location::Local { root, .. } => {
            let job_dir = root.join(job);
            let (root, src) = (root.clone(), src.to_path_buf());
            let (files, manifest) = (files.to_vec(), manifest_json.to_vec());
            let (job, id) = (job.to_string(), id.to_string());
            tokio::task::spawn_blocking(move || {
                copy_local(&src, &files, &manifest, &root, &job, &id)
            })
            .await
            .map_err(|e| StorageError::io(&job_dir, "copy into", std::io::Error::other(e)))?
        }
    }
}

/// A local copy is written like a backup: into a `.partial-` directory,
/// every file checked and made durable, then renamed into place.
fn copy_local(
    src: &Path,
    files: &[FileEntry],
    manifest: &[u8],
    root: &Path,
    job: &str,
    id: &str,
) -> Result<(), StorageError> {
    super::clean_partials(root, job)?;
    let writer = super::BackupWriter::create(root, job, id)?;
    for f in files {
        let from = src.join(&f.path);
        let to = writer.partial_dir().join(&f.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::io(parent, "create directory", e))?;
        }
        std::fs::copy(&from, &to).map_err(|e| StorageError::io(&to, "copy to", e))?;
        std::fs::File::open(&to)
            .and_then(|file| file.sync_all())
            .map_err(|e| StorageError::io(&to, "fsync", e))?;
        super::verify_file(&super::BackupFiles::local(writer.partial_dir()), f)?;
    }
    writer.commit(manifest)?;
    Ok(())
}

/// Deletes backup `job/id` from an object store: the manifest first, so
/// the backup stops counting as complete before any of its data goes.
/// Blocking.
pub fn delete_object_backup(o: &ObjectLocation, job: &str, id: &str) -> Result<(), StorageError> {
    let prefix = format!("{job}/{id}/");
    block_on(async {
        o.delete(&format!("{prefix}{MANIFEST_FILE}")).await?;
        let rest: Vec<String> = o.list(&prefix).await?.into_iter().map(|i| i.key).collect();
        if !rest.is_empty() {
            o.delete_many(rest).await?;
        }
        Ok(())
    })?
}
