//! The MIT-SHM segment captures are read through: attached to the server once per connection
//! and reused, so pixels never travel through the socket.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use super::error::XError;

/// A shared-memory segment attached to the server.
pub struct Shm {
    pub(super) seg: shm::Seg,
    pub(super) addr: *mut u8,
    pub(super) size: usize,
}

// The segment is only touched while the connection mutex is held.
unsafe impl Send for Shm {}

impl Shm {
    pub(super) fn create(c: &RustConnection, size: usize) -> Result<Shm, XError> {
        if c.extension_information(shm::X11_EXTENSION_NAME)?.is_none() {
            return Err(XError::new("no MIT-SHM"));
        }
        c.shm_query_version()?.reply()?;
        // SAFETY: plain SysV calls; the pointer is checked before use and detached in release.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | 0o600);
            if id < 0 {
                return Err(XError::new("shmget failed"));
            }
            let addr = libc::shmat(id, std::ptr::null(), 0);
            if addr as isize == -1 {
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                return Err(XError::new("shmat failed"));
            }
            let seg = match c.generate_id() {
                Ok(s) => s,
                Err(e) => {
                    libc::shmdt(addr);
                    libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                    return Err(e.into());
                }
            };
            let attached = c
                .shm_attach(seg, id as u32, false)
                .map_err(XError::from)
                .and_then(|ck| ck.check().map_err(XError::from));
            // Marked for removal now: it disappears once both sides detached, even if we crash.
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            if let Err(e) = attached {
                libc::shmdt(addr);
                return Err(e);
            }
            Ok(Shm { seg, addr: addr as *mut u8, size })
        }
    }

    pub fn release(self, c: &RustConnection) {
        let _ = c.shm_detach(self.seg);
        let _ = c.flush();
        // SAFETY: addr came from shmat and is detached once.
        unsafe {
            libc::shmdt(self.addr as *const libc::c_void);
        }
    }
}
