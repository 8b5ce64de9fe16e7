//! The `clef` binary.

fn main() -> std::process::ExitCode {
    clef::cli::main()
}
