#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netmapd_fuzz_harness::kring_window(data);
});
