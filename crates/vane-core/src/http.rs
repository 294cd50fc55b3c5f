//! What a plugin serves on the agent's HTTP port (`Context::serve`): a GET
//! route's handler and its response.

use std::sync::Arc;

/// What an HTTP route answers.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A GET route on the agent's HTTP port.
pub type HttpHandler = Arc<dyn Fn() -> HttpResponse + Send + Sync>;
