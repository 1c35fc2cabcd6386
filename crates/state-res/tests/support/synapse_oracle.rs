//! Synapse's state resolution, run by `synapse_oracle.py` in Synapse's own Python.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use super::room_gen::State;

pub struct Synapse {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The Python of the Synapse venv: `TANDEM_SYNAPSE_PYTHON`, else the venv that
/// `shared/peers/synapse/install.sh` makes.
pub fn python() -> PathBuf {
    std::env::var_os("TANDEM_SYNAPSE_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/matrix-peers/synapse-venv/bin/python")
    })
}

impl Synapse {
    pub fn start() -> std::io::Result<Self> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/synapse_oracle.py");
        let mut child = Command::new(python()).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Ok(Synapse { child, stdin, stdout })
    }

    /// Resolves each list of state sets with Synapse, over the room's `events`.
    pub fn resolve(&mut self, version: &str, events: &[Value], resolutions: &[Vec<State>]) -> Vec<State> {
        let sets: Vec<Vec<Vec<[&str; 3]>>> = resolutions
            .iter()
            .map(|sets| {
                sets.iter()
                    .map(|s| s.iter().map(|((t, k), i)| [t.as_str(), k.as_str(), i.as_str()]).collect())
                    .collect()
            })
            .collect();
        let line = json!({"version": version, "events": events, "resolutions": sets});
        writeln!(self.stdin, "{line}").expect("the Synapse oracle reads its input");
        let mut out = String::new();
        self.stdout.read_line(&mut out).expect("the Synapse oracle answers");
        let results: Vec<Vec<[String; 3]>> =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("the Synapse oracle failed ({e}): {out:?}"));
        results.into_iter().map(|r| r.into_iter().map(|[t, k, i]| ((t, k), i)).collect()).collect()
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
