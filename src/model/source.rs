//! Where a model's bytes come from, read on demand by byte range: files on disk (natively),
//! byte slices in memory, or (in the page) a JavaScript callback that slices a `File`/`Blob`.
//! Loading reads headers first and then one tensor piece at a time, so a model never has to
//! fit in host memory, which matters most for wasm32's 4 GB address space.

use crate::error::{Error, Result};

/// A model's files, read by byte range.
#[allow(async_fn_in_trait)] // used through generics only, never as a trait object
pub trait ByteSource {
    /// How many files (GGUF: one; safetensors: one per shard).
    fn files(&self) -> usize;
    /// A name for messages.
    fn name(&self, file: usize) -> String;
    /// Size of file `file` in bytes.
    fn len(&self, file: usize) -> u64;
    /// Bytes `offset .. offset + len` of file `file` (an error if the file is shorter).
    async fn read(&self, file: usize, offset: u64, len: usize) -> Result<Vec<u8>>;
}

/// Files already in memory (tests, and anything that has the bytes anyway).
pub struct SliceSource<'a> {
    pub files: Vec<(String, &'a [u8])>,
}

impl ByteSource for SliceSource<'_> {
    fn files(&self) -> usize {
        self.files.len()
    }
    fn name(&self, file: usize) -> String {
        self.files[file].0.clone()
    }
    fn len(&self, file: usize) -> u64 {
        self.files[file].1.len() as u64
    }
    async fn read(&self, file: usize, offset: u64, len: usize) -> Result<Vec<u8>> {
        let (name, bytes) = &self.files[file];
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= bytes.len() => Ok(bytes[start..end].to_vec()),
            _ => Err(Error::model(name.as_str(), format!("truncated: bytes {offset}..{} asked of a file of {}", offset + len as u64, bytes.len()))),
        }
    }
}

/// Files on disk, read with positioned reads (natively).
#[cfg(not(target_arch = "wasm32"))]
pub struct FileSource {
    files: Vec<(std::path::PathBuf, std::sync::Mutex<std::fs::File>, u64)>,
}

#[cfg(not(target_arch = "wasm32"))]
impl FileSource {
    pub fn open(paths: &[std::path::PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        for p in paths {
            let f = std::fs::File::open(p).map_err(|e| Error::model(p.display().to_string(), format!("cannot read: {e}")))?;
            let len = f.metadata().map_err(|e| Error::model(p.display().to_string(), format!("cannot read: {e}")))?.len();
            files.push((p.clone(), std::sync::Mutex::new(f), len));
        }
        Ok(FileSource { files })
    }

    pub fn paths(&self) -> Vec<(std::path::PathBuf, u64)> {
        self.files.iter().map(|(p, _, n)| (p.clone(), *n)).collect()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ByteSource for FileSource {
    fn files(&self) -> usize {
        self.files.len()
    }
    fn name(&self, file: usize) -> String {
        self.files[file].0.display().to_string()
    }
    fn len(&self, file: usize) -> u64 {
        self.files[file].2
    }
    async fn read(&self, file: usize, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let (path, f, size) = &self.files[file];
        let err = |m: String| Error::model(path.display().to_string(), m);
        if offset.saturating_add(len as u64) > *size {
            return Err(err(format!("truncated: bytes {offset}..{} asked of a file of {size}", offset.saturating_add(len as u64))));
        }
        let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_exact(&mut buf)).map_err(|e| match f.metadata() {
            // The file shrank (or was rewritten) since it was opened: say so, not "failed to fill".
            Ok(m) if m.len() != *size => err(format!("the file changed while it was being read: it was {size} bytes when opened and is {} now", m.len())),
            _ => err(format!("cannot read: {e}")),
        })?;
        Ok(buf)
    }
}
