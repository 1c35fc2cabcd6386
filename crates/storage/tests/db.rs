use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use tandem_storage::codec::{get_u64, key_u64s};
use tandem_storage::{Batch, Db, Direction, Error, Table};

const A: Table = Table("a");
const B: Table = Table("b");

fn collect(db: &Db, table: Table, prefix: &[u8], from: &[u8], dir: Direction) -> Vec<u64> {
    db.scan(table, prefix, from, dir).unwrap().map(|r| get_u64(&r.unwrap().0, prefix.len()).unwrap()).collect()
}

#[test]
fn batches_are_atomic_across_tables_and_scans_are_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), &[A, B]).unwrap();
    let mut batch = Batch::new();
    for n in [5u64, 1, 300, 42] {
        batch.put(A, key_u64s(&[7, n]), n.to_string());
    }
    batch.put(A, key_u64s(&[8, 0]), "other prefix").put(B, b"k".to_vec(), b"v".to_vec());
    db.write(batch).unwrap();
    assert_eq!(db.get(B, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    let prefix = key_u64s(&[7]);
    assert_eq!(collect(&db, A, &prefix, &prefix, Direction::Forward), vec![1, 5, 42, 300]);
    assert_eq!(collect(&db, A, &prefix, &key_u64s(&[7, 6]), Direction::Forward), vec![42, 300]);
    assert_eq!(collect(&db, A, &prefix, &key_u64s(&[7, 41]), Direction::Backward), vec![5, 1]);
    assert_eq!(collect(&db, A, &prefix, &key_u64s(&[7, u64::MAX]), Direction::Backward), vec![300, 42, 5, 1]);

    let mut batch = Batch::new();
    batch.delete(A, key_u64s(&[7, 5]));
    db.write(batch).unwrap();
    assert_eq!(collect(&db, A, &prefix, &prefix, Direction::Forward), vec![1, 42, 300]);
}

#[test]
fn a_batch_naming_an_unknown_table_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), &[A]).unwrap();
    let mut batch = Batch::new();
    batch.put(A, b"x".to_vec(), b"1".to_vec()).put(Table("nope"), b"y".to_vec(), b"2".to_vec());
    assert!(matches!(db.write(batch), Err(Error::UnknownTable("nope"))));
    assert_eq!(db.get(A, b"x").unwrap(), None);
    assert!(matches!(db.get(Table("nope"), b"y"), Err(Error::UnknownTable("nope"))));
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), &[A]).unwrap();
        let mut batch = Batch::new();
        batch.put(A, b"persist".to_vec(), b"yes".to_vec());
        db.write(batch).unwrap();
    }
    // A table added later opens beside the old ones.
    let db = Db::open(dir.path(), &[A, B]).unwrap();
    assert_eq!(db.get(A, b"persist").unwrap().as_deref(), Some(&b"yes"[..]));
    assert_eq!(db.get(B, b"persist").unwrap(), None);
}

/// The child half of `acknowledged_writes_survive_kill_9`: writes numbered batches and prints
/// each number once its write returned, until it is killed.
#[test]
#[ignore = "run by acknowledged_writes_survive_kill_9 as a child process"]
fn child_writer() {
    let Ok(dir) = std::env::var("TANDEM_STORAGE_CHILD_DIR") else { return };
    let db = Db::open(dir.as_ref(), &[A]).unwrap();
    for n in 0u64.. {
        let mut batch = Batch::new();
        batch.put(A, key_u64s(&[n]), vec![0xAB; 512]);
        db.write(batch).unwrap();
        println!("acked {n}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("TANDEM_STORAGE_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last_acked = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("acked ") {
            last_acked = Some(n.parse::<u64>().unwrap());
            if last_acked >= Some(200) {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no flush; only what reached the synced log remains.
    child.kill().unwrap();
    child.wait().unwrap();
    let last = last_acked.expect("the child acknowledged writes");
    let db = Db::open(dir.path(), &[A]).unwrap();
    for n in 0..=last {
        assert!(db.get(A, &key_u64s(&[n])).unwrap().is_some(), "acknowledged write {n} of {last} lost");
    }
}
