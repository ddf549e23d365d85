//! An X display as the pipeline's frame source: each frame grabs the screen, RESOLUTION goes to
//! RandR, viewer input to XTEST. Runs on the pipeline's source thread with its own connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use super::capture::Capturer;
use super::input::Injector;
use super::{screen, X11Error};
use crate::media::frame::I420Frame;
use crate::media::input::InputEvent;
use crate::media::pipeline::FrameSource;

/// How often a failing capture is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct X11Source {
    conn: RustConnection,
    root: xproto::Window,
    capturer: Capturer,
    injector: Injector,
    /// The screen size, as last read (frames are its even part).
    size: (u16, u16),
    last_error_log: Option<Instant>,
    /// The first error that stopped capture, for the instance's failure reason.
    failure: Arc<Mutex<Option<String>>>,
}

impl X11Source {
    pub fn new(
        conn: RustConnection,
        screen_number: usize,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Result<Self, X11Error> {
        let root = x11rb::connection::Connection::setup(&conn)
            .roots
            .get(screen_number)
            .ok_or_else(|| X11Error::Unsupported(format!("no screen {screen_number}")))?
            .root;
        let capturer = Capturer::new(&conn, screen_number)?;
        let injector = Injector::new(&conn, root)?;
        // Screen size changes (ours, the program's, xrandr's) arrive as events on the root, so
        // each frame learns the size without a round trip.
        conn.change_window_attributes(
            root,
            &xproto::ChangeWindowAttributesAux::new()
                .event_mask(xproto::EventMask::STRUCTURE_NOTIFY),
        )?
        .check()?;
        let size = screen::size(&conn, root)?;
        tracing::info!(
            shm = capturer.uses_shm(),
            width = size.0,
            height = size.1,
            "capturing the X display"
        );
        Ok(Self {
            conn,
            root,
            capturer,
            injector,
            size,
            last_error_log: None,
            failure,
        })
    }

    /// Sets the screen to `width` x `height` (RandR), or says why the server refused.
    pub fn set_size(&mut self, width: u32, height: u32) -> Result<(), X11Error> {
        let (w, h) = (
            width.min(u32::from(u16::MAX)) as u16,
            height.min(u32::from(u16::MAX)) as u16,
        );
        screen::set_size(&self.conn, self.root, w, h)?;
        self.size = (w, h);
        Ok(())
    }

    fn report(&mut self, what: &str, error: &X11Error) {
        let now = Instant::now();
        if self.last_error_log.is_none_or(|t| now - t >= LOG_EVERY) {
            self.last_error_log = Some(now);
            tracing::warn!(error = %error, "{what}");
        }
    }

    fn capture(&mut self, frame: &mut I420Frame) -> Result<(), X11Error> {
        // Someone else (the program, xrandr) may resize the screen too: follow what it is.
        while let Some(event) = self.conn.poll_for_event()? {
            if let Event::ConfigureNotify(e) = event {
                if e.window == self.root {
                    self.size = (e.width, e.height);
                }
            }
        }
        let (w, h) = (self.size.0 & !1, self.size.1 & !1);
        self.capturer.grab(&self.conn, w.max(2), h.max(2), frame)
    }
}

impl FrameSource for X11Source {
    fn next_frame(&mut self, frame: &mut I420Frame, _frame_number: u32, _wall_ms: u64) {
        if let Err(e) = self.capture(frame) {
            if matches!(e, X11Error::Connection(_)) {
                let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                failure.get_or_insert_with(|| format!("lost the X display: {e}"));
            }
            self.report("capturing the X display failed", &e);
            // Keep streaming the last picture size in black rather than nothing.
            if !frame.is_consistent() {
                frame.resize(
                    u32::from(self.size.0.max(16)) & !1,
                    u32::from(self.size.1.max(16)) & !1,
                );
            }
        }
    }

    /// RESOLUTION while running. START already made the server set a size of its own choosing
    /// ([`X11Source::set_size`]), so a refusal here is rare; it is logged as a warning.
    fn resize(&mut self, width: u32, height: u32) {
        match self.set_size(width, height) {
            Ok(()) => tracing::info!(width, height, "X screen resized"),
            Err(e) => self.report("resizing the X screen failed", &e),
        }
    }

    fn input(&mut self, event: InputEvent) {
        let size = (u32::from(self.size.0), u32::from(self.size.1));
        if let Err(e) = self.injector.inject(&self.conn, &event, size) {
            self.report("injecting input failed", &e);
        }
    }
}

impl Drop for X11Source {
    fn drop(&mut self) {
        self.capturer.close(&self.conn);
    }
}
