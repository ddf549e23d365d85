//! Xvfb, the virtual X server of CI and of nodes without a GPU: one per slot, its screen at the
//! largest size so that RandR can set any mode up to it (`screen.rs`), software OpenGL (Mesa).

use std::path::Path;

use super::display::Launch;

/// `Xvfb :N` at `max_width` x `max_height` x 24 bits, 96 dpi, with our cookie, no TCP, and no
/// reset when its last client leaves (the program may reconnect).
pub fn launch(number: u32, (max_width, max_height): (u32, u32), auth_file: &Path) -> Launch {
    let argv: Vec<String> = [
        "Xvfb".to_owned(),
        format!(":{number}"),
        "-screen".into(),
        "0".into(),
        format!("{max_width}x{max_height}x24"),
        "-auth".into(),
        auth_file.display().to_string(),
        "-nolisten".into(),
        "tcp".into(),
        "-noreset".into(),
        "-dpi".into(),
        "96".into(),
    ]
    .into();
    Launch {
        program: "Xvfb",
        argv,
        files: Vec::new(),
        log: None,
    }
}
