//! Appends events to a file, as line protocol or JSON, rotating by size.
//!
//! A write that fails (a full disk) leaves the file ending with its last
//! whole batch: the part written is cut off before the batch is retried.
//! When the path no longer names the file being written (it was moved, as
//! logrotate does, or deleted with its folder), the file is made again.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use vane_core::ByteSize;
use vane_core::prelude::*;

use super::{Format, OutPrecision, encode_batch};

/// Settings of the `file` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append to; its folder is created if missing.
    pub path: PathBuf,
    /// `influx` (line protocol) or `json`. Default: influx.
    #[serde(default)]
    pub format: Format,
    /// Timestamp precision of line protocol: ns, us, ms or s. Default: ns.
    #[serde(default)]
    pub precision: OutPrecision,
    /// Rotate when the file would grow past this size. Default: 100MiB.
    #[serde(default = "default_rotate")]
    pub rotate_size: ByteSize,
    /// Rotated files kept (`PATH.1` is the newest). Default: 5.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

fn default_rotate() -> ByteSize {
    ByteSize(100 << 20)
}

fn default_keep() -> usize {
    5
}

pub struct File {
    cfg: FileConfig,
    file: Option<tokio::fs::File>,
    /// Bytes of the file that hold whole batches.
    size: u64,
    /// The file's device and inode, to tell whether the path still names it.
    id: Option<(u64, u64)>,
    buf: String,
    /// Bytes of a partial last line cut off at the last open, to report.
    torn: u64,
}

fn id_of(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

fn numbered(p: &Path, n: usize) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// How much of a file of `len` bytes ends at a line boundary: a write cut
/// short (the agent killed in the middle of one) leaves part of a line at
/// the end, which the next line must not be glued to. Looks back 1 MiB at
/// most (no line vane writes is longer).
fn whole_lines(path: &Path, len: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    if len == 0 {
        return Ok(0);
    }
    let mut f = std::fs::File::open(path)?;
    let back = len.min(1 << 20);
    f.seek(SeekFrom::Start(len - back))?;
    let mut tail = Vec::with_capacity(back as usize);
    f.take(back).read_to_end(&mut tail)?;
    match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => Ok(len - back + i as u64 + 1),
        None if back == len => Ok(0),
        None => Ok(len),
    }
}

impl File {
    async fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", self.cfg.path.display())))?;
        let m = f.metadata().await?;
        if self.id == Some(id_of(&m)) && m.len() > self.size {
            // A batch written in part before: cut it off, so the retry
            // does not glue the whole batch to half a line.
            f.set_len(self.size).await?;
        } else {
            let (path, len) = (self.cfg.path.clone(), m.len());
            self.size =
                tokio::task::spawn_blocking(move || whole_lines(&path, len)).await.map_err(std::io::Error::other)??;
            if self.size < m.len() {
                f.set_len(self.size).await?;
                self.torn = m.len() - self.size;
            }
        }
        self.id = Some(id_of(&m));
        self.file = Some(f);
        Ok(())
    }

    fn report_torn(&mut self, ctx: &Context) {
        if self.torn > 0 {
            let n = std::mem::take(&mut self.torn);
            ctx.warn(format!(
                "{}: cut off {n} bytes of a line written in part (a write cut short)",
                self.cfg.path.display()
            ));
        }
    }

    /// Whether the path still names the file open for writing.
    async fn still_there(&self) -> bool {
        tokio::fs::metadata(&self.cfg.path).await.is_ok_and(|m| Some(id_of(&m)) == self.id)
    }

    async fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush().await?;
        }
        let p = &self.cfg.path;
        if self.cfg.keep == 0 {
            tokio::fs::remove_file(p).await?;
        } else {
            for n in (1..self.cfg.keep).rev() {
                let from = numbered(p, n);
                if tokio::fs::try_exists(&from).await.unwrap_or(false) {
                    tokio::fs::rename(&from, numbered(p, n + 1)).await?;
                }
            }
            tokio::fs::rename(p, numbered(p, 1)).await?;
        }
        self.open().await
    }
}

impl Sink for File {
    async fn prepare(&mut self, ctx: &Context) -> Result<(), SinkError> {
        self.open().await?;
        self.report_torn(ctx);
        Ok(())
    }

    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        encode_batch(ctx, &mut self.buf, batch, self.cfg.format, self.cfg.precision.into());
        if self.file.is_some() && !self.still_there().await {
            ctx.warn(format!("{} was moved or deleted; writing to it anew", self.cfg.path.display()));
            (self.file, self.id) = (None, None);
        }
        if self.file.is_none() {
            self.open().await?;
            self.report_torn(ctx);
        }
        let len = self.buf.len() as u64;
        if self.size > 0 && self.size + len > self.cfg.rotate_size.0 {
            self.rotate().await?;
        }
        let f = self.file.as_mut().expect("opened above");
        let written = async {
            f.write_all(self.buf.as_bytes()).await?;
            f.flush().await
        };
        if let Err(e) = written.await {
            // What this wrote is cut off now (a full disk lets a file
            // shrink), or else when the retry reopens it.
            let _ = f.set_len(self.size).await;
            self.file = None;
            return Err(SinkError::retry(format!("cannot write {}: {e}", self.cfg.path.display())));
        }
        self.size += len;
        Ok(())
    }

    async fn flush(&mut self, _: &Context) -> Result<(), SinkError> {
        if let Some(f) = self.file.as_mut() {
            f.flush().await?;
            f.sync_data().await?;
        }
        Ok(())
    }
}

impl Build for File {
    type Config = FileConfig;

    fn build(cfg: FileConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(File { cfg, file: None, size: 0, id: None, buf: String::new(), torn: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn appends_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.lp");
        let config = format!("path: {}\nprecision: s\nrotate_size: 26\nkeep: 2", path.display());
        let (h, mut s) = Harness::sink(&crate::registry(), "file", &config).unwrap();
        h.prepare(&mut *s).await.unwrap();
        for i in 0..5i64 {
            let e = Event::gauge("m", i).at(1_000_000_000 * (i + 1));
            h.send(&mut *s, &[e]).await.unwrap();
        }
        // Each line is 13 bytes ("m value=0i 1\n"): two lines fill a file of 26.
        let cur = std::fs::read_to_string(&path).unwrap();
        let one = std::fs::read_to_string(numbered(&path, 1)).unwrap();
        let two = std::fs::read_to_string(numbered(&path, 2)).unwrap();
        assert_eq!(cur, "m value=4i 5\n");
        assert_eq!(one, "m value=2i 3\nm value=3i 4\n");
        assert_eq!(two, "m value=0i 1\nm value=1i 2\n");
        assert!(!numbered(&path, 3).exists());
    }

    #[tokio::test]
    async fn a_line_written_in_part_before_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.lp");
        std::fs::write(&path, "m value=1i 1\nm val").unwrap();
        let config = format!("path: {}\nprecision: s", path.display());
        let (h, mut s) = Harness::sink(&crate::registry(), "file", &config).unwrap();
        h.prepare(&mut *s).await.unwrap();
        h.send(&mut *s, &[Event::gauge("m", 2i64).at(2_000_000_000)]).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "m value=1i 1\nm value=2i 2\n");
        assert_eq!(whole_lines(&path, 0).unwrap(), 0);
        std::fs::write(&path, "no newline at all").unwrap();
        assert_eq!(whole_lines(&path, 17).unwrap(), 0);
    }
}
