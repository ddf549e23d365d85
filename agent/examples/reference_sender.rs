//! Benchmark only, not shipped: the seed's streamer in software, the reference that
//! `e2e/browser/bench/reference.mjs` measures the agent against. One GStreamer pipeline:
//!
//! `ximagesrc (DISPLAY) ! video/x-raw,framerate=FPS ! videoconvert ! x264enc tune=zerolatency
//! speed-preset=ultrafast bitrate=KBPS key-int-max=infinite ! rtph264pay ! webrtcbin`
//!
//! Signaling is as small as it gets: once ICE gathering is complete it prints the offer (with its
//! loopback candidates) as one JSON line `{"type":"offer","sdp":...}` on stdout and reads the
//! answer as one JSON line `{"type":"answer","sdp":...}` from stdin; it streams until stdin
//! closes. Only candidates of ADDRESS are offered and accepted: libnice never gathers loopback
//! when another interface exists, so the benchmark runs in a network namespace of its own with
//! one dummy interface (198.18.0.0/15) and everything stays on this machine.
//!
//! `cargo run --example reference_sender --features reference-sender -- :DISPLAY WIDTH HEIGHT FPS KBPS ADDRESS`

use std::io::{BufRead, Write};
use std::sync::mpsc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

/// x264's "infinite" keyframe interval (X264_KEYINT_MAX_INFINITE): keyframes only on request,
/// as the seed's encoder ran.
const KEYINT_INFINITE: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("usage: reference_sender :DISPLAY WIDTH HEIGHT FPS KBPS ADDRESS")]
    Usage,
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("signaling: {0}")]
    Signaling(String),
    #[error("stdin/stdout: {0}")]
    Io(#[from] std::io::Error),
}

impl From<gst::glib::Error> for Error {
    fn from(e: gst::glib::Error) -> Self {
        Error::Gst(e.to_string())
    }
}

impl From<gst::glib::BoolError> for Error {
    fn from(e: gst::glib::BoolError) -> Self {
        Error::Gst(e.to_string())
    }
}

struct Args {
    display: String,
    width: u32,
    height: u32,
    fps: u32,
    kbps: u32,
    /// The only address whose ICE candidates are used.
    address: String,
}

fn parse_args() -> Result<Args, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [display, width, height, fps, kbps, address] = args.as_slice() else {
        return Err(Error::Usage);
    };
    let number = |s: &String| s.parse::<u32>().map_err(|_| Error::Usage);
    Ok(Args {
        display: display.clone(),
        width: number(width)?,
        height: number(height)?,
        fps: number(fps)?,
        kbps: number(kbps)?,
        address: address.clone(),
    })
}

/// Keeps only the SDP's UDP candidates of `address` (see the module comment).
fn only_address(sdp: &str, address: &str) -> String {
    let address = format!(" {address} ");
    sdp.split("\r\n")
        .filter(|line| {
            !line.starts_with("a=candidate:")
                || (line.contains(&address) && line.to_ascii_lowercase().contains(" udp "))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn main() {
    if let Err(e) = run() {
        eprintln!("reference_sender: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let args = parse_args()?;
    gst::init()?;
    let pipeline = pipeline(&args)?;
    let result = stream(&pipeline, &args);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn pipeline(args: &Args) -> Result<gst::Pipeline, Error> {
    let description = format!(
        "ximagesrc display-name={display} use-damage=false show-pointer=false \
         ! video/x-raw,framerate={fps}/1,width={width},height={height} \
         ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={KEYINT_INFINITE} \
         ! video/x-h264,profile=constrained-baseline \
         ! rtph264pay config-interval=-1 \
         ! application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 \
         ! webrtcbin name=send bundle-policy=max-bundle",
        display = args.display,
        fps = args.fps,
        width = args.width,
        height = args.height,
        kbps = args.kbps,
    );
    gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Gst("not a pipeline".into()))
}

/// Plays the pipeline, offers, takes the answer and streams until stdin closes.
fn stream(pipeline: &gst::Pipeline, args: &Args) -> Result<(), Error> {
    let webrtc = pipeline
        .by_name("send")
        .ok_or_else(|| Error::Gst("no webrtcbin".into()))?;

    // Errors on the bus end the program: the benchmark sees the exit.
    let bus = pipeline.bus().ok_or_else(|| Error::Gst("no bus".into()))?;
    std::thread::spawn(move || {
        for message in bus.iter_timed(gst::ClockTime::NONE) {
            if let gst::MessageView::Error(e) = message.view() {
                eprintln!(
                    "reference_sender: pipeline error: {} ({:?})",
                    e.error(),
                    e.debug()
                );
                std::process::exit(2);
            }
        }
    });

    let (gathered_tx, gathered_rx) = mpsc::channel::<()>();
    webrtc.connect_notify(Some("ice-gathering-state"), move |webrtc, _| {
        let state = webrtc.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
        if state == gst_webrtc::WebRTCICEGatheringState::Complete {
            let _ = gathered_tx.send(());
        }
    });

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::Gst(format!("cannot play: {e}")))?;
    // The sink pad exists now (linked by parse::launch): send only.
    if let Some(transceiver) =
        webrtc.emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&0i32])
    {
        transceiver.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
    }

    let (offer_tx, offer_rx) = mpsc::channel();
    let promise = gst::Promise::with_change_func(move |reply| {
        let offer = match reply {
            Ok(Some(reply)) => reply
                .get::<gst_webrtc::WebRTCSessionDescription>("offer")
                .map_err(|e| e.to_string()),
            other => Err(format!("no offer: {other:?}")),
        };
        let _ = offer_tx.send(offer);
    });
    webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    let offer = offer_rx
        .recv()
        .map_err(|_| Error::Signaling("create-offer never answered".into()))?
        .map_err(Error::Signaling)?;
    webrtc.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
    gathered_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .map_err(|_| Error::Signaling("ICE gathering did not complete in 10 s".into()))?;
    let local = webrtc
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| Error::Signaling("no local description".into()))?;
    let sdp = only_address(&local.sdp().as_text()?, &args.address);
    if !sdp.contains("a=candidate:") {
        return Err(Error::Signaling(format!(
            "libnice gathered no candidate on {} (it never gathers loopback)",
            args.address
        )));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}",
        serde_json::json!({ "type": "offer", "sdp": sdp })
    )?;
    stdout.flush()?;

    let mut lines = std::io::stdin().lock().lines();
    let line = lines
        .next()
        .ok_or_else(|| Error::Signaling("stdin closed before the answer".into()))??;
    let message: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| Error::Signaling(e.to_string()))?;
    let text = message
        .get("sdp")
        .and_then(|v| v.as_str())
        .filter(|_| message.get("type").and_then(|v| v.as_str()) == Some("answer"))
        .ok_or_else(|| Error::Signaling("expected {\"type\":\"answer\",\"sdp\":...}".into()))?;
    let text = only_address(text, &args.address);
    let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes())
        .map_err(|e| Error::Signaling(format!("bad answer SDP: {e}")))?;
    let answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, sdp);
    webrtc.emit_by_name::<()>("set-remote-description", &[&answer, &None::<gst::Promise>]);
    // The answer's candidates, given to ICE one by one as a trickling peer would.
    for candidate in text.split("\r\n").filter(|l| l.starts_with("a=candidate:")) {
        webrtc.emit_by_name::<()>("add-ice-candidate", &[&0u32, &&candidate[2..]]);
    }

    // Streams until the benchmark closes stdin.
    for line in lines {
        line?;
    }
    Ok(())
}
