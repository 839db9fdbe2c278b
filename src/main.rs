fn main() -> std::process::ExitCode {
    cachehit::cli::main()
}
