//! Host-side tensors: raw little-endian bytes in one of the weight formats the GPU kernels read
//! (F32, F16, BF16, Q8_0, Q4_0), with conversion to f32 (the CPU twins' view) and quantization.

use half::{bf16, f16};

/// Storage format of a weight matrix. Q8_0 and Q4_0 are GGUF's block layouts (32 values a block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
}

pub const QK: usize = 32;

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
        }
    }

    pub fn parse(s: &str) -> Option<DType> {
        match s.to_ascii_uppercase().as_str() {
            "F32" => Some(DType::F32),
            "F16" => Some(DType::F16),
            "BF16" => Some(DType::BF16),
            "Q8_0" => Some(DType::Q8_0),
            "Q4_0" => Some(DType::Q4_0),
            _ => None,
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Q8_0 | DType::Q4_0)
    }

    /// Bytes taken by one row of `cols` values, or None if `cols` does not suit the format
    /// (block formats need a multiple of 32) or the size overflows.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        match self {
            DType::F32 => cols.checked_mul(4),
            DType::F16 | DType::BF16 => cols.checked_mul(2),
            DType::Q8_0 if cols % QK == 0 => (cols / QK).checked_mul(34),
            DType::Q4_0 if cols % QK == 0 => (cols / QK).checked_mul(18),
            _ => None,
        }
    }
}

/// A 1-D or 2-D tensor on the host. 2-D tensors are `[rows, cols]` with `cols` contiguous
/// (for linear layers: `[out_features, in_features]`); a 1-D tensor has `rows == 1`.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

impl HostTensor {
    pub fn from_f32(rows: usize, cols: usize, values: &[f32]) -> Self {
        assert_eq!(values.len(), rows * cols);
        HostTensor { dtype: DType::F32, rows, cols, data: bytemuck::cast_slice(values).to_vec() }
    }

    /// Converts (quantizes) f32 values into `dtype`. Block formats need `cols % 32 == 0`.
    pub fn encode(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        assert_eq!(values.len(), rows * cols);
        dtype.row_bytes(cols)?;
        let data = match dtype {
            DType::F32 => bytemuck::cast_slice(values).to_vec(),
            DType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            DType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
            DType::Q8_0 => quantize_q8_0(values),
            DType::Q4_0 => quantize_q4_0(values),
        };
        Some(HostTensor { dtype, rows, cols, data })
    }

    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row_bytes(&self) -> usize {
        self.dtype.row_bytes(self.cols).expect("validated at construction")
    }

    /// All values as f32 (dequantized).
    pub fn to_f32(&self) -> Vec<f32> {
        decode(self.dtype, &self.data, self.len())
    }

    /// One row as f32 (dequantized).
    pub fn row_f32(&self, r: usize) -> Vec<f32> {
        let rb = self.row_bytes();
        decode(self.dtype, &self.data[r * rb..(r + 1) * rb], self.cols)
    }

    /// The same values in another format (through f32).
    pub fn convert(&self, dtype: DType) -> Option<HostTensor> {
        if dtype == self.dtype {
            return Some(self.clone());
        }
        HostTensor::encode(dtype, self.rows, self.cols, &self.to_f32())
    }

    /// Reorders whole rows: row `i` of the result is row `src[i]` of `self`.
    pub fn gather_rows(&self, src: &[usize]) -> HostTensor {
        let rb = self.row_bytes();
        let mut data = Vec::with_capacity(self.data.len());
        for &r in src {
            data.extend_from_slice(&self.data[r * rb..(r + 1) * rb]);
        }
        HostTensor { dtype: self.dtype, rows: src.len(), cols: self.cols, data }
    }
}

/// Decodes `n` values of `dtype` from little-endian bytes.
pub fn decode(dtype: DType, bytes: &[u8], n: usize) -> Vec<f32> {
    match dtype {
        DType::F32 => bytes.chunks_exact(4).take(n).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        DType::F16 => bytes.chunks_exact(2).take(n).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        DType::BF16 => bytes.chunks_exact(2).take(n).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        DType::Q8_0 => {
            let mut out = Vec::with_capacity(n);
            for blk in bytes.chunks_exact(34).take(n / QK) {
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                out.extend(blk[2..].iter().map(|&q| (q as i8) as f32 * d));
            }
            out
        }
        DType::Q4_0 => {
            let mut out = Vec::with_capacity(n);
            for blk in bytes.chunks_exact(18).take(n / QK) {
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                let q = &blk[2..];
                out.extend(q.iter().map(|&b| ((b & 0x0f) as i32 - 8) as f32 * d));
                out.extend(q.iter().map(|&b| ((b >> 4) as i32 - 8) as f32 * d));
            }
            out
        }
    }
}

/// Q8_0 as llama.cpp makes it: d = max|x| / 127, q = round(x / d).
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / QK * 34);
    for blk in values.chunks_exact(QK) {
        let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(blk.iter().map(|v| ((v * id).round() as i32).clamp(-128, 127) as i8 as u8));
    }
    out
}

/// Q4_0 as llama.cpp makes it: d = (value of largest magnitude) / -8, q = clamp(x/d + 8.5, 0, 15).
pub fn quantize_q4_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / QK * 18);
    for blk in values.chunks_exact(QK) {
        let max = blk.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
        for j in 0..QK / 2 {
            out.push(q(blk[j]) | (q(blk[j + QK / 2]) << 4));
        }
    }
    out
}
