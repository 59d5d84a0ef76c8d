//! A writer that counts bytes, to check each streamed safetensors tensor against its declared size.

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
