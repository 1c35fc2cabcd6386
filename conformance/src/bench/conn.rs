//! A keep-alive HTTP/1.1 connection: benchmarks measure the server, not TCP handshakes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

pub struct Conn {
    addr: String,
    reader: Option<BufReader<TcpStream>>,
    pub token: Option<String>,
}

impl Conn {
    pub fn new(addr: &str, token: Option<&str>) -> Conn {
        Conn { addr: addr.to_owned(), reader: None, token: token.map(str::to_owned) }
    }

    fn connect(&mut self) -> std::io::Result<&mut BufReader<TcpStream>> {
        if self.reader.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(300)))?;
            self.reader = Some(BufReader::new(s));
        }
        Ok(self.reader.as_mut().expect("connected"))
    }

    /// One request; retried once on a fresh connection if the kept-alive one was closed.
    pub fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        for attempt in 0..2 {
            match self.try_call(method, path, body) {
                Ok(r) => return r,
                Err(e) if attempt == 0 => {
                    self.reader = None;
                    let _ = e;
                }
                Err(e) => panic!("{method} {path}: {e}"),
            }
        }
        unreachable!()
    }

    fn try_call(&mut self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json")).unwrap_or_default();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.addr, bytes.len());
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let reader = self.connect()?;
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(&bytes)?;
        let mut status_line = String::new();
        if reader.read_line(&mut status_line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
        }
        let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                    "connection" => close = v.to_ascii_lowercase().contains("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        }
        if close {
            self.reader = None;
        }
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// A request that must succeed; its JSON body.
    pub fn ok(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }
}
