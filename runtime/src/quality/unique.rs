//! `expect_column_values_to_be_unique` in bounded memory: each value is kept as a 128-bit
//! blake3 digest with its row number (24 bytes, whatever the value's size); when the
//! buffered pairs pass a memory cap they are sorted and spilled to an anonymous temporary
//! file as one sorted run. At the end the runs (and what is still buffered) are merged in
//! digest order: within a digest the first row is the original, every later row a
//! duplicate. Memory is the cap plus one read buffer per run; disk is 24 bytes per value.
//!
//! Only row numbers come out ([`Duplicates::rows`]: the first [`MAX_SHOWN_ROWS`] duplicate
//! rows in row order); the caller reads their values again if it shows them. It must never
//! keep values, and its temporary files vanish with it (they are unlinked when made).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::expect::MAX_SHOWN_ROWS;

/// What `_to_be_unique` buffers before it spills a sorted run to disk.
pub const UNIQUE_MEMORY_CAP: usize = 64 << 20;

/// One value: its digest and the (0-based) data row it is on.
type Entry = (u128, u64);
const ENTRY_BYTES: usize = 24;

/// The digests of a column's values, in memory up to a cap, then in sorted runs on disk.
pub struct Unique {
    cap_entries: usize,
    buffer: Vec<Entry>,
    runs: Vec<File>,
    /// The first error writing a run (reported by [`Unique::finish`]).
    failed: Option<String>,
}

/// What [`Unique::finish`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Duplicates {
    /// Values equal to a value on an earlier row.
    pub count: u64,
    /// The first [`MAX_SHOWN_ROWS`] of those rows, ascending.
    pub rows: Vec<u64>,
    /// Sorted runs spilled to disk.
    pub spilled_runs: usize,
}

impl Unique {
    /// Buffers at most `cap_bytes` of digests in memory (at least one).
    pub fn new(cap_bytes: usize) -> Unique {
        Unique { cap_entries: (cap_bytes / ENTRY_BYTES).max(1), buffer: Vec::new(), runs: Vec::new(), failed: None }
    }

    pub fn push(&mut self, value: &str, row: u64) {
        let digest = blake3::hash(value.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest.as_bytes()[..16]);
        self.buffer.push((u128::from_le_bytes(first), row));
        if self.buffer.len() >= self.cap_entries
            && self.failed.is_none()
            && let Err(e) = self.spill()
        {
            self.failed = Some(format!("spilling `_to_be_unique` digests to a temporary file: {e}"));
        }
    }

    fn spill(&mut self) -> std::io::Result<()> {
        self.buffer.sort_unstable();
        let mut file = tempfile::tempfile()?;
        {
            let mut out = BufWriter::with_capacity(1 << 16, &mut file);
            for (digest, row) in self.buffer.drain(..) {
                out.write_all(&digest.to_le_bytes())?;
                out.write_all(&row.to_le_bytes())?;
            }
            out.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        Ok(())
    }

    /// Merges everything seen and counts the duplicates.
    pub fn finish(mut self) -> Result<Duplicates, String> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.buffer.sort_unstable();
        let spilled_runs = self.runs.len();
        let mut sources: Vec<Source> = self.runs.into_iter().map(|f| Source::File(BufReader::new(f))).collect();
        sources.push(Source::Memory(self.buffer.into_iter()));
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(entry) = source.next().map_err(|e| format!("reading spilled digests: {e}"))? {
                heap.push(Reverse((entry, i)));
            }
        }
        let mut found = Duplicates { spilled_runs, ..Duplicates::default() };
        let mut shown: BinaryHeap<u64> = BinaryHeap::new();
        let mut previous: Option<u128> = None;
        while let Some(Reverse(((digest, row), i))) = heap.pop() {
            if previous == Some(digest) {
                found.count += 1;
                shown.push(row);
                if shown.len() > MAX_SHOWN_ROWS {
                    shown.pop();
                }
            }
            previous = Some(digest);
            if let Some(next) = sources[i].next().map_err(|e| format!("reading spilled digests: {e}"))? {
                heap.push(Reverse((next, i)));
            }
        }
        found.rows = shown.into_sorted_vec();
        Ok(found)
    }
}

/// A sorted run: spilled, or the buffer that never was.
enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<Entry>),
}

impl Source {
    fn next(&mut self) -> std::io::Result<Option<Entry>> {
        match self {
            Source::Memory(entries) => Ok(entries.next()),
            Source::File(reader) => {
                let mut bytes = [0u8; ENTRY_BYTES];
                match reader.read_exact(&mut bytes) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let (digest, row) = bytes.split_at(16);
                let digest = u128::from_le_bytes(digest.try_into().unwrap_or_default());
                let row = u64::from_le_bytes(row.try_into().unwrap_or_default());
                Ok(Some((digest, row)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with known duplicates: row r holds `v{r % distinct}` for r < n.
    fn fill(unique: &mut Unique, n: u64, distinct: u64) {
        for row in 0..n {
            unique.push(&format!("v{}", row % distinct), row);
        }
    }

    #[test]
    fn a_tiny_cap_spills_and_counts_exactly_what_memory_would() {
        for (n, distinct) in [(1000u64, 1000u64), (1000, 997), (1000, 10), (5, 1), (0, 1)] {
            let mut in_memory = Unique::new(usize::MAX / 2);
            fill(&mut in_memory, n, distinct);
            let expected = in_memory.finish().unwrap();
            assert_eq!(expected.spilled_runs, 0);
            let mut spilling = Unique::new(ENTRY_BYTES * 7);
            fill(&mut spilling, n, distinct);
            let got = spilling.finish().unwrap();
            assert_eq!(got.spilled_runs as u64, n / 7, "n={n}");
            assert_eq!(got.count, n.saturating_sub(distinct), "n={n} distinct={distinct}");
            assert_eq!((got.count, &got.rows), (expected.count, &expected.rows), "n={n} distinct={distinct}");
            let first: Vec<u64> = (distinct..n).take(MAX_SHOWN_ROWS).collect();
            assert_eq!(got.rows, first, "the first duplicate rows, in row order");
        }
    }

    #[test]
    fn a_spilling_expectation_on_a_file_reports_the_duplicates_with_their_values() {
        use crate::spec::expect::{ExpectKind, Expectation};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.csv");
        let mut text = String::from("id,name\n");
        for row in 0..500 {
            let id = if row % 100 == 99 { row - 50 } else { row };
            text.push_str(&format!("{id},n{row}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let unique = Expectation {
            name: "expect_column_values_to_be_unique".into(),
            dataset: "ids.csv".into(),
            column: Some("id".into()),
            mostly: None,
            kind: ExpectKind::Unique,
        };
        let tiny = crate::quality::expect::evaluate_capped(&path, &[&unique], ENTRY_BYTES * 16).unwrap();
        let roomy = crate::quality::expect::evaluate(&path, &[&unique]).unwrap();
        assert_eq!(tiny, roomy);
        assert!(!tiny[0].success);
        assert_eq!(tiny[0].observed, "5 of 500 values unexpected");
        assert_eq!(
            tiny[0].rows,
            ["row 99: \"49\"", "row 199: \"149\"", "row 299: \"249\"", "row 399: \"349\"", "row 499: \"449\""]
        );
    }

    #[test]
    fn a_duplicate_across_runs_is_found_and_the_earliest_row_is_the_original() {
        let mut unique = Unique::new(ENTRY_BYTES * 2);
        for (row, value) in ["a", "b", "c", "d", "e", "a", "f", "c"].iter().enumerate() {
            unique.push(value, row as u64);
        }
        let got = unique.finish().unwrap();
        assert_eq!(got.spilled_runs, 4);
        assert_eq!((got.count, got.rows), (2, vec![5, 7]));
    }
}
