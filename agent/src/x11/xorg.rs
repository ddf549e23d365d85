//! Xorg, the X server that drives a real GPU: one per slot at `:BASE+id`, with a configuration
//! the agent writes itself (no file under /etc is read or written), its own cookie, no VT
//! switching and no input devices (viewers' input arrives through XTEST).
//!
//! Why one Xorg per slot rather than one Xorg with a screen per slot: the NVIDIA driver makes one
//! X screen per GPU when no display device is attached (headless: `UseDisplayDevice "None"`), and
//! RandR sizes, cookies and crashes are per server. Several Xorg servers on one GPU are supported
//! by the driver (each opens the GPU by its BusID; NVIDIA's README, "Configuring Multiple X
//! Servers on One Card"), so each slot is isolated from the others as with Xvfb.
//!
//! What RESOLUTION can do (see `screen.rs`): the dummy driver (xf86-video-dummy 0.4) has one
//! RandR 1.2 output, `DUMMY0`, that takes new modes of any size up to the `Virtual` size. The
//! NVIDIA driver without a display device has no RandR output: the screen (root window) itself is
//! resized within `Virtual`, as `xrandr --fb` does.

use std::path::Path;

use super::display::Launch;
use super::driver::XorgDriver;

/// The generated xorg.conf for a display of at most `max_width` x `max_height`, slot `id`.
pub fn config(driver: &XorgDriver, id: u32, (max_width, max_height): (u32, u32)) -> String {
    let mut conf = String::from(
        r#"# Written by openspace-agent for one instance slot; removed when its X server stops.
Section "ServerFlags"
    Option "AutoAddDevices" "false"
    Option "AutoEnableDevices" "false"
    Option "AutoAddGPU" "false"
    Option "DontVTSwitch" "true"
    Option "DontZap" "true"
    Option "BlankTime" "0"
    Option "StandbyTime" "0"
    Option "SuspendTime" "0"
    Option "OffTime" "0"
EndSection
"#,
    );
    match driver {
        XorgDriver::Dummy => {
            // Two framebuffers' worth of the largest screen, in KiB, as the dummy driver wants.
            let video_ram_kib = (u64::from(max_width) * u64::from(max_height) * 4 * 2)
                .div_ceil(1024)
                .max(32 * 1024);
            conf.push_str(&format!(
                r#"Section "Device"
    Identifier "gpu"
    Driver "dummy"
    VideoRam {video_ram_kib}
EndSection
Section "Monitor"
    Identifier "monitor"
    HorizSync 5.0-1000.0
    VertRefresh 5.0-200.0
EndSection
"#
            ));
        }
        XorgDriver::Nvidia { gpus, module_dir } => {
            let bus_id = &gpus[id as usize % gpus.len().max(1)];
            conf.push_str(&format!(
                r#"Section "Files"
    ModulePath "{modules},/usr/lib/xorg/modules"
EndSection
Section "Device"
    Identifier "gpu"
    Driver "nvidia"
    BusID "{bus_id}"
    Option "AllowEmptyInitialConfiguration" "true"
    Option "UseDisplayDevice" "None"
    Option "HardDPMS" "false"
EndSection
Section "Monitor"
    Identifier "monitor"
EndSection
"#,
                modules = module_dir.display()
            ));
        }
    }
    conf.push_str(&format!(
        r#"Section "Screen"
    Identifier "screen"
    Device "gpu"
    Monitor "monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Virtual {max_width} {max_height}
    EndSubSection
EndSection
Section "ServerLayout"
    Identifier "layout"
    Screen "screen"
EndSection
"#
    ));
    conf
}

/// `Xorg :N` with the generated configuration (written next to the cookie), an empty
/// configuration folder instead of /etc/X11/xorg.conf.d, its log beside them, our cookie, no TCP,
/// no reset when the last client leaves, and no VT of its own (`-novtswitch -sharevts`: it runs
/// in a pod, without a console, as any user).
pub fn launch(
    number: u32,
    id: u32,
    max: (u32, u32),
    driver: &XorgDriver,
    auth_file: &Path,
) -> Result<Launch, String> {
    let dir = std::env::temp_dir();
    let config_file = dir.join(format!("openspace-xorg-{number}.conf"));
    let config_dir = dir.join(format!("openspace-xorg-{number}.d"));
    let log_file = dir.join(format!("openspace-xorg-{number}.log"));
    std::fs::write(&config_file, config(driver, id, max))
        .map_err(|e| format!("cannot write {}: {e}", config_file.display()))?;
    if let Err(e) = std::fs::create_dir_all(&config_dir) {
        let _ = std::fs::remove_file(&config_file);
        return Err(format!("cannot make {}: {e}", config_dir.display()));
    }
    let path = |p: &Path| p.display().to_string();
    let argv = vec![
        "Xorg".to_owned(),
        format!(":{number}"),
        "-config".into(),
        path(&config_file),
        "-configdir".into(),
        path(&config_dir),
        "-logfile".into(),
        path(&log_file),
        "-auth".into(),
        path(auth_file),
        "-nolisten".into(),
        "tcp".into(),
        "-noreset".into(),
        "-novtswitch".into(),
        "-sharevts".into(),
        "-dpi".into(),
        "96".into(),
    ];
    Ok(Launch {
        program: "Xorg",
        argv,
        files: vec![config_file, config_dir, log_file.clone()],
        log: Some(log_file),
    })
}

/// The error lines (`(EE)`) of an Xorg log, for the failure reason of a server that did not
/// start: "no screens found" says more than "exited with status 1".
pub fn log_errors(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split_once("(EE)"))
        .map(|(_, text)| text.trim().trim_end_matches("(EE)").trim())
        .filter(|text| !text.is_empty() && !text.starts_with("Please also check"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_config_has_room_for_the_largest_screen() {
        let conf = config(&XorgDriver::Dummy, 0, (3840, 2160));
        assert!(conf.contains("Driver \"dummy\""));
        assert!(conf.contains("VideoRam 64800"), "{conf}");
        assert!(conf.contains("Virtual 3840 2160"));
        assert!(conf.contains("\"AutoAddDevices\" \"false\""));
        assert!(!conf.contains("BusID"));
    }

    #[test]
    fn nvidia_config_is_headless_on_the_slots_gpu() {
        let driver = XorgDriver::Nvidia {
            gpus: vec!["PCI:23:0:0".into(), "PCI:59:0:0".into()],
            module_dir: "/usr/lib/x86_64-linux-gnu/nvidia/xorg".into(),
        };
        let conf = config(&driver, 3, (1920, 1080));
        assert!(conf.contains("BusID \"PCI:59:0:0\""), "slot 3 on GPU 3 % 2");
        assert!(conf.contains("\"UseDisplayDevice\" \"None\""));
        assert!(conf.contains(
            "ModulePath \"/usr/lib/x86_64-linux-gnu/nvidia/xorg,/usr/lib/xorg/modules\""
        ));
        assert!(conf.contains("Virtual 1920 1080"));
    }

    #[test]
    fn log_errors_keep_what_went_wrong() {
        let log = "[  1.0] (II) Loading sub module\n[  1.1] (EE) \n[  1.2] (EE) no screens found(EE) \n\
                   (EE) Please also check the log file at \"/tmp/x.log\" for additional information.\n";
        assert_eq!(log_errors(log), vec!["no screens found".to_owned()]);
    }
}
