//! A fast 64-bit checksum for dump files: it detects torn or corrupted
//! files before `hnsw_rs` parses them (its loader panics on bad input). It is
//! not a cryptographic hash and does not need to be.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Streaming checksum over bytes, eight at a time.
#[derive(Debug, Clone)]
pub(crate) struct Checksum {
    h: u64,
    pending: [u8; 8],
    pending_len: usize,
    total: u64,
}

impl Checksum {
    pub(crate) fn new() -> Self {
        Self {
            h: 0x243F_6A88_85A3_08D3,
            pending: [0; 8],
            pending_len: 0,
            total: 0,
        }
    }

    fn word(&mut self, w: u64) {
        // each step is a bijection of `h` for a fixed `w`, so changing any
        // single word always changes the result
        self.h = (self.h.rotate_left(23) ^ w).wrapping_mul(K);
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.pending_len = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    pub(crate) fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            let mut w = [0u8; 8];
            w[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            self.word(u64::from_le_bytes(w));
        }
        let total = self.total;
        self.word(total);
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h
    }

    pub(crate) fn of(bytes: &[u8]) -> u64 {
        let mut c = Self::new();
        c.update(bytes);
        c.finish()
    }
}

/// Length and checksum of a file, read in 1 MiB chunks.
pub(crate) fn file_checksum(path: &Path) -> io::Result<(u64, u64)> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut c = Checksum::new();
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        c.update(&buf[..n]);
    }
    Ok((len, c.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_sum() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = Checksum::of(&data);
        for split in [1usize, 3, 8, 13, 999] {
            let mut c = Checksum::new();
            for part in data.chunks(split) {
                c.update(part);
            }
            assert_eq!(c.finish(), whole, "split {split}");
        }
    }

    #[test]
    fn any_single_bit_flip_changes_the_sum() {
        let data = vec![0xA5u8; 64];
        let base = Checksum::of(&data);
        for i in 0..data.len() {
            for bit in 0..8 {
                let mut d = data.clone();
                d[i] ^= 1 << bit;
                assert_ne!(Checksum::of(&d), base);
            }
        }
        assert_ne!(Checksum::of(&data[..63]), base);
    }
}
