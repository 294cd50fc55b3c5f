//! Reading the config: the main file, the `conf.d/*.yaml` files beside it
//! (merged in name order), and `${ENV}` values; then validation.

use std::path::{Path, PathBuf};

use vane_core::node::{ConfigError, from_node, yaml};
use vane_core::registry::Registry;

use super::Config;
use super::defaults::DEFAULT_CONFIG;
use super::schema::File;
use super::validate::{Options, validate};

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The largest config file read.
pub const MAX_FILE: u64 = 16 << 20;

/// Reads a config file: a regular file (a FIFO would block, a device never
/// end) of at most [`MAX_FILE`] bytes.
fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let t = f.metadata()?.file_type();
    if !t.is_file() {
        let what = match () {
            _ if t.is_dir() => "a folder",
            _ if t.is_fifo() => "a FIFO",
            _ if t.is_char_device() || t.is_block_device() => "a device",
            _ if t.is_socket() => "a socket",
            _ => "a special file",
        };
        return Err(std::io::Error::other(format!("it is {what}, not a regular file")));
    }
    let mut text = String::new();
    f.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "it is larger than {} MiB, the most a config file may be",
            MAX_FILE >> 20
        )));
    }
    Ok(text)
}

/// Reads a config file and the `conf.d/*.yaml` files beside it, then validates.
pub fn load(path: &Path, registry: &Registry) -> Result<Config, Vec<ConfigError>> {
    load_with(path, registry, Options::default())
}

/// [`load`], with what validation tolerates.
pub fn load_with(path: &Path, registry: &Registry, options: Options) -> Result<Config, Vec<ConfigError>> {
    let unreadable = |what: &Path, e: std::io::Error| {
        vec![ConfigError::new(None, "", format!("cannot read {}: {e}", what.display()))]
    };
    let text = read_file(path)
        .map_err(|e| vec![ConfigError::new(None, "", format!("cannot read config file {}: {e}", path.display()))])?;
    let mut texts = vec![(path.to_path_buf(), path.display().to_string(), text)];
    for p in confd_files(path).map_err(|(dir, e)| unreadable(&dir, e))? {
        let t = read_file(&p).map_err(|e| unreadable(&p, e))?;
        texts.push((p.clone(), p.display().to_string(), t));
    }
    from_texts_with(&texts, registry, &env_lookup, options)
}

/// The `conf.d/*.yaml` (and `*.yml`) files beside the main config file, in
/// the order they are read; none when there is no such folder. An error
/// names the folder that could not be listed.
pub fn confd_files(main: &Path) -> Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let confd = main.parent().unwrap_or_else(|| Path::new(".")).join("conf.d");
    if !confd.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&confd)
        .map_err(|e| (confd.clone(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses and validates the built-in default config.
pub fn default_config(registry: &Registry) -> Result<Config, Vec<ConfigError>> {
    let texts = [(PathBuf::from("<built-in>"), "<built-in config>".into(), DEFAULT_CONFIG.into())];
    from_texts(&texts, registry, &env_lookup)
}

/// Parses and validates config texts: (path, display name, text), main file first.
pub fn from_texts(
    texts: &[(PathBuf, String, String)],
    registry: &Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    from_texts_with(texts, registry, env, Options::default())
}

/// [`from_texts`], with what validation tolerates.
pub fn from_texts_with(
    texts: &[(PathBuf, String, String)],
    registry: &Registry,
    env: &dyn Fn(&str) -> Option<String>,
    options: Options,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for (i, (_, name, text)) in texts.iter().enumerate() {
        let parsed = yaml::parse(name, text, env).and_then(|node| from_node::<File>(&node, ""));
        match parsed {
            Ok(f) => {
                if let Some(a) = f.agent.as_ref().filter(|_| i > 0) {
                    errors.push(ConfigError::new(
                        Some(a.mark.clone()),
                        "agent",
                        "`agent` belongs in the main config file, not in conf.d",
                    ));
                }
                files.push(f);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut config = validate(files, registry, options)?;
    config.files = texts.iter().map(|(p, _, _)| p.clone()).collect();
    Ok(config)
}
