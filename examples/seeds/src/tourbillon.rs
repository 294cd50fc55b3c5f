//! Tourbillon's plugin, a function of the agent: wait until the agent is
//! ready, read the plugin's own config (its `conf.d/NAME.yaml` file), then
//! collect in a loop while the agent runs. Tourbillon's agent creates the
//! plugin's InfluxDB database and retention policy; in vane that is the
//! `influxdb` sink's `prepare`, configured in the same conf.d file, and the
//! agent is ready once it is done. Tourbillon's two shapes, a coroutine and
//! a thread target, are one `async fn` here.

use vane_core::prelude::*;

pub async fn tourbillon(every: vane_core::Duration, ctx: Context) -> Result<(), ServiceError> {
    ctx.ready().await;
    while ctx.sleep(every.get()).await {
        ctx.emit(Event::gauge("tourbillon_loop", 1)).await;
    }
    Ok(())
}
