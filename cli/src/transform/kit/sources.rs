//! Which files of a module folder are its sources: everything but what builds and tools write
//! (`build/`, `target/`, `node_modules/`, `__pycache__/`) and hidden or backup files (editors'
//! swap files, `.git`). `transform build` hashes them to skip a build whose inputs did not
//! change; `transform dev` rebuilds when one of them changes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Whether a path inside a module folder (relative to it) is not a source.
pub fn is_ignored(relative: &Path) -> bool {
    relative.components().any(|c| {
        let part = c.as_os_str().to_string_lossy();
        part.starts_with('.')
            || part.ends_with('~')
            || matches!(&*part, "build" | "target" | "node_modules" | "__pycache__")
    })
}

/// The source files of `dir`, relative, sorted.
pub fn source_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if is_ignored(&path) {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-256 over every source file (name and content) and `tool`, which names whatever else
/// decides the output (the build tool and its version).
pub fn inputs_hash(dir: &Path, tool: &str) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    hash.update([0]);
    for file in source_files(dir)? {
        let content = std::fs::read(dir.join(&file))?;
        hash.update(file.to_string_lossy().replace('\\', "/").as_bytes());
        hash.update([0]);
        hash.update((content.len() as u64).to_le_bytes());
        hash.update(&content);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_outputs_and_editor_files_are_not_sources() {
        for ignored in [
            "build/patients.wasm",
            "target/release/x",
            ".app.py.swp",
            "app.py~",
            "node_modules/a/b.js",
            "sub/__pycache__/x.pyc",
            ".git/HEAD",
        ] {
            assert!(is_ignored(Path::new(ignored)), "{ignored}");
        }
        for source in [
            "app.py",
            "src/lib.rs",
            "sdk/reqsync-guest/src/lib.rs",
            "wit/transform.wit",
        ] {
            assert!(!is_ignored(Path::new(source)), "{source}");
        }
    }

    #[test]
    fn the_inputs_hash_changes_with_a_source_and_not_with_a_build_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app.py"), "a = 1\n").expect("write");
        let first = inputs_hash(dir.path(), "tool 1").expect("hash");
        std::fs::create_dir(dir.path().join("build")).expect("mkdir");
        std::fs::write(dir.path().join("build/out.wasm"), "x").expect("write");
        assert_eq!(inputs_hash(dir.path(), "tool 1").expect("hash"), first);
        assert_ne!(inputs_hash(dir.path(), "tool 2").expect("hash"), first);
        std::fs::write(dir.path().join("app.py"), "a = 2\n").expect("write");
        assert_ne!(inputs_hash(dir.path(), "tool 1").expect("hash"), first);
    }
}
