//! Damage to the index dump between restarts: the service must rebuild or
//! repair the index from the store, losing nothing.

use std::{
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::{Error, rng::Rng};

/// What was done to the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The whole index directory removed.
    Deleted,
    /// `CURRENT` overwritten with garbage.
    GarbageCurrent,
    /// A file of the current generation cut to half its length.
    Truncated,
    /// Bytes in the middle of a file of the current generation inverted.
    Flipped,
}

impl Damage {
    pub const ALL: [Damage; 4] = [
        Damage::Deleted,
        Damage::GarbageCurrent,
        Damage::Truncated,
        Damage::Flipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::GarbageCurrent => "garbage-current",
            Self::Truncated => "truncated",
            Self::Flipped => "flipped",
        }
    }

    /// Applies this damage to the dump under `data_dir/index`. Returns `false`
    /// when there was no dump to damage.
    pub fn apply(self, data_dir: &Path, rng: &mut Rng) -> Result<bool, Error> {
        let dir = data_dir.join("index");
        let current = dir.join("CURRENT");
        if !current.exists() {
            return Ok(false);
        }
        match self {
            Self::Deleted => {
                fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                Ok(true)
            }
            Self::GarbageCurrent => {
                fs::write(&current, b"\xff\x00not a generation\n")
                    .map_err(|e| Error::io(&current, e))?;
                Ok(true)
            }
            Self::Truncated | Self::Flipped => {
                let files = generation_files(&dir);
                if files.is_empty() {
                    return Ok(false);
                }
                let file = &files[rng.below(files.len())];
                let len = fs::metadata(file).map_err(|e| Error::io(file, e))?.len();
                if self == Self::Truncated {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(file)
                        .map_err(|e| Error::io(file, e))?;
                    f.set_len(len / 2).map_err(|e| Error::io(file, e))?;
                } else {
                    flip(file, len / 2)?;
                }
                Ok(true)
            }
        }
    }
}

/// The non-empty files of the generation `CURRENT` names.
fn generation_files(dir: &Path) -> Vec<PathBuf> {
    let current = dir.join("CURRENT");
    let mut files = Vec::new();
    // an earlier damage may have left CURRENT unreadable: nothing left to damage
    let Ok(name) = fs::read_to_string(&current) else {
        return files;
    };
    let gen_dir = dir.join(name.trim());
    let entries = match fs::read_dir(&gen_dir) {
        Ok(entries) => entries,
        Err(_) => return files,
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn flip(file: &Path, at: u64) -> Result<(), Error> {
    let io = |e| Error::io(file, e);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .map_err(io)?;
    let mut buf = [0u8; 16];
    f.seek(SeekFrom::Start(at)).map_err(io)?;
    let n = f.read(&mut buf).map_err(io)?;
    for b in &mut buf[..n] {
        *b = !*b;
    }
    f.seek(SeekFrom::Start(at)).map_err(io)?;
    f.write_all(&buf[..n]).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::Damage;
    use crate::rng::Rng;

    #[test]
    fn damages_what_is_there_and_reports_when_nothing_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(1);
        assert!(!Damage::Deleted.apply(dir.path(), &mut rng).unwrap());
        let index = dir.path().join("index");
        std::fs::create_dir_all(index.join("gen-1")).unwrap();
        std::fs::write(index.join("CURRENT"), "gen-1\n").unwrap();
        std::fs::write(index.join("gen-1/meta"), vec![7u8; 64]).unwrap();
        assert!(Damage::Flipped.apply(dir.path(), &mut rng).unwrap());
        let meta = std::fs::read(index.join("gen-1/meta")).unwrap();
        assert_eq!(meta[32], !7u8);
        assert!(Damage::Truncated.apply(dir.path(), &mut rng).unwrap());
        assert_eq!(std::fs::read(index.join("gen-1/meta")).unwrap().len(), 32);
        assert!(Damage::GarbageCurrent.apply(dir.path(), &mut rng).unwrap());
        // a generation CURRENT no longer names cannot be cut or flipped
        assert!(!Damage::Truncated.apply(dir.path(), &mut rng).unwrap());
        assert!(Damage::Deleted.apply(dir.path(), &mut rng).unwrap());
        assert!(!index.exists());
    }
}
