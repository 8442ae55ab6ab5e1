//! The protobuf wire format of OTLP's few trace messages, written straight into a buffer.
//!
//! Built as `opentelemetry-proto`'s prost messages first, a span cost 13 k instructions
//! on the exporter's task (about 40 small allocations, and every nested length counted
//! again at each level): a sixth of a whole forwarded request (callgrind). Written here,
//! an attribute is a few bytes appended, its length known from its parts. The field
//! numbers are those of `opentelemetry/proto/{trace,common}/v1/*.proto`; a unit test
//! decodes what is written with `opentelemetry-proto`'s own types, and the integration
//! tests with OpenTelemetry's Python ones.

/// Length-delimited (strings, bytes, nested messages).
const LEN: u8 = 2;
const VARINT: u8 = 0;
const FIXED64: u8 = 1;

// `AnyValue`'s fields.
const STRING_VALUE: u32 = 1;
const INT_VALUE: u32 = 3;
const DOUBLE_VALUE: u32 = 4;
const ARRAY_VALUE: u32 = 5;

/// A message being written: its fields, in the order given.
#[derive(Default)]
pub struct Message(pub Vec<u8>);

impl Message {
    fn tag(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, u64::from(field << 3 | u32::from(wire)));
    }

    pub fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.header(field, bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// The tag and length of a length-delimited field whose `len` bytes follow.
    pub fn header(&mut self, field: u32, len: usize) {
        self.tag(field, LEN);
        varint(&mut self.0, len as u64);
    }

    pub fn string(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    /// A string field written from its parts, without joining them first.
    pub fn string_parts(&mut self, field: u32, parts: &[&str]) {
        self.tag(field, LEN);
        varint(
            &mut self.0,
            parts.iter().map(|p| p.len()).sum::<usize>() as u64,
        );
        for part in parts {
            self.0.extend_from_slice(part.as_bytes());
        }
    }

    pub fn uint(&mut self, field: u32, n: u64) {
        self.tag(field, VARINT);
        varint(&mut self.0, n);
    }

    pub fn fixed64(&mut self, field: u32, n: u64) {
        self.tag(field, FIXED64);
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    /// A nested message, written by `write` into `scratch` (kept for reuse) and then
    /// copied in behind its length.
    pub fn message(&mut self, field: u32, scratch: &mut Message, write: impl FnOnce(&mut Message)) {
        scratch.0.clear();
        write(scratch);
        self.bytes(field, &scratch.0);
    }

    /// A `KeyValue` whose value is a string.
    pub fn attr_str(&mut self, field: u32, key: &str, text: &str) {
        self.key_value(field, key, STRING_VALUE, LEN, text.len(), |m| {
            m.0.extend_from_slice(text.as_bytes())
        });
    }

    /// A `KeyValue` whose value is an int64.
    pub fn attr_int(&mut self, field: u32, key: &str, n: i64) {
        let n = n as u64;
        self.key_value(field, key, INT_VALUE, VARINT, varint_len(n), |m| {
            varint(&mut m.0, n)
        });
    }

    /// A `KeyValue` whose value is a double.
    pub fn attr_f64(&mut self, field: u32, key: &str, x: f64) {
        self.key_value(field, key, DOUBLE_VALUE, FIXED64, 8, |m| {
            m.0.extend_from_slice(&x.to_le_bytes())
        });
    }

    /// A `KeyValue` whose value is an array of strings.
    pub fn attr_str_array(&mut self, field: u32, key: &str, texts: &[&str]) {
        // `ArrayValue { values: [AnyValue { string_value }] }`
        let any_len = |t: &&str| 1 + varint_len(t.len() as u64) + t.len();
        let array_len: usize = texts
            .iter()
            .map(|t| 1 + varint_len(any_len(t) as u64) + any_len(t))
            .sum();
        self.key_value(field, key, ARRAY_VALUE, LEN, array_len, |m| {
            for text in texts {
                m.tag(1, LEN);
                varint(&mut m.0, any_len(text) as u64);
                m.string(STRING_VALUE, text);
            }
        });
    }

    /// `KeyValue { key, value: AnyValue { <kind>: ... } }`: `payload` writes the value's
    /// `len` bytes (after the length, for a length-delimited kind).
    fn key_value(
        &mut self,
        field: u32,
        key: &str,
        kind: u32,
        wire: u8,
        len: usize,
        payload: impl FnOnce(&mut Message),
    ) {
        let delimited = if wire == LEN {
            varint_len(len as u64)
        } else {
            0
        };
        let any_len = 1 + delimited + len;
        let kv_len =
            1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any_len as u64) + any_len;
        self.tag(field, LEN);
        varint(&mut self.0, kv_len as u64);
        self.string(1, key);
        self.tag(2, LEN);
        varint(&mut self.0, any_len as u64);
        self.tag(kind, wire);
        if wire == LEN {
            varint(&mut self.0, len as u64);
        }
        payload(self);
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// The spans an `ExportTraceServiceResponse` says were rejected (its `partial_success`);
/// 0 for an empty answer (full success) or one that cannot be read.
pub fn rejected_spans(answer: &[u8]) -> u64 {
    // partial_success = 1 { rejected_spans = 1 (int64), error_message = 2 }
    fields(answer)
        .find(|(field, _)| *field == 1)
        .and_then(|(_, value)| match value {
            Field::Bytes(inner) => fields(inner).find(|(field, _)| *field == 1),
            Field::Varint(_) => None,
        })
        .map_or(0, |(_, value)| match value {
            Field::Varint(n) => (n as i64).max(0) as u64,
            Field::Bytes(_) => 0,
        })
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The varint and length-delimited fields of a message, until anything else (or the end).
fn fields(mut rest: &[u8]) -> impl Iterator<Item = (u32, Field<'_>)> {
    std::iter::from_fn(move || {
        let key = read_varint(&mut rest)?;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(&mut rest)?),
            2 => {
                let len = usize::try_from(read_varint(&mut rest)?).ok()?;
                let (bytes, tail) = (rest.get(..len)?, rest.get(len..)?);
                rest = tail;
                Field::Bytes(bytes)
            }
            _ => return None,
        };
        Some(((key >> 3) as u32, field))
    })
}

fn read_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        n |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
    use prost::Message as _;

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n), "{n}");
        }
    }

    #[test]
    fn attributes_decode_with_opentelemetrys_own_types() {
        let mut m = Message::default();
        let long = "x".repeat(300);
        m.attr_str(1, "s", "héllo");
        m.attr_str(1, "long", &long);
        m.attr_int(1, "i", 1_234_567);
        m.attr_int(1, "negative", -5);
        m.attr_f64(1, "f", 0.25);
        m.attr_str_array(1, "a", &["stop", &long]);
        #[derive(prost::Message)]
        struct Attributes {
            #[prost(message, repeated, tag = "1")]
            values: Vec<KeyValue>,
        }
        let decoded = Attributes::decode(m.0.as_slice()).unwrap().values;
        let value = |i: usize| decoded[i].value.clone().unwrap().value.unwrap();
        assert_eq!(decoded[0].key, "s");
        assert_eq!(value(0), Value::StringValue("héllo".into()));
        assert_eq!(value(1), Value::StringValue(long.clone()));
        assert_eq!(value(2), Value::IntValue(1_234_567));
        assert_eq!(value(3), Value::IntValue(-5));
        assert_eq!(value(4), Value::DoubleValue(0.25));
        let Value::ArrayValue(array) = value(5) else {
            panic!()
        };
        let texts: Vec<_> = array.values.into_iter().map(|v| v.value.unwrap()).collect();
        assert_eq!(
            texts,
            [Value::StringValue("stop".into()), Value::StringValue(long)]
        );
    }

    #[test]
    fn a_partial_success_is_read() {
        let answer = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 300,
                error_message: "too old".into(),
            }),
        };
        assert_eq!(rejected_spans(&answer.encode_to_vec()), 300);
        assert_eq!(rejected_spans(&[]), 0);
        assert_eq!(rejected_spans(&[0xff]), 0);
    }
}
