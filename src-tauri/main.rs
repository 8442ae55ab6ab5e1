//! The `protogate` binary: the command line, and without a subcommand the tray app.
//!
//! No `windows_subsystem = "windows"` here: on Windows it would cut `protogate serve` and
//! `protogate secrets set` off from the terminal they run in (no output, no prompt).

/// mimalloc (see `allocator.rs`), its arenas committed on demand (`.cargo/config.toml`)
/// to keep idle memory small.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

mod cli;
#[cfg(feature = "desktop")]
mod desktop;

fn main() -> std::process::ExitCode {
    #[cfg(feature = "desktop")]
    let desktop = Some(cli::DesktopApp {
        available: desktop::display_available,
        run: desktop::run,
    });
    #[cfg(not(feature = "desktop"))]
    let desktop = None;
    cli::main(desktop)
}
