//! The batch JSONL reader: any file gives rows or a typed error, never a panic, and
//! `count_rows` (the progress total) counts exactly the rows `next_row` yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkit_batch::{InputFormat, InputSpec, RowReader, count_rows};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let spec = InputSpec {
        path: llmkit_fuzz::scratch_file("input.jsonl", body),
        format: InputFormat::Jsonl,
        text_column: "text".into(),
        task_rows: mode & 1 == 0,
    };
    let Ok(mut reader) = RowReader::open(&spec) else {
        return;
    };
    let mut rows = 0u64;
    while let Ok(Some(row)) = reader.next_row() {
        assert_eq!(row.index, rows, "rows are numbered in order");
        rows += 1;
    }
    if let Ok(n) = count_rows(&spec) {
        assert_eq!(n, rows, "count_rows disagrees with the rows read");
    }
});
