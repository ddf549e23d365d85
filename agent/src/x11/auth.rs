//! Each virtual display gets a random MIT-MAGIC-COOKIE-1: only its own program (and the agent)
//! may connect, so one session's program cannot watch or steer another session's display.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use x11rb::rust_connection::{DefaultStream, RustConnection};

use super::X11Error;

const COOKIE_NAME: &[u8] = b"MIT-MAGIC-COOKIE-1";
/// An Xauthority entry for any host address (the display number still has to match).
const FAMILY_WILD: u16 = 0xFFFF;

#[derive(Clone)]
pub struct Cookie([u8; 16]);

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookie(..)")
    }
}

impl Cookie {
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The Xauthority file format (what `xauth` writes and Xvfb's `-auth` and libXau read):
    /// family, address, display number, auth name, auth data, each length-prefixed big-endian.
    pub fn xauthority_entry(&self, display_number: u32) -> Vec<u8> {
        let mut entry = Vec::with_capacity(64);
        entry.extend_from_slice(&FAMILY_WILD.to_be_bytes());
        let number = display_number.to_string();
        for field in [&b""[..], number.as_bytes(), COOKIE_NAME, &self.0[..]] {
            entry.extend_from_slice(&(field.len() as u16).to_be_bytes());
            entry.extend_from_slice(field);
        }
        entry
    }

    /// Writes the Xauthority file (mode 0600) for display `:display_number`.
    pub fn write_file(&self, path: &Path, display_number: u32) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&self.xauthority_entry(display_number))
    }

    /// Connects to local display `:display_number` with this cookie.
    pub fn connect(&self, display_number: u32) -> Result<RustConnection, X11Error> {
        let stream = UnixStream::connect(socket_path(display_number))?;
        let (stream, _) = DefaultStream::from_unix_stream(stream)?;
        Ok(RustConnection::connect_to_stream_with_auth_info(
            stream,
            0,
            COOKIE_NAME.to_vec(),
            self.0.to_vec(),
        )?)
    }
}

/// Where a local X server listens for display `:n`.
pub fn socket_path(display_number: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X11-unix/X{display_number}"))
}

/// The lock file (holding its pid) a local X server keeps for display `:n`.
pub fn lock_path(display_number: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X{display_number}-lock"))
}

/// Whether a running X server holds display `:n`. A server that was killed (SIGKILL) leaves its
/// lock file and socket behind: those are removed here, so that the number can be used again.
pub fn display_in_use(display_number: u32) -> bool {
    let lock = lock_path(display_number);
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return socket_path(display_number).exists();
    };
    let holder_alive = match text.trim().parse::<i32>() {
        Ok(pid) => !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ),
        // Not ours to judge.
        Err(_) => true,
    };
    if !holder_alive {
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(socket_path(display_number));
    }
    holder_alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xauthority_entry_layout() {
        let cookie = Cookie([7; 16]);
        let entry = cookie.xauthority_entry(101);
        let mut expected = vec![0xFF, 0xFF, 0, 0, 0, 3, b'1', b'0', b'1', 0, 18];
        expected.extend_from_slice(b"MIT-MAGIC-COOKIE-1");
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&[7; 16]);
        assert_eq!(entry, expected);
        assert_ne!(Cookie::random().0, Cookie::random().0);
    }
}
