//! End-to-end tests: the whole chain on the test bed, each test with a local stack of its own
//! (bus, queues, table, NLBs, namespace), started with `testbed::local_stack` and stopped at
//! the end, also on failure. They need the SAM tools (`testbed/bin/install-sam-tools`) for
//! `cargo lambda`, and `kubectl`; `second_shell` runs the docs' commands next to `make run`;
//! `controllers` has Kubernetes' own controllers and kwok nodes make the pods.

mod controllers;
mod forwarder_killed;
mod lifecycle;
mod run_local;
mod samples;
mod second_shell;
mod support;
mod workloads;
