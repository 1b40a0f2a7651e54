//! The `idempotence_probe` binary: the module behind Ansible's binary-module protocol.

fn main() {
    ansible_module::main::<idempotence_probe::IdempotenceProbe>()
}
