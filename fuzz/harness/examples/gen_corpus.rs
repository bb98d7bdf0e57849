//! Writes the hand-made seeds to `fuzz/corpus/<target>/seed-<name>`.
//! Run: `cargo run --manifest-path fuzz/Cargo.toml -p netmapd-fuzz-harness --example gen_corpus`

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (target, name, bytes) in netmapd_fuzz_harness::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
}
