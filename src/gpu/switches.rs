//! The tiled layout's A/B switches of a `Gpu` that sessions read when they record a pass or are
//! made: fusion (`set_fuse`), f16 matmul inputs (`set_half_inputs`), the cooperative
//! matmuls' tiles (`set_short_coop`, `set_coop_tile`) and, for the CPU-lanes layout, x through
//! uniform windows (`set_x_windows`). The kernels' compile switches (loop
//! bounding, index clamps, register tile) are `context.rs`'s.

use super::Gpu;
use crate::error::{Error, Result};

impl Gpu {
    /// Chooses whether tiled passes fuse where they can: norms folded into matmuls, Q/K/V and
    /// gate/up each in one launch (`Gpu::fuses`; benchmarks, `UNMASK_FUSE=off`). Sessions read
    /// it when they record a pass.
    pub fn set_fuse(&self, on: bool) {
        self.fuse.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Chooses whether sessions on cooperative matrices keep the matmuls' inputs in f16
    /// (`Gpu::half_inputs`; tests, benchmarks, `UNMASK_HALF_INPUTS=off`). Sessions read it when
    /// they are made.
    pub fn set_half_inputs(&self, on: bool) {
        self.half.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Chooses whether cooperative matmuls of at most 32 rows take 32×128 tiles rather than
    /// 64×64 ones half of zero rows (tests, benchmarks, `UNMASK_COOP_SHORT=off`).
    pub fn set_short_coop(&self, on: bool) {
        self.short_coop.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `set_short_coop` is on.
    pub fn short_coop(&self) -> bool {
        self.short_coop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Chooses the columns of the cooperative matmuls' tiles for more than 32 rows: 64 (64×64,
    /// four subgroups, the default) or 128 (64×128, eight: an A/B for GPUs,
    /// `UNMASK_COOP_TILE=64x128`); refused where eight subgroups exceed a workgroup. Pipelines
    /// made before are dropped.
    pub fn set_coop_tile(&self, cols: usize) -> Result<()> {
        let fits = 8 * self.coop_lanes.max(1) <= self.limits.max_compute_invocations_per_workgroup;
        match cols {
            64 => self.set_compile_switch(&self.coop_wide, false),
            128 if fits => self.set_compile_switch(&self.coop_wide, true),
            128 => return Err(Error::Gpu(format!("{}: 64×128 cooperative tiles need 8 subgroups of {} in a workgroup", self.report.name, self.coop_lanes))),
            _ => return Err(Error::Input(format!("cooperative tiles {cols} wide: use 64 or 128"))),
        }
        Ok(())
    }

    /// Chooses whether the CPU-lanes matmul reads x through uniform windows where it can
    /// (`x_windows`; tests, benchmarks, `UNMASK_X_WINDOWS=off`); refused where the adapter has
    /// none. Sessions read it when they record a pass.
    pub fn set_x_windows(&self, on: bool) -> Result<()> {
        if on && !self.windows_ok {
            return Err(Error::Gpu(format!("{}: x windows are for native CPU adapters running the CPU-lanes matmuls", self.report.name)));
        }
        self.x_window.store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether the CPU-lanes matmul reads x through uniform windows where it can (matmul_window.rs):
    /// on native CPU adapters that run the CPU-lanes layout (lavapipe), unless `set_x_windows(false)`.
    pub fn x_windows(&self) -> bool {
        self.x_window.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `set_coop_tile(128)` is on.
    pub fn coop_wide(&self) -> bool {
        self.coop_wide.load(std::sync::atomic::Ordering::Relaxed)
    }
}
