//! The forwarder against the test bed (kube-apiserver with RBAC, moto): deploy/'s RBAC, the
//! binary running as its ServiceAccount, and the events arriving in SQS behind a bus rule
//! (from Service, EndpointSlice and gated pod changes).
//! Every test owns its namespace, bus, queue and Lease, so they run in parallel.

mod events;
mod inbox;
mod leader;
mod pods;
mod rbac;
mod resync;
mod retry;
mod startup;
mod support;
