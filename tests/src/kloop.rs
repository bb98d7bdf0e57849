//! A client in CSB mode whose sync loop runs until the process dies (`nm-client
//! kloop-hold`): the fault tests SIGKILL it while one of its threads is blocked inside
//! SYNC_KLOOP_START, the one netmap request that blocks for as long as the caller
//! wants.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netmap_abi::{
    set_cname, NmCsbAtok, NmCsbKtoa, NmreqHeader, NmreqOptCsb, NmreqOption, NmreqRegister,
    NmreqSyncKloopStart, NETMAP_REQ_OPT_CSB, NETMAP_REQ_REGISTER, NETMAP_REQ_SYNC_KLOOP_START,
    NR_EXCLUSIVE, NR_REG_ALL_NIC,
};

use crate::sys;

/// The two CSB arrays for one TX and one RX ring, 64-byte aligned as the kernel wants.
#[repr(C, align(64))]
struct CsbArrays {
    atok: [NmCsbAtok; 2],
    ktoa: [NmCsbKtoa; 2],
}

/// Registers `name` (one TX and one RX ring) exclusively in CSB mode, starts the
/// sync loop in a thread, prints "kloop-hold … loop running" once the daemon has
/// made a pass (ktoa's `kern_need_kick` drops to 0), then sleeps until killed.
pub fn hold(name: &str) -> Result<(), String> {
    let fd = sys::open_netmap().map_err(|e| e.to_string())?;
    // Lives as long as the process: the daemon reads and writes it from the loop.
    let csb: &'static mut CsbArrays = Box::leak(Box::new(CsbArrays {
        atok: [NmCsbAtok::default(); 2],
        ktoa: [NmCsbKtoa::default(); 2],
    }));
    let mut opt = NmreqOptCsb {
        nro_opt: NmreqOption {
            nro_next: 0,
            nro_reqtype: NETMAP_REQ_OPT_CSB,
            nro_status: 0,
            nro_size: std::mem::size_of::<NmreqOptCsb>() as u64,
        },
        csb_atok: csb.atok.as_ptr() as u64,
        csb_ktoa: csb.ktoa.as_ptr() as u64,
    };
    let mut reg = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_flags: NR_EXCLUSIVE,
        nr_tx_rings: 1,
        nr_rx_rings: 1,
        ..Default::default()
    };
    let mut hdr = NmreqHeader {
        nr_reqtype: NETMAP_REQ_REGISTER,
        nr_body: &mut reg as *mut NmreqRegister as u64,
        nr_options: &mut opt as *mut NmreqOptCsb as u64,
        ..Default::default()
    };
    set_cname(&mut hdr.nr_name, name);
    // SAFETY: nr_body and nr_options point to live structs of the sizes REGISTER and
    // the CSB option use; the option names the leaked, 64-byte aligned CSB arrays.
    unsafe { sys::nioctrl(fd.as_raw_fd(), &mut hdr) }
        .map_err(|e| format!("REGISTER {name:?} with CSB: {e}"))?;
    if opt.nro_opt.nro_status != 0 {
        return Err(format!("CSB option status {}", opt.nro_opt.nro_status));
    }
    let raw = fd.as_raw_fd();
    std::thread::spawn(move || {
        let mut start = NmreqSyncKloopStart {
            sleep_us: 100,
            pad1: 0,
        };
        let mut h = NmreqHeader {
            nr_reqtype: NETMAP_REQ_SYNC_KLOOP_START,
            nr_body: &mut start as *mut NmreqSyncKloopStart as u64,
            ..Default::default()
        };
        // SAFETY: nr_body points to a live NmreqSyncKloopStart; no options. The fd
        // stays open: the main thread never returns.
        let r = unsafe { sys::nioctrl(raw, &mut h) };
        eprintln!("kloop-hold: SYNC_KLOOP_START returned {r:?}");
    });
    let kick = &csb.ktoa[0].kern_need_kick as *const u32;
    let t0 = Instant::now();
    // SAFETY: `kick` points into the leaked arrays; the daemon writes them from
    // another process, hence the volatile read.
    while unsafe { std::ptr::read_volatile(kick) } != 0 {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("the sync loop never made a pass".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("kloop-hold {name}: loop running");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
