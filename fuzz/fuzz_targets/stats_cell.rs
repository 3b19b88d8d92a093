#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewind_storage::fuzz::stats_cell(data));
