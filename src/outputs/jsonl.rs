//! JSON lines to stdout or a file: one object per measure group.

use super::Sink;
use crate::error::{Error, Result};
use crate::record::Record;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where `--output` sends JSON lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonLinesTarget {
    Stdout,
    /// Appended to, created if missing.
    File(PathBuf),
}

impl JsonLinesTarget {
    /// `-` is stdout; anything else a file.
    pub fn parse(text: &str) -> JsonLinesTarget {
        match text {
            "-" => JsonLinesTarget::Stdout,
            path => JsonLinesTarget::File(PathBuf::from(path)),
        }
    }
}

pub enum JsonLines {
    Stdout,
    File { path: PathBuf, file: File },
}

impl JsonLines {
    /// Stdout, or the file opened for appending.
    pub fn open(target: JsonLinesTarget) -> Result<JsonLines> {
        let path = match target {
            JsonLinesTarget::Stdout => return Ok(JsonLines::Stdout),
            JsonLinesTarget::File(path) => path,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)
            .map_err(|e| Error::io("open --output", &path, e))?;
        Ok(JsonLines::File { path, file })
    }
}

/// Appends `line` whole and durably, or not at all: after a failed write
/// (a full disk) the file is cut back, so no torn line is left for readers.
fn append_whole_line(file: &mut File, line: &[u8]) -> io::Result<()> {
    let before = file.metadata()?.len();
    let written = file.write_all(line).and_then(|()| file.sync_data());
    if written.is_err() {
        let _ = file.set_len(before);
    }
    written
}

impl JsonLines {
    /// For `fetch`, which prints records straight away.
    pub fn write_record(&mut self, record: &Record) -> Result<()> {
        self.deliver(&record.to_json_line())
    }
}

impl Sink for JsonLines {
    /// After the `--output` flag. It also names this sink's outbox cursor
    /// (`outbox/output.cursor`), so it stays: under a new name the sink
    /// would start afresh and skip what it had yet to deliver.
    fn name(&self) -> &'static str {
        "output"
    }

    fn deliver(&mut self, line: &str) -> Result<()> {
        let mut line = line.as_bytes().to_vec();
        line.push(b'\n');
        match self {
            JsonLines::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&line)
                    .and_then(|()| out.flush())
                    .map_err(|source| Error::Output {
                        sink: "stdout".into(),
                        source,
                    })
            }
            JsonLines::File { path, file } => {
                append_whole_line(file, &line).map_err(|source| Error::Output {
                    sink: path.display().to_string(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn appends_whole_lines_to_a_file() {
        let dir = TestDir::new("jsonl");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"earlier\":1}\n").unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        append_whole_line(&mut file, b"{\"a\":1}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"earlier\":1}\n{\"a\":1}\n"
        );
    }

    #[test]
    fn a_failed_append_leaves_the_file_as_it_was() {
        let dir = TestDir::new("jsonl-fail");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"earlier\":1}\n").unwrap();
        // A read-only handle fails the write the way a full disk would.
        let mut file = File::open(&path).unwrap();
        assert!(append_whole_line(&mut file, b"{\"a\":1}\n").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"earlier\":1}\n");
    }
}
