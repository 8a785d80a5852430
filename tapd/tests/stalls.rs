//! No client can hold up another: silent and dribbling clients, bad
//! messages, and a flood of connections from one uid, each while root's
//! Ping is timed against its unloaded time.

mod common;

use common::{exchange, ms, pings, read_all, Daemon, Dir};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tap_protocol::{read_message, ErrorKind, Response, MAX_RESPONSE_BYTES};

/// What "not held up" means: within this of the unloaded time.
const SLACK: Duration = Duration::from_millis(100);

fn bad_request(response: Response) -> String {
    match response {
        Response::Refused(r) if r.kind == ErrorKind::BadRequest => r.message,
        other => panic!("expected a bad_request refusal, got {other:?}"),
    }
}

#[test]
fn silent_and_dribbling_clients_delay_nobody_and_are_cut_off() {
    let daemon = Daemon::start(Dir::new());
    let (base_median, base_max) = pings(&daemon.socket(), 20);

    let connected = Instant::now();
    let mut silent: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(daemon.socket()).unwrap())
        .collect();
    let socket = daemon.socket();
    // One byte every 200 ms: each read is quick, the whole is not.
    let dribbler = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(socket).unwrap();
        let start = Instant::now();
        let bytes = 100u32
            .to_be_bytes()
            .into_iter()
            .chain(std::iter::repeat_n(b' ', 26));
        for byte in bytes {
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let answer = read_all(&mut stream, Duration::from_secs(1));
        (start.elapsed(), answer)
    });
    std::thread::sleep(Duration::from_millis(50));
    let (median, max) = pings(&daemon.socket(), 20);
    eprintln!(
        "ping unloaded: median {}, max {}; with 20 silent clients and a dribbler: median {}, max {}",
        ms(base_median),
        ms(base_max),
        ms(median),
        ms(max)
    );
    assert!(
        max < base_max + SLACK,
        "held up: {} vs {}",
        ms(max),
        ms(base_max)
    );

    // The silent ones are answered and dropped at the deadline (2 s).
    let answer = read_all(&mut silent[0], Duration::from_secs(4));
    let cut_after = connected.elapsed();
    let message = bad_request(read_message(&mut &answer[..], MAX_RESPONSE_BYTES).unwrap());
    assert!(message.contains("no whole request within 2 s"), "{message}");
    assert!(
        cut_after > Duration::from_millis(1900) && cut_after < Duration::from_secs(3),
        "silent client cut after {cut_after:?}"
    );
    for stream in &mut silent[1..] {
        assert!(!read_all(stream, Duration::from_secs(2)).is_empty());
    }
    let (dribbled_for, answer) = dribbler.join().unwrap();
    eprintln!(
        "silent client cut after {}, dribbler after {}",
        ms(cut_after),
        ms(dribbled_for)
    );
    let message = bad_request(read_message(&mut &answer[..], MAX_RESPONSE_BYTES).unwrap());
    assert!(message.contains("no whole request within 2 s"), "{message}");
    assert!(
        dribbled_for < Duration::from_millis(3500),
        "{dribbled_for:?}"
    );
    daemon.ping();
}

#[test]
fn bad_messages_each_get_a_clear_refusal_and_the_daemon_keeps_serving() {
    let mut daemon = Daemon::start(Dir::new());
    let framed = |json: &[u8]| {
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(json);
        out
    };
    let mut oversized = (10_000_000u32).to_be_bytes().to_vec();
    oversized.extend(std::iter::repeat_n(b'{', 100_000));
    let mut just_over = (65_537u32).to_be_bytes().to_vec();
    just_over.extend(std::iter::repeat_n(b' ', 65_537));
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        ("oversized", oversized, false, "at most 65536"),
        ("one byte over", just_over, false, "at most 65536"),
        (
            "cut short",
            framed(br#"{"v":1,"body":"ping"}"#)[..10].to_vec(),
            true,
            "cut short",
        ),
        ("half a length", vec![0, 0], true, "cut short"),
        (
            "wrong version",
            framed(br#"{"v":2,"body":"ping"}"#),
            false,
            "protocol version 2",
        ),
        (
            "garbage",
            framed(b"\x00\xff\x13garbage\x7f"),
            false,
            "malformed",
        ),
        (
            "wrong type",
            framed(br#"{"v":1,"body":{"sign_in":5}}"#),
            false,
            "malformed",
        ),
        (
            "unknown request",
            framed(br#"{"v":1,"body":"shutdown"}"#),
            false,
            "malformed",
        ),
        (
            "extra field",
            framed(br#"{"v":1,"body":"ping","x":1}"#),
            false,
            "malformed",
        ),
        (
            "no version",
            framed(br#"{"body":"ping"}"#),
            false,
            "malformed",
        ),
        ("not an object", framed(b"[1,2,3]"), false, "malformed"),
        ("deep nesting", framed(&[b'['; 60_000]), false, "malformed"),
    ];
    for (name, bytes, shut, says) in cases {
        let mut stream = UnixStream::connect(daemon.socket()).unwrap();
        let _ = stream.write_all(&bytes);
        if shut {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let answer = read_all(&mut stream, Duration::from_secs(5));
        let response = read_message(&mut &answer[..], MAX_RESPONSE_BYTES)
            .unwrap_or_else(|e| panic!("{name}: no refusal: {e}"));
        let message = bad_request(response);
        eprintln!("{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
        daemon.ping();
    }
    // A request for a sign-in step from a plain uid is not a bad message
    // but is refused too; here the daemon still answers root.
    let _ = exchange(&daemon.socket(), &[]);
    assert!(daemon.alive());
    daemon.ping();
}

/// The flooding side, run by `flood_from_one_uid_is_capped_and_root_gets_through`
/// as uid 65534 in a child process (this test binary again); a no-op
/// otherwise.
#[test]
fn flood_child() {
    let Ok(socket) = std::env::var("TAPD_FLOOD_SOCKET") else {
        return;
    };
    let start = Instant::now();
    let mut streams = Vec::new();
    let mut failed = 0;
    for _ in 0..1000 {
        match UnixStream::connect(&socket) {
            Ok(s) => streams.push(s),
            Err(_) => failed += 1,
        }
    }
    println!(
        "FLOOD connected={} failed={failed} in {}",
        streams.len(),
        ms(start.elapsed())
    );
    std::thread::sleep(Duration::from_millis(800));
    let (mut admitted, mut busy, mut other) = (0, 0, 0);
    for stream in &mut streams {
        stream.set_nonblocking(true).unwrap();
        match read_message::<Response>(stream, MAX_RESPONSE_BYTES) {
            Ok(Response::Refused(r)) if r.kind == ErrorKind::Busy => busy += 1,
            Err(tap_protocol::FrameError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                admitted += 1
            }
            _ => other += 1,
        }
    }
    println!("FLOOD done admitted={admitted} busy={busy} other={other}");
}

#[test]
fn flood_from_one_uid_is_capped_and_root_gets_through() {
    let daemon = Daemon::start(Dir::new());
    let (base_median, base_max) = pings(&daemon.socket(), 20);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "flood_child", "--nocapture", "--test-threads=1"])
        .env("TAPD_FLOOD_SOCKET", daemon.socket())
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        // libtest may print "test flood_child ... " ahead of a line.
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(at) = line.find("FLOOD ") {
                if lines_tx.send(line[at..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    // Root pings all through the flood, until the flooder has counted.
    let mut times = Vec::new();
    let mut report = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(30);
    while report.len() < 2 && Instant::now() < give_up {
        times.push(daemon.ping());
        while let Ok(line) = lines.try_recv() {
            report.push(line);
        }
    }
    assert!(child.wait().unwrap().success());
    while let Ok(line) = lines.try_recv() {
        report.push(line);
    }
    times.sort();
    let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
    eprintln!(
        "ping unloaded: median {}, max {}; during 1,000 connections from uid 65534: {} pings, median {}, max {}",
        ms(base_median),
        ms(base_max),
        times.len(),
        ms(median),
        ms(max)
    );
    eprintln!("{}", report.join("\n"));
    let done = report.iter().find(|l| l.starts_with("FLOOD done")).unwrap();
    let count = |key: &str| -> usize {
        done.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    assert_eq!(count("admitted="), 8, "the per-uid cap: {done}");
    assert_eq!(count("busy="), 992, "{done}");
    assert_eq!(count("other="), 0, "{done}");
    assert!(
        max < base_max + SLACK,
        "root held up: {} vs {}",
        ms(max),
        ms(base_max)
    );
    daemon.ping();
}
