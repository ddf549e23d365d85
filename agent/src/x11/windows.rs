//! A watcher thread per display: reports when the program's first window is mapped (readiness),
//! and, in kiosk mode, makes every top-level window fill the screen when it maps and whenever
//! the screen is resized, as a kiosk window manager would (there is no window manager here).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use super::X11Error;

pub struct WindowWatch {
    conn: Arc<RustConnection>,
    quit_window: xproto::Window,
    thread: Option<JoinHandle<()>>,
    /// True once a top-level window has been mapped.
    pub mapped: watch::Receiver<bool>,
}

impl WindowWatch {
    pub fn start(conn: RustConnection, screen: usize, kiosk: bool) -> Result<Self, X11Error> {
        let conn = Arc::new(conn);
        let root = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| X11Error::Unsupported(format!("no screen {screen}")))?
            .root;
        // An unmapped window only this thread knows: stop() sends it a message to end the wait.
        let quit_window = conn.generate_id()?;
        conn.create_window(
            0,
            quit_window,
            root,
            -1,
            -1,
            1,
            1,
            0,
            xproto::WindowClass::INPUT_ONLY,
            0,
            &xproto::CreateWindowAux::new().override_redirect(1),
        )?;
        conn.change_window_attributes(
            root,
            &xproto::ChangeWindowAttributesAux::new().event_mask(
                xproto::EventMask::SUBSTRUCTURE_NOTIFY | xproto::EventMask::STRUCTURE_NOTIFY,
            ),
        )?
        .check()?;
        let (sender, mapped) = watch::channel(false);
        let thread = {
            let conn = Arc::clone(&conn);
            std::thread::Builder::new()
                .name("x11-windows".into())
                .spawn(move || {
                    if let Err(e) = watch_windows(&conn, root, quit_window, kiosk, &sender) {
                        tracing::debug!(error = %e, "window watcher ended");
                    }
                })?
        };
        Ok(Self {
            conn,
            quit_window,
            thread: Some(thread),
            mapped,
        })
    }

    /// Ends the thread (it also ends by itself when the display goes away).
    pub fn stop(mut self) {
        let event = xproto::ClientMessageEvent::new(
            32,
            self.quit_window,
            xproto::AtomEnum::NONE,
            [0u32; 5],
        );
        let sent = self
            .conn
            .send_event(false, self.quit_window, xproto::EventMask::NO_EVENT, event)
            .is_ok()
            && self.conn.flush().is_ok();
        if let Some(thread) = self.thread.take() {
            if sent {
                let _ = thread.join();
            }
        }
    }
}

fn watch_windows(
    conn: &RustConnection,
    root: xproto::Window,
    quit_window: xproto::Window,
    kiosk: bool,
    mapped: &watch::Sender<bool>,
) -> Result<(), X11Error> {
    let mut screen = super::screen::size(conn, root)?;
    for window in top_levels(conn, root)? {
        mapped.send_replace(true);
        if kiosk {
            fill(conn, window, screen)?;
        }
    }
    loop {
        match conn.wait_for_event()? {
            Event::MapNotify(e)
                if e.event == root && !e.override_redirect && e.window != quit_window =>
            {
                mapped.send_replace(true);
                if kiosk {
                    fill(conn, e.window, screen)?;
                }
            }
            Event::ConfigureNotify(e) if e.window == root => {
                let size = (e.width, e.height);
                if size != screen {
                    screen = size;
                    if kiosk {
                        for window in top_levels(conn, root)? {
                            fill(conn, window, screen)?;
                        }
                    }
                }
            }
            Event::ClientMessage(e) if e.window == quit_window => return Ok(()),
            _ => {}
        }
    }
}

/// The mapped top-level windows a window manager would manage (not override-redirect).
fn top_levels(
    conn: &RustConnection,
    root: xproto::Window,
) -> Result<Vec<xproto::Window>, X11Error> {
    let mut windows = Vec::new();
    for window in conn.query_tree(root)?.reply()?.children {
        let attributes = conn.get_window_attributes(window)?.reply()?;
        if attributes.map_state == xproto::MapState::VIEWABLE && !attributes.override_redirect {
            windows.push(window);
        }
    }
    Ok(windows)
}

fn fill(
    conn: &RustConnection,
    window: xproto::Window,
    (width, height): (u16, u16),
) -> Result<(), X11Error> {
    conn.configure_window(
        window,
        &xproto::ConfigureWindowAux::new()
            .x(0)
            .y(0)
            .width(u32::from(width))
            .height(u32::from(height))
            .border_width(0),
    )?;
    conn.flush()?;
    Ok(())
}
