//! An x11 instance from start to gone: its display (Xvfb, or one that exists), the capture
//! source and window watcher on it, the program with `DISPLAY` set, readiness (first window,
//! or as `--ready` says), and the teardown in reverse order, whichever way it ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{api_port_free, end, failed_exit, spawn_program, Ending};
use crate::instances::slots::{InstanceKey, InstanceSpec};
use crate::instances::supervisor::Supervisor;
use crate::instances::ReadyCheck;
use crate::media::pipeline::Pipeline;
use crate::metrics::failure;
use crate::x11::display::Display;
use crate::x11::settings::{X11DisplayChoice, X11Settings, XServer};
use crate::x11::source::X11Source;
use crate::x11::windows::WindowWatch;
use crate::x11::{xorg, xvfb};

/// How often the capture is checked for having failed.
const HEALTH_INTERVAL: Duration = Duration::from_millis(250);

pub(super) async fn drive(
    supervisor: &Arc<Supervisor>,
    key: InstanceKey,
    spec: &InstanceSpec,
    stop: &CancellationToken,
    x11: &X11Settings,
) -> Ending {
    let config = supervisor.config();
    let id = key.id;
    let api_port = config.api_port(id);
    if let Err(ending) = api_port_free(config, api_port).await {
        return ending;
    }
    // Already what this kind streams (InstanceConfig::fit at START and RESOLUTION).
    let (width, height) = (spec.resolution.width, spec.resolution.height);

    let mut display = tokio::select! {
        biased;
        _ = stop.cancelled() => return Ending::Stopped,
        started = tokio::time::timeout(config.start_timeout, open_display(id, x11)) => match started {
            Ok(Ok(display)) => display,
            Ok(Err(reason)) => return failed(failure::DISPLAY, reason),
            Err(_) => return failed(failure::START_TIMEOUT, "the X server did not start within the start timeout".into()),
        },
    };

    // The capture source and the window watcher, each with its own connection.
    let connector = display.connector();
    let failure_slot = Arc::new(Mutex::new(None::<String>));
    let kiosk = x11.kiosk;
    let prepared = {
        let failure_slot = Arc::clone(&failure_slot);
        tokio::task::spawn_blocking(move || {
            let (conn, screen) = connector.connect()?;
            let mut source = X11Source::new(conn, screen, failure_slot)?;
            // The first size is set here, so that a server that cannot set it fails the start.
            source.set_size(width, height).map_err(|e| {
                crate::x11::X11Error::Unsupported(format!(
                    "the X server cannot set the screen to {width}x{height}: {e}"
                ))
            })?;
            let (conn, screen) = connector.connect()?;
            let watch = WindowWatch::start(conn, screen, kiosk)?;
            Ok::<_, crate::x11::X11Error>((source, watch))
        })
        .await
    };
    let (source, watch) = match prepared {
        Ok(Ok(parts)) => parts,
        Ok(Err(e)) => {
            display.shut_down(config.stop_grace).await;
            return failed(failure::DISPLAY, format!("cannot use the X display: {e}"));
        }
        Err(e) => {
            display.shut_down(config.stop_grace).await;
            return failed(
                failure::DISPLAY,
                format!("setting up the X display failed: {e}"),
            );
        }
    };

    let spawned = spawn_program(
        &x11.command,
        id,
        api_port,
        config.program_api_tcp_port(id),
        spec,
        (width, height),
        display.env(),
    );
    let (mut program, argv) = match spawned {
        Ok(spawned) => spawned,
        Err(ending) => {
            tokio::task::spawn_blocking(move || watch.stop()).await.ok();
            drop(source);
            display.shut_down(config.stop_grace).await;
            return ending;
        }
    };
    let display_name = display.name();
    tracing::info!(instance = id, pid = program.pid(), display = %display_name, ?argv, "x11 instance spawned");

    let pipeline = Pipeline::start(
        Box::new(source),
        true,
        config.pipeline.clone(),
        supervisor.metrics().clone(),
    );
    supervisor.set_pipeline(key, Some(Arc::clone(&pipeline)));
    let mut mapped = watch.mapped.clone();
    let ready = async {
        match config.ready {
            ReadyCheck::Window => {
                let _ = mapped.wait_for(|m| *m).await;
            }
            other => other.wait(api_port).await,
        }
    };
    let watched = Arc::clone(&pipeline);
    let capture_failed = async move {
        loop {
            tokio::time::sleep(HEALTH_INTERVAL).await;
            if !watched.is_running() {
                break "the capture thread stopped unexpectedly".to_owned();
            }
            if let Some(reason) = failure_slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                break reason;
            }
        }
    };
    tokio::pin!(capture_failed);

    let ending = tokio::select! {
        biased;
        _ = stop.cancelled() => Ending::Stopped,
        status = program.wait() => failed_exit(status, "during initialization"),
        reason = display.exited() => failed(failure::DISPLAY, format!("{reason} during initialization")),
        reason = &mut capture_failed => failed(failure::DISPLAY, reason),
        _ = tokio::time::sleep(config.start_timeout) => failed(
            failure::START_TIMEOUT,
            format!(
                "not ready within the start timeout ({})",
                humantime::format_duration(config.start_timeout)
            ),
        ),
        _ = ready => {
            supervisor.mark_running(key);
            tokio::select! {
                biased;
                _ = stop.cancelled() => Ending::Stopped,
                status = program.wait() => failed_exit(status, "while running"),
                reason = display.exited() => failed(failure::DISPLAY, format!("{reason} while running")),
                reason = &mut capture_failed => failed(failure::DISPLAY, reason),
            }
        }
    };

    // Teardown, newest first: the picture, the program, the watcher, the display.
    supervisor.set_pipeline(key, None);
    let _ = tokio::task::spawn_blocking(move || pipeline.stop()).await;
    end(&mut program, config.stop_grace).await;
    let _ = tokio::task::spawn_blocking(move || watch.stop()).await;
    display.shut_down(config.stop_grace).await;
    ending
}

async fn open_display(id: u32, x11: &X11Settings) -> Result<Display, String> {
    match &x11.display {
        X11DisplayChoice::PerSlot { base, server } => {
            let max = (x11.max_resolution.width, x11.max_resolution.height);
            let number = base + id;
            Display::start(id, number, |auth| match server {
                XServer::Xvfb => Ok(xvfb::launch(number, max, auth)),
                XServer::Xorg(driver) => xorg::launch(number, id, max, driver, auth),
            })
            .await
        }
        X11DisplayChoice::Existing(name) => {
            Ok(Display::existing(name.replace("{id}", &id.to_string())))
        }
    }
}

fn failed(kind: &'static str, reason: String) -> Ending {
    Ending::Failed { kind, reason }
}
