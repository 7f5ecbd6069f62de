//! libgit2 calls block, so each operation runs on a blocking thread, and operations on one
//! repository path run one at a time ([`run`]): libgit2 objects are not meant to be shared
//! across concurrent writers, and two clones into one directory must not interleave.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::creds;
use super::error::{GitError, GitResult, Kind};

/// Entries kept in the lock map before dead ones are swept.
const SWEEP_AT: usize = 64;

/// One async mutex per repository path, held weakly: an entry lives only while an operation
/// holds or waits for it, so the map does not grow with every path ever used.
#[derive(Default)]
pub struct PathLocks {
    map: Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>,
}

impl PathLocks {
    pub fn get(&self, key: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = toolbox_envelope::sync::lock(&self.map);
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= SWEEP_AT {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key.to_path_buf(), Arc::downgrade(&lock));
        lock
    }

    pub fn len(&self) -> usize {
        toolbox_envelope::sync::lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn locks() -> &'static PathLocks {
    static LOCKS: OnceLock<PathLocks> = OnceLock::new();
    LOCKS.get_or_init(PathLocks::default)
}

/// Runs `op` on a blocking thread while holding the lock of `key`. The lock travels into the
/// thread, so a client that disconnects does not release it before libgit2 is done.
pub async fn run<T, F>(key: &Path, op: F) -> GitResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> GitResult<T> + Send + 'static,
{
    let guard = locks().get(key).lock_owned().await;
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        creds::init_libgit2();
        op()
    })
    .await
    .map_err(|e| GitError::new(Kind::Internal, format!("git operation failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lock_map_serialises_and_forgets() {
        let locks = PathLocks::default();
        let a = locks.get(Path::new("/r"));
        let b = locks.get(Path::new("/r"));
        assert!(Arc::ptr_eq(&a, &b));
        let g = a.clone().try_lock_owned().unwrap();
        assert!(b.try_lock().is_err(), "same path, same lock");
        drop(g);
        drop((a, b));
        for i in 0..(SWEEP_AT * 3) {
            let _held = locks.get(&PathBuf::from(format!("/p{i}")));
        }
        assert!(locks.len() <= SWEEP_AT + 1, "dead entries are swept: {}", locks.len());
    }
}
