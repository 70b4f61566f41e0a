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

    /// Write the files for `verify`, noting first what it writes: a verify
    /// killed between the two finds the files unchanged, never changed and
    /// unnoted.
    pub fn write_noted(&self, root: &Path) -> Result<(), String> {
        note_written(root, self)?;
        self.write()
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

/// Remember what `verify` is about to write.
fn note_written(root: &Path, files: &Files) -> Result<(), String> {
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
            // Bytes, not text: a copy cut short by a kill may end inside a
            // character, and must not stop every later command.
            let text = std::fs::read(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            let now = std::fs::read(&original).ok();
            if now.as_deref() == Some(text.as_slice()) {
                continue; // never changed, or put back already
            }
            // Put back only what verify wrote: any other text is yours,
            // written after verify copied or put back the file.
            let written = std::fs::read(written_dir(root).join(&name)).ok();
            if now.is_none() || now != written {
                let kept = state::dir(root).join("verify-kept").join(&name);
                state::write(&kept, &text).map_err(|e| format!("{}: {e}", kept.display()))?;
                println!(
                    "({name} changed since an interrupted `cargo lab verify` copied it: \
                     left as it is; the original is in {})",
                    crate::registry::relative(root, &kept)
                );
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace root of its own for each test, with one lab file in it.
    fn scratch(name: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("lab-edit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let file = root.join("stage-04-x/src/f.rs");
        state::write(&file, "original\n").unwrap();
        (root, file)
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// What `verify` does before it builds: back `file` up, then write a
    /// stub over it, noted.
    fn blank(root: &Path, file: &Path) {
        back_up(root, &[file.to_path_buf()]).unwrap();
        let blanked = Files {
            texts: vec![(file.to_path_buf(), "stub\n".to_string())],
        };
        blanked.write_noted(root).unwrap();
    }

    #[test]
    fn a_file_an_interrupted_verify_blanked_gets_its_original_back() {
        let (root, file) = scratch("blanked");
        blank(&root, &file);
        // Killed here: the next run puts the original back.
        assert_eq!(restore_backup(&root).unwrap(), ["stage-04-x/src/f.rs"]);
        assert_eq!(read(&file), "original\n");
        assert!(!backup_dir(&root).exists() && !written_dir(&root).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_file_edited_after_an_interrupted_verify_put_it_back_is_left_as_it_is() {
        let (root, file) = scratch("put-back");
        back_up(&root, std::slice::from_ref(&file)).unwrap();
        // verify blanked the file, put the original back and was killed
        // before it dropped its backup; then the learner edited the file.
        std::fs::write(&file, "my work\n").unwrap();
        restore_backup(&root).unwrap();
        assert_eq!(read(&file), "my work\n");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_blanked_file_edited_after_an_interrupted_verify_is_left_and_its_original_kept() {
        let (root, file) = scratch("edited");
        blank(&root, &file);
        std::fs::write(&file, "my work\n").unwrap();
        assert!(restore_backup(&root).unwrap().is_empty());
        assert_eq!(read(&file), "my work\n");
        let kept = state::dir(&root).join("verify-kept/stage-04-x/src/f.rs");
        assert_eq!(read(&kept), "original\n");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_garbled_backup_neither_stops_the_tool_nor_replaces_your_file() {
        let (root, file) = scratch("garbled");
        // A verify killed while it copied a file leaves half of it, perhaps
        // half of a character.
        std::fs::create_dir_all(backup_dir(&root).join("stage-04-x/src")).unwrap();
        std::fs::write(
            backup_dir(&root).join("stage-04-x/src/f.rs"),
            b"orig\xe2\x80",
        )
        .unwrap();
        assert!(restore_backup(&root).unwrap().is_empty());
        assert_eq!(read(&file), "original\n");
        assert!(!backup_dir(&root).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
