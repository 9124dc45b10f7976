//! A domain's serial console over a libvirt stream.

use virt::stream::Stream;
use virt::sys;

use super::{Libvirt, call, domain};
use crate::libvirt::{Console, Result};

pub(super) fn open(lv: &Libvirt, domain: &str) -> Result<Box<dyn Console>> {
    let d = domain::lookup(lv, domain, "find domain")?;
    let stream = Stream::new(&lv.conn, 0).map_err(call("open a stream to", domain))?;
    d.open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_FORCE)
        .map_err(call("attach to the console of", domain))?;
    Ok(Box::new(ConsoleStream {
        stream,
        domain: domain.to_string(),
    }))
}

/// A domain's console over a libvirt stream.
struct ConsoleStream {
    stream: Stream,
    domain: String,
}

impl Console for ConsoleStream {
    fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self
            .stream
            .recv(buf)
            .map_err(call("read the console of", &self.domain))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn send(&self, data: &[u8]) -> Result<()> {
        let mut sent = 0;
        while sent < data.len() {
            let n = self
                .stream
                .send(&data[sent..])
                .map_err(call("write to the console of", &self.domain))?;
            sent += usize::try_from(n).unwrap_or(0).max(1);
        }
        Ok(())
    }
}
