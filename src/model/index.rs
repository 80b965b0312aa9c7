//! A model's table of contents, read from file headers alone: the config, and for every weight
//! its format, shape and byte range in one of the model's files. Nothing here reads tensor
//! data, so a 16 GB checkpoint is indexed (and planned, see `plan.rs`) from a few megabytes.
//! The shape and presence of every tensor of the family's table (`arch.rs`) is checked here,
//! once, for both formats.

use crate::error::{Error, Result};
use crate::model::arch::RopeStyle;
use crate::model::arch::{Key, Role, Tensors};
use crate::model::config::ModelConfig;
use crate::model::gguf::Gguf;
use crate::model::source::ByteSource;
use crate::model::tensor::DType;

/// Where one tensor lives: file `file` of the source, bytes `offset .. offset + bytes()`.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub name: String,
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    pub file: usize,
    pub offset: u64,
    /// Stacked experts stored as separate tensors (HF layout): the (file, offset) of parts
    /// 1.., each of `rows / (1 + more.len())` rows like the first.
    pub more: Vec<(usize, u64)>,
}

impl TensorRef {
    /// Where rows `row0 .. row0 + rows` lie: (file, offset, bytes) per contiguous piece.
    pub fn spans(&self, row0: usize, rows: usize) -> Vec<(usize, u64, usize)> {
        let rb = self.row_bytes();
        let per_part = self.rows / (1 + self.more.len());
        let mut out = Vec::new();
        let mut r = row0;
        while r < row0 + rows {
            let part = r / per_part.max(1);
            let (file, base) = if part == 0 { (self.file, self.offset) } else { self.more[part - 1] };
            let n = (per_part * (part + 1)).min(row0 + rows) - r;
            out.push((file, base + ((r - part * per_part) * rb) as u64, n * rb));
            r += n;
        }
        out
    }

    pub fn row_bytes(&self) -> usize {
        self.dtype.row_bytes(self.cols).expect("checked when indexed")
    }

    pub fn bytes(&self) -> u64 {
        self.row_bytes() as u64 * self.rows as u64
    }
}

#[derive(Debug, Clone)]
pub struct ModelIndex {
    pub config: ModelConfig,
    /// The RoPE pairing that the stored q/k rows expect (NeoX for HF, interleaved for GGUF).
    pub rope: RopeStyle,
    /// "gguf" or "safetensors".
    pub format: &'static str,
    /// Every tensor of the family's table, checked against the config's shapes.
    pub tensors: Tensors<TensorRef>,
}

impl ModelIndex {
    /// Picks every tensor of the config's family through `get(name, parts)` (`parts`: for a
    /// stacked-experts tensor in HF files, the name of each expert's part), checking its shape
    /// and that every layer has one complete feed-forward (dense or MoE).
    fn assemble(
        config: ModelConfig,
        rope: RopeStyle,
        format: &'static str,
        file: &str,
        mut get: impl FnMut(&str, Option<Vec<String>>) -> Result<Option<TensorRef>>,
    ) -> Result<Self> {
        let family = config.family();
        let gguf = format == "gguf";
        let tensors = Tensors::assemble(
            family,
            config.n_layers,
            |key, spec| {
                let name = if spec.experts && !gguf { spec.hf_name_of_expert(key.layer, "*") } else { spec.name(gguf, key.layer) };
                let parts = (spec.experts && !gguf).then(|| (0..config.n_experts).map(|e| spec.expert_name(key.layer, e)).collect());
                let Some(mut t) = get(&name, parts)? else { return Ok(None) };
                let (rows, cols) = (config.dim(spec.shape[0]), config.dim(spec.shape[1]));
                if let (Some(f), false) = (spec.fused, gguf) {
                    // This tensor is some rows of a fused one: check the whole, then point at the part.
                    let whole = config.dim(f.whole);
                    if (t.rows, t.cols) != (whole, cols) {
                        return Err(Error::model(file, format!("tensor `{name}` has shape [{}, {}] but the config needs [{whole}, {cols}]", t.rows, t.cols)));
                    }
                    let skip: usize = f.skip.iter().map(|&d| config.dim(d)).sum();
                    t.offset += (skip * t.row_bytes()) as u64;
                    t.rows = rows;
                }
                if (t.rows, t.cols) != (rows, cols) {
                    return Err(Error::model(file, format!("tensor `{name}` has shape [{}, {}] but the config needs [{rows}, {cols}]", t.rows, t.cols)));
                }
                Ok(Some(t))
            },
            |key, spec| Error::model(file, format!("tensor `{}` is missing", spec.name(gguf, key.layer))),
        )?;
        for i in 0..config.n_layers {
            let has = |r: Role| tensors.get(Key::at(i, r)).is_some();
            let dense = [Role::Gate, Role::Up, Role::Down].map(has);
            let moe = [Role::Router, Role::GateExps, Role::UpExps, Role::DownExps].map(has);
            let shared = [Role::SharedGate, Role::SharedUp, Role::SharedDown].map(has);
            let complete = |v: &[bool]| v.iter().all(|&b| b);
            let empty = |v: &[bool]| v.iter().all(|&b| !b);
            let ok = (complete(&dense) && empty(&moe)) || (empty(&dense) && complete(&moe) && config.is_moe());
            if !ok {
                return Err(Error::model(
                    file,
                    format!(
                        "layer {i} has no complete feed-forward: it needs gate/up/down, or (in a model with experts) a router and stacked gate/up/down experts"
                    ),
                ));
            }
            // Shared experts (all three, as the config counts them) only beside routed ones.
            let want_shared = complete(&moe) && config.n_shared_experts > 0;
            if !(if want_shared { complete(&shared) } else { empty(&shared) }) {
                return Err(Error::model(
                    file,
                    format!(
                        "layer {i}: the config has {} shared experts but the layer {} shared_experts gate/up/down",
                        config.n_shared_experts,
                        if want_shared { "lacks some of the" } else { "has" }
                    ),
                ));
            }
            if has(Role::ExpertBias) && !complete(&moe) {
                return Err(Error::model(file, format!("layer {i} has an expert bias but no experts")));
            }
        }
        Ok(ModelIndex { config, rope, format, tensors })
    }

    /// From a parsed GGUF header (`g.data` is not needed); the tensors are in file 0.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let config = ModelConfig::from_gguf(g)?;
        let get = |name: &str| -> Result<Option<TensorRef>> {
            let Some(info) = g.tensor(name) else { return Ok(None) };
            let (dtype, rows, cols, range) = g.tensor_range(info)?;
            Ok(Some(TensorRef { name: name.to_string(), dtype, rows, cols, file: 0, offset: g.data_offset + range.start as u64, more: vec![] }))
        };
        let rope = config.family().gguf_rope;
        Self::assemble(config, rope, "gguf", &g.file, |name, _| get(name))
    }

    /// From a HF config.json and the parsed headers of its safetensors shards (file i = shard i).
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[SafetensorsHeader]) -> Result<Self> {
        let config = ModelConfig::from_hf_json(config_file, config_json)?;
        let rope = config.family().hf_rope;
        let get = |name: &str| -> Result<Option<TensorRef>> {
            let alt = name.strip_prefix("model.").unwrap_or(name);
            for (i, shard) in shards.iter().enumerate() {
                let Some(t) = shard.tensors.iter().find(|t| t.name == name || t.name == alt) else { continue };
                let dtype = t.dtype(&shard.file)?;
                let (rows, cols) = match t.shape[..] {
                    [n] => (1, n),
                    [r, c] => (r, c),
                    ref s => return Err(Error::model(&shard.file, format!("tensor `{name}` has rank {} (1 or 2 expected)", s.len()))),
                };
                let want = dtype.row_bytes(cols).and_then(|rb| (rb as u64).checked_mul(rows as u64));
                if want != Some(t.end - t.start) {
                    return Err(Error::model(
                        &shard.file,
                        format!("not a valid safetensors file: tensor `{name}` of shape {:?} holds {} bytes", t.shape, t.end - t.start),
                    ));
                }
                return Ok(Some(TensorRef { name: name.to_string(), dtype, rows, cols, file: i, offset: shard.data_offset + t.start, more: vec![] }));
            }
            Ok(None)
        };
        // Stacked experts: one tensor per expert, all of one format and shape.
        let experts = config.n_experts;
        let get_stacked = |name: &str, parts: Option<Vec<String>>| -> Result<Option<TensorRef>> {
            let Some(parts) = parts else { return get(name) };
            let mut first: Option<TensorRef> = None;
            for part in &parts {
                let Some(t) = get(part)? else {
                    return match first {
                        None => Ok(None),
                        Some(_) => Err(Error::model(shards.first().map(|s| s.file.as_str()).unwrap_or(""), format!("tensor `{part}` is missing"))),
                    };
                };
                match &mut first {
                    None => first = Some(t),
                    Some(f) => {
                        if (f.dtype, f.rows, f.cols) != (t.dtype, t.rows, t.cols) {
                            return Err(Error::model(&t.name, format!("expert tensors differ: `{}` is {:?} [{}, {}]", f.name, f.dtype, f.rows, f.cols)));
                        }
                        f.more.push((t.file, t.offset));
                    }
                }
            }
            Ok(first.map(|mut f| {
                f.rows *= experts;
                f.name = name.to_string();
                f
            }))
        };
        let file = shards.first().map(|s| s.file.as_str()).unwrap_or("model.safetensors");
        Self::assemble(config, rope, "safetensors", file, get_stacked)
    }

    /// Bytes of tensor data in the files.
    pub fn file_bytes(&self) -> u64 {
        self.tensors.iter().map(|(_, _, t)| t.bytes()).sum()
    }

    /// Number of parameters (values in every tensor), as llama.cpp's `model params`.
    pub fn params(&self) -> u64 {
        self.tensors.iter().map(|(_, _, t)| t.rows as u64 * t.cols as u64).sum()
    }
}

/// One tensor entry of a safetensors header.
#[derive(Debug, Clone)]
pub struct SafetensorsEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Byte range relative to the data section.
    pub start: u64,
    pub end: u64,
}

impl SafetensorsEntry {
    /// Its dtype, one of those the engine reads (`file` names the shard in the error).
    pub fn dtype(&self, file: &str) -> Result<DType> {
        match self.dtype.as_str() {
            "F32" => Ok(DType::F32),
            "F16" => Ok(DType::F16),
            "BF16" => Ok(DType::BF16),
            other => Err(Error::model(file, format!("tensor `{}` has dtype {other}; F32, F16 and BF16 are supported", self.name))),
        }
    }
}

/// The parsed header of one safetensors file.
#[derive(Debug, Clone)]
pub struct SafetensorsHeader {
    pub file: String,
    pub data_offset: u64,
    pub tensors: Vec<SafetensorsEntry>,
}

/// Largest safetensors JSON header we accept (the format's own reference reader uses 100 MB).
const MAX_ST_HEADER: u64 = 100_000_000;

impl SafetensorsHeader {
    /// Bytes from the start of the file needed to parse the header, from its first 8 bytes.
    pub fn header_len(file: &str, first8: &[u8], file_len: u64) -> Result<u64> {
        let bad = |p: String| Error::model(file, format!("not a valid safetensors file: {p}"));
        if file_len < 8 || first8.len() < 8 {
            return Err(bad(format!("{file_len} bytes is shorter than the 8-byte header length")));
        }
        let n = u64::from_le_bytes(first8[..8].try_into().expect("8 bytes"));
        if n > MAX_ST_HEADER || n > file_len - 8 {
            return Err(bad(format!("header length {n} does not fit a file of {file_len} bytes")));
        }
        Ok(8 + n)
    }

    /// Parses the header from the file's first `header_len` bytes, checking every tensor's
    /// range against the file size.
    pub fn parse(file: &str, head: &[u8], file_len: u64) -> Result<Self> {
        let bad = |p: String| Error::model(file, format!("not a valid safetensors file: {p}"));
        let data_offset = Self::header_len(file, head, file_len)?;
        if (head.len() as u64) < data_offset {
            return Err(bad("the header is cut short".into()));
        }
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&head[8..data_offset as usize]).map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
        let data_len = file_len - data_offset;
        let mut tensors = Vec::with_capacity(json.len());
        for (name, v) in json {
            if name == "__metadata__" {
                continue;
            }
            let dtype = v.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad(format!("tensor `{name}` has no dtype")))?.to_string();
            let shape = v
                .get("shape")
                .and_then(|s| s.as_array())
                .and_then(|a| a.iter().map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok())).collect::<Option<Vec<_>>>())
                .ok_or_else(|| bad(format!("tensor `{name}` has no valid shape")))?;
            let (start, end) = match v.get("data_offsets").and_then(|o| o.as_array()).map(|a| a.as_slice()) {
                Some([s, e]) => (s.as_u64(), e.as_u64()),
                _ => (None, None),
            };
            let (Some(start), Some(end)) = (start, end) else { return Err(bad(format!("tensor `{name}` has no valid data_offsets"))) };
            if start > end || end > data_len {
                return Err(bad(format!("tensor `{name}` spans bytes {start}..{end} of a data section of {data_len} bytes (truncated?)")));
            }
            tensors.push(SafetensorsEntry { name, dtype, shape, start, end });
        }
        Ok(SafetensorsHeader { file: file.to_string(), data_offset, tensors })
    }
}

/// The model in `src`: a GGUF file (file 0), or safetensors shards (files 0..) with
/// `config` = (its file name, config.json text). Returns the index and, for a GGUF, what came
/// of its embedded tokenizer: none, one, or the reason it cannot be used (the model itself is
/// still usable: a tokenizer.json beside it, or token ids, will do). Reads only the headers.
pub async fn read_index<S: ByteSource>(src: &S, config: Option<(&str, &str)>) -> Result<(ModelIndex, Result<Option<crate::model::TextTokenizer>>)> {
    match config {
        None => {
            let head = read_gguf_head(src).await?;
            let g = Gguf::parse_prefix(&src.name(0), &head, src.len(0))?.ok_or_else(|| Error::model(src.name(0), "truncated GGUF header"))?;
            let index = ModelIndex::from_gguf(&g)?;
            Ok((index, crate::model::gguf_tokenizer::tokenizer_from_gguf(&g)))
        }
        Some((config_file, config_json)) => Ok((ModelIndex::from_safetensors(config_file, config_json, &read_safetensors_headers(src).await?)?, Ok(None))),
    }
}

/// The first bytes of GGUF file 0 of `src`, enough for its whole header to parse.
pub async fn read_gguf_head<S: ByteSource>(src: &S) -> Result<Vec<u8>> {
    if src.files() == 0 {
        return Err(Error::Input("no model file given".into()));
    }
    let (name, len) = (src.name(0), src.len(0));
    // Grow the prefix until the header parses (llama.cpp's tokenizer metadata alone can be
    // several MB).
    let mut want = len.min(1 << 20);
    loop {
        let head = src.read(0, 0, want as usize).await?;
        if Gguf::parse_prefix(&name, &head, len)?.is_some() {
            return Ok(head);
        }
        if want >= len {
            return Err(Error::model(name, "truncated GGUF header"));
        }
        want = len.min(want.saturating_mul(4));
    }
}

/// The parsed headers of every safetensors shard of `src`.
pub async fn read_safetensors_headers<S: ByteSource>(src: &S) -> Result<Vec<SafetensorsHeader>> {
    let mut headers = Vec::new();
    for i in 0..src.files() {
        let (name, len) = (src.name(i), src.len(i));
        let first = src.read(i, 0, len.min(8) as usize).await?;
        let n = SafetensorsHeader::header_len(&name, &first, len)?;
        let head = src.read(i, 0, n as usize).await?;
        headers.push(SafetensorsHeader::parse(&name, &head, len)?);
    }
    Ok(headers)
}
