//! `secrets_gate`: an Ansible binary module (`secrets_gate ARGS_FILE`) and a command line for
//! pre-commit hooks and CI (`secrets_gate scan PATH...`). main only dispatches.

/// musl's malloc takes one global lock for every allocation, and the scan allocates for every
/// YAML scalar on each walker thread: with it, two threads on two idle cores were slower than
/// one (16 s against 11 s on 150,000 files; glibc's malloc: 3.8 s). mimalloc keeps a heap per
/// thread.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if argv.first().map(String::as_str) == Some("scan") {
        std::process::exit(secrets_gate::cli::run(&argv[1..]));
    }
    if let [probe, path] = argv.as_slice() {
        if probe == secrets_gate::mounts::PROBE_COMMAND {
            // The scan's throw-away look at a mount that may not answer (see mounts.rs).
            std::process::exit(secrets_gate::mounts::probe_main(path));
        }
    }
    secrets_gate::module::main(&argv)
}
