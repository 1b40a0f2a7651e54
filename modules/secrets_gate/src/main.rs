//! `secrets_gate`: an Ansible binary module (`secrets_gate ARGS_FILE`) and a command line for
//! pre-commit hooks and CI (`secrets_gate scan PATH...`). main only dispatches.

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if argv.first().map(String::as_str) == Some("scan") {
        std::process::exit(secrets_gate::cli::run(&argv[1..]));
    }
    secrets_gate::module::main(&argv)
}
