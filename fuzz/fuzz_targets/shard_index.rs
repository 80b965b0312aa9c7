//! libFuzzer target `shard_index`: see `unmask_fuzz::entry::shard_index`.
#![no_main]

#[global_allocator]
static GUARD: unmask_fuzz::guard::Guard = unmask_fuzz::guard::Guard;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    unmask_fuzz::guard::input_len(data.len());
    unmask_fuzz::entry::shard_index(data);
});
