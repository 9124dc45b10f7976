//! The host behind the connection: memory it can give guests, the emulator's capabilities.

use virt::connect::Connect;
use virt::sys;

use super::{Libvirt, call, is};
use crate::libvirt::{NodeSize, Result};

pub(super) fn free_memory(lv: &Libvirt) -> Result<Option<u64>> {
    // Some drivers (the test driver) cannot tell: then there is nothing to check against.
    Ok(available_memory(&lv.conn))
}

pub(super) fn node_size(lv: &Libvirt) -> Result<NodeSize> {
    let info = lv
        .conn
        .node_info()
        .map_err(call("read the size of", &lv.uri))?;
    Ok(NodeSize {
        memory_bytes: info.memory * 1024,
        cpus: info.cpus,
    })
}

pub(super) fn probe_capabilities(lv: &Libvirt) -> Result<()> {
    let action = "read the emulator capabilities of";
    lv.conn.capabilities().map_err(call(action, &lv.uri))?;
    match lv.conn.domain_capabilities(None, None, None, None, 0) {
        Err(e) if !is(&e, sys::VIR_ERR_NO_SUPPORT) => Err(call(action, &lv.uri)(e)),
        _ => Ok(()),
    }
}

/// Memory the host can give guests: free + buffers + page cache, summed over all cells
/// (`virNodeGetMemoryStats`; the virt crate has no wrapper). `virNodeGetFreeMemory` is not
/// used: it counts only NUMA cells' free pages and misses memory outside them.
fn available_memory(conn: &Connect) -> Option<u64> {
    let cells = sys::VIR_NODE_MEMORY_STATS_ALL_CELLS;
    let mut n: std::os::raw::c_int = 0;
    // SAFETY: a null params array with nparams 0 asks libvirt for the number of fields.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(conn.as_ptr(), cells, std::ptr::null_mut(), &mut n, 0)
    };
    if rc < 0 || n <= 0 {
        return None;
    }
    let empty = sys::_virNodeMemoryStats {
        field: [0; 80],
        value: 0,
    };
    let mut params = vec![empty; n as usize];
    // SAFETY: params has room for n entries, as libvirt said.
    let rc =
        unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), cells, params.as_mut_ptr(), &mut n, 0) };
    if rc < 0 {
        return None;
    }
    let kib: u64 = params[..n as usize]
        .iter()
        .filter(|p| {
            // SAFETY: libvirt fills `field` with a NUL-terminated name.
            let name = unsafe { std::ffi::CStr::from_ptr(p.field.as_ptr()) };
            matches!(name.to_bytes(), b"free" | b"buffers" | b"cached")
        })
        .map(|p| p.value)
        .sum();
    Some(kib * 1024)
}
