//! Reading GGUF files (llama.cpp's format): header, metadata, tensor directory and tensor bytes.
//! Every count and offset is checked against the file size before use, so a corrupt header is
//! an error, never an allocation of absurd size or a panic.

use crate::error::{Error, Result};
use crate::model::tensor::DType;

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// ggml type ids of the formats we read.
pub const GGML_F32: u32 = 0;
pub const GGML_F16: u32 = 1;
pub const GGML_Q4_0: u32 = 2;
pub const GGML_Q8_0: u32 = 8;
pub const GGML_BF16: u32 = 30;
pub const GGML_Q4_K: u32 = 12;
pub const GGML_Q6_K: u32 = 14;

pub fn dtype_of_ggml(t: u32) -> Option<DType> {
    match t {
        GGML_F32 => Some(DType::F32),
        GGML_F16 => Some(DType::F16),
        GGML_Q4_0 => Some(DType::Q4_0),
        GGML_Q8_0 => Some(DType::Q8_0),
        GGML_BF16 => Some(DType::BF16),
        GGML_Q4_K => Some(DType::Q4K),
        GGML_Q6_K => Some(DType::Q6K),
        _ => None,
    }
}

pub fn ggml_of_dtype(d: DType) -> u32 {
    match d {
        DType::F32 => GGML_F32,
        DType::F16 => GGML_F16,
        DType::Q4_0 => GGML_Q4_0,
        DType::Q8_0 => GGML_Q8_0,
        DType::BF16 => GGML_BF16,
        DType::Q4K => GGML_Q4_K,
        DType::Q6K => GGML_Q6_K,
    }
}

fn ggml_type_name(t: u32) -> String {
    let known = [(3, "Q4_1"), (6, "Q5_0"), (7, "Q5_1"), (10, "Q2_K"), (11, "Q3_K"), (13, "Q5_K"), (15, "Q8_K"), (16, "IQ2_XXS"), (19, "IQ1_S"), (20, "IQ4_NL")];
    known.iter().find(|(id, _)| *id == t).map(|(_, n)| n.to_string()).unwrap_or_else(|| format!("type {t}"))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) if v >= 0 => Some(v as u64),
            Value::I16(v) if v >= 0 => Some(v as u64),
            Value::I32(v) if v >= 0 => Some(v as u64),
            Value::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short rendering for `unmask info` (long arrays are summarised).
    pub fn summary(&self) -> String {
        match self {
            Value::Str(s) if s.len() > 60 => format!("{:?}… ({} bytes)", &s[..s.char_indices().nth(50).map_or(s.len(), |c| c.0)], s.len()),
            Value::Str(s) => format!("{s:?}"),
            Value::Array(a) => format!("[{} values]", a.len()),
            Value::Bool(b) => b.to_string(),
            other => other.as_f64().map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: innermost (row length) first.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset from the start of the data section.
    pub offset: u64,
}

#[derive(Debug)]
pub struct Gguf<'a> {
    pub file: String,
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// The data section as far as the parsed bytes reach (all of it when the whole file was
    /// given; empty or partial when only the header was).
    pub data: &'a [u8],
    /// Where the data section starts in the file, and its length in the file.
    pub data_offset: u64,
    pub data_len: u64,
}

struct Cursor<'a, 'f> {
    file: &'f str,
    buf: &'a [u8],
    pos: usize,
    /// Size of the whole file (`buf` may be only its beginning).
    file_len: u64,
    /// Set when `buf` ended before the header did but the file goes on.
    short: bool,
}

impl<'a> Cursor<'a, '_> {
    fn err(&self, what: &str) -> Error {
        Error::model(self.file, format!("truncated or corrupt GGUF header: {what} at byte {} of {}", self.pos, self.file_len))
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            if (self.pos + n) as u64 <= self.file_len {
                self.short = true;
            }
            return Err(self.err(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    /// A count that must be satisfiable by the rest of the file, at `min_bytes` per item.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = self.file_len.saturating_sub(self.pos as u64);
        if n.saturating_mul(min_bytes as u64) > left {
            return Err(Error::model(self.file, format!("{what} = {n} is impossible for a file of {} bytes", self.file_len)));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(what, 1)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::model(self.file, format!("{what} is not UTF-8")))
    }
    fn value(&mut self, ty: u32, depth: u32) -> Result<Value> {
        let what = "metadata value";
        Ok(match ty {
            0 => Value::U8(self.take(1, what)?[0]),
            1 => Value::I8(self.take(1, what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap())),
            3 => Value::I16(i16::from_le_bytes(self.take(2, what)?.try_into().unwrap())),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(self.u32(what)? as i32),
            6 => Value::F32(f32::from_bits(self.u32(what)?)),
            7 => Value::Bool(self.take(1, what)?[0] != 0),
            8 => Value::Str(self.string("string length")?),
            9 if depth == 0 => {
                let inner = self.u32("array type")?;
                let n = self.count("array length", 1)?;
                let mut items = Vec::with_capacity(n.min(1 << 20).min(self.buf.len() - self.pos));
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(self.u64(what)? as i64),
            12 => Value::F64(f64::from_bits(self.u64(what)?)),
            other => return Err(Error::model(self.file, format!("unknown metadata value type {other}"))),
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header of a whole GGUF file held in memory.
    pub fn parse(file: &str, buf: &'a [u8]) -> Result<Gguf<'a>> {
        Self::parse_prefix(file, buf, buf.len() as u64)?.ok_or_else(|| Error::model(file, "truncated GGUF header"))
    }

    /// Parses the header from the first bytes of a file of `file_len` bytes, checking every
    /// count and tensor against the whole file. `Ok(None)`: `prefix` ends inside the header;
    /// call again with more bytes.
    pub fn parse_prefix(file: &str, prefix: &'a [u8], file_len: u64) -> Result<Option<Gguf<'a>>> {
        if file_len < 4 || (prefix.len() >= 4 && &prefix[..4] != GGUF_MAGIC) {
            return Err(Error::model(file, "not a GGUF file (the first 4 bytes are not \"GGUF\")"));
        }
        let mut c = Cursor { file, buf: prefix, pos: 0, file_len, short: false };
        match Self::parse_header(&mut c) {
            Ok(g) => Ok(Some(g)),
            Err(_) if c.short => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn parse_header(c: &mut Cursor<'a, '_>) -> Result<Gguf<'a>> {
        let file = c.file;
        c.take(4, "magic")?;
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::model(file, format!("GGUF version {version} is not supported (2 or 3 expected)")));
        }
        let n_tensors = c.count("tensor count", 24)?;
        let n_kv = c.count("metadata count", 12)?;
        // Counts are checked against the whole file, which may be far larger than the bytes in
        // hand: reserve only for entries those bytes can hold (the vectors grow past that).
        let mut metadata = Vec::with_capacity(n_kv.min((c.buf.len() - c.pos) / 12));
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let ty = c.u32("metadata type")?;
            let v = c.value(ty, 0)?;
            metadata.push((key, v));
        }
        let mut tensors = Vec::with_capacity(n_tensors.min((c.buf.len() - c.pos) / 24));
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let nd = c.u32("tensor rank")?;
            if nd == 0 || nd > 4 {
                return Err(Error::model(file, format!("tensor `{name}` has rank {nd} (1 to 4 expected)")));
            }
            let mut dims = Vec::with_capacity(nd as usize);
            for _ in 0..nd {
                dims.push(c.u64("tensor dimension")?);
            }
            let ggml_type = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            tensors.push(TensorInfo { name, dims, ggml_type, offset });
        }
        let mut g = Gguf { file: file.to_string(), version, metadata, tensors, data: &[], data_offset: 0, data_len: 0 };
        let align = g.get("general.alignment").and_then(Value::as_u64).unwrap_or(DEFAULT_ALIGNMENT);
        if align == 0 || align > 1 << 20 || !align.is_power_of_two() {
            return Err(Error::model(file, format!("general.alignment {align} is not a power of two")));
        }
        let start = (c.pos as u64).div_ceil(align) * align;
        if start > c.file_len && !g.tensors.is_empty() {
            return Err(Error::model(file, "truncated: the file ends before its tensor data"));
        }
        g.data_offset = start.min(c.file_len);
        g.data_len = c.file_len - g.data_offset;
        g.data = &c.buf[(g.data_offset as usize).min(c.buf.len())..];
        for t in &g.tensors {
            g.tensor_range(t)?;
        }
        Ok(g)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// (dtype, rows, cols, byte range in the data section) of a tensor, checked against the
    /// file's size.
    pub fn tensor_range(&self, t: &TensorInfo) -> Result<(DType, usize, usize, std::ops::Range<usize>)> {
        let bad = |p: String| Error::model(&self.file, format!("tensor `{}`: {p}", t.name));
        let dtype = dtype_of_ggml(t.ggml_type)
            .ok_or_else(|| bad(format!("{} weights are not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K are)", ggml_type_name(t.ggml_type))))?;
        let cols = t.dims[0];
        let rows = t.dims[1..].iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("dimensions overflow".into()))?;
        if cols == 0 || rows == 0 || cols > 1 << 32 || rows > 1 << 32 {
            return Err(bad(format!("absurd shape {:?}", t.dims)));
        }
        let row_bytes = dtype.row_bytes(cols as usize).ok_or_else(|| bad(format!("row length {cols} does not suit {}", dtype.name())))?;
        let size = (row_bytes as u64).checked_mul(rows).ok_or_else(|| bad("size overflows".into()))?;
        let end = t.offset.checked_add(size).ok_or_else(|| bad("offset overflows".into()))?;
        if end > self.data_len {
            return Err(bad(format!("data ends at byte {end} of the data section but the file holds only {} (truncated?)", self.data_len)));
        }
        Ok((dtype, rows as usize, cols as usize, t.offset as usize..end as usize))
    }
}
