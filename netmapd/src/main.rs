//! netmapd — netmap without the kernel module.
//!
//! `netmapd` serves `/dev/netmap` from userspace with netmap's real ioctl/mmap ABI, so
//! unmodified netmap programs run on any Linux box with FUSE passthrough (Linux ≥ 6.9);
//! older kernels get a CUSE character device plus the LD_PRELOAD library for `mmap`.
//! See the `cuse-dev` crate for the request path and the control plane.
#![deny(unsafe_code)]

mod daemon;
mod exec;
mod status;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Serve /dev/netmap from userspace (FUSE passthrough, or CUSE + the preload library), so stock netmap binaries run
/// without the netmap kernel module.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    opts: DaemonOpts,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run CMD in a private mount namespace with its own /dev/netmap served by a fresh
    /// daemon; exit with CMD's status. Nothing is left on the host afterwards.
    Exec {
        /// Do not preload the in-process data path library (also: NETMAPD_NO_PRELOAD=1);
        /// every sync and poll then goes through the daemon.
        #[arg(long)]
        no_preload: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print pool occupancy, descriptors and ports (with packets and drops) of the
    /// running daemon, as a table.
    Status {
        /// JSON, for scripts.
        #[arg(long, conflicts_with = "keys")]
        json: bool,
        /// One key=value per line (the format of earlier versions), for shell scripts.
        #[arg(long)]
        keys: bool,
        /// Refresh every second, with packet rates per port.
        #[arg(long)]
        watch: bool,
        /// With --watch: stop after this many snapshots.
        #[arg(long, requires = "watch")]
        count: Option<u64>,
    },
    /// Print the path of the preload library (libnetmapd_preload.so), for running
    /// programs with LD_PRELOAD against a daemon started as a service.
    PreloadPath,
    /// Print the man page (roff), generated from these options (packaging).
    #[command(hide = true)]
    Man,
    /// Print a shell completion script (packaging).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

/// Which kernel interface serves the device.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// FUSE passthrough when the kernel offers it, else CUSE (+ the preload library).
    Auto,
    /// A FUSE regular file with passthrough (Linux >= 6.9, root).
    Fuse,
    /// A CUSE character device; programs need the preload library (its mmap).
    Cuse,
    /// No kernel device: a Unix socket (--socket) that the preload library connects a
    /// program's open("/dev/netmap") to. Runs as any user; programs must be preloaded.
    Preload,
}

/// Daemon options (also accepted by `exec`).
#[derive(Args, Debug, Clone)]
pub struct DaemonOpts {
    /// Path of the device file to serve.
    #[arg(long, default_value = "/dev/netmap", global = true)]
    pub path: PathBuf,
    /// Permission bits of the device file (octal).
    #[arg(long, default_value = "600", value_parser = parse_octal, global = true)]
    pub mode: u16,
    /// Group owning the device file (name or numeric gid).
    #[arg(long, default_value = "0", global = true)]
    pub group: String,
    /// Kernel interface: FUSE passthrough, CUSE (+ preload library), preload (no kernel
    /// device, any user), or auto (FUSE if the kernel offers passthrough, else CUSE; for
    /// `exec` also preload when it cannot mount).
    #[arg(long, value_enum, default_value_t = Frontend::Auto, global = true)]
    pub frontend: Frontend,
    /// CUSE: where the region is published for the preload library (the library's default, or
    /// its NETMAPD_REGION, must name the same file).
    #[arg(long, default_value = "/dev/shm/netmapd-region", global = true)]
    pub region_path: PathBuf,
    /// CUSE: device name registered with the kernel [default: --path relative to /dev].
    #[arg(long, global = true)]
    pub cuse_name: Option<String>,
    /// FUSE/CUSE worker threads (FUSE: each with its own /dev/fuse clone).
    #[arg(long, default_value_t = 2, global = true)]
    pub threads: usize,
    /// netmap_if objects in the global allocator.
    #[arg(long, default_value_t = 100, global = true)]
    pub if_num: u32,
    /// Size of a netmap_if object in bytes.
    #[arg(long, default_value_t = 1024, global = true)]
    pub if_size: u32,
    /// Ring objects in the global allocator.
    #[arg(long, default_value_t = 200, global = true)]
    pub ring_num: u32,
    /// Size of a ring object in bytes (limits slots per ring to (size-256)/16).
    #[arg(long, default_value_t = 36864, global = true)]
    pub ring_size: u32,
    /// Packet buffers in the global allocator.
    #[arg(long, default_value_t = 163840, global = true)]
    pub buf_num: u32,
    /// Size of a packet buffer in bytes.
    #[arg(long, default_value_t = 2048, global = true)]
    pub buf_size: u32,
    /// Slots per ring of NIC ports (0: 1024, netmap's generic-adapter default).
    #[arg(long, default_value_t = 0, global = true)]
    pub nic_slots: u32,
    /// Hardware ring pairs of NIC ports (0: one per interface queue).
    #[arg(long, default_value_t = 0, global = true)]
    pub nic_rings: u32,
    /// How NIC ports reach the interface: `xdp` (AF_XDP: frames taken from the stack,
    /// queue i = ring i, the buffer pool as UMEM; zero-copy where the driver can),
    /// `xdp-copy` (AF_XDP, copy mode only), `packet` (AF_PACKET: the stack keeps its
    /// frames), or `auto` (AF_XDP where it works, else AF_PACKET; the log says which).
    #[arg(long, default_value = "auto", global = true)]
    pub nic_backend: netmap_netif::nic::Backend,
    /// Back the region with a plain memfd instead of a tmpfs mounted huge=always.
    #[arg(long, global = true)]
    pub no_huge: bool,
    /// Preload front end: the socket clients connect to [default: $NETMAPD_SOCKET, else
    /// $XDG_RUNTIME_DIR/netmapd.sock, else /tmp/netmapd-UID.sock].
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Unix socket answering `netmapd status` [default: $NETMAPD_STATUS_SOCKET or /run/netmapd.sock].
    #[arg(long, global = true)]
    pub status_socket: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info,fuser=error", global = true)]
    pub log: String,
}

fn parse_octal(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode"))
}

impl DaemonOpts {
    pub fn status_socket(&self) -> PathBuf {
        self.status_socket
            .clone()
            .unwrap_or_else(status::default_socket)
    }
}

fn init_logging(filter: &str) {
    let f = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(f)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Status {
            json,
            keys,
            watch,
            count,
        }) => {
            let f = if json {
                status::Format::Json
            } else if keys {
                status::Format::Keys
            } else {
                status::Format::Table
            };
            status::print(&cli.opts.status_socket(), f, watch, count)
        }
        Some(Cmd::Man) => {
            let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("netmapd man: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "netmapd", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(Cmd::PreloadPath) => match exec::preload_library() {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("netmapd: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Cmd::Exec {
            no_preload,
            command,
        }) => {
            let preload = !no_preload
                && std::env::var("NETMAPD_NO_PRELOAD").map_or(true, |v| v.is_empty() || v == "0");
            // The namespace must be entered while the process is still single-threaded.
            let rootless = match exec::choose_namespace(&cli.opts) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("netmapd exec: {e}");
                    return ExitCode::from(125);
                }
            };
            init_logging(&cli.opts.log);
            exec::run(&cli.opts, &command, preload, rootless)
        }
        None => {
            init_logging(&cli.opts.log);
            match daemon::serve_until_signal(&cli.opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
