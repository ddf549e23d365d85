//! RESOLUTION on an X display: RandR, the way `xrandr --newmode/--addmode/--output --mode` does
//! it where the server has an output (Xvfb's `screen`, the dummy driver's `DUMMY0`: both take new
//! modes of any size up to their maximum), and the way `xrandr --fb` does it where it has none
//! (the NVIDIA driver without a display device: the screen itself is resized within `Virtual`).
//! A size the server refuses is an error, never a silent no-op.

use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

use super::X11Error;

/// Screen size in millimetres at 96 dpi, which Xvfb reports too.
fn millimetres(pixels: u16) -> u32 {
    (u32::from(pixels) * 254).div_ceil(960)
}

/// The root window's current size.
pub fn size(conn: &impl Connection, root: xproto::Window) -> Result<(u16, u16), X11Error> {
    let geometry = conn.get_geometry(root)?.reply()?;
    Ok((geometry.width, geometry.height))
}

/// Sets the screen to `width` x `height`: a mode of that size on the first output (created
/// when missing), its CRTC switched to it, the screen resized around it.
pub fn set_size(
    conn: &impl Connection,
    root: xproto::Window,
    width: u16,
    height: u16,
) -> Result<(), X11Error> {
    let (current_w, current_h) = size(conn, root)?;
    if (current_w, current_h) == (width, height) {
        return Ok(());
    }
    let limits = conn.randr_get_screen_size_range(root)?.reply()?;
    if width > limits.max_width || height > limits.max_height {
        return Err(X11Error::Unsupported(format!(
            "{width}x{height} is larger than the display's maximum {}x{}",
            limits.max_width, limits.max_height
        )));
    }
    let resources = conn.randr_get_screen_resources_current(root)?.reply()?;
    let (Some(&output), Some(&crtc)) = (resources.outputs.first(), resources.crtcs.first()) else {
        // No output to set a mode on: the screen alone.
        conn.randr_set_screen_size(root, width, height, millimetres(width), millimetres(height))?
            .check()?;
        return Ok(());
    };
    let mode = match resources
        .modes
        .iter()
        .find(|m| (m.width, m.height) == (width, height))
    {
        Some(mode) => mode.id,
        None => {
            let name = format!("{width}x{height}");
            let info = randr::ModeInfo {
                width,
                height,
                name_len: name.len() as u16,
                ..Default::default()
            };
            conn.randr_create_mode(root, info, name.as_bytes())?
                .reply()?
                .mode
        }
    };
    let output_info = conn
        .randr_get_output_info(output, resources.config_timestamp)?
        .reply()?;
    if !output_info.modes.contains(&mode) {
        conn.randr_add_output_mode(output, mode)?.check()?;
    }
    // The screen must contain the CRTC at every step: grow it first, shrink it last.
    let (grow_w, grow_h) = (width.max(current_w), height.max(current_h));
    if (grow_w, grow_h) != (current_w, current_h) {
        conn.randr_set_screen_size(
            root,
            grow_w,
            grow_h,
            millimetres(grow_w),
            millimetres(grow_h),
        )?
        .check()?;
    }
    conn.randr_set_crtc_config(
        crtc,
        x11rb::CURRENT_TIME,
        resources.config_timestamp,
        0,
        0,
        mode,
        randr::Rotation::ROTATE0,
        &[output],
    )?
    .reply()?;
    if (grow_w, grow_h) != (width, height) {
        conn.randr_set_screen_size(root, width, height, millimetres(width), millimetres(height))?
            .check()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn millimetres_at_96_dpi() {
        assert_eq!(super::millimetres(960), 254);
        assert_eq!(super::millimetres(1920), 508);
    }
}
