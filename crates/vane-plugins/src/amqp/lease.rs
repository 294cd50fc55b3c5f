//! The lease of a bus-backed engine's beat ([`vane_core::lease`]) on
//! RabbitMQ: an exclusive queue named after the engine's queue
//! (`vane.engine.ID.beat`). The broker lets one connection at a time
//! declare it; the worker whose connection did holds the lease until that
//! connection ends, when the broker deletes the queue and another worker's
//! next try takes it. Workers that do not hold it try again every second.
//!
//! Across a failover two workers can beat in one interval, or none: a
//! worker killed or stopped lets go at once (its connection closes), but one
//! cut off from the broker still believes it holds the lease until its
//! heartbeat fails, while the broker may have given it away already.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use vane_core::lease::Lease;
use vane_core::node::{Flat, Node, from_node};
use vane_core::prelude::*;

use super::connection::{Broker, Link, short};
use crate::sources::amqp::AmqpSourceConfig;

/// How long a worker waits between tries to take the lease, or to reach the broker.
const PACE: std::time::Duration = std::time::Duration::from_secs(1);

struct Held(AtomicBool);

impl Lease for Held {
    fn held(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// Takes part in the lease `name` with the broker of the `amqp` source's
/// `config`, from a task that ends when `ctx` stops.
pub fn hold(name: &str, config: &Node, ctx: &Context) -> Result<Arc<dyn Lease>, BuildError> {
    let Flat(_, Flat(_, broker)) = from_node::<AmqpSourceConfig>(config, ctx.job()).map_err(BuildError::stop)?;
    broker.check()?;
    let queue = short("lease", name).map_err(BuildError::stop)?;
    let held = Arc::new(Held(AtomicBool::new(false)));
    let (h, ctx) = (held.clone(), ctx.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = keep(&broker, queue.as_str(), &h, &ctx) => {}
            () = ctx.stopping() => {}
        }
        h.0.store(false, Relaxed);
    });
    Ok(held)
}

/// Tries to take the lease, holds it while the connection lasts, and again.
async fn keep(broker: &Broker, name: &str, held: &Held, ctx: &Context) {
    // A broker that stays away is reported once, not at every try.
    let mut reported = false;
    loop {
        match broker.open(ctx).await {
            Ok(link) => {
                reported = false;
                if take(&link, name, held, ctx).await {
                    ctx.warn(format!("lost the lease {name:?}: another worker beats"));
                }
            }
            Err(e) if !reported => {
                reported = true;
                ctx.report_error(format!("lease {name:?}: {e}; trying again every second"));
            }
            Err(_) => {}
        }
        held.0.store(false, Relaxed);
        tokio::time::sleep(PACE).await;
    }
}

/// On one connection: declares the exclusive queue until it is ours, then
/// watches the connection. True when the lease was held and then lost.
async fn take(link: &Link, name: &str, held: &Held, ctx: &Context) -> bool {
    let opts = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    let mut channel = link.channel.clone();
    loop {
        match channel.queue_declare(name.into(), opts, FieldTable::default()).await {
            Ok(_) => break,
            // Held by another worker's connection (405 RESOURCE_LOCKED): the
            // broker closed this channel; try again on a new one.
            Err(e) if e.is_amqp_soft_error() => {
                tokio::time::sleep(PACE).await;
                match link.conn.create_channel().await {
                    Ok(c) => channel = c,
                    Err(e) => {
                        ctx.report_error(format!("lease {name:?}: {e}"));
                        return false;
                    }
                }
            }
            Err(e) => {
                ctx.report_error(format!("lease {name:?}: {e}"));
                return false;
            }
        }
    }
    held.0.store(true, Relaxed);
    ctx.info(format!("holds the lease {name:?}: this worker beats"));
    while link.conn.status().connected() && channel.status().connected() {
        tokio::time::sleep(PACE / 4).await;
    }
    true
}
