//! A `multipart/form-data` body, written here rather than by reqwest's `multipart`
//! feature: upstream requests are `Request<Bytes>` sent either over hyper (a server on
//! this machine) or reqwest (`client.rs`), and reqwest's form is a reqwest-only streaming
//! body. The form is small text fields around one file, so writing it is a few lines.

use bytes::Bytes;

pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    /// A form with room for `capacity` bytes of file. The boundary is random, so it
    /// cannot be guessed into the audio.
    pub fn new(capacity: usize) -> Self {
        Form {
            boundary: format!("protogate-{}", uuid::Uuid::new_v4().simple()),
            body: Vec::with_capacity(capacity + 1024),
        }
    }

    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.head(name);
        self.body.extend_from_slice(b"\r\n\r\n");
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file field. `filename` and `content_type` must hold no quote or line break
    /// (`voice::upstream_filename` and the header check see to that).
    pub fn file(&mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) {
        self.head(name);
        self.body.extend_from_slice(
            format!("; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    fn head(&mut self, name: &str) {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"",
                self.boundary
            )
            .as_bytes(),
        );
    }

    /// The body and its `Content-Type`.
    pub fn finish(mut self) -> (String, Bytes) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body.into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_what_a_browser_would_send() {
        let mut form = Form::new(4);
        form.file("file", "a.wav", "audio/wav", b"RIFF");
        form.text("model", "whisper-1");
        let (content_type, body) = form.finish();
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
                 Content-Type: audio/wav\r\n\r\nRIFF\r\n--{boundary}\r\nContent-Disposition: \
                 form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{boundary}--\r\n"
            )
        );
    }
}
