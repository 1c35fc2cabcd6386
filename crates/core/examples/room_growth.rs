//! Memory and disk of one room growing by local joins, through the engine alone (no HTTP, no
//! password hashing): `cargo run -p tandem-core --example room_growth -- [members] [every]`.
//! Prints, every `every` joins, the members, the time per join over the last step, the
//! process's resident memory and the size of the database directory.

mod common;

use std::time::Instant;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn dir_mb(dir: &std::path::Path) -> f64 {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() { (dir_mb(&entry.path()) * 1048576.0) as u64 } else { meta.len() };
    }
    total as f64 / 1048576.0
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (members, every) = (args.first().copied().unwrap_or(2000), args.get(1).copied().unwrap_or(500));
    let (dir, hs, _, room) = common::server_with_room(None);
    println!("| members | ms per join (last {every}) | RSS MB | database MB |");
    println!("| ---: | ---: | ---: | ---: |");
    let mut step = Instant::now();
    for i in 1..=members {
        common::join_members(&hs, &room, i, i);
        if i % every == 0 {
            let ms = step.elapsed().as_secs_f64() * 1000.0 / every as f64;
            println!("| {i} | {ms:.1} | {:.0} | {:.1} |", rss_mb(), dir_mb(dir.path()));
            step = Instant::now();
        }
    }
}
