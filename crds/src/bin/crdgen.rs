//! Prints a CRD as YAML: `crdgen` (or `crdgen session`) the OpenSpaceSession CRD, which is
//! `crds/openspacesession.yaml`; `crdgen pool` the OpenSpacePool CRD, `crds/openspacepool.yaml`.
//! `make lint` fails when a file differs from this output.

use kube::CustomResourceExt;
use openspace_crds::{OpenSpacePool, OpenSpaceSession};

fn main() {
    let crd = match std::env::args().nth(1).as_deref() {
        None | Some("session") => OpenSpaceSession::crd(),
        Some("pool") => OpenSpacePool::crd(),
        Some(other) => {
            eprintln!("crdgen: unknown CRD {other:?}: give 'session' or 'pool'");
            std::process::exit(2);
        }
    };
    match serde_yaml::to_string(&crd) {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("crdgen: cannot serialise the CRD: {e}");
            std::process::exit(1);
        }
    }
}
