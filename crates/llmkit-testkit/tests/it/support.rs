//! The shared test support: the seeded generator's values are pinned, and a missing model
//! skips or fails as asked.

use llmkit_testkit::fixtures::require_model_in;
use llmkit_testkit::rng::SplitMix64;

/// The generator's output is fixed for good: fixtures were recorded from it. The first
/// values for seed 0 are those of the reference `splitmix64.c`.
#[test]
fn splitmix64_values_are_pinned() {
    let mut rng = SplitMix64::new(0);
    let first: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
    assert_eq!(
        first,
        [
            0xE220_A839_7B1D_CDAF,
            0x6E78_9E6A_A1B9_65F4,
            0x06C4_5D18_8009_454F,
            0xF88B_B8A8_724C_81EC,
        ]
    );
    // The derived draws, from the seed the synthetic GGUF models use for qwen2.
    let mut rng = SplitMix64::new(u64::from_le_bytes(*b"llmkit\0\0") ^ 5);
    let drawn = (
        rng.below(10),
        rng.range(2, 9),
        rng.chance(0.5),
        rng.unit_f64(),
        rng.signed_f32(1.0),
        *rng.pick(&["a", "b", "c"]),
    );
    let mut again = SplitMix64::new(u64::from_le_bytes(*b"llmkit\0\0") ^ 5);
    let expected = (
        again.next_u64() % 10,
        2 + again.next_u64() % 8,
        (again.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= 0.5,
        (again.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
        ((again.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0,
        ["a", "b", "c"][(again.next_u64() % 3) as usize],
    );
    assert_eq!(drawn, expected);
    assert_eq!(rng, again, "each draw takes exactly one value");
}

#[test]
fn draws_stay_in_their_ranges() {
    let mut rng = SplitMix64::new(42);
    for _ in 0..10_000 {
        assert!(rng.below(7) < 7);
        assert!((3..=5).contains(&rng.range(3, 5)));
        let u = rng.unit_f64();
        assert!((0.0..1.0).contains(&u), "{u}");
        let f = rng.signed_f32(0.5);
        assert!((-0.5..0.5).contains(&f), "{f}");
    }
    assert!(!(0..1000).any(|_| rng.chance(-1.0)));
    assert!((0..1000).all(|_| rng.chance(1.0)));
}

#[test]
fn a_present_model_is_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("minilm")).unwrap();
    std::fs::write(dir.path().join("minilm/model.safetensors"), b"x").unwrap();
    for strict in [false, true] {
        assert_eq!(
            require_model_in(dir.path(), "minilm/model.safetensors", strict),
            Some(dir.path().join("minilm/model.safetensors"))
        );
        assert!(require_model_in(dir.path(), "minilm", strict).is_some());
    }
}

#[test]
fn a_missing_model_skips_unless_required() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(require_model_in(dir.path(), "absent.gguf", false), None);
    let failed = std::panic::catch_unwind(|| require_model_in(dir.path(), "absent.gguf", true))
        .expect_err("a required model that is missing fails the test");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("absent.gguf not found"), "{message}");
    assert!(message.contains("LLMKIT_REQUIRE_MODELS=1"), "{message}");
    assert!(message.contains("fetch-models.sh"), "{message}");
}
