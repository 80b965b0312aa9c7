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
    /// GGUF k-quant: 256-value super-blocks, 4-bit values with 6-bit scales and mins (144 bytes).
    Q4K,
    /// GGUF k-quant: 256-value super-blocks, 6-bit values with 8-bit scales (210 bytes).
    Q6K,
}

pub const QK: usize = 32;
pub const QK_K: usize = 256;

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
            DType::Q4K => "Q4_K",
            DType::Q6K => "Q6_K",
        }
    }

    pub fn parse(s: &str) -> Option<DType> {
        match s.to_ascii_uppercase().as_str() {
            "F32" => Some(DType::F32),
            "F16" => Some(DType::F16),
            "BF16" => Some(DType::BF16),
            "Q8_0" => Some(DType::Q8_0),
            "Q4_0" => Some(DType::Q4_0),
            "Q4_K" => Some(DType::Q4K),
            "Q6_K" => Some(DType::Q6K),
            _ => None,
        }
    }

    /// Bytes taken by one row of `cols` values, or None if `cols` does not suit the format
    /// (block formats need a multiple of 32) or the size overflows.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        match self {
            DType::F32 => cols.checked_mul(4),
            DType::F16 | DType::BF16 => cols.checked_mul(2),
            DType::Q8_0 if cols.is_multiple_of(QK) => (cols / QK).checked_mul(34),
            DType::Q4_0 if cols.is_multiple_of(QK) => (cols / QK).checked_mul(18),
            DType::Q4K if cols.is_multiple_of(QK_K) => (cols / QK_K).checked_mul(144),
            DType::Q6K if cols.is_multiple_of(QK_K) => (cols / QK_K).checked_mul(210),
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
    /// K-quants are read, never written: None for them.
    pub fn encode(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        assert_eq!(values.len(), rows * cols);
        dtype.row_bytes(cols)?;
        if matches!(dtype, DType::Q4K | DType::Q6K) {
            return None;
        }
        let data = match dtype {
            DType::F32 => bytemuck::cast_slice(values).to_vec(),
            DType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            DType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
            DType::Q8_0 => quantize_q8_0(values),
            DType::Q4_0 => quantize_q4_0(values),
            DType::Q4K | DType::Q6K => unreachable!("returned above"),
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
        DType::Q4K => bytes.chunks_exact(144).take(n / QK_K).flat_map(dequantize_q4_k_block).collect(),
        DType::Q6K => bytes.chunks_exact(210).take(n / QK_K).flat_map(dequantize_q6_k_block).collect(),
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K super-block's 12 scale bytes.
fn q4_k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// One Q4_K super-block (144 bytes: f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins,
/// 128 bytes of nibbles) → 256 values. Each 64-value chunk takes 32 bytes: low nibbles are
/// its first 32 values (sub-block 2c), high nibbles the next 32 (sub-block 2c + 1);
/// value = d·scale·q − dmin·min.
pub fn dequantize_q4_k_block(b: &[u8]) -> Vec<f32> {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let dmin = f16::from_le_bytes([b[2], b[3]]).to_f32();
    let (scales, qs) = (&b[4..16], &b[16..144]);
    let mut out = Vec::with_capacity(QK_K);
    for c in 0..4 {
        let q = &qs[c * 32..c * 32 + 32];
        for (half, shift) in [(0, 0), (1, 4)] {
            let (sc, m) = q4_k_scale_min(2 * c + half, scales);
            let (d1, m1) = (d * sc as f32, dmin * m as f32);
            out.extend(q.iter().map(|&x| d1 * ((x >> shift) & 0xf) as f32 - m1));
        }
    }
    out
}

/// One Q6_K super-block (210 bytes: 128 bytes of low nibbles `ql`, 64 bytes of high 2-bit
/// pairs `qh`, 16 i8 scales, f16 d) → 256 values: value = d·scale·(q − 32) with q 6-bit.
pub fn dequantize_q6_k_block(b: &[u8]) -> Vec<f32> {
    let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16::from_le_bytes([b[208], b[209]]).to_f32();
    let mut out = vec![0f32; QK_K];
    for half in 0..2 {
        let (ql, qh, sc, y) = (&ql[half * 64..], &qh[half * 32..], &sc[half * 8..], &mut out[half * 128..]);
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
    out
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
