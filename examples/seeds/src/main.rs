//! vane with the seed examples registered: the whole of a custom build.

fn main() -> std::process::ExitCode {
    vane::main_with(vane_seeds::register)
}
