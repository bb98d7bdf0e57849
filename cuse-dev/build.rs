//! Links libfuse3 (the CUSE low-level API) found with pkg-config, and checks that the
//! `struct fuse_file_info` fields the CUSE front end touches sit where `cuse/ffi.rs`
//! expects them.

use std::process::Command;

const MISSING: &str = "cuse-dev needs libfuse3 and its headers (the CUSE front end links \
libfuse3): install them with `apt-get install -y libfuse3-dev pkg-config`";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let pc = |args: &[&str]| -> Option<String> {
        let out = Command::new("pkg-config").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    println!("cargo::rustc-check-cfg=cfg(netmapd_no_libfuse3)");
    let Some(libs) = pc(&["--libs", "fuse3"]) else {
        // The FUSE front end needs no library; build without the CUSE one rather than
        // fail on a fresh machine. CI installs libfuse3-dev and tests CUSE in a VM.
        println!("cargo:warning={MISSING}; building WITHOUT the CUSE front end");
        println!("cargo:rustc-cfg=netmapd_no_libfuse3");
        return;
    };
    let cflags = pc(&["--cflags", "fuse3"]).unwrap_or_default();
    for tok in libs.split_whitespace() {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = tok.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
    check_layout(&cflags);
}

/// Compiles a few static assertions against the installed headers with the system C
/// compiler (skipped, with a warning, when there is none).
fn check_layout(cflags: &str) {
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let src = std::path::Path::new(&out_dir).join("fuse_layout.c");
    std::fs::write(
        &src,
        r#"#define FUSE_USE_VERSION 312
#include <stddef.h>
#include <fuse_lowlevel.h>
#include <cuse_lowlevel.h>
_Static_assert(offsetof(struct fuse_file_info, fh) == 16, "fuse_file_info.fh");
_Static_assert(offsetof(struct fuse_file_info, poll_events) == 32, "fuse_file_info.poll_events");
_Static_assert(offsetof(struct fuse_ctx, pid) == 8, "fuse_ctx.pid");
_Static_assert(sizeof(struct cuse_info) == 32, "cuse_info");
_Static_assert(sizeof(struct cuse_lowlevel_ops) == 11 * sizeof(void *), "cuse_lowlevel_ops");
_Static_assert(offsetof(struct cuse_lowlevel_ops, ioctl) == 9 * sizeof(void *), "ioctl op");
_Static_assert(FUSE_IOCTL_MAX_IOV == 256, "FUSE_IOCTL_MAX_IOV");
_Static_assert(CUSE_UNRESTRICTED_IOCTL == 1, "CUSE_UNRESTRICTED_IOCTL");
"#,
    )
    .expect("write layout check");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .arg("-fsyntax-only")
        .args(cflags.split_whitespace())
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(_) => panic!(
            "the installed libfuse3 headers do not match cuse-dev/src/cuse/ffi.rs (see the \
             compiler messages above); {MISSING}"
        ),
        Err(e) => println!("cargo:warning=no C compiler ({cc}: {e}); libfuse3 layout not checked"),
    }
}
