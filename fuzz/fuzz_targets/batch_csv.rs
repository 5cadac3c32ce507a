//! The batch CSV reader: any file gives rows or a typed error, never a panic, and
//! `count_rows` (the progress total) counts exactly the rows `next_row` yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkit_batch::{InputFormat, InputSpec, RowReader, count_rows};

fuzz_target!(|data: &[u8]| {
    let spec = InputSpec {
        path: llmkit_fuzz::scratch_file("input.csv", data),
        format: InputFormat::Csv,
        text_column: "text".into(),
        task_rows: true,
    };
    let Ok(mut reader) = RowReader::open(&spec) else {
        return;
    };
    let mut rows = 0u64;
    let complete = loop {
        match reader.next_row() {
            Ok(Some(_)) => rows += 1,
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    if complete && let Ok(n) = count_rows(&spec) {
        assert_eq!(n, rows, "count_rows disagrees with the rows read");
    }
});
