//! The floor of `routesim replay` on a CSV log: a plain Rust read and parse of the same file, with nothing of
//! the replay around it (no row errors, no vocabulary of templates, no reorder buffer, no spill, no
//! simulation).
//!
//! ```text
//! cargo run --release -p sim --example log_read_floor -- LOG.csv [plain|csv]   # default plain
//! ```
//!
//! `plain` reads the file through a 1 MiB buffer on one thread, cuts it into lines and fields at `\n` and
//! `,` (a `gen-log` CSV quotes nothing), and parses every field the replay reads from a `gen-log` log: the
//! arrival as exact nanoseconds (digit by digit, as the replay does), the token counts, TTFT, latency and
//! cost as numbers, and the class, endpoint and status as names looked up in a short list. `csv` does the
//! same parsing on the records of the `csv` crate (which the replay uses: it handles quoting), one thread.
//! Both print the rows, a checksum of what they parsed (so nothing is optimised away) and the wall time;
//! `scripts/bench-logs.sh` prints them beside `wc -l` and the replay.
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

/// Exact nanoseconds of a decimal number of seconds (no exponent), or `None`.
fn nanos(s: &[u8]) -> Option<i64> {
    let (mut v, mut place, mut frac) = (0i64, 0i64, false);
    for &b in s {
        match b {
            b'.' if !frac => {
                frac = true;
                place = 1_000_000_000;
                v = v.checked_mul(1_000_000_000)?;
            }
            b'0'..=b'9' if !frac => v = v.checked_mul(10)?.checked_add((b - b'0') as i64)?,
            b'0'..=b'9' => {
                place /= 10;
                v += (b - b'0') as i64 * place;
            }
            _ => return None,
        }
    }
    Some(if frac { v } else { v.checked_mul(1_000_000_000)? })
}

/// A number, as the replay parses it (`str::parse::<f64>`); an empty field is 0.
fn number(s: &[u8]) -> f64 {
    std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0)
}

/// The index of `name` in `names`, added when new.
fn intern(names: &mut Vec<Vec<u8>>, name: &[u8]) -> u64 {
    match names.iter().position(|n| n == name) {
        Some(i) => i as u64,
        None => {
            names.push(name.to_vec());
            names.len() as u64 - 1
        }
    }
}

/// Column positions of the fields parsed, from the header.
struct Columns([usize; 8]);

impl Columns {
    fn of(header: &[&[u8]]) -> Columns {
        let names =
            ["arrival_s", "class", "input_tokens", "output_tokens", "endpoint", "ttft_s", "latency_s", "cost_usd"];
        Columns(
            names.map(|n| header.iter().position(|h| *h == n.as_bytes()).unwrap_or_else(|| panic!("no column `{n}`"))),
        )
    }
}

/// What a row contributes to the checksum.
fn row(fields: &[&[u8]], at: &Columns, names: &mut Vec<Vec<u8>>) -> u64 {
    let [arrival, class, input, output, endpoint, ttft, latency, cost] = at.0.map(|c| fields[c]);
    let a = nanos(arrival).expect("an arrival in seconds") as u64;
    let tokens = number(input) as u64 + number(output) as u64;
    let times = ((number(ttft) + number(latency)) * 1e9) as u64;
    let usd = (number(cost) * 1e9) as u64;
    a ^ tokens ^ times ^ usd ^ intern(names, class) ^ (intern(names, endpoint) << 8)
}

/// The first [`MAX_FIELDS`] fields of a row, in an array (no allocation per row), and how many there are.
fn split<'a>(fields: impl Iterator<Item = &'a [u8]>) -> ([&'a [u8]; MAX_FIELDS], usize) {
    let mut out: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut n = 0;
    for (slot, f) in out.iter_mut().zip(fields) {
        *slot = f;
        n += 1;
    }
    (out, n)
}

/// Fields of a row that are looked at (a `gen-log` CSV has 13).
const MAX_FIELDS: usize = 32;

fn plain(path: &str) -> (u64, u64) {
    let mut file = BufReader::with_capacity(1 << 20, File::open(path).expect("the log opens"));
    let (mut line, mut rows, mut sum) = (Vec::new(), 0u64, 0u64);
    let mut names = Vec::new();
    file.read_until(b'\n', &mut line).expect("a header");
    let header: Vec<&[u8]> = line.trim_ascii_end().split(|&b| b == b',').collect();
    let at = Columns::of(&header);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if file.read_until(b'\n', &mut buf).expect("the log reads") == 0 {
            break;
        }
        let (fields, n) = split(buf.trim_ascii_end().split(|&b| b == b','));
        sum = sum.wrapping_add(row(&fields[..n], &at, &mut names));
        rows += 1;
    }
    (rows, sum)
}

fn with_csv(path: &str) -> (u64, u64) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path).expect("the log opens");
    let header = reader.byte_headers().expect("a header").clone();
    let at = Columns::of(&header.iter().collect::<Vec<_>>());
    let (mut record, mut rows, mut sum) = (csv::ByteRecord::new(), 0u64, 0u64);
    let mut names = Vec::new();
    while reader.read_byte_record(&mut record).expect("the log reads") {
        let (fields, n) = split(record.iter());
        sum = sum.wrapping_add(row(&fields[..n], &at, &mut names));
        rows += 1;
    }
    (rows, sum)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: log_read_floor LOG.csv [plain|csv]");
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let start = Instant::now();
    let (rows, sum) = match mode.as_str() {
        "plain" => plain(&path),
        "csv" => with_csv(&path),
        other => panic!("unknown mode `{other}`: plain or csv"),
    };
    let wall = start.elapsed().as_secs_f64();
    println!("{mode}: {rows} rows read and parsed in {wall:.3} s (checksum {sum:x})");
}
