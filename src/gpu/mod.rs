//! The GPU side: device and adapter facts (`context`), buffers and readback (`buffers`), and the
//! WGSL kernels with one Rust launcher each (`kernels`; attention's in `attention`, the
//! matmul's and its split-K in `matmul`, the fused Q/K/V and gate/up launches in `matmul_fused`),
//! and the tiled layout's A/B switches (`switches`).

pub mod attention;
pub mod buffers;
pub mod context;
pub mod coop_emulation;
pub mod family_kernels;
pub mod kernel_source;
pub mod kernel_specs;
pub mod kernels;
pub mod matmul;
pub mod matmul_fused;
pub mod matmul_window;
pub mod probe;
pub mod switches;

pub use context::{AdapterReport, Gpu, Limits};
