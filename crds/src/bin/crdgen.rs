//! Prints the OpenSpaceSession CRD as YAML; `crds/openspacesession.yaml` is this output, and
//! `make lint` fails when the two differ.

use kube::CustomResourceExt;
use openspace_crds::OpenSpaceSession;

fn main() {
    match serde_yaml::to_string(&OpenSpaceSession::crd()) {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("crdgen: cannot serialise the CRD: {e}");
            std::process::exit(1);
        }
    }
}
