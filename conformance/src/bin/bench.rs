//! `bench`: the same client-API workloads against Tandem and against Synapse (on PostgreSQL,
//! rate limits off, logs at WARNING) on this machine, in one run; prints one Markdown table
//! with both results and the ratio. See `docs/performance.md`.
//!
//! cargo build --release -p tandem && cargo run --release -p tandem-conformance --bin bench -- [options]
//!   --tandem-bin PATH     the tandem binary (default: target/release/tandem beside this one)
//!   --peers DIR           the Synapse recipe (default ../shared/peers/synapse)
//!   --no-synapse          Tandem only
//!   --messages N          messages for the sending workloads (10000)
//!   --senders N           concurrent senders, one room each (32)
//!   --delivery N          delivery latency samples (200)
//!   --rooms N             rooms of the initial-sync user (500), with --room-messages each (20)
//!   --create N            rooms created and joined for the rates (100)
//!   --startup-events N    events in the database for the restart timing (100000)
//!   --growth SIZES        instead of the above: one room grown by single joins to each of
//!                         SIZES members (comma-separated, e.g. 1000,10000)

use std::path::PathBuf;
use std::time::Duration;

use tandem_conformance::bench::servers::{self, Running};
use tandem_conformance::bench::stats::{memory_kb, reset_peak};
use tandem_conformance::bench::{growth, workloads};

struct Options {
    tandem_bin: PathBuf,
    peers: PathBuf,
    synapse: bool,
    messages: usize,
    senders: usize,
    delivery: usize,
    rooms: usize,
    room_messages: usize,
    create: usize,
    startup_events: usize,
    growth: Vec<usize>,
}

fn options() -> Options {
    let exe = std::env::current_exe().expect("exe");
    let mut o = Options {
        tandem_bin: exe.parent().expect("dir").join("tandem"),
        peers: PathBuf::from("../shared/peers/synapse"),
        synapse: true,
        messages: 10_000,
        senders: 32,
        delivery: 200,
        rooms: 500,
        room_messages: 20,
        create: 100,
        startup_events: 100_000,
        growth: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--tandem-bin" => o.tandem_bin = args.next().expect("--tandem-bin PATH").into(),
            "--peers" => o.peers = args.next().expect("--peers DIR").into(),
            "--no-synapse" => o.synapse = false,
            "--messages" => o.messages = num("--messages"),
            "--senders" => o.senders = num("--senders"),
            "--delivery" => o.delivery = num("--delivery"),
            "--rooms" => o.rooms = num("--rooms"),
            "--room-messages" => o.room_messages = num("--room-messages"),
            "--create" => o.create = num("--create"),
            "--startup-events" => o.startup_events = num("--startup-events"),
            "--growth" => {
                let sizes = args.next().expect("--growth SIZES");
                o.growth = sizes.split(',').map(|n| n.trim().parse().expect("--growth 1000,10000")).collect();
                o.growth.sort_unstable();
            }
            other => panic!("unknown option {other} (see the source's header for the options)"),
        }
    }
    o
}

/// One server's numbers, in table order.
#[derive(Default, Clone)]
struct Numbers(Vec<f64>);

const ROWS: &[(&str, bool)] = &[
    // (metric, higher is better)
    ("send, 1 sender: messages/s", true),
    ("send, 1 sender: p50 ms", false),
    ("send, 1 sender: p99 ms", false),
    ("send, N senders in N rooms: messages/s", true),
    ("send, N senders: p50 ms", false),
    ("send, N senders: p99 ms", false),
    ("delivery to a long-polling /sync: p50 ms", false),
    ("delivery: p99 ms", false),
    ("initial sync, R rooms × M messages: ms", false),
    ("incremental sync, nothing new: p50 ms", false),
    ("rooms created/s", true),
    ("rooms joined/s", true),
    ("memory idle: MB RSS", false),
    ("memory peak: MB RSS", false),
    ("CPU s per 1000 messages (server, with its database)", false),
    ("disk per 1000 messages: KB", false),
    ("start-up, empty: ms", false),
    ("start-up with the database of this run: ms", false),
];

fn run(server: Running, o: &Options, restart: impl FnOnce(Running) -> Running) -> (Numbers, usize) {
    let tag = format!("b{}", std::process::id());
    let addr = server.addr.clone();
    let startup_empty = server.startup.as_secs_f64() * 1000.0;
    std::thread::sleep(Duration::from_secs(2));
    let idle = memory_kb(server.pid).0 as f64 / 1024.0;
    // The peak of the whole run is the highest of the workloads' own peaks, each printed so
    // that a high one can be told apart.
    let mut peak = 0f64;
    let mut phase_peak = |what: &str| {
        let p = memory_kb(server.pid).1 as f64 / 1024.0;
        eprintln!("[{}] peak RSS during {what}: {p:.1} MB", server.name);
        peak = peak.max(p);
        reset_peak(server.pid);
    };
    eprintln!("[{}] sending, 1 sender, {} messages", server.name, o.messages);
    let (cpu0, disk0) = (server.cpu_seconds(), server.disk_bytes());
    let one = workloads::sending(&addr, &format!("{tag}o"), o.messages, 1);
    let (cpu1, disk1) = (server.cpu_seconds(), server.disk_bytes());
    phase_peak("start-up and 1 sender");
    let thousands = o.messages as f64 / 1000.0;
    eprintln!("[{}] sending, {} senders", server.name, o.senders);
    let many = workloads::sending(&addr, &format!("{tag}m"), o.messages, o.senders);
    phase_peak("N senders");
    eprintln!("[{}] delivery, {} samples", server.name, o.delivery);
    let (d50, d99) = workloads::delivery(&addr, &tag, o.delivery);
    phase_peak("delivery");
    eprintln!("[{}] rooms and joins, {}", server.name, o.create);
    let (created, joined) = workloads::rooms_and_joins(&addr, &tag, o.create);
    phase_peak("rooms and joins");
    eprintln!("[{}] initial sync, {} rooms × {} messages", server.name, o.rooms, o.room_messages);
    let (initial, incremental) = workloads::initial_sync(&addr, &tag, o.rooms, o.room_messages);
    phase_peak("initial sync");
    // Roughly the events written so far; top up to the start-up database size.
    let written = 2 * o.messages + o.delivery + o.rooms * (o.room_messages + 8) + o.create * 9 + o.senders * 8;
    if o.startup_events > written {
        eprintln!("[{}] filling to ~{} events for the restart", server.name, o.startup_events);
        workloads::sending(&addr, &format!("{tag}f"), o.startup_events - written, o.senders.max(1));
    }
    let server = restart(server);
    let startup_full = server.startup.as_secs_f64() * 1000.0;
    server.stop();
    let numbers = Numbers(vec![
        one.per_second,
        one.p50_ms,
        one.p99_ms,
        many.per_second,
        many.p50_ms,
        many.p99_ms,
        d50,
        d99,
        initial,
        incremental,
        created,
        joined,
        idle,
        peak,
        (cpu1 - cpu0) / thousands,
        (disk1.saturating_sub(disk0)) as f64 / thousands / 1024.0,
        startup_empty,
        startup_full,
    ]);
    (numbers, written.max(o.startup_events))
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .unwrap_or(0);
    format!("{cores} cores, {} GiB memory", mem / 1024 / 1024)
}

fn main() {
    let o = options();
    assert!(o.tandem_bin.exists(), "{} not found: cargo build --release -p tandem", o.tandem_bin.display());
    let work = tempfile::Builder::new().prefix("tandem-bench").tempdir().expect("work dir");

    if !o.growth.is_empty() {
        return growth_table(&o, work.path());
    }
    let data = work.path().join("tandem");
    let tandem = servers::start_tandem(&o.tandem_bin, &data);
    let bin = o.tandem_bin.clone();
    let (t, events) = run(tandem, &o, |s| {
        s.stop();
        servers::start_tandem(&bin, &data)
    });

    let s = o.synapse.then(|| {
        let database = format!("synapse_bench_{}", std::process::id());
        servers::prepare_postgres(&database);
        let dir = work.path().join("synapse");
        let peers = std::fs::canonicalize(&o.peers).expect("the Synapse recipe directory");
        let synapse = servers::start_synapse(&peers, &dir, &database);
        let (numbers, _) = run(synapse, &o, |s| {
            s.stop();
            // The recipe's setup.sh is not run again: the same directory and database.
            servers::restart_synapse(&peers, &dir, &database)
        });
        numbers
    });

    println!("Measured {} on {} ({}).", today(), machine(), std::env::consts::ARCH);
    println!(
        "Workload: {} messages, {} senders, {} delivery samples, {} rooms × {} messages, {} rooms created and joined, ~{} events at restart.",
        o.messages, o.senders, o.delivery, o.rooms, o.room_messages, o.create, events
    );
    println!();
    println!("| metric | Tandem | Synapse | Tandem's advantage |");
    println!("| --- | ---: | ---: | ---: |");
    for (i, (name, higher_better)) in ROWS.iter().enumerate() {
        let tv = t.0[i];
        let (sv, ratio) = match &s {
            Some(s) => {
                let sv = s.0[i];
                let r = if *higher_better { tv / sv } else { sv / tv };
                (format!("{sv:.2}"), if r.is_finite() { format!("{r:.1}×") } else { "–".into() })
            }
            None => ("–".into(), "–".into()),
        };
        println!("| {name} | {tv:.2} | {sv} | {ratio} |");
    }
}

/// The growth workload on each server, then users of each server joining each grown room
/// over federation; two tables.
fn growth_table(o: &Options, work: &std::path::Path) {
    let tag = format!("b{}", std::process::id());
    let peers = o.synapse.then(|| std::fs::canonicalize(&o.peers).expect("the Synapse recipe directory"));
    let tandem_at = |name: &str| {
        let tls = work.join(format!("{name}-tls"));
        std::fs::create_dir_all(&tls).expect("tls dir");
        servers::start_tandem_federating(&o.tandem_bin, &work.join(name), &tls)
    };
    let synapse_at = |name: &str| {
        let peers = peers.as_deref().expect("Synapse runs");
        let database = format!("synapse_bench_{}_{name}", std::process::id());
        servers::prepare_postgres(&database);
        servers::start_synapse(peers, &work.join(name), &database)
    };
    let joiners: Vec<Running> =
        std::iter::once(tandem_at("tandem_joiner")).chain(o.synapse.then(|| synapse_at("synapse_joiner"))).collect();
    let mut joins = Vec::new();
    let mut grow = |resident: Running| {
        let mut grown = growth::growth(&resident, &tag, &o.growth);
        for (i, joiner) in joiners.iter().enumerate() {
            eprintln!("[{}] a {} user joins over federation", resident.name, joiner.name);
            let timing = growth::remote_join(&resident, &mut grown, joiner, &format!("{tag}j{}{i}", joins.len()));
            joins.push((format!("{} ← {}", resident.name, joiner.name), timing));
        }
        resident.stop();
        grown.sizes
    };
    let t = grow(tandem_at("tandem"));
    let s = o.synapse.then(|| grow(synapse_at("synapse")));
    for joiner in joiners {
        joiner.stop();
    }
    println!("Measured {} on {} ({}).", today(), machine(), std::env::consts::ARCH);
    println!("Workload: one public room grown by single joins, one after another, to {:?} members.", o.growth);
    println!();
    println!("| members | ms per join (last 1,000) | KB disk per join | RSS MB |");
    println!("| ---: | ---: | ---: | ---: |");
    for (i, at) in t.iter().enumerate() {
        let pair = |f: fn(&growth::AtSize) -> f64| match s.as_ref().and_then(|s| s.get(i)) {
            Some(sa) => format!("{:.2} / {:.2}", f(at), f(sa)),
            None => format!("{:.2}", f(at)),
        };
        println!(
            "| {} | {} | {} | {} |",
            at.members,
            pair(|a| a.ms_per_join),
            pair(|a| a.kb_per_join),
            pair(|a| a.rss_mb)
        );
    }
    if s.is_some() {
        println!();
        println!("Each cell: Tandem / Synapse (Synapse's RSS without PostgreSQL's).");
    }
    println!();
    println!("A user of another server joins the grown room (resident ← joining server):");
    println!();
    println!("| servers | s to joined | s to first message |");
    println!("| --- | ---: | ---: |");
    for (who, (joined, first)) in joins {
        println!("| {who} | {joined:.2} | {first:.2} |");
    }
}

fn today() -> String {
    let out = std::process::Command::new("date").arg("+%Y-%m-%d").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).trim().to_owned()
}
