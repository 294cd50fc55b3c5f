//! A queue as the `amqp` source consumes it and the sink may feed it
//! straight (a bus-backed engine's queue): both declare it the same way,
//! as the broker requires: durable, quorum by default with a delivery
//! limit, dead-lettering to a fanout exchange that has a queue of its own
//! name, so that nothing dead-lettered is lost unseen.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use serde::Deserialize;
use vane_core::prelude::*;

use super::connection::short;

/// A queue's type.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, with a delivery limit: RabbitMQ's choice for data that matters.
    #[default]
    Quorum,
    Classic,
}

fn default_delivery_limit() -> u32 {
    5
}

fn default_dead_letter() -> String {
    "vane.dead".into()
}

/// The queue settings the source and the sink share.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// The queue. The source's default: vane; the sink publishes to an
    /// exchange unless it names one.
    pub queue: Option<String>,
    /// quorum or classic. Default: quorum.
    #[serde(default)]
    pub queue_type: QueueType,
    /// Deliveries of one message before a quorum queue dead-letters it. Default: 5.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// Where unreadable messages go (a fanout exchange, and a queue of the
    /// same name when declared). Default: vane.dead.
    #[serde(default = "default_dead_letter")]
    pub dead_letter_exchange: String,
    /// The broker delivers to one consumer at a time, the others waiting
    /// to take over (RabbitMQ's single active consumer): the queue's order
    /// is kept, at the cost of one consumer working. Default: false.
    #[serde(default)]
    pub single_active_consumer: bool,
}

pub fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

impl QueueSpec {
    /// Refuses names the protocol cannot carry.
    pub fn check(&self) -> Result<(), BuildError> {
        for name in self.queue.iter().chain([&self.dead_letter_exchange]) {
            short("name", name).map_err(BuildError::stop)?;
        }
        Ok(())
    }

    /// Declares the dead-letter exchange and its queue, and `queue` with
    /// this spec's arguments (names checked at build).
    pub async fn declare(&self, ch: &Channel, queue: &str) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        let dlx = ShortString::from(self.dead_letter_exchange.as_str());
        let fanout = ExchangeDeclareOptions { durable: true, ..Default::default() };
        ch.exchange_declare(dlx.clone(), ExchangeKind::Fanout, fanout, FieldTable::default()).await?;
        ch.queue_declare(dlx.clone(), durable, FieldTable::default()).await?;
        ch.queue_bind(dlx.clone(), dlx, "".into(), QueueBindOptions::default(), FieldTable::default()).await?;
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), text(&self.dead_letter_exchange));
        if self.queue_type == QueueType::Quorum {
            args.insert("x-queue-type".into(), text("quorum"));
            args.insert("x-delivery-limit".into(), AMQPValue::LongInt(self.delivery_limit.min(i32::MAX as u32) as i32));
        }
        if self.single_active_consumer {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        ch.queue_declare(queue.into(), durable, args).await?;
        Ok(())
    }
}
