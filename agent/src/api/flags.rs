//! The TCP API's flags (a clap group flattened into the agent's `Args`), validated into an
//! [`ApiTcpConfig`].

use clap::Args;

/// The flags of the instances' TCP API ports (`api::tcp`).
#[derive(Debug, Clone, Args)]
pub struct ApiTcpArgs {
    /// Instance N's TCP API (newline-delimited JSON, for OpenSpace's Python client
    /// `openspace-api`) listens on this + N, on --api-host, for the agent's lifetime; 0 turns it
    /// off. OpenSpace's own is 4681, which would collide with the WebSocket API ports 4682 + N,
    /// hence 4581 (4581..4680 for the largest capacity, below the agent's 4690 and 4699).
    #[arg(long, env = "OPENSPACE_API_TCP_BASE_PORT", default_value_t = 4581)]
    pub api_tcp_base_port: u16,

    /// Command and x11 instances: instance N's program serves its own TCP API on loopback at
    /// this + N, and the agent's TCP API port relays to it (after checking the token). Unset:
    /// their TCP API port answers that there is none.
    #[arg(long, env = "OPENSPACE_PROGRAM_API_TCP_BASE_PORT")]
    pub program_api_tcp_base_port: Option<u16>,
}

/// The instances' TCP API ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiTcpConfig {
    /// Instance N listens on this + N; None: off.
    pub base_port: Option<u16>,
    /// Program instances serve their own on loopback at this + N.
    pub program_base_port: Option<u16>,
}

impl ApiTcpConfig {
    /// Instance `id`'s TCP API port, if on.
    pub fn port(&self, id: u32) -> Option<u16> {
        self.base_port.map(|b| b + id as u16)
    }

    /// Where instance `id`'s program serves its own TCP API, if it does.
    pub fn program_port(&self, id: u32) -> Option<u16> {
        self.program_base_port.map(|b| b + id as u16)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiTcpError {
    #[error("--{flag} {base} + --capacity {capacity} runs past port 65535")]
    Ports {
        flag: &'static str,
        base: u16,
        capacity: u32,
    },
    #[error(
        "--api-tcp-base-port {tcp} and --api-base-port {ws} overlap for --capacity {capacity}"
    )]
    Overlap { tcp: u16, ws: u16, capacity: u32 },
}

impl ApiTcpArgs {
    /// Validates the ports for `capacity` instances whose WebSocket ports start at `ws_base`.
    pub fn into_config(self, capacity: u32, ws_base: u16) -> Result<ApiTcpConfig, ApiTcpError> {
        for (flag, base) in [
            ("api-tcp-base-port", Some(self.api_tcp_base_port)),
            ("program-api-tcp-base-port", self.program_api_tcp_base_port),
        ] {
            if let Some(base) = base.filter(|b| *b != 0) {
                if u32::from(base) + capacity.max(1) - 1 > u32::from(u16::MAX) {
                    return Err(ApiTcpError::Ports {
                        flag,
                        base,
                        capacity,
                    });
                }
            }
        }
        let (tcp, ws) = (u32::from(self.api_tcp_base_port), u32::from(ws_base));
        if tcp != 0 && tcp < ws + capacity && ws < tcp + capacity {
            return Err(ApiTcpError::Overlap {
                tcp: self.api_tcp_base_port,
                ws: ws_base,
                capacity,
            });
        }
        Ok(ApiTcpConfig {
            base_port: (self.api_tcp_base_port != 0).then_some(self.api_tcp_base_port),
            program_base_port: self.program_api_tcp_base_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tcp: u16, program: Option<u16>) -> ApiTcpArgs {
        ApiTcpArgs {
            api_tcp_base_port: tcp,
            program_api_tcp_base_port: program,
        }
    }

    #[test]
    fn ports_are_base_plus_id_and_must_fit_and_not_overlap() {
        let c = args(4581, Some(14681)).into_config(3, 4682).unwrap();
        assert_eq!((c.port(2), c.program_port(2)), (Some(4583), Some(14683)));
        assert_eq!(args(0, None).into_config(3, 4682).unwrap().port(0), None);
        assert!(matches!(
            args(4680, None).into_config(5, 4682),
            Err(ApiTcpError::Overlap { .. })
        ));
        assert!(matches!(
            args(65535, None).into_config(2, 4682),
            Err(ApiTcpError::Ports { .. })
        ));
        assert!(matches!(
            args(4581, Some(65535)).into_config(2, 4682),
            Err(ApiTcpError::Ports {
                flag: "program-api-tcp-base-port",
                ..
            })
        ));
    }
}
