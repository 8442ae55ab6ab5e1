//! The desktop's tray host, as far as a tray app sees it: the
//! `org.kde.StatusNotifierWatcher` that items register with. The tray test serves it on a
//! private bus; `examples/app_start.rs` includes this file to time the registration.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A tray item that registered: its bus name, object path, and when.
#[derive(Clone, Debug)]
pub struct Registered {
    pub bus: String,
    pub path: String,
    pub at: Instant,
}

#[derive(Clone, Default)]
pub struct Watcher {
    pub items: Arc<Mutex<Vec<Registered>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let (bus, path) = if service.starts_with('/') {
            (sender, service.to_string())
        } else {
            (service.to_string(), "/StatusNotifierItem".to_string())
        };
        let at = Instant::now();
        self.items
            .lock()
            .unwrap()
            .push(Registered { bus, path, at });
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        let items = self.items.lock().unwrap();
        items
            .iter()
            .map(|r| format!("{}{}", r.bus, r.path))
            .collect()
    }
}
