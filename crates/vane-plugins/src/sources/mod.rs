//! Built-in sources.

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "http")]
pub mod checks;
pub mod demo;
pub mod exec;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "http")]
pub mod http_intake;
#[cfg(feature = "http")]
pub mod influx_http;
pub mod internal;
mod lines;
pub mod listen;
#[cfg(feature = "http")]
pub mod otlp;
mod parts;
pub mod ping;
#[cfg(feature = "host")]
pub mod procstat;
#[cfg(feature = "http")]
pub mod remote_write;
#[cfg(feature = "http")]
pub mod riemann;
#[cfg(feature = "http")]
pub mod scrape;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(test)]
mod through_socket;
