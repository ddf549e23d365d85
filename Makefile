# Two commands for a newcomer: `make demo` and `make test`. Everything else is a building block.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo cluster-demo test lint unit browser turn e2e cluster bench endurance deps crds

## Run the main job locally (see README: what the demo starts and the URL to open).
demo: deps
	scripts/demo.sh

## The chart on a real single-node cluster (kubelet, containerd, the images from docker/), with
## examples/session.yaml, printing the session URL; Ctrl-C tears it all down. Needs root.
cluster-demo: deps
	$(CARGO) build --locked -p openspace-agent -p openspace-operator -p openspace-frontend --bins
	e2e/cluster/run.sh scripts/cluster-demo.sh

## Everything CI runs: formatting, clippy, the chart, unit and integration tests, browser tests,
## the end-to-end session flow, the chart's pods on a real node.
test: deps lint unit browser turn e2e cluster

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p openspace-agent --all-targets --features gstreamer --locked -- -D warnings
	@for crd in session pool; do \
	  $(CARGO) run --quiet --locked -p openspace-crds --bin crdgen $$crd | diff -u crds/openspace$$crd.yaml - \
	    || { echo "crds/openspace$$crd.yaml is stale: run 'make crds' and commit it"; exit 1; }; \
	done
	scripts/chart-check.sh

## Regenerates the CRD YAML from the Rust types (crds/src/lib.rs).
crds:
	for crd in session pool; do \
	  $(CARGO) run --quiet -p openspace-crds --bin crdgen $$crd > crds/openspace$$crd.yaml && \
	  cp crds/openspace$$crd.yaml charts/openspace/crds/openspace$$crd.yaml || exit 1; \
	done

## Unit and integration tests; the operator's run against a real etcd + kube-apiserver that
## e2e/control-plane starts for the duration (and always tears down).
unit:
	$(CARGO) build --locked -p openspace-agent --bins
	e2e/control-plane/control-plane.sh run "$${TMPDIR:-/tmp}/openspace-unit-$$$$" -- \
	  $(CARGO) test --workspace --locked --tests
	$(CARGO) test -p openspace-agent --features gstreamer --locked --lib media::encoder

## Headless Chromium against the real agent (needs the debug binaries).
browser:
	$(CARGO) build --locked -p openspace-agent --bins
	cd e2e/browser && npm test

## A viewer behind a firewall reaching the agent through a real coturn relay, in network
## namespaces (needs root; skipped, saying why, where namespaces cannot be made).
turn:
	$(CARGO) build --locked -p openspace-agent --bins
	e2e/turn/run.sh

## The whole flow: helm-installed CRDs and RBAC, the operator as the chart's ServiceAccount, two
## agents, kubectl apply -> URL -> Chromium -> drag -> kubectl patch -> kubectl delete.
e2e:
	$(CARGO) build --locked -p openspace-agent -p openspace-operator -p openspace-frontend --bins
	e2e/flow/run.sh
	e2e/flow/run.sh --test e2e/flow/pool-flow.mjs

## The chart's pods on a real node: kubelet + containerd + the control plane on this machine
## (e2e/cluster/cluster.sh), the images built from docker/*.Dockerfile with the debug binaries,
## helm install, then sessions, failover, agent loss, apiserver restart, upgrade, x11 (needs root).
cluster:
	$(CARGO) build --locked -p openspace-agent -p openspace-operator -p openspace-frontend --bins
	e2e/cluster/run.sh

## Benchmarks (numbers go to BENCHMARKS.md by hand, with the command).
bench: deps
	$(CARGO) bench -p openspace-agent --bench command_api
	$(CARGO) bench -p openspace-agent --bench media
	$(CARGO) bench -p openspace-agent --bench encoder_quality --features gstreamer
	$(CARGO) bench -p openspace-agent --bench x11_capture
	$(CARGO) build --release --locked -p openspace-agent --bins
	$(CARGO) build --release --locked -p openspace-agent --example reference_sender --features reference-sender
	cd e2e/browser && node bench/reference.mjs && node bench/jitter.mjs && node bench/threads.mjs \
	  && node bench/endurance.mjs
	e2e/control-plane/control-plane.sh run "$${TMPDIR:-/tmp}/openspace-bench-$$$$" -- \
	  $(CARGO) bench -p openspace-operator --bench scale
	$(CARGO) build --release --locked -p openspace-operator -p openspace-frontend --bins
	OPENSPACE_PROFILE=release e2e/flow/run.sh e2e/flow/bench-frontend.mjs

## One stream for 30 minutes (e2e/browser/bench/long-stream.mjs): frame rate, latency and the
## agent's footprint at the end against the start.
endurance: deps
	$(CARGO) build --release --locked -p openspace-agent --bins
	cd e2e/browser && node bench/long-stream.mjs

## Installs missing system packages (Debian) and Rust components; fast when all are there.
deps:
	MAKECMDGOALS="$(MAKECMDGOALS)" scripts/setup.sh
