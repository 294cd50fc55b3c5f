//! OpenTelemetry's protocol for metrics (OTLP), for the `otlp` source and
//! sink: its messages (`proto.rs`), its JSON encoding (`json.rs`), the
//! mapping of its metrics to vane's events (`events.rs`) and back
//! (`metrics.rs`), and gRPC's framing (`grpc.rs`).

pub mod channel;
pub mod events;
pub mod grpc;
pub mod json;
pub mod metrics;
pub mod proto;
