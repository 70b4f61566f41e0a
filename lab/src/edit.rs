//! Changing a lab's files: stubs in, solutions back, and the safety net
//! that puts files back if `verify` is killed half-way.

use crate::registry::Lab;
use crate::{regions, state};
use std::path::{Path, PathBuf};

/// A lab's files as they are on disk, to change and write back.
#[derive(Debug)]
pub struct Files {
    /// `(absolute path, text)`, each file once.
    pub texts: Vec<(PathBuf, String)>,
}

impl Files {
    pub fn read(lab: &Lab) -> Result<Files, String> {
        let mut texts: Vec<(PathBuf, String)> = Vec::new();
        for region in &lab.regions {
            let path = lab.stage.dir.join(&region.file);
            if texts.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            texts.push((path, text));
        }
        Ok(Files { texts })
    }

    fn text_mut(&mut self, path: &Path) -> &mut String {
        let (_, text) = self
            .texts
            .iter_mut()
            .find(|(p, _)| p == path)
            .expect("every region's file was read");
        text
    }

    /// The current body of every region of `lab`, in the lab's order.
    pub fn bodies(&self, lab: &Lab) -> Result<Vec<String>, String> {
        lab.regions
            .iter()
            .map(|region| {
                let path = lab.stage.dir.join(&region.file);
                let (_, text) = self.texts.iter().find(|(p, _)| *p == path).expect("read");
                let span = regions::find(text, &region.anchor)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(regions::body(text, span))
            })
            .collect()
    }

    /// Put `bodies[i]` into region `i` of `lab`. A body of `None` means the
    /// region's stub.
    pub fn set_bodies(&mut self, lab: &Lab, bodies: &[Option<String>]) -> Result<(), String> {
        for (region, body) in lab.regions.iter().zip(bodies) {
            let path = lab.stage.dir.join(&region.file);
            let text = self.text_mut(&path);
            let span = regions::find(text, &region.anchor)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let body = match body {
                Some(body) => body.clone(),
                None => regions::indented_stub(text, span, &region.stub),
            };
            *text = regions::replace(text, span, &body);
        }
        Ok(())
    }

    pub fn write(&self) -> Result<(), String> {
        for (path, text) in &self.texts {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Which regions of the lab hold their stub now.
pub fn stubbed(lab: &Lab) -> Vec<bool> {
    let Ok(files) = Files::read(lab) else {
        return Vec::new();
    };
    let Ok(bodies) = files.bodies(lab) else {
        return Vec::new();
    };
    lab.regions
        .iter()
        .zip(bodies)
        .map(|(region, body)| regions::holds_stub(&body, &region.stub))
        .collect()
}

/// The backup `verify` keeps of each file it changes.
fn backup_dir(root: &Path) -> PathBuf {
    state::dir(root).join("verify-backup")
}

/// What `verify` wrote into a file while a lab is blanked, so that a later
/// run puts the original back only over that, never over your edits.
fn written_dir(root: &Path) -> PathBuf {
    state::dir(root).join("verify-written")
}

/// Remember what `verify` has just written.
pub fn note_written(root: &Path, files: &Files) -> Result<(), String> {
    for (path, text) in &files.texts {
        let note = written_dir(root).join(crate::registry::relative(root, path));
        state::write(&note, text).map_err(|e| format!("{}: {e}", note.display()))?;
    }
    Ok(())
}

/// `verify` has put these files back itself.
pub fn forget_written(root: &Path, paths: &[PathBuf]) -> Result<(), String> {
    for path in paths {
        let note = written_dir(root).join(crate::registry::relative(root, path));
        if note.exists() {
            std::fs::remove_file(&note).map_err(|e| format!("{}: {e}", note.display()))?;
        }
    }
    Ok(())
}

/// Keep a copy of each file before `verify` changes it.
pub fn back_up(root: &Path, paths: &[PathBuf]) -> Result<(), String> {
    let dir = backup_dir(root);
    for path in paths {
        let name = crate::registry::relative(root, path);
        let copy = dir.join(&name);
        if copy.exists() {
            continue; // keep the oldest copy: it is the original
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        state::write(&copy, &text).map_err(|e| format!("{}: {e}", copy.display()))?;
    }
    Ok(())
}

/// Put back every file `verify` backed up, and forget the backup. Returns the files put back.
pub fn restore_backup(root: &Path) -> Result<Vec<String>, String> {
    let dir = backup_dir(root);
    let mut restored = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let copy = entry.path();
            if copy.is_dir() {
                pending.push(copy);
                continue;
            }
            let name = crate::registry::relative(&dir, &copy);
            let original = root.join(&name);
            // Written by a verify that was killed: put back only what it wrote.
            if let Ok(written) = std::fs::read_to_string(written_dir(root).join(&name))
                && std::fs::read_to_string(&original).ok() != Some(written)
            {
                let kept = state::dir(root).join("verify-kept").join(&name);
                state::write(&kept, &std::fs::read_to_string(&copy).unwrap_or_default())
                    .map_err(|e| format!("{}: {e}", kept.display()))?;
                println!(
                    "({name} changed since an interrupted `cargo lab verify` blanked it: \
                     left as it is; the original is in {})",
                    crate::registry::relative(root, &kept)
                );
                continue;
            }
            let text =
                std::fs::read_to_string(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            // Written now, so cargo sees a change and rebuilds what the
            // stubs were built into.
            std::fs::write(&original, text).map_err(|e| format!("{}: {e}", original.display()))?;
            restored.push(name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(written_dir(root));
    restored.sort();
    Ok(restored)
}
