//! The `clef` binary.

/// mimalloc rather than glibc's allocator: a request's many small, short-lived
/// allocations cost about half as much (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    clef::cli::main()
}
