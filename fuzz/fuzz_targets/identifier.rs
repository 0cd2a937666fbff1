#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mwlbridge_fuzz::identifier(data);
});
