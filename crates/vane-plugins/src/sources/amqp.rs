//! The `amqp` source: consumes a queue of an AMQP 0.9.1 broker (RabbitMQ)
//! with manual acknowledgements and a prefetch window.
//!
//! A delivery is acknowledged only once its events were stored by every
//! sink they reach (synced, for a disk buffer): the end-to-end
//! acknowledgement the listeners use. Until then the broker keeps the
//! message, and gives it to another consumer if this one goes away, so a
//! delivery can arrive twice (at least once), never not at all.
//!
//! A message that cannot be read (not UTF-8, a bad line: a message is
//! taken whole or not at all) is published to the dead-letter exchange
//! with the reason in its `x-vane-reason` header, then acknowledged, and
//! counted as a bad line. A message whose events were dropped on the way
//! (a full buffer that drops) is given back to the queue; a quorum queue
//! dead-letters it after `delivery_limit` deliveries.
//!
//! With `meters`, messages are OpenStack notifications made into samples
//! as Ceilometer does ([`crate::amqp::notification`]); bind the queue to
//! the services' exchanges (nova: exchange `nova`, key `notifications.info`).
//!
//! At each connect the source declares (unless `declare: false`) its queue
//! (quorum by default, durable, with the delivery limit and the
//! dead-letter exchange), the exchanges it binds to (durable topic
//! exchanges), its bindings, and the dead-letter exchange (fanout) with a
//! queue of the same name, so that nothing dead-lettered is lost unseen.

use std::future::poll_fn;

use futures_core::Stream;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use serde::Deserialize;
use vane_core::node::Flat;
use vane_core::prelude::*;

use crate::amqp::connection::{Broker, Link, short};
use crate::amqp::message::Format;
use crate::amqp::notification::{self, Meter, Outcome};
use crate::amqp::queue::{QueueSpec, text};

/// Settings of the `amqp` source: its own, the queue's and the broker's.
pub type AmqpSourceConfig = Flat<AmqpSourceSettings, Flat<QueueSpec, Broker>>;

/// A binding of the queue to an exchange.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub exchange: String,
    /// Default: `#` (every key of a topic exchange).
    #[serde(default = "every_key")]
    pub routing_key: String,
    /// The exchange is declared (a topic exchange) durable. An exchange that
    /// exists must be declared as it is: OpenStack's services declare
    /// theirs not durable, by default. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub durable: bool,
}

fn every_key() -> String {
    "#".into()
}

fn default_bindings() -> Vec<Binding> {
    vec![Binding { exchange: "vane".into(), routing_key: every_key(), durable: true }]
}

fn default_prefetch() -> u16 {
    1000
}

/// What the `amqp` source takes besides the broker's settings.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AmqpSourceSettings {
    /// Exchanges and keys the queue is bound to. Default: exchange vane, key `#`.
    #[serde(default = "default_bindings")]
    pub bindings: Vec<Binding>,
    /// Declare the queue, exchanges and bindings at each connect. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub declare: bool,
    /// Deliveries in flight, unacknowledged. Default: 1000.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// The body's format when a message does not name one (by its
    /// `vane-format` header or content type): json, influx or canopsis.
    /// Default: json.
    #[serde(default)]
    pub format: Format,
    /// OpenStack notifications to turn into samples, Ceilometer's way
    /// ([`crate::amqp::notification`]): with meters, every message is read
    /// as a notification, and one that no meter names is let go, counted
    /// as `ignored`.
    #[serde(default)]
    pub meters: Vec<Meter>,
    /// A Lua script whose `notification(msg)` makes samples of the
    /// notifications no meter names ([`crate::lua::notification`]); what it
    /// returns nil for is let go, counted as `ignored`. Reads messages as
    /// notifications, as `meters` does.
    #[cfg(feature = "lua")]
    pub lua: Option<crate::lua::LuaConfig>,
}

pub struct AmqpSource {
    cfg: AmqpSourceSettings,
    /// Notifications read by script (`lua`).
    #[cfg(feature = "lua")]
    script: Option<crate::lua::notification::LuaNotifications>,
    spec: QueueSpec,
    /// The queue consumed.
    queue: String,
    broker: Broker,
}

impl Build for AmqpSource {
    type Config = AmqpSourceConfig;

    fn build(Flat(cfg, Flat(spec, broker)): AmqpSourceConfig, ctx: &Context) -> Result<Self, BuildError> {
        broker.check()?;
        spec.check()?;
        for b in &cfg.bindings {
            short("exchange", &b.exchange).map_err(BuildError::stop)?;
        }
        if cfg.prefetch == 0 {
            return Err(BuildError::stop("prefetch: must be at least 1"));
        }
        let queue = spec.queue.clone().unwrap_or_else(|| "vane".into());
        #[cfg(feature = "lua")]
        let script = cfg.lua.as_ref().map(|l| crate::lua::notification::LuaNotifications::new(l, ctx)).transpose()?;
        #[cfg(not(feature = "lua"))]
        let _ = ctx;
        Ok(AmqpSource {
            cfg,
            #[cfg(feature = "lua")]
            script,
            spec,
            queue,
            broker,
        })
    }
}

impl AmqpSource {
    /// Declares the queue and its bindings; every name was checked at build.
    async fn declare(&self, ch: &Channel) -> Result<(), lapin::Error> {
        self.spec.declare(ch, &self.queue).await?;
        for b in &self.cfg.bindings {
            let exchange = ShortString::from(b.exchange.as_str());
            let opts = ExchangeDeclareOptions { durable: b.durable, ..Default::default() };
            ch.exchange_declare(exchange.clone(), ExchangeKind::Topic, opts, FieldTable::default()).await?;
            let key = ShortString::try_new(b.routing_key.as_str()).unwrap_or_else(|_| "#".into());
            let queue = ShortString::from(self.queue.as_str());
            ch.queue_bind(queue, exchange, key, QueueBindOptions::default(), FieldTable::default()).await?;
        }
        Ok(())
    }

    fn reads_notifications(&self) -> bool {
        #[cfg(feature = "lua")]
        if self.script.is_some() {
            return true;
        }
        !self.cfg.meters.is_empty()
    }

    /// The samples of an OpenStack notification: by the meters that name its
    /// type, else by the script; none when neither takes it (counted).
    fn notification(&self, body: &[u8], now: i64, ctx: &Context) -> Result<Vec<Event>, String> {
        let n = notification::unwrap(body)?;
        let event_type = match notification::samples(&self.cfg.meters, &n, now)? {
            Outcome::Samples(events) => return Ok(events),
            Outcome::Ignored(event_type) => event_type,
        };
        #[cfg(feature = "lua")]
        if let Some(script) = &self.script {
            let events = script.samples(&n)?;
            if !events.is_empty() {
                return Ok(events);
            }
        }
        ctx.stats().ignored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ctx.debug(format!("{event_type}: neither a meter nor the script takes it; let go"));
        Ok(Vec::new())
    }

    /// Sends an unreadable message to the dead-letter exchange, with why.
    async fn dead_letter(&self, ch: &Channel, d: &Delivery, why: &str) -> Result<(), String> {
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert("x-vane-reason".into(), text(why));
        headers.insert("x-vane-queue".into(), text(&self.queue));
        let props = d.properties.clone().with_headers(headers);
        let dlx = ShortString::from(self.spec.dead_letter_exchange.as_str());
        let confirm = ch
            .basic_publish(dlx, d.routing_key.clone(), BasicPublishOptions::default(), &d.data, props)
            .await
            .map_err(|e| e.to_string())?;
        match confirm.await.map_err(|e| e.to_string())? {
            lapin::Confirmation::Ack(_) => Ok(()),
            other => Err(format!("the dead-letter exchange refused it: {other:?}")),
        }
    }

    /// One delivery: read it, pass its events on, and acknowledge it once
    /// they are stored (in a task, so that many are in flight).
    async fn take(
        &self,
        ch: &Channel,
        d: Delivery,
        ctx: &Context,
        acks: &mut tokio::task::JoinSet<()>,
    ) -> Result<(), String> {
        let now = vane_core::event::now_ns();
        let read = if self.reads_notifications() {
            self.notification(&d.data, now, ctx)
        } else {
            Format::of(&d.properties, self.cfg.format).decode(&d.data, now)
        };
        let events = match read {
            Ok(events) => events,
            Err(why) => {
                ctx.stats().bad_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ctx.warn(format!("message {} from {:?}: {why}; dead-lettered", d.delivery_tag, d.exchange.as_str()));
                self.dead_letter(ch, &d, &why).await?;
                d.acker.ack(BasicAckOptions::default()).await.map_err(|e| e.to_string())?;
                return Ok(());
            }
        };
        if events.is_empty() {
            d.acker.ack(BasicAckOptions::default()).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let stored = ctx.emit_tracked(events).await;
        let acker = d.acker;
        let ctx = ctx.clone();
        acks.spawn(async move {
            let done = if stored.await {
                acker.ack(BasicAckOptions::default()).await
            } else {
                // Back to the queue; a quorum queue counts the deliveries.
                acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await
            };
            if let Err(e) = done {
                // The channel is gone: the broker delivers the message again.
                ctx.debug(format!("acknowledging: {e}"));
            }
        });
        Ok(())
    }
}

impl Service for AmqpSource {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let Link { channel: ch, .. } = &self.broker.open(&ctx).await.map_err(ServiceError::restart)?;
        if self.cfg.declare {
            self.declare(ch)
                .await
                .map_err(|e| ServiceError::restart(format!("declaring queue {:?}: {e}", self.queue)))?;
        }
        ch.basic_qos(self.cfg.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| ServiceError::restart(format!("prefetch: {e}")))?;
        let tag = format!("vane {} {}", ctx.host(), ctx.job());
        let tag = crate::amqp::connection::clipped(&tag);
        let mut consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                tag.clone(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| ServiceError::restart(format!("consuming {:?}: {e}", self.queue)))?;
        ctx.info(format!("consuming {:?} at {}", self.queue, self.broker.url));
        let mut acks = tokio::task::JoinSet::new();
        let ended = loop {
            let next = tokio::select! {
                d = poll_fn(|cx| Pin::new(&mut consumer).poll_next(cx)) => d,
                Some(_) = acks.join_next(), if !acks.is_empty() => continue,
                _ = ctx.stopping() => break None,
            };
            match next {
                Some(Ok(d)) => {
                    if let Err(e) = self.take(ch, d, &ctx, &mut acks).await {
                        break Some(format!("handling a delivery: {e}"));
                    }
                }
                Some(Err(e)) => break Some(format!("consuming {:?}: {e}", self.queue)),
                None => break Some(format!("the broker ended the consumer of {:?}", self.queue)),
            }
        };
        // Deliveries in flight are acknowledged as their events are stored;
        // what is not acknowledged when the channel closes is delivered again.
        let _ = ch.basic_cancel(tag, BasicCancelOptions::default()).await;
        while acks.join_next().await.is_some() {}
        match ended {
            None => Ok(()),
            Some(why) => Err(ServiceError::restart(why)),
        }
    }
}
