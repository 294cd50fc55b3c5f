//! What the `amqp` sink and source share: the connection to a broker and
//! the form events take in a message.
//!
//! lapin's automatic recovery stays off. It does not restore everything
//! (prefetch, consumers) and fails the confirms pending at a reconnect, so
//! each plugin holds one connection and one channel, drops both on any
//! error, and lets the runtime's own backoff pace the next attempt: a
//! sink's send is retried, a source's service is restarted. Whatever was
//! not confirmed (sink) or not acknowledged (source) counts as not done.

pub mod canopsis;
pub mod connection;
pub mod lease;
pub mod message;
pub mod notification;
pub mod queue;
