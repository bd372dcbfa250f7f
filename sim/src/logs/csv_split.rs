//! Splitting a CSV log into records, as the `csv` crate does, faster for the lines that need no CSV rules.
//!
//! A line without a quote and without a carriage return is its fields cut at every comma: that is what the
//! `csv` crate makes of it too. [`Splitter`] cuts such lines itself (a `gen-log` CSV and most exports hold
//! little else) and reads a record that starts on any other line with the crate's own parser (`csv-core`,
//! one reader for the whole file, fed from the line's start), so quoting, quoted newlines, CRLF and lone CR
//! terminators keep the crate's meaning. Either way a record carries the line the crate reports for it
//! (`Position::line`: the line after the previous record, so blank lines before a record do not count), and
//! blank lines are skipped as the crate skips them.

use csv_core::ReadRecordResult;
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

    /// Where field `i` is in its batch's [`Records::bytes`].
    #[inline]
    pub fn span(&self, i: usize) -> std::ops::Range<usize> {
        self.bounds[2 * i]..self.bounds[2 * i + 1]
    }

    /// Field `i`'s bytes.
    #[inline]
    pub fn field(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.span(i)]
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

    /// The fields' bytes, back to back (the records' [`Record::span`]s index them).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
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

    /// Adds a record read by `csv-core`: its fields back to back in `fields`, each ending at `ends`.
    fn push_parsed(&mut self, fields: &[u8], ends: &[usize], at: u64) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(fields);
        let mut start = 0;
        for &end in ends {
            self.bounds.push(base + start);
            self.bounds.push(base + end);
            start = end;
        }
        self.records.push((self.bounds.len(), at));
    }
}

/// Splits a CSV file into records after its header; see the module's doc.
pub struct Splitter {
    file: File,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..]`.
    start: usize,
    /// The file is read to its end.
    eof: bool,
    /// Newlines before `buf[start]`.
    newlines: u64,
    /// The line the `csv` crate reports for a record starting after the last record's terminator.
    line: u64,
    /// The parser of the lines that need CSV rules, and its output: a record's fields and their ends.
    core: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

impl Splitter {
    /// Reads `path` from `offset`, the byte after the header, where the `csv` crate reports line `line`.
    pub fn open(path: &Path, offset: u64, line: u64) -> std::io::Result<Splitter> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut core = csv_core::Reader::new();
        // A blank line first, so that the parser does not strip a byte-order mark as at a file's start.
        let _ = core.read_record(b"\n", &mut [0u8; 1], &mut [0usize; 1]);
        Ok(Splitter {
            file,
            buf: Vec::with_capacity(CHUNK),
            start: 0,
            eof: false,
            newlines: line - 1,
            line,
            core,
            fields: vec![0; 1024],
            ends: vec![0; 32],
        })
    }

    /// Refills `out` with up to `max` records; false once the file is at its end or failed.
    pub fn fill(&mut self, out: &mut Records, max: usize) -> bool {
        out.clear();
        while out.len() < max {
            match self.next(out) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    out.error = Some(e.to_string());
                    return false;
                }
            }
        }
        true
    }

    /// Adds the next record to `out`; false at the end of the file.
    fn next(&mut self, out: &mut Records) -> std::io::Result<bool> {
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
                    return Ok(false);
                }
                // A blank line: skipped, counted, and not where a record starts.
                self.start += used;
                self.newlines += 1;
                continue;
            }
            if memchr::memchr2(b'"', b'\r', line).is_some() {
                return self.parsed(out);
            }
            out.push_plain(line, self.line);
            self.start += used;
            self.newlines += ended as u64;
            self.line = self.newlines + 1;
            return Ok(true);
        }
    }

    /// Adds the record that starts at `buf[start]` as `csv-core` reads it (it may span lines, and end at a
    /// CR); false if there is none.
    fn parsed(&mut self, out: &mut Records) -> std::io::Result<bool> {
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            let input = &self.buf[self.start..];
            let (res, nin, nout, nend) =
                self.core.read_record(input, &mut self.fields[outlen..], &mut self.ends[endlen..]);
            self.newlines += memchr::memchr_iter(b'\n', &input[..nin]).count() as u64;
            self.start += nin;
            outlen += nout;
            endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => {
                    if !self.eof {
                        self.refill()?;
                    }
                }
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    out.push_parsed(&self.fields[..outlen], &self.ends[..endlen], self.line);
                    self.line = self.newlines + 1;
                    return Ok(true);
                }
                ReadRecordResult::End => return Ok(false),
            }
        }
    }

    /// Moves the unread bytes to the front of the buffer and reads more after them.
    fn refill(&mut self) -> std::io::Result<()> {
        self.buf.drain(..self.start);
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

    /// Records as fields and the line reported for each.
    type Lines = Vec<(Vec<Vec<u8>>, u64)>;

    /// The records and lines the `csv` crate reads after the header of `text`, and the splitter's.
    fn both(text: &[u8]) -> (Lines, Lines) {
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
