//! The app's console on Windows. The desktop build is a GUI-subsystem program (see
//! `main.rs`), so a start from the Start menu or at login opens no console window beside
//! the tray. Started from a terminal with nothing redirected, it attaches to that
//! terminal's console so `serve`, `secrets` and `tls` print there; output the parent
//! redirected (pipes, files) is written where it was sent, untouched. One binary, no
//! separate `protogate-cli.exe` to ship or find.

/// Attaches to the parent's console when the program was given no output handles.
#[cfg(all(windows, feature = "desktop"))]
pub fn attach_to_parent() {
    use windows_sys::Win32::System::Console::{
        AttachConsole, GetStdHandle, ATTACH_PARENT_PROCESS, STD_ERROR_HANDLE, STD_OUTPUT_HANDLE,
    };
    // SAFETY: plain calls with constants; a failure (no parent console) changes nothing.
    unsafe {
        if GetStdHandle(STD_OUTPUT_HANDLE).is_null() && GetStdHandle(STD_ERROR_HANDLE).is_null() {
            AttachConsole(ATTACH_PARENT_PROCESS);
        }
    }
}

/// Elsewhere (and in the headless build, a console program) there is nothing to do.
#[cfg(not(all(windows, feature = "desktop")))]
pub fn attach_to_parent() {}
