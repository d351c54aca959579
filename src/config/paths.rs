//! Paths as the user means them and the kernel takes them: `~` expanded, `..` after a symlink
//! the parent of its target, and the default places (XDG base directories, `HOME`).

use std::path::{Component, Path, PathBuf};

use super::EnvLookup;

/// `HOME`, when set to an absolute path.
pub(super) fn home(env: EnvLookup) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

/// An environment variable holding an absolute path; empty or relative values are ignored, as
/// the XDG base directory specification asks.
pub(super) fn absolute_var(env: EnvLookup, var: &str) -> Option<PathBuf> {
    env(var).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// `~` and `~/…` expand to `home`; `~user` is refused.
pub(super) fn expand_tilde(
    text: &str,
    home: Option<&Path>,
) -> std::result::Result<PathBuf, String> {
    let Some(rest) = text.strip_prefix('~') else {
        return Ok(PathBuf::from(text));
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err("~user paths are not supported; write the full path".into());
    }
    let home =
        home.ok_or("HOME is not set, so ~ cannot be expanded; set HOME or write the full path")?;
    Ok(home.join(rest.trim_start_matches('/')))
}

/// The default state file: `$XDG_STATE_HOME/mamfast/processed.json`, else under
/// `~/.local/state`; `None` when neither variable is set.
pub(super) fn default_state_file(env: EnvLookup) -> Option<PathBuf> {
    let dir = absolute_var(env, "XDG_STATE_HOME")
        .or_else(|| home(env).map(|h| h.join(".local").join("state")))?;
    Some(resolve(&dir.join("mamfast").join("processed.json")))
}

/// `path` as the kernel will take it, but for its last component: every directory on the way
/// is resolved, symlinks followed, so that `link/..` is the parent of the link's target (as
/// the kernel has it), not the directory holding the link. The last component is kept as
/// written: it may not exist yet, and if it is a symlink, it is one the store writes through.
pub(super) fn resolve(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real_dir(parent).join(name),
        // `/`, or a path ending in `..`: a directory, resolved whole.
        _ => real_dir(path),
    }
}

/// A directory path with its symlinks resolved and no `.` or `..` left, as far as it exists;
/// the rest (directories to be created) is cleaned as text, which is then what the kernel does
/// too, there being no symlink in it.
fn real_dir(path: &Path) -> PathBuf {
    // The usual case, a directory that exists: resolved in one call, not one per prefix.
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return resolved;
    }
    let mut out = PathBuf::new();
    // Whether `out` exists and is free of symlinks, so far.
    let mut real = true;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            Component::Normal(name) => {
                out.push(name);
                if real {
                    match std::fs::canonicalize(&out) {
                        Ok(resolved) => out = resolved,
                        Err(_) => real = false,
                    }
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_do_not_exist_are_cleaned_as_text() {
        assert_eq!(
            resolve(Path::new("/nonexistent/./b//c/../d")),
            Path::new("/nonexistent/b/d")
        );
        assert_eq!(
            resolve(Path::new("/../nonexistent")),
            Path::new("/nonexistent")
        );
        assert_eq!(resolve(Path::new("/nonexistent/..")), Path::new("/"));
    }

    #[test]
    fn dot_dot_after_a_symlink_is_the_parent_of_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("real/deep")).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink(root.join("real/deep"), root.join("a/link")).unwrap();
        assert_eq!(
            resolve(&root.join("a/link/../p.json")),
            root.join("real/p.json")
        );
        // Missing directories below a link are kept, to be created there.
        assert_eq!(
            resolve(&root.join("a/link/new/../sub/p.json")),
            root.join("real/deep/sub/p.json")
        );
        // The last component stays as written, a symlink included.
        std::os::unix::fs::symlink("elsewhere.json", root.join("a/p.json")).unwrap();
        assert_eq!(resolve(&root.join("a/./p.json")), root.join("a/p.json"));
    }

    #[test]
    fn tilde_expands_to_home_only() {
        let home = Some(Path::new("/home/u"));
        assert_eq!(expand_tilde("~", home).unwrap(), Path::new("/home/u"));
        assert_eq!(
            expand_tilde("~/a/b", home).unwrap(),
            Path::new("/home/u/a/b")
        );
        assert_eq!(expand_tilde("a/~", home).unwrap(), Path::new("a/~"));
        assert!(expand_tilde("~bob/x", home).unwrap_err().contains("~user"));
        assert!(expand_tilde("~/x", None)
            .unwrap_err()
            .contains("HOME is not set"));
    }
}
