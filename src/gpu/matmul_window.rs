//! The CPU-lanes matmul reading x through uniform-buffer windows (`Kernel::Matmul::xw`): where
//! its launches are planned (`x_windows`) and made (`Gpu::cpu_lanes_matmul`).
//! Why: lavapipe (Mesa 22's llvmpipe) reads a storage buffer one lane at a time, a bounds check
//! and a branch for every component, while a uniform buffer read at per-lane addresses is one
//! branch-free gather; the matmul's x reads are most of its loads, so reading x as a uniform
//! buffer made lavapipe's matmuls ~1.2× faster (BENCHMARKS.md). A uniform binding holds at most
//! `X_WINDOW_BYTES`, so a launch binds the window of x its rows lie in (bindings 2 and 4, the same
//! bytes), and a matmul whose rows span several windows takes a launch for each (sessions plan
//! for them: `max_windows`). Where a window cannot hold a block of the kernel's rows (k over
//! ~1000) or x's buffer is smaller than a window, the matmul reads x from its storage binding.

use super::kernel_specs::{cpu_vec4_rows, cpu_vec4_weights, CPU_LANES_ROWS};
use super::kernels::{Kernel, KernelVariant, Launch};
use super::matmul::{MatmulIo, MatmulParams, TiledCore};
use super::Gpu;
use crate::error::Result;
use crate::model::DType;

/// Bytes of x one launch binds as a uniform buffer: `matmul_cpu_lanes.wgsl`'s `x4` array of
/// 4096 vec4s (WebGPU's default `maxUniformBufferBindingSize`, and lavapipe's).
pub const X_WINDOW_BYTES: u64 = 65536;

/// The most launches a windowed matmul of `m` rows takes (a session plans for them:
/// `graph::Op::launches`): every window but the last holds whole blocks of `CPU_LANES_ROWS`.
pub fn max_windows(m: usize) -> usize {
    m.div_ceil(CPU_LANES_ROWS)
}

/// One launch of a windowed matmul: x rows `row0 .. row0 + rows` (and the same output rows),
/// bound from byte `byte` of x's buffer, `X_WINDOW_BYTES` long; row `row0` starts at element
/// `x_offset` of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XWindow {
    pub row0: usize,
    pub rows: usize,
    pub byte: u64,
    pub x_offset: usize,
}

/// The windows of a matmul over `m` rows of `k` f32s from element `x_offset` of a buffer of
/// `size` bytes, each window starting at a multiple of `align` bytes (the adapter's binding
/// offset alignment) and every launch but the last taking whole blocks of `CPU_LANES_ROWS` rows
/// (so at most `max_windows(m)`); None where x is not read as vec4s (`cpu_vec4_rows`), the buffer
/// is smaller than a window, or a block of rows does not fit one (k over ~1000).
pub fn x_windows(m: usize, k: usize, x_offset: usize, size: u64, align: u64) -> Option<Vec<XWindow>> {
    if m == 0 || k == 0 || !cpu_vec4_rows(k, x_offset) || size < X_WINDOW_BYTES || align == 0 || !align.is_multiple_of(16) {
        return None;
    }
    let row_bytes = 4 * k as u64;
    // The last window that lies inside the buffer.
    let last = (size - X_WINDOW_BYTES) / align * align;
    let mut out = Vec::new();
    let mut row0 = 0;
    while row0 < m {
        let start = 4 * (x_offset as u64 + (row0 * k) as u64);
        let byte = (start / align * align).min(last);
        // Rows from `start` that end inside the window (none where start lies past it).
        let fit = ((byte + X_WINDOW_BYTES).saturating_sub(start) / row_bytes) as usize;
        let left = m - row0;
        let rows = if left <= fit { left } else { fit / CPU_LANES_ROWS * CPU_LANES_ROWS };
        if rows == 0 {
            return None;
        }
        out.push(XWindow { row0, rows, byte, x_offset: ((start - byte) / 4) as usize });
        row0 += rows;
    }
    Some(out)
}

impl Gpu {
    /// The launches of a CPU-lanes matmul (`Gpu::matmul`, which checked `io`; `core`: its
    /// workgroup tile): one a window of x where `x_windows` is on, x is f32 and `x_windows` finds
    /// windows, else one reading x from its storage binding.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cpu_lanes_matmul(
        &self,
        dtype: DType,
        w: &wgpu::Buffer,
        m: usize,
        n: usize,
        k: usize,
        io: &MatmulIo<'_>,
        core: TiledCore,
    ) -> Result<Vec<Launch>> {
        let (x4, w4) = (cpu_vec4_rows(k, io.x_offset), cpu_vec4_weights(dtype, k));
        let kernel = |xw| Kernel::Matmul { dtype, variant: KernelVariant::CpuLanes, short: false, x: io.x_type(), x4, w4, xw };
        let buffers = [w, io.x, io.y, io.x, w];
        let align = self.limits.min_uniform_buffer_offset_alignment.max(self.limits.min_storage_buffer_offset_alignment) as u64;
        let windows = if self.x_windows() && !io.x_f16 { x_windows(m, k, io.x_offset, io.x.size(), align) } else { None };
        let Some(windows) = windows else {
            let p = MatmulParams::new(m, n, k, io, 0)?;
            return Ok(vec![self.launch(kernel(false), &p, &buffers, core.groups(m, n, 1)?)?]);
        };
        let mut out = Vec::with_capacity(windows.len());
        for win in windows {
            let part = MatmulIo { x_offset: win.x_offset, y_offset: io.y_offset + win.row0 * io.y_stride, ..*io };
            let p = MatmulParams::new(win.rows, n, k, &part, 0)?;
            let launch = self.launch(kernel(true), &p, &buffers, core.groups(win.rows, n, 1)?)?;
            out.push(launch.with_range(1, win.byte, X_WINDOW_BYTES).with_range(3, win.byte, X_WINDOW_BYTES));
        }
        Ok(out)
    }
}
