//! Splitting a CSV log into records, as the `csv` crate does, faster for the lines that need no CSV rules.
//!
//! A line without a quote and without a carriage return is its fields cut at every comma: that is what the
//! `csv` crate makes of it too. [`Splitter`] cuts such lines itself (a `gen-log` CSV and most exports hold
//! nothing else) and hands the rest of the file to the `csv` crate from the first line that has a quote or
//! a carriage return on, so quoting, CRLF and lone CR terminators keep the crate's meaning. Either way a
//! record carries the line the crate reports for it (`Position::line`: the line after the previous record,
//! so blank lines before a record do not count), and blank lines are skipped as the crate skips them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the file at a time on the fast path.
const CHUNK: usize = 1 << 20;

/// A batch of records: their fields' bytes back to back, where each field starts and ends, and per record
/// where its fields' bounds end and its line. Reused: clearing keeps the buffers.
#[derive(Default)]
pub struct Records {
    bytes: Vec<u8>,
    /// Each field's start and end in `bytes`.
    bounds: Vec<usize>,
    /// Per record: the end of its fields' bounds in `bounds`, and its line as the `csv` crate reports it.
    records: Vec<(usize, u64)>,
    /// The read error that ended the file early, after the records before it.
    pub error: Option<String>,
}

/// One record of a [`Records`] batch.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    bytes: &'a [u8],
    /// Each field's start and end.
    bounds: &'a [usize],
    /// The line the `csv` crate reports for the record.
    pub line: u64,
}

impl<'a> Record<'a> {
    /// Number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        self.bounds.len() / 2
    }

    /// Whether the record has no field (never, for a record read from a file).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// Field `i`'s bytes.
    #[inline]
    pub fn field(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.bounds[2 * i]..self.bounds[2 * i + 1]]
    }
}

impl Records {
    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Record<'_> {
        let start = if i == 0 { 0 } else { self.records[i - 1].0 };
        let (end, line) = self.records[i];
        Record { bytes: &self.bytes, bounds: &self.bounds[start..end], line }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.bounds.clear();
        self.records.clear();
        self.error = None;
    }

    /// Adds a record whose fields are `line` cut at every comma.
    #[inline]
    fn push_plain(&mut self, line: &[u8], at: u64) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(line);
        self.bounds.push(base);
        for comma in memchr::memchr_iter(b',', line) {
            self.bounds.push(base + comma);
            self.bounds.push(base + comma + 1);
        }
        self.bounds.push(base + line.len());
        self.records.push((self.bounds.len(), at));
    }

    /// Adds a record read by the `csv` crate.
    fn push_record(&mut self, record: &csv::ByteRecord, at: u64) {
        for field in record {
            self.bounds.push(self.bytes.len());
            self.bytes.extend_from_slice(field);
            self.bounds.push(self.bytes.len());
        }
        self.records.push((self.bounds.len(), at));
    }
}

/// Where the fast path reads: a buffer of the file, the line count and where the `csv` crate would resume.
struct Plain {
    file: File,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..]`.
    start: usize,
    /// The file's offset of `buf[0]`.
    offset: u64,
    /// The file is read to its end.
    eof: bool,
    /// Newlines before `buf[start]`.
    newlines: u64,
    /// The offset after the last record's terminator (the header's included), and the line the `csv` crate
    /// reports for a record starting there.
    resume: (u64, u64),
}

/// The `csv` crate reading the rest of the file, and how its lines map to the file's.
struct Crate {
    reader: csv::Reader<File>,
    record: csv::ByteRecord,
    /// The line of the first record it reads.
    first_line: u64,
    first: bool,
    /// Newlines it reads before the resume point (1 when it starts on the header's or a record's `\n`).
    lead: u64,
}

/// Splits a CSV file into records after its header; see the module's doc.
pub struct Splitter {
    plain: Option<Plain>,
    csv: Option<Crate>,
}

impl Splitter {
    /// Reads `path` from `offset`, the byte after the header, where the `csv` crate reports line `line`.
    pub fn open(path: &Path, offset: u64, line: u64) -> std::io::Result<Splitter> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let plain = Plain {
            file,
            buf: Vec::with_capacity(CHUNK),
            start: 0,
            offset,
            eof: false,
            newlines: line - 1,
            resume: (offset, line),
        };
        Ok(Splitter { plain: Some(plain), csv: None })
    }

    /// Refills `out` with up to `max` records; false once the file is at its end or failed.
    pub fn fill(&mut self, out: &mut Records, max: usize) -> bool {
        out.clear();
        while out.len() < max {
            let more = match self.plain.as_mut() {
                Some(plain) => match plain.next(out) {
                    Ok(Step::Record) => true,
                    Ok(Step::End) => return false,
                    Ok(Step::Switch) => {
                        let resume = plain.resume;
                        match self.switch(resume) {
                            Ok(()) => true,
                            Err(e) => {
                                out.error = Some(e.to_string());
                                return false;
                            }
                        }
                    }
                    Err(e) => {
                        out.error = Some(e.to_string());
                        return false;
                    }
                },
                None => match self.csv.as_mut() {
                    Some(c) => match c.reader.read_byte_record(&mut c.record) {
                        Ok(true) => {
                            let rel = c.record.position().map_or(1, |p| p.line());
                            // The reader starts on the terminator before the resume point (so that a
                            // byte-order mark there is not stripped as at a file's start): its first record
                            // reports line 1, the later ones `lead` lines more than the file's.
                            let at = if c.first { c.first_line } else { c.first_line + rel - 1 - c.lead };
                            c.first = false;
                            out.push_record(&c.record, at);
                            true
                        }
                        Ok(false) => return false,
                        Err(e) => {
                            out.error = Some(e.to_string());
                            return false;
                        }
                    },
                    None => return false,
                },
            };
            if !more {
                return false;
            }
        }
        true
    }

    /// Hands the rest of the file to the `csv` crate, from the terminator before `offset`.
    fn switch(&mut self, (offset, line): (u64, u64)) -> std::io::Result<()> {
        let Some(plain) = self.plain.take() else { return Ok(()) };
        let mut file = plain.file;
        // `offset` follows the header's or a record's terminator (`\n`, or a CR the crate ended the header
        // at), which the reader starts on: to it, a blank line.
        let from = offset.saturating_sub(1);
        let mut before = [0u8; 1];
        file.seek(SeekFrom::Start(from))?;
        if offset > 0 {
            file.read_exact(&mut before)?;
            file.seek(SeekFrom::Start(from))?;
        }
        let lead = (offset > 0 && before[0] == b'\n') as u64;
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
        self.csv = Some(Crate { reader, record: csv::ByteRecord::new(), first_line: line, first: true, lead });
        Ok(())
    }
}

/// What [`Plain::next`] did.
enum Step {
    Record,
    End,
    /// A line needs the `csv` crate: read from [`Plain::resume`] with it.
    Switch,
}

impl Plain {
    /// Adds the next record to `out`, if the next non-blank line is a plain one.
    fn next(&mut self, out: &mut Records) -> std::io::Result<Step> {
        loop {
            let rest = &self.buf[self.start..];
            let (line, used, ended) = match memchr::memchr(b'\n', rest) {
                Some(nl) => (&rest[..nl], nl + 1, true),
                None if self.eof => (rest, rest.len(), false),
                None => {
                    self.refill()?;
                    continue;
                }
            };
            if line.is_empty() {
                if !ended {
                    return Ok(Step::End);
                }
                // A blank line: skipped, counted, and not where a record starts.
                self.start += used;
                self.newlines += 1;
                continue;
            }
            if memchr::memchr2(b'"', b'\r', line).is_some() {
                return Ok(Step::Switch);
            }
            out.push_plain(line, self.resume.1);
            self.start += used;
            self.newlines += ended as u64;
            self.resume = (self.offset + self.start as u64, self.newlines + 1);
            return Ok(Step::Record);
        }
    }

    /// Moves the unread bytes to the front of the buffer and reads more after them.
    fn refill(&mut self) -> std::io::Result<()> {
        self.buf.drain(..self.start);
        self.offset += self.start as u64;
        self.start = 0;
        let have = self.buf.len();
        let want = have + CHUNK;
        self.buf.resize(want, 0);
        let mut filled = have;
        while filled < want {
            match self.file.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The records and lines the `csv` crate reads after the header of `text`, and the splitter's.
    fn both(text: &[u8]) -> (Vec<(Vec<Vec<u8>>, u64)>, Vec<(Vec<Vec<u8>>, u64)>) {
        let dir = std::env::temp_dir().join(format!("routesim-csv-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{:x}.csv", router_core::fnv1a(text)));
        std::fs::write(&path, text).expect("written");
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_path(&path).expect("opens");
        reader.byte_headers().expect("a header");
        let (offset, line) = (reader.position().byte(), reader.position().line());
        let mut want = Vec::new();
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).expect("reads") {
            let line = record.position().expect("a position").line();
            want.push((record.iter().map(<[u8]>::to_vec).collect(), line));
        }
        let mut got = Vec::new();
        if offset > 0 {
            let mut splitter = Splitter::open(&path, offset, line).expect("opens");
            let mut batch = Records::default();
            loop {
                let more = splitter.fill(&mut batch, 3);
                assert!(batch.error.is_none(), "{:?}", batch.error);
                for i in 0..batch.len() {
                    let r = batch.get(i);
                    got.push(((0..r.len()).map(|f| r.field(f).to_vec()).collect(), r.line));
                }
                if !more {
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
        (want, got)
    }

    #[test]
    fn plain_quoted_crlf_and_blank_lines_split_as_the_csv_crate_splits_them() {
        for text in [
            &b"a,b\n1,2\n3,4\n"[..],
            b"a,b\n1,2\n\n\n3,4",
            b"a,b\n1,2\n\n3,4\n\n",
            b"\xef\xbb\xbfa,b\n1,2\n",
            b"a,b\n1,\"2\n\"\n3,4\n",
            b"a,b\r\n1,2\r\n3,4\r\n5\r\n",
            b"a,b\n1,2\n\n\xef\xbb\xbf\"x\",y\n",
            b"a,b\n,\n,,,\n x \n",
            b"a,b\n1,2\r3,4\n",
            b"a,b",
            b"a,b\n",
        ] {
            let (want, got) = both(text);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    proptest! {
        /// Any mix of plain lines, quotes, CR, blank lines and byte-order marks splits into the records
        /// and lines the `csv` crate reads.
        #[test]
        fn any_text_splits_as_the_csv_crate_splits_it(
            parts in proptest::collection::vec(
                prop_oneof![
                    4 => "[a-c0-9 ]{0,4}",
                    3 => Just(",".to_string()),
                    3 => Just("\n".to_string()),
                    1 => Just("\"".to_string()),
                    1 => Just("\r".to_string()),
                    1 => Just("\r\n".to_string()),
                    1 => Just("\u{feff}".to_string()),
                ],
                0..60,
            ),
        ) {
            let text = format!("h1,h2\n{}", parts.concat());
            let (want, got) = both(text.as_bytes());
            prop_assert_eq!(got, want);
        }
    }
}
