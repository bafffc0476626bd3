//! The static files the lighttpd and apache2 interop tests serve (`tests/servers.rs`): a
//! [`Docroot`] is made at the start of a test, in a temp dir of its own, and every server
//! of the test serves it.
//!
//! The bodies are fixed by [`Doc::contents`], so a test compares what it read with them
//! byte for byte. The two large ones follow a pattern that repeats at no small stride, so a
//! lost, doubled or misplaced block shows.
#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// A file of the docroot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// `/b100`: 100 bytes.
    B100,
    /// `/m1`: 1 MiB.
    M1,
    /// `/m20`: 20 MiB.
    M20,
    /// `/`: `index.html`, served for the directory.
    Index,
}

impl Doc {
    /// Every file.
    pub const ALL: [Doc; 4] = [Doc::B100, Doc::M1, Doc::M20, Doc::Index];

    /// The request target that fetches it.
    pub fn target(self) -> &'static str {
        match self {
            Doc::B100 => "/b100",
            Doc::M1 => "/m1",
            Doc::M20 => "/m20",
            Doc::Index => "/",
        }
    }

    /// Its name in the docroot.
    fn file_name(self) -> &'static str {
        match self {
            Doc::B100 => "b100",
            Doc::M1 => "m1",
            Doc::M20 => "m20",
            Doc::Index => "index.html",
        }
    }

    /// Its bytes, made once per test process.
    pub fn contents(self) -> &'static [u8] {
        static M1: OnceLock<Vec<u8>> = OnceLock::new();
        static M20: OnceLock<Vec<u8>> = OnceLock::new();
        match self {
            Doc::B100 => {
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\
                           -_.:;,+*/=!?#&%@~^<>()[]{}|$0123456789"
            }
            Doc::M1 => M1.get_or_init(|| patterned(1 << 20, 1)),
            Doc::M20 => M20.get_or_init(|| patterned(20 << 20, 2)),
            Doc::Index => b"<!DOCTYPE html>\n<title>dugong</title>\n<p>index</p>\n",
        }
    }
}

/// `len` bytes of the pattern; `salt` makes files of the same length differ.
fn patterned(len: usize, salt: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = i + (salt << 32);
            // Period 251 against the 256-byte blocks counted by the upper bits.
            ((x % 251) as u8) ^ ((x >> 8) as u8) ^ ((x >> 16) as u8)
        })
        .collect()
}

/// The files of [`Doc::ALL`] in a temp dir, removed on drop. Readable by everyone: apache2
/// running as root serves it from workers running as `www-data`.
#[derive(Debug)]
pub struct Docroot {
    dir: tempfile::TempDir,
}

impl Docroot {
    /// Writes the files.
    pub fn new() -> Docroot {
        let dir = tempfile::Builder::new()
            .prefix("dugong-docroot-")
            .tempdir()
            .expect("temp dir");
        for doc in Doc::ALL {
            let file = dir.path().join(doc.file_name());
            fs::write(&file, doc.contents()).expect("write a docroot file");
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod file");
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
        Docroot { dir }
    }

    /// Where the files are.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[test]
fn b100_is_100_bytes_and_the_patterns_do_not_repeat_at_small_strides() {
    assert_eq!(Doc::B100.contents().len(), 100);
    let m1 = Doc::M1.contents();
    assert_eq!(m1.len(), 1 << 20);
    for stride in 1..=4096 {
        assert_ne!(m1[..4096], m1[stride..stride + 4096], "stride {stride}");
    }
    assert_ne!(m1, &Doc::M20.contents()[..1 << 20]);
}
