//! Writing GGUF v3 files: used by the tests (models generated on the fly, full-size shapes as
//! sparse files) and by model export.

use crate::model::gguf::{ggml_of_dtype, Value, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::model::tensor::{DType, HostTensor};

/// A tensor's bytes, or only its format and size (all zeros; written as a hole by `write_sparse`).
enum Data {
    Bytes(HostTensor),
    Zeros(DType, usize),
}

impl Data {
    fn dtype(&self) -> DType {
        match self {
            Data::Bytes(t) => t.dtype,
            Data::Zeros(d, _) => *d,
        }
    }
    fn len(&self) -> usize {
        match self {
            Data::Bytes(t) => t.data.len(),
            Data::Zeros(_, n) => *n,
        }
    }
}

#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, Data)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::Str(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::Str(s) => put_str(out, s),
        Value::Array(items) => {
            // An empty array is written as one of strings: llama.cpp checks the element type of
            // the lists it reads (a tokenizer without merges has `tokenizer.ggml.merges = []`,
            // which it refuses as an array of integers).
            let inner = items.first().map(type_id).unwrap_or(8);
            out.extend_from_slice(&inner.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

impl GgufWriter {
    pub fn meta(&mut self, key: &str, v: Value) -> &mut Self {
        self.metadata.push((key.to_string(), v));
        self
    }

    /// Adds a tensor; `dims` are in GGUF order (row length first). Its dtype must match `t`.
    pub fn tensor(&mut self, name: &str, dims: Vec<u64>, t: HostTensor) -> &mut Self {
        self.tensors.push((name.to_string(), dims, Data::Bytes(t)));
        self
    }

    /// Adds an all-zero tensor of `dims` (GGUF order) in `dtype` without holding its bytes.
    pub fn zeros(&mut self, name: &str, dims: Vec<u64>, dtype: DType) -> &mut Self {
        let rows: u64 = dims[1..].iter().product();
        let bytes = dtype.row_bytes(dims[0] as usize).expect("row length suits the format") * rows as usize;
        self.tensors.push((name.to_string(), dims, Data::Zeros(dtype, bytes)));
        self
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        for (_, _, t) in &self.tensors {
            match t {
                Data::Bytes(t) => out.extend_from_slice(&t.data),
                Data::Zeros(_, n) => out.resize(out.len() + n, 0),
            }
            out.resize(out.len().div_ceil(DEFAULT_ALIGNMENT as usize) * DEFAULT_ALIGNMENT as usize, 0);
        }
        out
    }

    /// Writes the file, leaving the zero tensors as holes (a sparse file on most filesystems),
    /// so a full-size model shape costs only the bytes of its real tensors.
    pub fn write_sparse(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let align = DEFAULT_ALIGNMENT;
        let mut f = std::fs::File::create(path)?;
        let header = self.header();
        f.write_all(&header)?;
        let mut at = header.len() as u64;
        for (_, _, t) in &self.tensors {
            if let Data::Bytes(t) = t {
                f.seek(SeekFrom::Start(at))?;
                f.write_all(&t.data)?;
            }
            at = (at + t.len() as u64).div_ceil(align) * align;
        }
        f.set_len(at)?;
        Ok(())
    }

    /// Everything before the tensor data (padded to the alignment).
    fn header(&self) -> Vec<u8> {
        let align = DEFAULT_ALIGNMENT as usize;
        let mut out = Vec::new();
        out.extend_from_slice(GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0usize;
        for (name, dims, t) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ggml_of_dtype(t.dtype()).to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset += t.len().div_ceil(align) * align;
        }
        out.resize(out.len().div_ceil(align) * align, 0);
        out
    }
}
