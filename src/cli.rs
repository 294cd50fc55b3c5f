//! The `vane` command line: run the agent, check a config, test one job or
//! one engine, list plugins. A custom build of vane (a crate registering its
//! own plugins) calls [`main_with`] with its registration function.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use vane_core::node::ConfigError;
use vane_core::registry::Registry;
use vane_runtime::Config;

#[derive(Parser)]
#[command(name = "vane", version, about = "monitoring agent and event processor")]
struct Cli {
    /// How much to log on standard error.
    #[arg(long, global = true, value_enum, default_value = "info")]
    log_level: LogLevel,
    /// How log lines are written: text for people, logfmt or json (one
    /// object a line) for journald and log shippers.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Logfmt,
    Json,
}

/// The config of a command run without `-c`: the system's, when installed.
const SYSTEM_CONFIG: &str = "/etc/vane/vane.yaml";

#[derive(Subcommand)]
enum Command {
    /// Run the agent until SIGTERM or SIGINT; SIGHUP (or `vane reload`)
    /// reads the config again and applies what changed.
    Run {
        /// Config file; `conf.d/*.yaml` beside it is merged. Default:
        /// /etc/vane/vane.yaml when it exists, else the built-in config
        /// (host metrics every 10 s, kept in a local history and shown on a
        /// host board at http://127.0.0.1:8686/, or at $VANE_HTTP).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Make the running agent read its config again: the config is checked
    /// here first, then the agent is sent SIGHUP through the pid file in
    /// its data_dir (DATA_DIR/vane.pid). Kept jobs go on untouched; changed
    /// ones are rebuilt; the agent logs what it added, changed, removed and
    /// kept. A config with errors is refused whole and the agent goes on.
    Reload {
        /// Config file (default: as `run`).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config without starting anything.
    Check {
        /// Config file (default: as `run`).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Poll one source once and print its events as line protocol.
    Test {
        /// The job's id.
        job: String,
        /// Config file (default: as `run`).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// List every plugin: name, role, description and config keys.
    Plugins,
    /// Print the built-in config (what `run` uses without a config file):
    /// a start for one's own.
    Config,
    /// Run one engine alone: events (line protocol or JSON lines) on standard
    /// input, its output on standard output. With --worker, run it as one
    /// of the workers of a bus-backed engine (`via:`): its events from its
    /// queue, its output to the engines and sinks its `next` names.
    Engine {
        /// The engine's id.
        engine: String,
        /// Config file (default: as `run`).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "influx")]
        format: OutFormat,
        /// Consume the engine's queue until stopped, as one of its workers.
        #[arg(long)]
        worker: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Influx,
    Json,
}

// Events are made on one worker thread and freed on another (the sink's);
// mimalloc handles that hand-off far more cheaply than glibc's malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vane's allocator policy ([`vane_runtime::alloc::tune`]).
fn tune_allocator() {
    vane_runtime::alloc::tune();
}

// The allocator is set up before `main` runs (the standard library
// allocates during its own start-up), so the memory policy must be set even
// earlier: in a constructor that runs before mimalloc's own (a lower
// `.init_array` priority runs first). Without it the first arena is
// already backed by 2 MiB pages (4 MiB of 12 at idle).
#[used]
#[unsafe(link_section = ".init_array.00100")]
static TUNE_ALLOCATOR_EARLY: extern "C" fn() = {
    extern "C" fn early() {
        tune_allocator();
    }
    early
};

fn registry(extra: fn(&mut Registry)) -> Registry {
    let mut r = Registry::new();
    vane_plugins::register(&mut r);
    extra(&mut r);
    r
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The AMQP client logs at warn what vane reports itself, with whole
    // messages in it (a returned message's body, byte by byte): its own
    // lines show from debug on.
    let clients = if level >= tracing::Level::DEBUG { level } else { tracing::Level::ERROR };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("lapin", clients)
        .with_target("amq_protocol", clients);
    let layer = || tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => {
            layer().with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).boxed()
        }
        LogFormat::Logfmt => layer().event_format(crate::log_format::Pairs::Logfmt).boxed(),
        LogFormat::Json => layer().event_format(crate::log_format::Pairs::Json).boxed(),
    };
    tracing_subscriber::registry().with(fmt).with(filter).init();
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("panic: {info}");
    }));
}

/// Prints config errors, one a line, each with its position.
fn print_errors(file: &Path, errors: &[ConfigError]) {
    for e in errors {
        if e.mark.is_some() {
            eprintln!("{e}");
        } else {
            eprintln!("{}: {e}", file.display());
        }
    }
    let n = errors.len();
    eprintln!("{n} error{} in the configuration", if n == 1 { "" } else { "s" });
}

/// Whether every disk buffer could be made under `data_dir`; prints each
/// that could not. (`vane run` starts the other sinks; that one waits.)
fn disks_writable(c: &Config) -> bool {
    use vane_runtime::buffer::{Kind, dir, writable};
    let mut ok = true;
    for j in c.sinks.iter().filter(|j| j.spec.buffer.kind == Kind::Disk) {
        if let Err(e) = writable(&dir(&c.data_dir, &j.id)) {
            eprintln!("{}: sink `{}`: its disk buffer cannot be made: {e}", j.mark, j.id);
            ok = false;
        }
    }
    ok
}

/// The config file a command reads: the one given, else the system's when
/// it exists, else none (the built-in config).
fn config_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| Some(PathBuf::from(SYSTEM_CONFIG)).filter(|p| p.exists()))
}

/// Whether every job builds; prints why one does not (an error), or why
/// one would be retried (a warning).
fn builds(c: &Config, registry: &Registry, path: Option<&Path>) -> bool {
    let built = runtime().block_on(async { vane_runtime::check::build_all(c, registry) });
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    if built.errors.is_empty() {
        return true;
    }
    print_errors(path.unwrap_or(Path::new("<built-in config>")), &built.errors);
    false
}

fn load(path: Option<&Path>, registry: &Registry) -> Result<Config, ExitCode> {
    let r = match path {
        Some(p) => vane_runtime::load(p, registry),
        None => vane_runtime::default_config(registry),
    };
    r.map_err(|errors| {
        print_errors(path.unwrap_or(Path::new("<built-in config>")), &errors);
        ExitCode::from(1)
    })
}

/// Runs the `vane` command with the built-in plugins and those `extra` registers.
pub fn main_with(extra: fn(&mut Registry)) -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log_level, cli.log_format);
    let registry = registry(extra);
    if let Err(problems) = registry.finish() {
        for p in problems.0 {
            eprintln!("error: {p}");
        }
        return ExitCode::from(1);
    }
    match cli.command {
        Command::Plugins => {
            print_plugins(&registry);
            ExitCode::SUCCESS
        }
        Command::Config => {
            print!("{}", vane_runtime::config::defaults::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Check { config } => {
            let config = config_path(config);
            match load(config.as_deref(), &registry) {
                Ok(c) if !disks_writable(&c) => ExitCode::from(1),
                Ok(c) if !builds(&c, &registry, config.as_deref()) => ExitCode::from(1),
                Ok(c) => {
                    println!(
                        "{}: ok ({} sources, {} engines, {} sinks, {} files)",
                        config.as_deref().unwrap_or(Path::new("<built-in config>")).display(),
                        c.sources.len(),
                        c.engines.len(),
                        c.sinks.len(),
                        c.files.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Test { job, config } => {
            let c = match load(config_path(config).as_deref(), &registry) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = runtime();
            match rt.block_on(vane_runtime::poll_once(&c, &registry, &job)) {
                Ok(events) => {
                    use std::io::Write;
                    let mut out = String::new();
                    for e in &events {
                        vane_core::lineproto::encode_into(&mut out, e, vane_core::lineproto::Precision::Nanoseconds);
                    }
                    let _ = std::io::stdout().write_all(out.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Engine { engine, config, format, worker } => {
            // An engine runs alone even when nothing in the config feeds it.
            let options = vane_runtime::config::Options { unfed_engines: true };
            let Some(config) = config_path(config) else {
                eprintln!("error: no config file: give one with -c (the built-in config has no engines)");
                return ExitCode::from(1);
            };
            let c = match vane_runtime::config::load_with(&config, &registry, options) {
                Ok(c) => c,
                Err(errors) => {
                    print_errors(&config, &errors);
                    return ExitCode::from(1);
                }
            };
            if worker {
                let c = match c.worker(&engine) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                };
                // A worker's config is made from the agent's: it is not re-read.
                return run_to_end(c, None, registry);
            }
            let format = match format {
                OutFormat::Influx => vane_runtime::standalone::Format::Influx,
                OutFormat::Json => vane_runtime::standalone::Format::Json,
            };
            let rt = runtime();
            let stdin = rt.block_on(async { tokio::io::stdin() });
            let r = rt.block_on(vane_runtime::standalone::run_engine_stdio(
                &c,
                Arc::new(registry),
                &engine,
                stdin,
                format,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr(),
            ));
            match r {
                Ok(s) => {
                    tracing::info!(
                        lines = s.lines,
                        events_in = s.events_in,
                        events_out = s.events_out,
                        bad_lines = s.bad_lines,
                        errors = s.errors,
                        "engine {engine}: input ended"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Run { config } => {
            let path = config_path(config);
            let c = match load(path.as_deref(), &registry) {
                Ok(c) => c,
                Err(code) => return code,
            };
            run_to_end(c, Some(Reread(path)), registry)
        }
        Command::Reload { config } => match load(config_path(config).as_deref(), &registry) {
            Ok(c) => crate::reload::signal_running(&c),
            Err(code) => code,
        },
    }
}

/// Where a running agent's config is read again from at SIGHUP: a file,
/// or (`None`) the built-in config.
struct Reread(Option<PathBuf>);

/// Runs the agent on `c` until a signal stops it; with `reread`, SIGHUP
/// reloads it and the agent writes its pid file for `vane reload`.
fn run_to_end(c: Config, reread: Option<Reread>, registry: Registry) -> ExitCode {
    let rt = runtime_with(c.agent.threads);
    let r = rt.block_on(run(c, reread, registry));
    // A plugin stuck in a blocking call must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    runtime_with(None)
}

fn runtime_with(threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().thread_name("vane").build().expect("a tokio runtime")
}

async fn run(config: Config, reread: Option<Reread>, registry: Registry) -> anyhow::Result<()> {
    let registry = Arc::new(registry);
    // Listen before starting anything, so an early signal is not fatal.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let reloads = match &reread {
        Some(Reread(path)) => {
            crate::reload::on_hangup(path.clone(), registry.clone(), config.agent.watch.unwrap_or(false))?
        }
        None => tokio::sync::mpsc::channel(1).1,
    };
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        // A second signal ends the process at once.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        });
    };
    // Listeners take a descriptor a connection: the usual soft limit of
    // 1,024 is soon spent.
    match vane_core::conns::raise_open_files() {
        Ok((before, after)) if after > before => {
            tracing::info!("open files: soft limit raised from {before} to {after}")
        }
        Ok((_, now)) => tracing::info!("open files: soft limit {now} (the hard limit)"),
        Err(e) => tracing::warn!("open files: cannot raise the soft limit: {e}"),
    }
    let pid = reread.map(|_| crate::reload::PidFile::write(&config));
    let ran = vane_runtime::run_reloading(config, registry, stop, reloads).await;
    if let Some(p) = pid {
        p.remove();
    }
    ran?;
    tracing::info!("stopped");
    Ok(())
}

fn print_plugins(registry: &Registry) {
    // Columns as wide as their longest entry.
    let name = registry.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let role = registry.iter().map(|p| p.describe_role().len()).max().unwrap_or(0);
    for p in registry.iter() {
        println!("{:<name$} {:<role$} {}", p.name, p.describe_role(), p.description);
        if !p.keys().is_empty() {
            println!("{:<name$} {:<role$} config: {}", "", "", p.keys().join(", "));
        }
    }
}
