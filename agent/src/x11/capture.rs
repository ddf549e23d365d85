//! The display's picture: the root window read into shared memory (MIT-SHM `GetImage`, no copy
//! through the socket) and converted to I420. Without MIT-SHM (a remote display) it falls back
//! to a plain `GetImage`.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat};

use super::convert::bgrx_to_i420;
use super::X11Error;
use crate::media::frame::I420Frame;

/// A server-created shared memory segment, mapped read-only here.
struct Segment {
    id: shm::Seg,
    map: NonNull<std::ffi::c_void>,
    len: usize,
}

// The mapping is only touched through &self/&mut self of the owning Capturer.
unsafe impl Send for Segment {}

impl Segment {
    fn create(conn: &impl Connection, len: usize) -> Result<Self, X11Error> {
        let size = NonZeroUsize::new(len)
            .ok_or_else(|| X11Error::Unsupported("an empty screen".into()))?;
        let id = conn.generate_id()?;
        let reply = conn.shm_create_segment(id, len as u32, false)?.reply()?;
        let fd: OwnedFd = reply.shm_fd;
        // SAFETY: a fresh shared mapping of a segment the server made `len` bytes long; it is
        // only read (as a byte slice, after the GetImage that fills it has been answered) and
        // unmapped in Drop.
        let map = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Self { id, map, len })
    }

    fn bytes(&self, len: usize) -> &[u8] {
        // SAFETY: the mapping is `self.len` bytes and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<u8>(), len.min(self.len)) }
    }

    fn release(self, conn: &impl Connection) {
        let _ = conn.shm_detach(self.id);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: mapped in `create` with this length; no slice of it outlives a `grab` call.
        let _ = unsafe { munmap(self.map, self.len) };
    }
}

pub struct Capturer {
    root: xproto::Window,
    shm: bool,
    segment: Option<Segment>,
}

impl Capturer {
    /// Checks the screen is 24/32-bit TrueColor with 32 bits per pixel, the layout the converter
    /// reads, and whether MIT-SHM (1.2, server-created segments) is there.
    pub fn new(conn: &impl Connection, screen: usize) -> Result<Self, X11Error> {
        let setup = conn.setup();
        let root = setup
            .roots
            .get(screen)
            .ok_or_else(|| X11Error::Unsupported(format!("no screen {screen}")))?;
        let format = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == root.root_depth);
        if !matches!(root.root_depth, 24 | 32) || format.map(|f| f.bits_per_pixel) != Some(32) {
            return Err(X11Error::Unsupported(format!(
                "the screen has depth {} ({:?} bits per pixel); 24-bit TrueColor with 32 bits per pixel is needed",
                root.root_depth,
                format.map(|f| f.bits_per_pixel)
            )));
        }
        if setup.image_byte_order != xproto::ImageOrder::LSB_FIRST {
            return Err(X11Error::Unsupported("a big-endian X server".into()));
        }
        let shm = conn
            .extension_information(shm::X11_EXTENSION_NAME)?
            .is_some()
            && conn
                .shm_query_version()?
                .reply()
                .is_ok_and(|v| (v.major_version, v.minor_version) >= (1, 2));
        Ok(Self {
            root: root.root,
            shm,
            segment: None,
        })
    }

    pub fn uses_shm(&self) -> bool {
        self.shm
    }

    /// Reads the top-left `width` x `height` of the screen (even, within the screen): BGRX rows of
    /// `width * 4` bytes, in the shared segment (borrowed until the next call) or, without
    /// MIT-SHM, in the reply.
    pub fn capture(
        &mut self,
        conn: &impl Connection,
        width: u16,
        height: u16,
    ) -> Result<Cow<'_, [u8]>, X11Error> {
        if !self.shm {
            let reply = conn
                .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, width, height, !0)?
                .reply()?;
            return Ok(Cow::Owned(reply.data));
        }
        let len = usize::from(width) * usize::from(height) * 4;
        let segment = match self.segment.take() {
            Some(segment) if segment.len >= len => segment,
            smaller => {
                if let Some(old) = smaller {
                    old.release(conn);
                }
                Segment::create(conn, len)?
            }
        };
        let segment = self.segment.insert(segment);
        conn.shm_get_image(
            self.root,
            0,
            0,
            width,
            height,
            !0,
            ImageFormat::Z_PIXMAP.into(),
            segment.id,
            0,
        )?
        .reply()?;
        Ok(Cow::Borrowed(segment.bytes(len)))
    }

    /// [`capture`](Self::capture), converted into `frame`.
    pub fn grab(
        &mut self,
        conn: &impl Connection,
        width: u16,
        height: u16,
        frame: &mut I420Frame,
    ) -> Result<(), X11Error> {
        let pixels = self.capture(conn, width, height)?;
        let stride = u32::from(width) * 4;
        Ok(bgrx_to_i420(
            &pixels,
            stride,
            width.into(),
            height.into(),
            frame,
        )?)
    }

    /// Detaches the shared memory (while the connection is still open).
    pub fn close(&mut self, conn: &impl Connection) {
        if let Some(segment) = self.segment.take() {
            segment.release(conn);
        }
    }
}
