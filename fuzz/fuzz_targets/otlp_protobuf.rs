#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewind_collector::fuzz::otlp_protobuf(data));
