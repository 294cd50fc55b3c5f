//! The limit the bus benchmark compares vane with: a plain loop on the same
//! client (lapin) and broker settings, with the same guarantees — persistent
//! messages published with confirms (a window of `WINDOW` in flight, as a
//! vane batch), consumed from a quorum queue with a prefetch of 1000 and
//! acknowledged one by one. Prints the events per second, end to end.
//!
//!     cargo run --release -p vane-plugins --example amqp_loop -- URL N

use std::future::poll_fn;
use std::pin::Pin;

use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

const WINDOW: usize = 1000;

#[tokio::main]
async fn main() -> Result<(), lapin::Error> {
    let args: Vec<String> = std::env::args().collect();
    let (url, n): (&str, usize) = (&args[1], args[2].parse().expect("N: a number"));
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let publish = conn.create_channel().await?;
    let consume = conn.create_channel().await?;
    publish.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(5));
    let durable = lapin::options::QueueDeclareOptions { durable: true, ..Default::default() };
    publish.queue_declare("bench.plain".into(), durable, args).await?;
    consume.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut consumer = consume
        .basic_consume("bench.plain".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let started = std::time::Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            let Some(d) = poll_fn(|cx| Pin::new(&mut consumer).poll_next(cx)).await else { break };
            d?.acker.ack(BasicAckOptions::default()).await?;
            got += 1;
        }
        Ok::<usize, lapin::Error>(got)
    });
    let props = BasicProperties::default().with_delivery_mode(2).with_content_type("application/x-ndjson".into());
    let body = br#"{"name":"job","time":1796187069562158610,"host":"vm","tags":{"src":"a1"},"fields":{"seq":12345},"kind":"gauge"}"#;
    let mut sent = 0;
    while sent < n {
        let mut pending = Vec::with_capacity(WINDOW);
        for _ in 0..WINDOW.min(n - sent) {
            let c = publish
                .basic_publish("".into(), "bench.plain".into(), BasicPublishOptions::default(), body, props.clone())
                .await?;
            pending.push(c);
        }
        sent += pending.len();
        for c in pending {
            assert!(c.await?.is_ack(), "the broker refused a message");
        }
    }
    let got = reader.await.expect("the reader ran")?;
    let secs = started.elapsed().as_secs_f64();
    println!("{got} {secs:.3} {:.0}", got as f64 / secs);
    Ok(())
}
