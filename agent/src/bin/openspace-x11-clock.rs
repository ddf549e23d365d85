//! A test program for x11 instances: one window showing the built-in renderer's machine-readable
//! stamp (a frame counter and the wall clock in ms; layout in media/renderer/stamp.rs), redrawn
//! at 120 Hz. Streamed as an x11 instance, the stamp read back in the browser measures
//! glass-to-glass latency through the whole X path: program -> X server -> capture -> encoder ->
//! WebRTC -> decoder. Runs until killed.
//!
//! `openspace-x11-clock --strip`: only the stamp, in a small override-redirect window at the top
//! left that raises itself above the others on every redraw, so that the stamp can be read while
//! another program (Stellarium in `e2e/browser/bench/stellarium.mjs`) fills the screen; kiosk
//! placement leaves override-redirect windows alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openspace_agent::media::renderer::{STAMP_BITS, STAMP_BLOCK};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, StackMode,
    WindowClass,
};

/// The stamp's geometry, as the browser reads it (media/renderer/stamp.rs).
const BLOCK: u16 = STAMP_BLOCK as u16;
const BITS: u16 = STAMP_BITS as u16;
const REDRAW: Duration = Duration::from_micros(8_333);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (conn, screen_number) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_number];
    let strip = std::env::args().any(|a| a == "--strip");
    let (width, height) = if strip {
        (BITS * BLOCK, 3 * BLOCK)
    } else {
        (screen.width_in_pixels, screen.height_in_pixels)
    };
    let window = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        window,
        screen.root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(screen.black_pixel)
            .override_redirect(u32::from(strip)),
    )?;
    conn.map_window(window)?;
    let white = conn.generate_id()?;
    conn.create_gc(
        white,
        window,
        &CreateGCAux::new().foreground(screen.white_pixel),
    )?;
    let black = conn.generate_id()?;
    conn.create_gc(
        black,
        window,
        &CreateGCAux::new().foreground(screen.black_pixel),
    )?;
    conn.flush()?;

    let mut frame: u32 = 0;
    loop {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u32;
        let (mut ones, mut zeros) = (Vec::new(), Vec::new());
        for (row, value) in [(0u16, frame), (1, now_ms), (2, 0)] {
            for bit in 0..BITS {
                let rectangle = Rectangle {
                    x: (bit * BLOCK) as i16,
                    y: (row * BLOCK) as i16,
                    width: BLOCK,
                    height: BLOCK,
                };
                if value >> (BITS - 1 - bit) & 1 == 1 {
                    ones.push(rectangle);
                } else {
                    zeros.push(rectangle);
                }
            }
        }
        if strip {
            conn.configure_window(
                window,
                &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
            )?;
        }
        conn.poly_fill_rectangle(window, white, &ones)?;
        conn.poly_fill_rectangle(window, black, &zeros)?;
        conn.flush()?;
        frame = frame.wrapping_add(1) & ((1 << STAMP_BITS) - 1);
        std::thread::sleep(REDRAW);
    }
}
