//! The `vane` binary's code as a library, so a custom build can add its own
//! plugins: `fn main() -> ExitCode { vane::main_with(my_crate::register) }`.

mod cli;
mod log_format;
mod reload;

pub use cli::main_with;
