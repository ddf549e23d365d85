//! x11 capture benchmark: per frame of a real X screen, the MIT-SHM capture of the root
//! window, the BGRX -> I420 conversion, the H.264 and VP8 encodes, and the whole per-frame path,
//! on each X server the agent starts: Xvfb, and Xorg with the dummy driver (configured by the
//! agent's own `x11::xorg::launch`).
//!
//! `cargo bench -p openspace-agent --bench x11_capture`
//! (`OPENSPACE_BENCH_X11_SERVERS=xvfb` or `=xorg` for one of them; default both)
//!
//! Needs `Xvfb`, `Xorg` with the dummy driver and `glxgears` (mesa-utils) on the PATH. Two scenes
//! per size:
//! - `scene`: the built-in renderer's picture (the one `benches/media.rs` encodes), turned to
//!   BGRX and put on the root window with `PutImage` before each frame; that drawing is not timed
//!   and nothing else draws on the display while the frame is timed.
//! - `glxgears`: `glxgears` fullscreen (llvmpipe, `vblank_mode=0`, so it draws as fast as it can)
//!   on the same display while the frames are timed; it competes for the CPU, as a streamed
//!   program would. Its CPU use is printed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openspace_agent::media::encoder::{software_encoder, Codec, EncoderSettings, VideoEncoder};
use openspace_agent::media::frame::I420Frame;
use openspace_agent::media::pipeline::FrameSource;
use openspace_agent::media::renderer::Renderer;
use openspace_agent::x11::auth::{display_in_use, Cookie};
use openspace_agent::x11::capture::Capturer;
use openspace_agent::x11::convert::bgrx_to_i420;
use openspace_agent::x11::driver::XorgDriver;
use openspace_agent::x11::screen;
use openspace_agent::x11::source::X11Source;
use openspace_agent::x11::{xorg, xvfb};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat};
use x11rb::rust_connection::RustConnection;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

const FRAMES: usize = 300;
const WARM_UP: usize = 30;
const SIZES: [(u16, u16); 2] = [(1920, 1080), (1280, 720)];
/// The agent's defaults (`--bitrate-kbps 3000 --fps 30 --encoder-threads 2`).
const SETTINGS: EncoderSettings = EncoderSettings {
    bitrate_bps: 3_000_000,
    fps: 30.0,
    threads: 2,
};
/// /proc/PID/stat counts CPU time in USER_HZ, 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A child process ended and reaped when dropped (also when the benchmark panics): SIGTERM
/// first, so that Xvfb removes its socket and lock file, SIGKILL if it is still there after 5 s.
struct Reaped {
    child: Child,
    files: Vec<PathBuf>,
}

impl Reaped {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for file in &self.files {
            if std::fs::remove_file(file).is_err() {
                let _ = std::fs::remove_dir(file);
            }
        }
    }
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

fn free_display() -> u32 {
    (600..1000)
        .find(|&n| !display_in_use(n))
        .expect("a free display number between :600 and :999")
}

/// One X server of the bench's own, as the agent starts them.
struct Xvfb {
    /// "xvfb" or "xorg".
    server: &'static str,
    number: u32,
    cookie: Cookie,
    auth_file: PathBuf,
    process: Reaped,
}

fn start_server(server: &'static str, width: u16, height: u16) -> Xvfb {
    let number = free_display();
    let cookie = Cookie::random();
    let auth_file = std::env::temp_dir().join(format!("openspace-bench-x11-{number}.xauth"));
    cookie.write_file(&auth_file, number).expect("auth file");
    let (argv, files) = match server {
        "xvfb" => {
            let launch = xvfb::launch(number, (width.into(), height.into()), &auth_file);
            (launch.argv, launch.files)
        }
        _ => {
            let size = (width.into(), height.into());
            let launch = xorg::launch(number, 0, size, &XorgDriver::Dummy, &auth_file)
                .expect("Xorg configuration");
            (launch.argv, launch.files)
        }
    };
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{server} starts (is it installed?): {e}"));
    let mut process = Reaped {
        child,
        files: [vec![auth_file.clone()], files].concat(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let conn = loop {
        if let Ok(conn) = cookie.connect(number) {
            break conn;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{server} :{number} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{server} :{number} never answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // The agent sets the START's size through RandR (Xorg's dummy starts at a mode of its own).
    let root = conn.setup().roots[0].root;
    screen::set_size(&conn, root, width, height).expect("RandR sets the size");
    Xvfb {
        server,
        number,
        cookie,
        auth_file,
        process,
    }
}

/// Draws the built-in renderer's next picture on the root window (not timed).
struct Painter {
    renderer: Renderer,
    picture: I420Frame,
    bgrx: Vec<u8>,
    gc: xproto::Gcontext,
    rows_per_request: u16,
}

impl Painter {
    fn new(conn: &RustConnection, root: xproto::Window, width: u16, height: u16) -> Self {
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, root, &xproto::CreateGCAux::new())
            .expect("create GC");
        let row = usize::from(width) * 4;
        let rows = (conn.maximum_request_bytes() - 64) / row;
        Self {
            renderer: Renderer::new(width.into(), height.into()),
            picture: I420Frame::new(width.into(), height.into()),
            bgrx: vec![0; row * usize::from(height)],
            gc,
            rows_per_request: rows.clamp(1, usize::from(height)) as u16,
        }
    }

    fn paint(&mut self, conn: &RustConnection, root: xproto::Window, i: usize) {
        self.renderer.camera_mut().orbit(0.01, 0.002);
        self.renderer.render(i as f64 / 30.0, &mut self.picture);
        let (w, h) = (self.picture.width, self.picture.height);
        let cw = self.picture.chroma_width();
        let image = YuvPlanarImage {
            y_plane: self.picture.y(),
            y_stride: w,
            u_plane: self.picture.u(),
            u_stride: cw,
            v_plane: self.picture.v(),
            v_stride: cw,
            width: w,
            height: h,
        };
        yuv::yuv420_to_bgra(
            &image,
            &mut self.bgrx,
            w * 4,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
        )
        .expect("I420 -> BGRX");
        let row = w as usize * 4;
        let mut y = 0u16;
        while u32::from(y) < h {
            let rows = self.rows_per_request.min(h as u16 - y);
            let start = usize::from(y) * row;
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                root,
                self.gc,
                w as u16,
                rows,
                0,
                y as i16,
                0,
                24,
                &self.bgrx[start..start + usize::from(rows) * row],
            )
            .expect("PutImage");
            y += rows;
        }
        // Wait until the server has drawn it all.
        conn.get_input_focus()
            .expect("request")
            .reply()
            .expect("round trip");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scene {
    Painted,
    Glxgears,
}

impl Scene {
    fn name(self) -> &'static str {
        match self {
            Self::Painted => "scene",
            Self::Glxgears => "glxgears",
        }
    }
}

/// The sorted samples of one measurement.
struct Samples(Vec<Duration>);

impl Samples {
    fn p50(&self) -> Duration {
        percentile(&self.0, 0.5)
    }
    fn p99(&self) -> Duration {
        percentile(&self.0, 0.99)
    }
}

const ROWS: [&str; 9] = [
    "capture: MIT-SHM GetImage of the root window (round trip; the server copies into shared memory)",
    "convert: `bgrx_to_i420` of that buffer",
    "`Capturer::grab` (capture + convert, as the agent calls it)",
    "capture without MIT-SHM: plain GetImage through the socket (for comparison; no conversion)",
    "encode H.264 (openh264)",
    "encode VP8 (libvpx)",
    "encode VP8 (libvpx) with 1 thread instead of 2 (not the default; for comparison)",
    "**total H.264**: `X11Source::next_frame` (pending events + grab) + H.264 encode",
    "**total VP8**: `X11Source::next_frame` + VP8 encode",
];

struct Run {
    rows: Vec<Samples>,
    uses_shm: bool,
    /// Captured frames that differed from the frame before.
    distinct: usize,
    /// Produced bitrate at 30 fps: H.264, VP8, VP8 with 1 thread.
    mbps: [f64; 3],
    /// glxgears' CPU use (cores) while the frames were timed.
    app_cores: Option<f64>,
    /// The X server's CPU use (cores) while the frames were timed (includes the untimed drawing).
    server_cores: f64,
}

fn measure(xvfb: &Xvfb, width: u16, height: u16, scene: Scene) -> Run {
    let conn = xvfb.cookie.connect(xvfb.number).expect("connect");
    let root = conn.setup().roots[0].root;
    let (screen_w, screen_h) = {
        let g = conn
            .get_geometry(root)
            .expect("request")
            .reply()
            .expect("geometry");
        (g.width, g.height)
    };
    assert_eq!((screen_w, screen_h), (width, height), "screen size");

    let app = (scene == Scene::Glxgears).then(|| {
        let child = Command::new("glxgears")
            .args(["-geometry", &format!("{width}x{height}+0+0")])
            .env("DISPLAY", format!(":{}", xvfb.number))
            .env("XAUTHORITY", &xvfb.auth_file)
            .env("vblank_mode", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("glxgears starts (mesa-utils installed?)");
        Reaped {
            child,
            files: Vec::new(),
        }
    });
    if app.is_some() {
        // Until its window is mapped and drawing.
        std::thread::sleep(Duration::from_secs(2));
    }
    let mut painter = (scene == Scene::Painted).then(|| Painter::new(&conn, root, width, height));

    let mut capturer = Capturer::new(&conn, 0).expect("capturer");
    let uses_shm = capturer.uses_shm();
    let source_conn = xvfb.cookie.connect(xvfb.number).expect("connect");
    let mut source = X11Source::new(source_conn, 0, Arc::new(Mutex::new(None))).expect("source");
    let len = usize::from(width) * usize::from(height) * 4;
    let stride = u32::from(width) * 4;
    // A second capturer, timed in its two parts (capture, then conversion).
    let mut parts = Capturer::new(&conn, 0).expect("capturer");
    let one_thread = EncoderSettings {
        threads: 1,
        ..SETTINGS
    };
    let mut encoders: Vec<Box<dyn VideoEncoder>> = [
        (Codec::H264, SETTINGS),
        (Codec::Vp8, SETTINGS),
        (Codec::Vp8, one_thread),
    ]
    .into_iter()
    .map(|(c, s)| software_encoder(c, s).expect("encoder"))
    .collect();
    let mut frame = I420Frame::new(width.into(), height.into());
    let mut converted = I420Frame::new(width.into(), height.into());
    let mut grabbed = I420Frame::new(width.into(), height.into());

    let mut rows: Vec<Vec<Duration>> = vec![Vec::with_capacity(FRAMES); ROWS.len()];
    let mut bytes = [0usize; 3];
    let mut distinct = 0;
    let mut previous: Vec<u8> = Vec::new();
    let mut cpu_start = (0.0, 0.0);
    let mut wall_start = Instant::now();
    for i in 0..WARM_UP + FRAMES {
        let measured = i >= WARM_UP;
        if i == WARM_UP {
            cpu_start = (
                app.as_ref().map_or(0.0, |a| cpu_seconds(a.pid())),
                cpu_seconds(xvfb.process.pid()),
            );
            wall_start = Instant::now();
        }
        if let Some(painter) = painter.as_mut() {
            painter.paint(&conn, root, i);
        }

        // The agent's per-frame source call, first, as the pipeline makes it.
        let t = Instant::now();
        source.next_frame(&mut frame, i as u32, 0);
        let source_time = t.elapsed();

        // The same, in parts.
        let t = Instant::now();
        let pixels = parts.capture(&conn, width, height).expect("capture");
        let capture = t.elapsed();
        let t = Instant::now();
        bgrx_to_i420(&pixels, stride, width.into(), height.into(), &mut converted)
            .expect("convert");
        let convert = t.elapsed();
        drop(pixels);
        let t = Instant::now();
        capturer
            .grab(&conn, width, height, &mut grabbed)
            .expect("grab");
        let grab = t.elapsed();
        let t = Instant::now();
        let plain = conn
            .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, width, height, !0)
            .expect("request")
            .reply()
            .expect("GetImage");
        let plain_time = t.elapsed();
        assert_eq!(plain.data.len(), len);
        drop(plain);

        let mut encode = [Duration::ZERO; 3];
        for (k, encoder) in encoders.iter_mut().enumerate() {
            let t = Instant::now();
            let out = encoder.encode(&frame, false).expect("encode");
            encode[k] = t.elapsed();
            if measured {
                bytes[k] += out.map_or(0, |o| o.data.len());
            }
        }

        if measured {
            for (row, sample) in rows.iter_mut().zip([
                capture,
                convert,
                grab,
                plain_time,
                encode[0],
                encode[1],
                encode[2],
                source_time + encode[0],
                source_time + encode[1],
            ]) {
                row.push(sample);
            }
            if frame.y() != previous.as_slice() {
                distinct += 1;
            }
        }
        previous.clear();
        previous.extend_from_slice(frame.y());
    }
    let wall = wall_start.elapsed().as_secs_f64();
    let app_cores = app
        .as_ref()
        .map(|a| (cpu_seconds(a.pid()) - cpu_start.0) / wall);
    let server_cores = (cpu_seconds(xvfb.process.pid()) - cpu_start.1) / wall;

    // The picture was really there: not a flat screen.
    let (lo, hi) = frame
        .y()
        .iter()
        .fold((u8::MAX, u8::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    assert!(hi > lo + 32, "the captured screen is flat ({lo}..{hi})");

    drop(source);
    capturer.close(&conn);
    parts.close(&conn);
    drop(app);
    Run {
        rows: rows
            .into_iter()
            .map(|mut r| {
                r.sort();
                Samples(r)
            })
            .collect(),
        uses_shm,
        distinct,
        mbps: bytes.map(|b| b as f64 * 8.0 * 30.0 / FRAMES as f64 / 1e6),
        app_cores,
        server_cores,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let mut notes = vec![format!("load average at the start: {}", load_average())];
    println!("| benchmark | scene p50 | scene p99 | glxgears p50 | glxgears p99 |");
    println!("|---|---|---|---|---|");
    let servers: Vec<&'static str> = std::env::var("OPENSPACE_BENCH_X11_SERVERS")
        .unwrap_or_else(|_| "xvfb,xorg".into())
        .split(',')
        .filter_map(|s| match s.trim() {
            "xvfb" => Some("xvfb"),
            "xorg" => Some("xorg"),
            _ => None,
        })
        .collect();
    for server in servers {
        for (width, height) in SIZES {
            let xvfb = start_server(server, width, height);
            let runs =
                [Scene::Painted, Scene::Glxgears].map(|s| (s, measure(&xvfb, width, height, s)));
            for (r, name) in ROWS.iter().enumerate() {
                let cells: Vec<String> = runs
                    .iter()
                    .flat_map(|(_, run)| [ms(run.rows[r].p50()), ms(run.rows[r].p99())])
                    .collect();
                println!(
                    "| {} {width}x{height} {name}, n={FRAMES} | {} |",
                    xvfb.server,
                    cells.join(" | ")
                );
            }
            for (scene, run) in &runs {
                notes.push(format!(
                    "{} {width}x{height} {}: MIT-SHM used: {}; {} of {FRAMES} captured frames differed from the one before; \
                     produced {:.1} Mbit/s H.264, {:.1} Mbit/s VP8 ({:.1} with 1 thread) at 30 fps; X server {:.2} cores{}",
                    xvfb.server,
                    scene.name(),
                    run.uses_shm,
                    run.distinct,
                    run.mbps[0],
                    run.mbps[1],
                    run.mbps[2],
                    run.server_cores,
                    run.app_cores
                        .map_or(String::new(), |c| format!("; glxgears {c:.2} cores")),
                ));
            }
            drop(xvfb);
        }
    }
    notes.push(format!("load average at the end: {}", load_average()));
    println!();
    for note in notes {
        println!("- {note}");
    }
}
