//! Storage: the lab's pools and their volumes, uploads and downloads over a libvirt stream.

use std::io::Read;

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

use super::{Libvirt, call, is};
use crate::libvirt::{LibvirtError, PoolFound, Result};

fn pool_handle(lv: &Libvirt, name: &str, action: &'static str) -> Result<StoragePool> {
    lv.conn
        .lookup_storage_pool_by_name(name)
        .map_err(call(action, name))
}

fn volume_handle(
    lv: &Libvirt,
    pool: &str,
    volume: &str,
    action: &'static str,
) -> Result<StorageVol> {
    let object = format!("{pool}/{volume}");
    let p = pool_handle(lv, pool, action)?;
    p.lookup_storage_vol_by_name(volume)
        .map_err(call(action, &object))
}

pub(super) fn pool(lv: &Libvirt, name: &str) -> Result<Option<PoolFound>> {
    let p = match lv.conn.lookup_storage_pool_by_name(name) {
        Ok(p) => p,
        Err(e) if is(&e, sys::VIR_ERR_NO_STORAGE_POOL) => return Ok(None),
        Err(e) => return Err(call("find pool", name)(e)),
    };
    let active = p
        .is_active()
        .map_err(call("read the state of pool", name))?;
    let xml = p.xml_desc(0).map_err(call("read the XML of pool", name))?;
    let path = xml
        .split_once("<path>")
        .and_then(|(_, r)| r.split_once("</path>"))
        .map_or(String::new(), |(p, _)| p.to_string());
    let volumes = if active {
        p.refresh(0).map_err(call("refresh pool", name))?;
        p.list_volumes()
            .map_err(call("list the volumes of pool", name))?
    } else {
        Vec::new()
    };
    // Read after the refresh: a dir pool's figures are its filesystem's at that moment.
    let info = p.info().map_err(call("read the size of pool", name))?;
    Ok(Some(PoolFound {
        name: name.to_string(),
        active,
        path,
        volumes,
        capacity: info.capacity,
        available: info.available,
    }))
}

pub(super) fn pools(lv: &Libvirt) -> Result<Vec<String>> {
    lv.conn
        .list_storage_pools()
        .map_err(call("list the pools of", &lv.uri))
}

pub(super) fn copy_volume(lv: &Libvirt, pool: &str, xml: &str, from: (&str, &str)) -> Result<()> {
    let source = volume_handle(lv, from.0, from.1, "find volume")?;
    let p = pool_handle(lv, pool, "find pool")?;
    StorageVol::create_xml_from(&p, xml, &source, 0)
        .map(drop)
        .map_err(call("copy a volume into pool", pool))
}

pub(super) fn create_pool(lv: &Libvirt, xml: &str) -> Result<()> {
    let p = lv
        .conn
        .define_storage_pool_xml(xml, 0)
        .map_err(call("define pool", &lv.uri))?;
    let name = p
        .name()
        .map_err(call("read the name of a pool on", &lv.uri))?;
    let started = p
        .build(0)
        .and_then(|_| p.create(0))
        .map_err(call("build and start pool", &name));
    if started.is_err() {
        let _ = p.undefine();
    }
    started.map(drop)
}

pub(super) fn start_pool(lv: &Libvirt, name: &str) -> Result<()> {
    pool_handle(lv, name, "find pool")?
        .create(0)
        .map(drop)
        .map_err(call("start pool", name))
}

pub(super) fn create_volume(lv: &Libvirt, pool: &str, xml: &str) -> Result<String> {
    let p = pool_handle(lv, pool, "find pool")?;
    let v = StorageVol::create_xml(&p, xml, 0).map_err(call("create a volume in pool", pool))?;
    v.path()
        .map_err(call("read the path of a volume in pool", pool))
}

pub(super) fn upload_volume(
    lv: &Libvirt,
    pool: &str,
    volume: &str,
    data: &mut dyn Read,
    len: u64,
) -> Result<()> {
    let object = format!("{pool}/{volume}");
    let v = volume_handle(lv, pool, volume, "find volume")?;
    let stream = Stream::new(&lv.conn, 0).map_err(call("open a stream to", &object))?;
    v.upload(&stream, 0, len, 0)
        .map_err(call("upload to volume", &object))?;
    match send_all(&stream, data, &object) {
        Ok(()) => stream
            .finish()
            .map_err(call("finish the upload to", &object)),
        Err(e) => {
            let _ = stream.abort();
            Err(e)
        }
    }
}

pub(super) fn read_volume(lv: &Libvirt, pool: &str, volume: &str, offset: u64) -> Result<Vec<u8>> {
    let object = format!("{pool}/{volume}");
    let v = volume_handle(lv, pool, volume, "find volume")?;
    let stream = Stream::new(&lv.conn, 0).map_err(call("open a stream to", &object))?;
    v.download(&stream, offset, 0, 0)
        .map_err(call("download volume", &object))?;
    let mut data = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match stream.recv(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..usize::try_from(n).unwrap_or(0)]),
            Err(e) => {
                let _ = stream.abort();
                return Err(call("read volume", &object)(e));
            }
        }
    }
    stream
        .finish()
        .map_err(call("finish reading volume", &object))?;
    Ok(data)
}

pub(super) fn delete_volume(lv: &Libvirt, pool: &str, volume: &str) -> Result<()> {
    let v = volume_handle(lv, pool, volume, "find volume")?;
    v.delete(0)
        .map_err(call("delete volume", &format!("{pool}/{volume}")))
}

pub(super) fn remove_pool(lv: &Libvirt, name: &str) -> Result<()> {
    let p = pool_handle(lv, name, "find pool")?;
    if p.is_active()
        .map_err(call("read the state of pool", name))?
    {
        p.destroy().map_err(call("stop pool", name))?;
    }
    p.delete(0)
        .map_err(call("delete the directory of pool", name))?;
    p.undefine().map_err(call("undefine pool", name))
}

fn send_all(stream: &Stream, data: &mut dyn Read, object: &str) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = data.read(&mut buf).map_err(|e| LibvirtError::Call {
            action: "read the data for",
            object: object.to_string(),
            message: e.to_string(),
            code: 0,
        })?;
        if n == 0 {
            return Ok(());
        }
        let mut sent = 0;
        while sent < n {
            let k = stream
                .send(&buf[sent..n])
                .map_err(call("send data to", object))?;
            sent += usize::try_from(k).unwrap_or(0).max(1).min(n - sent);
        }
    }
}
