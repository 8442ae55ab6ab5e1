//! The `protogate` binary: the command line, and without a subcommand the tray app.
//!
//! On Windows the desktop build is a GUI-subsystem program (no console window beside the
//! tray); from a terminal it attaches to the terminal's console (`console.rs`), so the
//! command line still prints. The headless build stays a console program.
#![cfg_attr(all(windows, feature = "desktop"), windows_subsystem = "windows")]

/// mimalloc (see `allocator.rs`), its arenas committed on demand (`.cargo/config.toml`)
/// to keep idle memory small.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

mod cli;
mod console;
#[cfg(feature = "desktop")]
mod desktop;

fn main() -> std::process::ExitCode {
    console::attach_to_parent();
    #[cfg(feature = "desktop")]
    let desktop = Some(cli::DesktopApp {
        available: desktop::display_available,
        run: desktop::run,
    });
    #[cfg(not(feature = "desktop"))]
    let desktop = None;
    cli::main(desktop)
}
