//! The benchmark tool runs end to end (tiny sizes, Tandem only). Its numbers are not checked:
//! a benchmark reports, it never fails because a number moved.

use std::process::Command;

#[test]
fn bench_runs_and_prints_its_table() {
    let exe = std::env::current_exe().expect("exe");
    let tandem = exe.parent().and_then(|d| d.parent()).expect("target dir").join("tandem");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--no-synapse", "--tandem-bin"])
        .arg(&tandem)
        .args(["--messages", "40", "--senders", "2", "--delivery", "5", "--rooms", "3", "--room-messages", "2"])
        .args(["--create", "3", "--startup-events", "0"])
        .output()
        .expect("run bench");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    for row in
        ["| send, 1 sender: messages/s |", "| delivery to a long-polling /sync: p50 ms |", "| memory idle: MB RSS |"]
    {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
}
