//! Which video driver an Xorg display uses: the NVIDIA driver on the pod's GPU, or the dummy
//! driver (no GPU: Mesa's GLX on the CPU, which is how CI tests the Xorg path).
//!
//! `auto` picks `nvidia` when both halves of the driver are there: the kernel driver
//! (`/proc/driver/nvidia/version`) and its X driver module (`nvidia_drv.so`). In a pod, the NVIDIA
//! container toolkit mounts the module (and `libglxserver_nvidia.so`) under
//! `/usr/lib/x86_64-linux-gnu/nvidia/xorg` when the pod asks for the `display` and `graphics`
//! driver capabilities, and shows only the pod's GPUs under `/proc/driver/nvidia/gpus/`.

use std::path::PathBuf;

/// `--x11-driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverFlag {
    /// `nvidia` when the NVIDIA kernel driver and X driver module are present, else `dummy`.
    Auto,
    Dummy,
    Nvidia,
}

/// The driver an Xorg display is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XorgDriver {
    /// xf86-video-dummy: a framebuffer in memory, RandR 1.2 with one output (`DUMMY0`).
    Dummy,
    /// The NVIDIA driver, headless (no display device), on one of `gpus`.
    Nvidia {
        /// The pod's GPUs as Xorg `BusID`s, slot N on `gpus[N % len]`.
        gpus: Vec<String>,
        /// The folder holding `nvidia_drv.so`, put first in Xorg's module path.
        module_dir: PathBuf,
    },
}

impl XorgDriver {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dummy => "dummy",
            Self::Nvidia { .. } => "nvidia",
        }
    }
}

/// Where the driver's parts are looked for (the real paths in [`Probe::system`]; tests point
/// it at a folder of their own).
#[derive(Debug, Clone)]
pub struct Probe {
    /// `/proc/driver/nvidia`: `version` exists when the kernel driver is loaded; `gpus/` has one
    /// folder per visible GPU, named by its PCI address (`0000:17:00.0`).
    pub proc_nvidia: PathBuf,
    /// Folders that may hold `nvidia_drv.so`, first match wins.
    pub module_dirs: Vec<PathBuf>,
}

impl Probe {
    pub fn system() -> Self {
        Self {
            proc_nvidia: PathBuf::from("/proc/driver/nvidia"),
            module_dirs: [
                // The container toolkit's `display` capability, and Debian's nvidia-driver.
                "/usr/lib/x86_64-linux-gnu/nvidia/xorg",
                "/usr/lib/aarch64-linux-gnu/nvidia/xorg",
                "/usr/lib/xorg/modules/drivers",
                "/usr/lib64/xorg/modules/drivers",
            ]
            .map(PathBuf::from)
            .into(),
        }
    }

    /// The driver `flag` asks for on this machine. `nvidia` asked for but missing is an error
    /// naming the missing part; `auto` falls back to `dummy` (and says why in the log).
    pub fn resolve(&self, flag: DriverFlag) -> Result<XorgDriver, String> {
        match (flag, self.nvidia()) {
            (DriverFlag::Dummy, _) => Ok(XorgDriver::Dummy),
            (DriverFlag::Nvidia | DriverFlag::Auto, Ok(driver)) => Ok(driver),
            (DriverFlag::Nvidia, Err(missing)) => Err(format!("--x11-driver nvidia: {missing}")),
            (DriverFlag::Auto, Err(missing)) => {
                tracing::info!(%missing, "x11: Xorg uses the dummy driver (no NVIDIA driver)");
                Ok(XorgDriver::Dummy)
            }
        }
    }

    fn nvidia(&self) -> Result<XorgDriver, String> {
        if !self.proc_nvidia.join("version").exists() {
            return Err(format!(
                "the NVIDIA kernel driver is not loaded ({} is missing)",
                self.proc_nvidia.join("version").display()
            ));
        }
        let Some(module_dir) = self
            .module_dirs
            .iter()
            .find(|dir| dir.join("nvidia_drv.so").exists())
        else {
            return Err(format!(
                "no NVIDIA X driver (nvidia_drv.so) in {}; in a pod, ask for the `display` and \
                 `graphics` driver capabilities (NVIDIA_DRIVER_CAPABILITIES)",
                join_paths(&self.module_dirs)
            ));
        };
        let gpus_dir = self.proc_nvidia.join("gpus");
        let mut addresses: Vec<String> = std::fs::read_dir(&gpus_dir)
            .map_err(|e| format!("cannot list the GPUs in {}: {e}", gpus_dir.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        addresses.sort();
        let gpus = addresses
            .iter()
            .map(|a| xorg_bus_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        if gpus.is_empty() {
            return Err(format!("no GPU is visible in {}", gpus_dir.display()));
        }
        Ok(XorgDriver::Nvidia {
            gpus,
            module_dir: module_dir.clone(),
        })
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A PCI address as the kernel and nvidia-smi write it (`DDDD:BB:DD.F`, hexadecimal) turned into
/// Xorg's `BusID` (`PCI:BUS@DOMAIN:DEVICE:FUNCTION`, decimal; the domain is left out when 0, as
/// `nvidia-xconfig` writes it). Source: xorg.conf(5), "BusID".
pub fn xorg_bus_id(address: &str) -> Result<String, String> {
    let bad = || format!("{address:?} is not a PCI address (DDDD:BB:DD.F)");
    let (domain, rest) = address.split_once(':').ok_or_else(bad)?;
    let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
    let (device, function) = rest.split_once('.').ok_or_else(bad)?;
    let hex = |s: &str| u32::from_str_radix(s, 16).map_err(|_| bad());
    let (domain, bus, device, function) = (hex(domain)?, hex(bus)?, hex(device)?, hex(function)?);
    Ok(if domain == 0 {
        format!("PCI:{bus}:{device}:{function}")
    } else {
        format!("PCI:{bus}@{domain}:{device}:{function}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_become_xorg_bus_ids() {
        assert_eq!(xorg_bus_id("0000:17:00.0").as_deref(), Ok("PCI:23:0:0"));
        assert_eq!(
            xorg_bus_id("00000000:c1:1f.7").as_deref(),
            Ok("PCI:193:31:7")
        );
        assert_eq!(xorg_bus_id("0001:02:03.1").as_deref(), Ok("PCI:2@1:3:1"));
        assert!(xorg_bus_id("17:00.0").is_err());
        assert!(xorg_bus_id("0000:zz:00.0").is_err());
    }

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree(name: &str) -> (Tree, Probe) {
        let root =
            std::env::temp_dir().join(format!("openspace-driver-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc")).expect("temp dir");
        let probe = Probe {
            proc_nvidia: root.join("proc"),
            module_dirs: vec![root.join("toolkit"), root.join("debian")],
        };
        (Tree(root), probe)
    }

    #[test]
    fn auto_takes_nvidia_only_with_kernel_driver_module_and_a_gpu() {
        let (t, probe) = tree("auto");
        // Nothing: dummy, and `nvidia` says what is missing.
        assert_eq!(probe.resolve(DriverFlag::Auto), Ok(XorgDriver::Dummy));
        let err = probe.resolve(DriverFlag::Nvidia).unwrap_err();
        assert!(err.contains("kernel driver is not loaded"), "{err}");
        // The kernel driver alone (a compute-only pod): still dummy.
        std::fs::write(t.0.join("proc/version"), "NVRM version: 550").expect("write");
        std::fs::create_dir_all(t.0.join("proc/gpus/0000:17:00.0")).expect("mkdir");
        std::fs::create_dir_all(t.0.join("proc/gpus/0000:3b:00.0")).expect("mkdir");
        assert_eq!(probe.resolve(DriverFlag::Auto), Ok(XorgDriver::Dummy));
        let err = probe.resolve(DriverFlag::Nvidia).unwrap_err();
        assert!(err.contains("NVIDIA_DRIVER_CAPABILITIES"), "{err}");
        // With the X module (where the toolkit mounts it): nvidia on the visible GPUs, in order.
        std::fs::create_dir_all(t.0.join("debian")).expect("mkdir");
        std::fs::write(t.0.join("debian/nvidia_drv.so"), "").expect("write");
        let expected = XorgDriver::Nvidia {
            gpus: vec!["PCI:23:0:0".into(), "PCI:59:0:0".into()],
            module_dir: t.0.join("debian"),
        };
        assert_eq!(probe.resolve(DriverFlag::Auto), Ok(expected.clone()));
        assert_eq!(probe.resolve(DriverFlag::Nvidia), Ok(expected));
        assert_eq!(probe.resolve(DriverFlag::Dummy), Ok(XorgDriver::Dummy));
    }
}
