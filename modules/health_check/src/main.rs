//! The `health_check` binary: the module behind Ansible's binary-module protocol.

fn main() {
    ansible_module::main::<health_check::HealthCheck>()
}
