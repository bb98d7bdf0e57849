//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) and the hand-made seeds through
//! the same harness functions the cargo-fuzz targets call (`fuzz/harness`), without
//! cargo-fuzz or libFuzzer: every input that ever found a bug or new coverage stays a
//! regression test of the normal `cargo test` run.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).expect("corpus file");
            (p, b)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

fn replay(target: &str, f: fn(&[u8])) {
    let files = corpus(target);
    for (p, b) in &files {
        if let Err(e) = std::panic::catch_unwind(|| f(b)) {
            std::panic::resume_unwind(Box::new(format!(
                "{target}: {} fails: {:?}",
                p.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
            )));
        }
    }
    // The seeds as the generator makes them now (the files may be stale).
    let seeds = netmapd_fuzz_harness::seeds::all();
    for (t, name, b) in seeds.iter().filter(|s| s.0 == target) {
        assert!(
            files
                .iter()
                .any(|(p, _)| p.ends_with(format!("seed-{name}"))),
            "{t}: seed-{name} missing from the corpus (run the gen_corpus example)"
        );
        f(b);
    }
}

#[test]
fn nmreq_ctrl_corpus() {
    replay("nmreq_ctrl", netmapd_fuzz_harness::nmreq_ctrl);
}

#[test]
fn options_chain_corpus() {
    replay("options_chain", netmapd_fuzz_harness::options_chain);
}

#[test]
fn ring_sync_corpus() {
    replay("ring_sync", netmapd_fuzz_harness::ring_sync);
}

#[test]
fn kring_window_corpus() {
    replay("kring_window", netmapd_fuzz_harness::kring_window);
}

/// The seeds exercise what they claim: valid requests succeed through the fake caller
/// memory, so the harness really reaches the registration and info paths. (REGISTER
/// consumes only the OFFSETS option; the second option of the two-option chain gets
/// EOPNOTSUPP as in the kernel, after the whole chain was copied in and out.)
#[test]
fn seeds_are_valid_requests() {
    use netmapd_fuzz_harness::Errno;
    for (name, want) in [
        ("register-pipe", Ok(())),
        ("register-pipe-twice-2fds-sync", Ok(())),
        ("register-null", Ok(())),
        ("port-info-get", Ok(())),
        ("pools-info-get", Ok(())),
        ("register-2-options", Err(Errno(libc::EOPNOTSUPP))),
        ("register-option-loop", Err(Errno(libc::EINVAL))), // the option is seen twice
        ("legacy-regif-pipe", Ok(())),
    ] {
        let (_, b) = netmapd_fuzz_harness::seeds::nmreq_ctrl()
            .into_iter()
            .find(|s| s.0 == name)
            .expect("seed");
        assert_eq!(
            netmapd_fuzz_harness::nmreq_ctrl_result(&b),
            want,
            "seed {name}"
        );
    }
}
