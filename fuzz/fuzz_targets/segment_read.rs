#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewind_storage::fuzz::segment_read(data));
