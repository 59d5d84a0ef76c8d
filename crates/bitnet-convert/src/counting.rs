//! A writer that counts bytes, to check each streamed tensor against its declared size.

use std::io::{self, Write};

/// Forwards to `inner` and counts the bytes written.
pub(crate) struct Counting<'a> {
    pub inner: &'a mut dyn Write,
    pub count: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write `n` zero bytes.
pub(crate) fn write_zeros(w: &mut dyn Write, n: u64) -> io::Result<()> {
    const Z: [u8; 64] = [0; 64];
    let mut left = n;
    while left > 0 {
        let k = left.min(64);
        w.write_all(&Z[..k as usize])?;
        left -= k;
    }
    Ok(())
}
