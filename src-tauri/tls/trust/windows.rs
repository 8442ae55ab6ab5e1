//! Windows: the current user's Root store, through crypt32 (no `certutil.exe`, which
//! Wine does not have and which prints in the console's code page). Windows asks the
//! user to confirm adding or removing a root; a declined prompt is an error here.

use std::path::Path;

/// The store's name as PowerShell's certificate drive shows it.
pub const STORE: &str = r"Cert:\CurrentUser\Root";

/// The command that trusts the CA for every user (an elevated prompt).
pub fn system_command(cert: &Path) -> String {
    format!("certutil -addstore Root \"{}\"", cert.display())
}

/// The certificate inside a PEM file, as crypt32 takes it.
pub fn der_from_pem(text: &str) -> Result<Vec<u8>, String> {
    let block = pem::parse(text).map_err(|e| format!("the CA certificate is not PEM: {e}"))?;
    if block.tag() != "CERTIFICATE" {
        return Err(format!("expected a CERTIFICATE, found {}", block.tag()));
    }
    Ok(block.into_contents())
}

#[cfg(windows)]
pub use imp::{is_trusted, trust, untrust};

#[cfg(windows)]
mod imp {
    use std::ptr::{null, null_mut};

    use windows_sys::Win32::Foundation::GetLastError;
    use windows_sys::Win32::Security::Cryptography::{
        CertAddEncodedCertificateToStore, CertCloseStore, CertControlStore,
        CertDeleteCertificateFromStore, CertDuplicateCertificateContext,
        CertEnumCertificatesInStore, CertFreeCertificateContext, CertGetNameStringW, CertOpenStore,
        CERT_CONTEXT, CERT_NAME_SIMPLE_DISPLAY_TYPE, CERT_STORE_ADD_REPLACE_EXISTING,
        CERT_STORE_CTRL_COMMIT, CERT_STORE_PROV_SYSTEM_W, CERT_SYSTEM_STORE_CURRENT_USER,
        HCERTSTORE, PKCS_7_ASN_ENCODING, X509_ASN_ENCODING,
    };

    use super::super::NICKNAME;

    /// ERROR_CANCELLED: the user declined Windows' security prompt.
    const CANCELLED: u32 = 1223;

    struct Store(HCERTSTORE);

    impl Drop for Store {
        fn drop(&mut self) {
            // SAFETY: the handle came from CertOpenStore and is closed once.
            unsafe { CertCloseStore(self.0, 0) };
        }
    }

    fn open() -> Result<Store, String> {
        let name: Vec<u16> = "Root".encode_utf16().chain([0]).collect();
        // SAFETY: a system store opened by a NUL-terminated wide name.
        let handle = unsafe {
            CertOpenStore(
                CERT_STORE_PROV_SYSTEM_W,
                0,
                0,
                CERT_SYSTEM_STORE_CURRENT_USER,
                name.as_ptr().cast(),
            )
        };
        if handle.is_null() {
            // SAFETY: no preconditions.
            let code = unsafe { GetLastError() };
            return Err(format!(
                "cannot open the current user's Root store (error {code})"
            ));
        }
        Ok(Store(handle))
    }

    fn name(cert: *const CERT_CONTEXT) -> String {
        let mut buf = [0u16; 256];
        // SAFETY: `cert` is a live context; the buffer's length is passed.
        let n = unsafe {
            CertGetNameStringW(
                cert,
                CERT_NAME_SIMPLE_DISPLAY_TYPE,
                0,
                null(),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
        };
        String::from_utf16_lossy(&buf[..(n as usize).saturating_sub(1).min(buf.len())])
    }

    /// Protogate's CAs in the store (each context owned by the caller).
    fn ours(store: &Store) -> Vec<*mut CERT_CONTEXT> {
        let mut found = vec![];
        let mut cert: *mut CERT_CONTEXT = null_mut();
        loop {
            // SAFETY: enumeration frees the previous context and returns the next.
            cert = unsafe { CertEnumCertificatesInStore(store.0, cert) };
            if cert.is_null() {
                return found;
            }
            if name(cert) == NICKNAME {
                // SAFETY: a new reference the caller frees.
                found.push(unsafe { CertDuplicateCertificateContext(cert) });
            }
        }
    }

    pub fn is_trusted() -> bool {
        let Ok(store) = open() else { return false };
        let found = ours(&store);
        let any = !found.is_empty();
        for cert in found {
            // SAFETY: each context came from CertDuplicateCertificateContext.
            unsafe { CertFreeCertificateContext(cert) };
        }
        any
    }

    pub fn trust(der: &[u8]) -> Result<(), String> {
        let store = open()?;
        // SAFETY: the DER bytes outlive the call; no context is asked for.
        let added = unsafe {
            CertAddEncodedCertificateToStore(
                store.0,
                X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
                der.as_ptr(),
                der.len() as u32,
                CERT_STORE_ADD_REPLACE_EXISTING,
                null_mut(),
            )
        };
        if added != 0 {
            return Ok(());
        }
        // SAFETY: no preconditions.
        match unsafe { GetLastError() } {
            CANCELLED => Err("Windows did not add the certificate: its prompt was declined".into()),
            code => Err(format!(
                "Windows did not add the certificate (error {code})"
            )),
        }
    }

    /// How many copies were removed.
    pub fn untrust() -> Result<usize, String> {
        let store = open()?;
        let mut removed = 0;
        for cert in ours(&store) {
            // SAFETY: deleting frees the (duplicated) context, whatever the outcome.
            if unsafe { CertDeleteCertificateFromStore(cert) } != 0 {
                removed += 1;
            }
        }
        // Wine keeps a deletion from the Root store's registry half in memory until a
        // commit (Windows writes it at once); committing is harmless there.
        // SAFETY: a live store handle.
        unsafe { CertControlStore(store.0, 0, CERT_STORE_CTRL_COMMIT, null()) };
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_and_the_system_command() {
        assert_eq!(STORE, "Cert:\\CurrentUser\\Root");
        assert_eq!(
            system_command(Path::new(r"C:\Users\ana\AppData\Local\Temp\ca.pem")),
            r#"certutil -addstore Root "C:\Users\ana\AppData\Local\Temp\ca.pem""#
        );
    }

    #[test]
    fn der_comes_out_of_a_certificate_pem_only() {
        let pem = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        assert_eq!(der_from_pem(pem).unwrap(), [1, 2, 3]);
        // The same three bytes under a private key's label: refused.
        let key = pem.replace("CERTIFICATE", "PRIVATE KEY");
        assert!(der_from_pem(&key).is_err());
        // Windows line endings, as a file edited there has.
        assert_eq!(der_from_pem(&pem.replace('\n', "\r\n")).unwrap(), [1, 2, 3]);
    }
}
