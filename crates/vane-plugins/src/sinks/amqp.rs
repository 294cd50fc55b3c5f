//! The `amqp` sink: publishes events to an exchange of an AMQP 0.9.1 broker
//! (RabbitMQ) as persistent messages, with publisher confirms.
//!
//! Every message of a batch is published before any confirm is awaited (a
//! window as large as the batch), and the batch counts as delivered only
//! when the broker has confirmed every message of it. Until then it stays
//! in the sink's buffer, a disk buffer across restarts. A batch of which
//! the broker refused some messages (a nack, or a return when `mandatory`
//! finds no queue) is sent again whole (`on_refused: retry`, the default)
//! or the refused messages go to the dead-letter file (`dead_letter`),
//! counted either way. At least once: a batch sent again after a broken
//! connection or a partial refusal publishes again the messages of it the
//! broker had taken.
//!
//! The routing key is a template ([`vane_core::path_template`]): `{name}`,
//! `{host}`, `{tag.KEY}`, literal words. The exchange (`vane`, a durable
//! topic exchange, unless told otherwise) is declared at each connect
//! unless `declare: false`. With `format: canopsis` each event is one
//! Canopsis event, sent by default to `canopsis.events` with Canopsis's
//! own routing key. With `queue:` the sink feeds that queue straight
//! (through the default exchange), declaring it as the `amqp` source does:
//! that is how events reach a bus-backed engine's workers.

use lapin::Confirmation;
use lapin::ExchangeKind;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use serde::Deserialize;
use std::path::PathBuf;
use vane_core::node::Flat;
use vane_core::path_template::PathTemplate;
use vane_core::prelude::*;

use super::dead_letter::DeadLetter;
use crate::amqp::canopsis::CanopsisEvent;
use crate::amqp::connection::{Broker, Link, clipped, short};
use crate::amqp::message::{Format, PerMessage};
use crate::amqp::queue::QueueSpec;

/// Settings of the `amqp` sink: its own, a queue's (when it feeds one
/// straight) and the broker's.
pub type AmqpSinkConfig = Flat<AmqpSinkSettings, Flat<QueueSpec, Broker>>;

/// An exchange's type.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExchangeType {
    Direct,
    Fanout,
    Topic,
    Headers,
    /// RabbitMQ's consistent-hash exchange (its plugin must be enabled).
    XConsistentHash,
}

impl ExchangeType {
    fn kind(self) -> ExchangeKind {
        match self {
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Headers => ExchangeKind::Headers,
            ExchangeType::XConsistentHash => ExchangeKind::Custom("x-consistent-hash".into()),
        }
    }
}

/// What to do with messages the broker refused.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnRefused {
    /// The batch is sent again, after the sink's backoff.
    #[default]
    Retry,
    /// The refused messages go to the dead-letter file; the batch is done.
    DeadLetter,
}

fn topic() -> ExchangeType {
    ExchangeType::Topic
}

/// What the `amqp` sink takes besides the broker's settings.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkSettings {
    /// The exchange published to; `""` is the default exchange. Default:
    /// vane (canopsis.events for the canopsis format).
    pub exchange: Option<String>,
    /// The exchange's type when it is declared. Default: topic.
    #[serde(default = "topic")]
    pub exchange_type: ExchangeType,
    /// Declare the exchange (durable) at each connect. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub declare: bool,
    /// The routing key, a template. Default: `{name}` (Canopsis's own key
    /// for the canopsis format).
    pub routing_key: Option<String>,
    /// json, influx or canopsis. Default: json.
    #[serde(default)]
    pub format: Format,
    /// event (one message each) or batch (one message a batch). Default: event.
    #[serde(default)]
    pub per_message: PerMessage,
    /// Persistent messages (delivery mode 2). Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub persistent: bool,
    /// Ask the broker to return messages no queue takes. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub mandatory: bool,
    /// retry or dead_letter. Default: retry.
    #[serde(default)]
    pub on_refused: OnRefused,
    /// The dead-letter file. Default: DATA_DIR/deadletter/JOB.lp.
    pub dead_letter: Option<PathBuf>,
}

/// How a message's routing key is made.
enum Key {
    Template(PathTemplate),
    /// Canopsis's own key, from the event.
    Canopsis,
    /// A queue's name, through the default exchange.
    Queue(ShortString),
}

pub struct Amqp {
    cfg: AmqpSinkSettings,
    /// The queue fed straight, through the default exchange, if any.
    queue: Option<(QueueSpec, String)>,
    broker: Broker,
    exchange: String,
    key: Key,
    link: Option<Link>,
    dead_letter: DeadLetter,
}

/// One message ready to publish: its routing key and body, and the events
/// it holds (for the dead-letter file).
struct Message {
    key: ShortString,
    body: String,
    events: std::ops::Range<usize>,
}

impl Amqp {
    fn routing_key(&self, e: &Event) -> ShortString {
        match &self.key {
            Key::Template(t) => {
                let mut key = String::new();
                t.render(&mut key, "", e, "");
                clipped(&key)
            }
            Key::Canopsis => clipped(&CanopsisEvent::from_event(e).routing_key()),
            Key::Queue(q) => q.clone(),
        }
    }

    fn messages(&self, batch: &[Event], ctx: &Context) -> Vec<Message> {
        let mut out = Vec::new();
        let mut skipped = 0;
        let per_message = if self.cfg.format == Format::Canopsis { PerMessage::Event } else { self.cfg.per_message };
        match per_message {
            PerMessage::Event => {
                for (i, e) in batch.iter().enumerate() {
                    let mut body = String::new();
                    skipped += self.cfg.format.encode(&mut body, std::slice::from_ref(e));
                    if !body.is_empty() {
                        out.push(Message { key: self.routing_key(e), body, events: i..i + 1 });
                    }
                }
            }
            PerMessage::Batch => {
                let mut body = String::new();
                skipped += self.cfg.format.encode(&mut body, batch);
                if let (Some(first), false) = (batch.first(), body.is_empty()) {
                    out.push(Message { key: self.routing_key(first), body, events: 0..batch.len() });
                }
            }
        }
        if skipped > 0 {
            ctx.stats().events_dropped.fetch_add(skipped as u64, std::sync::atomic::Ordering::Relaxed);
            ctx.warn(format!("{skipped} events had no field line protocol can carry; dropped"));
        }
        out
    }

    async fn connect(&self, ctx: &Context) -> Result<Link, String> {
        let link = self.broker.open(ctx).await?;
        if let (Some((spec, q)), true) = (&self.queue, self.cfg.declare) {
            spec.declare(&link.channel, q).await.map_err(|e| format!("declaring queue {q:?}: {e}"))?;
        }
        if self.cfg.declare && !self.exchange.is_empty() {
            let opts = ExchangeDeclareOptions { durable: true, ..Default::default() };
            let name = short("exchange", &self.exchange)?;
            link.channel
                .exchange_declare(name, self.cfg.exchange_type.kind(), opts, FieldTable::default())
                .await
                .map_err(|e| format!("declaring exchange {:?}: {e}", self.exchange))?;
        }
        Ok(link)
    }

    /// Publishes every message, then waits for every confirm: the reasons
    /// of the refused ones, by index; an error when the channel failed.
    async fn publish(&self, link: &Link, messages: &[Message]) -> Result<Vec<(usize, String)>, lapin::Error> {
        let exchange = ShortString::from(self.exchange.as_str());
        let opts = BasicPublishOptions { mandatory: self.cfg.mandatory, ..Default::default() };
        let props = self.cfg.format.properties(self.cfg.persistent);
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = link
                .channel
                .basic_publish(exchange.clone(), m.key.clone(), opts, m.body.as_bytes(), props.clone())
                .await?;
            pending.push(confirm);
        }
        let mut refused = Vec::new();
        for (i, confirm) in pending.into_iter().enumerate() {
            match confirm.await? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    refused.push((i, format!("returned: {} {}", returned.reply_code, returned.reply_text)))
                }
                Confirmation::Nack(None) => refused.push((i, "refused by the broker (nack)".into())),
                Confirmation::NotRequested => refused.push((i, "not confirmed".into())),
            }
        }
        Ok(refused)
    }
}

impl Sink for Amqp {
    async fn prepare(&mut self, ctx: &Context) -> Result<(), SinkError> {
        // Connecting early shows a wrong URL or exchange at start; the first
        // send connects again if this fails.
        match self.connect(ctx).await {
            Ok(link) => self.link = Some(link),
            Err(e) => ctx.warn(format!("{e}; retrying at the first batch")),
        }
        Ok(())
    }

    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        let messages = self.messages(batch, ctx);
        if messages.is_empty() {
            return Ok(());
        }
        if !self.link.as_ref().is_some_and(|l| l.channel.status().connected()) {
            self.link = None;
            self.link = Some(self.connect(ctx).await.map_err(SinkError::retry)?);
        }
        let link = self.link.as_ref().expect("connected above");
        let limit = self.broker.timeout.get();
        let refused = match tokio::time::timeout(limit, self.publish(link, &messages)).await {
            Ok(Ok(refused)) => refused,
            Ok(Err(e)) => {
                self.link = None;
                return Err(SinkError::retry(format!("publishing to {}: {e}", self.broker.url)));
            }
            Err(_) => {
                self.link = None;
                return Err(SinkError::retry(format!("the broker confirmed no batch within {limit:?}")));
            }
        };
        let Some((_, first)) = refused.first() else { return Ok(()) };
        let why = format!("{} of {} messages refused ({first})", refused.len(), messages.len());
        match self.cfg.on_refused {
            OnRefused::Retry => Err(SinkError::retry(why)),
            OnRefused::DeadLetter => {
                ctx.report_error(format!("{why}; kept in {}", self.dead_letter.path().display()));
                for (i, reason) in &refused {
                    let m = &messages[*i];
                    let mut lines = String::new();
                    crate::sinks::encode_events(
                        &mut lines,
                        &batch[m.events.clone()],
                        crate::sinks::Format::Influx,
                        vane_core::lineproto::Precision::Nanoseconds,
                    );
                    self.dead_letter
                        .keep(&lines, reason, ctx)
                        .map_err(|e| SinkError::retry(format!("dead letter: {e}")))?;
                }
                Ok(())
            }
        }
    }
}

impl Build for Amqp {
    type Config = AmqpSinkConfig;

    fn build(Flat(cfg, Flat(spec, broker)): AmqpSinkConfig, ctx: &Context) -> Result<Self, BuildError> {
        broker.check()?;
        spec.check()?;
        let canopsis = cfg.format == Format::Canopsis;
        let queue = spec.queue.clone().map(|q| (spec, q));
        let exchange = match (&cfg.exchange, &queue) {
            (Some(e), _) => e.clone(),
            (None, Some(_)) => String::new(),
            (None, None) if canopsis => "canopsis.events".into(),
            (None, None) => "vane".into(),
        };
        short("exchange", &exchange).map_err(BuildError::stop)?;
        let key = match (&cfg.routing_key, &queue, canopsis) {
            (Some(k), _, _) => Key::Template(PathTemplate::parse(k)),
            (None, Some((_, q)), _) => Key::Queue(short("queue", q).map_err(BuildError::stop)?),
            (None, None, true) => Key::Canopsis,
            (None, None, false) => Key::Template(PathTemplate::parse("{name}")),
        };
        let dead_letter = DeadLetter::new(cfg.dead_letter.clone(), ctx);
        Ok(Amqp { cfg, queue, broker, exchange, key, link: None, dead_letter })
    }
}
