//! The `vane` command with the built-in plugins.

fn main() -> std::process::ExitCode {
    vane::main_with(|_| {})
}
