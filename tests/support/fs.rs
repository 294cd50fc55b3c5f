//! File systems a test makes for itself (it runs as root, as CI does): a
//! small tmpfs to fill, and a loop-mounted image to freeze. Each is
//! unmounted when dropped. Without root, making one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(what: &str, c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} (the tests mount file systems and need root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs of `size` (`2m`) mounted at `DIR/mnt`.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_with(dir, &format!("size={size}"))
    }

    /// With mount options `opts` (`size=1m,ro`).
    pub fn mount_with(dir: &Path, opts: &str) -> Tmpfs {
        let path = dir.join("mnt");
        std::fs::create_dir_all(&path).unwrap();
        run("mount tmpfs", Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs"]).arg(&path));
        Tmpfs { path }
    }

    /// Mounts it again with `opts` (`rw`).
    pub fn remount(&self, opts: &str) {
        run("mount -o remount", Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.path));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// An ext4 image of `mib` MiB loop-mounted at `DIR/frozen`, which can be frozen.
pub struct Freezable {
    pub path: PathBuf,
}

/// The file system frozen: every write to it blocks until this is dropped.
/// Made after the agent that writes there, it is dropped first, so a test
/// that fails half-way thaws the disk before it reaps the agent.
pub struct Frozen<'a>(&'a Freezable);

impl Freezable {
    pub fn mount(dir: &Path, mib: u64) -> Freezable {
        let image = dir.join("fs.img");
        std::fs::File::create(&image).unwrap().set_len(mib << 20).unwrap();
        run("mkfs.ext4", Command::new("mkfs.ext4").arg("-q").arg(&image));
        let path = dir.join("frozen");
        std::fs::create_dir_all(&path).unwrap();
        run("mount -o loop", Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&path));
        Freezable { path }
    }

    pub fn freeze(&self) -> Frozen<'_> {
        run("fsfreeze -f", Command::new("fsfreeze").arg("-f").arg(&self.path));
        Frozen(self)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        run("fsfreeze -u", Command::new("fsfreeze").arg("-u").arg(&self.0.path));
    }
}

impl Drop for Freezable {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
