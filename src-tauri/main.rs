//! The `protogate` binary: parses the command line and hands over to the library.
//!
//! No `windows_subsystem = "windows"` here: on Windows it would cut `protogate serve` and
//! `protogate secrets set` off from the terminal they run in (no output, no prompt). The
//! desktop app, when it lands, hides its console itself when started without a subcommand.

fn main() -> std::process::ExitCode {
    protogate::cli::main()
}
