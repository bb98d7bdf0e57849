#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netmapd_fuzz_harness::options_chain(data);
});
