//! When does an instance count as RUNNING? `process`: as soon as it is spawned. `tcp`: when its
//! API port accepts a connection, which is how OpenSpace shows it has initialised.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadyCheck {
    /// RUNNING once the process is spawned.
    Process,
    /// RUNNING once 127.0.0.1:{api_port} accepts a connection.
    Tcp,
    /// RUNNING once the program maps its first window (x11 instances only).
    Window,
}

/// How often the API port is tried. A refused connect on loopback costs microseconds, so a short
/// interval keeps START -> RUNNING close to the program's own start.
const TCP_POLL_INTERVAL: Duration = Duration::from_millis(2);

impl ReadyCheck {
    /// Resolves once the instance is ready by this check. Cancel-safe; the caller bounds it by
    /// the start timeout and by the process exiting.
    pub async fn wait(self, api_port: u16) {
        match self {
            // Window readiness is watched on the display (x11/windows.rs), not here.
            Self::Process | Self::Window => {}
            Self::Tcp => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, api_port));
                while !port_accepts(addr).await {
                    tokio::time::sleep(TCP_POLL_INTERVAL).await;
                }
            }
        }
    }

    /// With `tcp`, something else already listening on the port would look like readiness.
    pub async fn port_taken(self, api_port: u16) -> bool {
        self == Self::Tcp && port_accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, api_port))).await
    }
}

async fn port_accepts(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}
