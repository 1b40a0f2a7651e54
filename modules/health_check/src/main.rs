//! The `health_check` binary: the module behind Ansible's binary-module protocol, and (with a
//! hidden first argument) the disk probe process the module starts for paths that may hang.

use health_check::checks::disk::probe;

fn main() {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().as_deref() == Some(std::ffi::OsStr::new(probe::SUBCOMMAND)) {
        std::process::exit(probe::serve(argv.collect()));
    }
    ansible_module::main::<health_check::HealthCheck>()
}
