//! JSON objects written from parts, some of them already serialized. A sync answer is mostly
//! events whose client form is kept as JSON text (`rooms/render.rs`); building a
//! `serde_json::Value` tree of them only to serialize it again costs more than the rest of
//! the answer, so the answer is written as text around them.

use std::fmt::Write;

use serde::Serialize;

use crate::error::Result;

/// A JSON object being written: `{`, then fields, then [`Object::finish`] closes it.
pub(crate) struct Object {
    out: String,
    empty: bool,
}

impl Object {
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = String::with_capacity(bytes);
        out.push('{');
        Object { out, empty: true }
    }

    /// Starts a field: its name (escaped) and the colon.
    fn key(&mut self, name: &str) -> Result<()> {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        serde_json::to_writer(writer(&mut self.out), name)?;
        self.out.push(':');
        Ok(())
    }

    /// A field whose value is serialized here.
    pub fn field(&mut self, name: &str, value: &impl Serialize) -> Result<&mut Self> {
        self.key(name)?;
        serde_json::to_writer(writer(&mut self.out), value)?;
        Ok(self)
    }

    /// A field whose value is JSON text already (trusted: written by this server).
    pub fn raw(&mut self, name: &str, json: &str) -> Result<&mut Self> {
        self.key(name)?;
        self.out.push_str(json);
        Ok(self)
    }

    /// A field whose value is an array of JSON texts.
    pub fn raw_array<'a>(&mut self, name: &str, items: impl IntoIterator<Item = &'a str>) -> Result<&mut Self> {
        self.key(name)?;
        self.out.push('[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(item);
        }
        self.out.push(']');
        Ok(self)
    }

    /// A field holding `{"events": [...]}`, the shape of most sync sections.
    pub fn raw_events<'a>(&mut self, name: &str, events: impl IntoIterator<Item = &'a str>) -> Result<&mut Self> {
        let mut inner = Object::new();
        inner.raw_array("events", events)?;
        self.raw(name, &inner.finish())
    }

    /// A number field.
    pub fn number(&mut self, name: &str, n: u64) -> Result<&mut Self> {
        self.key(name)?;
        let _ = write!(self.out, "{n}");
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `serde_json` writes to `io::Write`; it writes whole characters, so each piece is checked
/// as UTF-8 and appended.
fn writer(s: &mut String) -> StringWriter<'_> {
    StringWriter(s)
}

struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Object;

    #[test]
    fn writes_the_object_its_parts_make() {
        let mut o = Object::new();
        o.field("name \"quoted\"", &json!({"a": [1, "é\n"]})).unwrap();
        o.raw("kept", r#"{"x":true}"#).unwrap();
        o.raw_events("timeline", ["{}", r#"{"y":2}"#]).unwrap();
        o.number("n", 7).unwrap();
        let parsed: Value = serde_json::from_str(&o.finish()).unwrap();
        assert_eq!(
            parsed,
            json!({
                "name \"quoted\"": {"a": [1, "é\n"]},
                "kept": {"x": true},
                "timeline": {"events": [{}, {"y": 2}]},
                "n": 7,
            })
        );
        assert_eq!(Object::new().finish(), "{}");
    }
}
