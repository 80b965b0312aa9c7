//! Creating storage buffers within the adapter's limits, uploading, and reading back (async, so
//! that the same code runs in the browser where the device cannot be polled).

use super::Gpu;
use crate::error::{Error, Result};

impl Gpu {
    fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.max_binding() {
            return Err(Error::Limits(format!("{what} needs a {bytes}-byte buffer but the adapter binds at most {} bytes", self.max_binding())));
        }
        Ok(())
    }

    /// Every buffer is made here, so `bytes_created` counts them all.
    fn buffer(&self, what: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.created.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(what), size, usage, mapped_at_creation: false })
    }

    /// Bytes of all the buffers ever created on this device (the memory-plan tests compare
    /// its growth with the plan).
    pub fn bytes_created(&self) -> u64 {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes a buffer asked for `bytes` really gets: whole 4-byte words, at least 16 bytes (a
    /// kernel that reads its buffer as vec4s, as the CPU-lanes matmuls read x, needs one).
    pub fn padded(bytes: u64) -> u64 {
        bytes.max(16).div_ceil(4) * 4
    }

    /// A zeroed storage buffer (usable as copy source/destination too; on adapters whose
    /// CPU-lanes matmul may read x through uniform windows, as a uniform buffer too).
    pub fn storage(&self, what: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let bytes = Self::padded(bytes);
        self.check_size(what, bytes)?;
        let uniform = if self.windows_ok { wgpu::BufferUsages::UNIFORM } else { wgpu::BufferUsages::empty() };
        Ok(self.buffer(what, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC | uniform))
    }

    /// A uniform buffer written with `queue.write_buffer` (kernel parameters, noise).
    pub fn uniform(&self, what: &str, bytes: u64) -> wgpu::Buffer {
        self.buffer(what, Self::padded(bytes), wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST)
    }

    /// A storage buffer holding `data` (padded with zeros to whole 4-byte words).
    pub fn upload(&self, what: &str, data: &[u8]) -> Result<wgpu::Buffer> {
        let buf = self.storage(what, data.len() as u64)?;
        let whole = data.len() / 4 * 4;
        self.queue.write_buffer(&buf, 0, &data[..whole]);
        if whole < data.len() {
            let mut tail = data[whole..].to_vec();
            tail.resize(4, 0);
            self.queue.write_buffer(&buf, whole as u64, &tail);
        }
        Ok(buf)
    }

    pub fn upload_f32(&self, what: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        self.upload(what, bytemuck::cast_slice(data))
    }

    /// A mappable buffer that copies can land in for reading back.
    pub fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.buffer("readback", Self::padded(bytes), wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)
    }

    /// Submits `encoder` (whose last commands copy into `staging`), waits, and returns the first
    /// `bytes` bytes of `staging`.
    pub async fn submit_and_map(&self, encoder: wgpu::CommandEncoder, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        let mapped = rx.await.map_err(|_| Error::Gpu("the GPU never finished the readback".into()))?;
        self.take_fault()?;
        mapped.map_err(|e| Error::Gpu(format!("reading results back failed: {e}")))?;
        let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu(format!("reading results back failed: {e}")))?;
        let out = view[..bytes as usize].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Copies `(buffer, offset, length)` parts one after another into a staging buffer after the
    /// work already in `encoder`, submits, and returns their bytes.
    pub async fn submit_and_read(&self, mut encoder: wgpu::CommandEncoder, parts: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<u8>> {
        let total: u64 = parts.iter().map(|p| p.2).sum();
        let staging = self.staging(total);
        let mut at = 0;
        for &(buf, offset, len) in parts {
            encoder.copy_buffer_to_buffer(buf, offset, &staging, at, len);
            at += len;
        }
        self.submit_and_map(encoder, &staging, total).await
    }
}
