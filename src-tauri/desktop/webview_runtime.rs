//! The window's web engine where it is not part of the system: Windows needs Microsoft
//! Edge WebView2 Runtime (there since Windows 11, and on most Windows 10 machines, but
//! not everywhere: LTSC, removed by hand, Wine). Without it the window cannot open; the
//! tray and the gateway still run, and the person is told what is missing and where to
//! get it, in a message box, not a crash dialog.

/// Where WebView2 Runtime is downloaded (the Evergreen bootstrapper).
#[cfg_attr(not(windows), allow(dead_code))]
pub const WEBVIEW2_URL: &str = "https://go.microsoft.com/fwlink/p/?LinkId=2124703";

/// What is missing and what to do, in words a designer can act on.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn missing_message(detail: &str) -> String {
    format!(
        "Protogate's window needs Microsoft Edge WebView2 Runtime, which is not installed \
         on this PC ({detail}).\n\nDownload and install it from {WEBVIEW2_URL} \
         (Microsoft's \"Evergreen Bootstrapper\"), then start Protogate again.\n\n\
         Until then the gateway keeps running from the tray icon."
    )
}

/// Whether the window can open here; when it cannot, says why once (stderr and a
/// message box that does not hold up the tray and the gateway).
pub fn window_available() -> bool {
    #[cfg(windows)]
    if let Err(e) = tauri::webview_version() {
        let text = missing_message(&e.to_string());
        eprintln!("protogate: {text}");
        std::thread::spawn(move || message_box(&text));
        return false;
    }
    true
}

#[cfg(windows)]
fn message_box(text: &str) {
    use windows_sys::Win32::UI::WindowsAndMessaging::{MessageBoxW, MB_ICONWARNING, MB_OK};
    let wide = |s: &str| s.encode_utf16().chain([0]).collect::<Vec<u16>>();
    let (text, title) = (wide(text), wide("Protogate"));
    // SAFETY: NUL-terminated wide strings that outlive the modal call; no owner window.
    unsafe {
        MessageBoxW(
            std::ptr::null_mut(),
            text.as_ptr(),
            title.as_ptr(),
            MB_OK | MB_ICONWARNING,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_is_missing_and_where_to_get_it() {
        let text = missing_message("no WebView2 found");
        assert!(text.contains("Microsoft Edge WebView2 Runtime"));
        assert!(text.contains(WEBVIEW2_URL));
        assert!(text.contains("no WebView2 found"));
        assert!(text.contains("keeps running"));
    }
}
