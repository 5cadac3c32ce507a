//! Knowledge-base bookkeeping: change detection, duplicates, dimensions, removal, empty KBs.

use llmkit_kb::{DocumentState, Kb, KbError, NewChunk, SearchOptions};

fn chunk(t: &str) -> NewChunk {
    NewChunk {
        text: t.into(),
        location: String::new(),
    }
}

#[test]
fn change_detection_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut kb = Kb::create(dir.path(), "t", "m").unwrap();
    assert_eq!(kb.document_state("a", "h1").unwrap(), DocumentState::New);
    kb.replace_document("a", "h1", &[chunk("alpha beta")], &[vec![1.0, 0.0]])
        .unwrap();
    assert_eq!(
        kb.document_state("a", "h1").unwrap(),
        DocumentState::Unchanged
    );
    assert_eq!(
        kb.document_state("a", "h2").unwrap(),
        DocumentState::Changed
    );
    assert_eq!(
        kb.document_state("b", "h1").unwrap(),
        DocumentState::Duplicate("a".into())
    );
    kb.record_duplicate("b", "h1", "a").unwrap();
    assert_eq!(kb.stats().unwrap().documents, 2);
    assert_eq!(kb.stats().unwrap().chunks, 1);
    // Replacing a document replaces its chunks, in the FTS index too.
    kb.replace_document("a", "h2", &[chunk("gamma")], &[vec![0.0, 1.0]])
        .unwrap();
    let hits = kb.search("alpha", None, &SearchOptions::default()).unwrap();
    assert!(hits.is_empty());
    let hits = kb
        .search("gamma", Some(&[0.0, 2.0]), &SearchOptions::default())
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!((hits[0].similarity.unwrap() - 1.0).abs() < 1e-5);
    assert!(kb.remove_document("a").unwrap());
    assert!(matches!(
        kb.search("gamma", None, &SearchOptions::default()),
        Err(KbError::Empty(_))
    ));
}

#[test]
fn dimensions_are_fixed_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut kb = Kb::create(dir.path(), "t", "m").unwrap();
    kb.replace_document("a", "h", &[chunk("x")], &[vec![1.0, 0.0, 0.0]])
        .unwrap();
    drop(kb);
    let mut kb = Kb::open(dir.path(), "t").unwrap();
    assert_eq!(kb.info().dims, Some(3));
    let err = kb
        .replace_document("b", "h2", &[chunk("y")], &[vec![1.0, 0.0]])
        .unwrap_err();
    assert!(matches!(
        err,
        KbError::DimensionMismatch {
            expected: 3,
            got: 2
        }
    ));
    assert!(err.hint().is_some());
    let err = kb
        .search("x", Some(&[1.0]), &SearchOptions::default())
        .unwrap_err();
    assert!(matches!(err, KbError::DimensionMismatch { .. }));
}

#[test]
fn create_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    Kb::create(dir.path(), "b", "m").unwrap();
    Kb::create(dir.path(), "a", "m").unwrap();
    assert!(matches!(
        Kb::create(dir.path(), "a", "m"),
        Err(KbError::Exists(_))
    ));
    assert_eq!(Kb::list(dir.path()).unwrap(), vec!["a", "b"]);
    Kb::remove(dir.path(), "a").unwrap();
    assert!(matches!(
        Kb::open(dir.path(), "a"),
        Err(KbError::NotFound(_))
    ));
    assert_eq!(Kb::list(dir.path()).unwrap(), vec!["b"]);
}

#[test]
fn mmr_prefers_diverse_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut kb = Kb::create(dir.path(), "t", "m").unwrap();
    let docs = [
        ("a", "rust ownership moves", vec![1.0, 0.0, 0.0]),
        ("b", "rust ownership moves again", vec![0.99, 0.1, 0.0]),
        ("c", "rust borrowing", vec![0.7, 0.0, 0.7]),
    ];
    for (s, t, v) in docs {
        kb.replace_document(s, s, &[chunk(t)], &[v]).unwrap();
    }
    let q = [1.0, 0.0, 0.2];
    let plain = SearchOptions {
        k: 2,
        ..SearchOptions::default()
    };
    let hits = kb.search("rust ownership", Some(&q), &plain).unwrap();
    assert_eq!(hits[0].source, "a");
    assert_eq!(hits[1].source, "b");
    let mmr = SearchOptions { mmr: true, ..plain };
    let hits = kb.search("rust ownership", Some(&q), &mmr).unwrap();
    assert_eq!(hits[0].source, "a");
    assert_eq!(hits[1].source, "c");
}

#[test]
fn rows_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "id,body\n1,Cats purr\n2,\n3,Dogs bark\n").unwrap();
    let l = llmkit_kb::load_file(&csv, Some("body")).unwrap();
    let locs: Vec<&str> = l.docs.iter().map(|d| d.location.as_str()).collect();
    assert_eq!(locs, vec!["row 1", "row 3"]);
    assert!(matches!(
        llmkit_kb::load_file(&csv, None),
        Err(KbError::BadInput { .. })
    ));
    assert!(matches!(
        llmkit_kb::load_file(&csv, Some("nope")),
        Err(KbError::BadInput { .. })
    ));
    let odd = dir.path().join("x.bin");
    std::fs::write(&odd, "x").unwrap();
    let err = llmkit_kb::load_file(&odd, None).unwrap_err();
    assert!(matches!(err, KbError::UnknownFormat { .. }) && err.hint().is_some());
    // The hash follows the bytes.
    let a = dir.path().join("a.txt");
    std::fs::write(&a, "same").unwrap();
    let h1 = llmkit_kb::load_file(&a, None).unwrap().hash;
    std::fs::write(&a, "changed").unwrap();
    assert_ne!(h1, llmkit_kb::load_file(&a, None).unwrap().hash);
}

#[test]
fn bm25_budget_keeps_the_rarest_terms() {
    let dir = tempfile::tempdir().unwrap();
    let mut kb = Kb::create(dir.path(), "t", "m").unwrap();
    // 40 chunks say "common"; chunks 3 and 7 also say "zebra".
    let chunks: Vec<NewChunk> = (0..40)
        .map(|i| {
            let extra = if i == 3 || i == 7 { " zebra" } else { "" };
            chunk(&format!("common words here{extra}"))
        })
        .collect();
    let vectors = vec![vec![1.0, 0.0]; 40];
    kb.replace_document("a", "h", &chunks, &vectors).unwrap();
    // Within a budget of 5 rows only "zebra" (2 rows) fits: "common" (40) is dropped.
    let hits = kb.bm25_within("common zebra", 10, Some(5)).unwrap();
    assert_eq!(hits.len(), 2);
    // The plain query ranks the same two first, then every other "common" chunk.
    let full = kb.bm25_within("common zebra", 10, None).unwrap();
    assert_eq!(full.len(), 10);
    let top: Vec<i64> = full[..2].iter().map(|h| h.0).collect();
    let kept: Vec<i64> = hits.iter().map(|h| h.0).collect();
    assert_eq!(top, kept);
    // A term over the budget has only its first 5 rows ranked; unknown words are dropped.
    assert_eq!(kb.bm25_within("common", 50, Some(5)).unwrap().len(), 5);
    assert_eq!(
        kb.bm25_within("common nosuchword", 50, Some(5))
            .unwrap()
            .len(),
        5
    );
    assert!(
        kb.bm25_within("nosuchword", 50, Some(5))
            .unwrap()
            .is_empty()
    );
    // A knowledge base smaller than the budget searches every term.
    assert_eq!(
        kb.bm25_within("common zebra", 50, Some(100)).unwrap().len(),
        40
    );

    // Both terms over the budget: chunks holding both come first, then the rarest term's.
    let mut kb = Kb::create(dir.path(), "u", "m").unwrap();
    let chunks: Vec<NewChunk> = (0..40)
        .map(|i| {
            let mut t = format!("chunk{i}");
            if i < 18 {
                t.push_str(" alpha");
            }
            if (10..30).contains(&i) {
                t.push_str(" beta beta");
            }
            chunk(&t)
        })
        .collect();
    kb.replace_document("a", "h", &chunks, &vec![vec![1.0, 0.0]; 40])
        .unwrap();
    let hits = kb.bm25_within("alpha beta", 12, Some(15)).unwrap();
    assert_eq!(hits.len(), 12);
    let text = |id: i64| kb.chunk(id).unwrap().text;
    // alpha (18 rows) is rarer than beta (20): 8 chunks hold both.
    for h in &hits[..8] {
        let t = text(h.0);
        assert!(t.contains("alpha") && t.contains("beta"), "{t}");
    }
    for h in &hits[8..] {
        let t = text(h.0);
        assert!(t.contains("alpha") && !t.contains("beta"), "{t}");
    }
}

#[test]
fn parallel_vector_scan_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut kb = Kb::create(dir.path(), "t", "m").unwrap();
    // 6000 × 384 floats: past the size where the scan is split over threads.
    let dims = 384;
    let mut x = 88172645463325252u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2000) as f32 / 1000.0 - 1.0
    };
    let vectors: Vec<Vec<f32>> = (0..6000)
        .map(|_| {
            let mut v: Vec<f32> = (0..dims).map(|_| rnd()).collect();
            llmkit_kb::normalize(&mut v);
            v
        })
        .collect();
    let chunks: Vec<NewChunk> = (0..6000).map(|i| chunk(&format!("c{i}"))).collect();
    kb.replace_document("a", "h", &chunks, &vectors).unwrap();
    let q = vectors[4321].clone();
    let opts = SearchOptions {
        k: 20,
        candidates: 20,
        bm25: false,
        ..SearchOptions::default()
    };
    let hits = kb.search("", Some(&q), &opts).unwrap();
    let mut brute: Vec<(usize, f32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i, llmkit_kb::dot(&q, v)))
        .collect();
    brute.sort_by(|a, b| b.1.total_cmp(&a.1));
    let want: Vec<String> = brute[..20].iter().map(|(i, _)| format!("c{i}")).collect();
    let got: Vec<String> = hits.iter().map(|h| h.text.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(got[0], "c4321");
}

#[test]
fn another_connections_write_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Kb::create(dir.path(), "t", "m").unwrap();
    writer
        .replace_document("a", "h1", &[chunk("alpha")], &[vec![1.0, 0.0]])
        .unwrap();
    let reader = Kb::open(dir.path(), "t").unwrap();
    let opts = SearchOptions::default();
    assert_eq!(
        reader
            .search("alpha", Some(&[1.0, 0.0]), &opts)
            .unwrap()
            .len(),
        1
    );
    writer
        .replace_document("b", "h2", &[chunk("beta")], &[vec![0.0, 1.0]])
        .unwrap();
    // The reader's cached count and matrix are dropped: the new chunk is found.
    assert_eq!(reader.chunk_count().unwrap(), 2);
    let hits = reader.search("beta", Some(&[0.0, 1.0]), &opts).unwrap();
    assert_eq!(hits[0].text, "beta");
    assert_eq!(hits.len(), 2);
}
