//! Resilience: consecutive asks against a mock that injects every fault kind.

use llmkit_testkit::{Fault, MockConfig};

use crate::support::{Llmkit, Mock, stderr, stdout};

#[test]
fn two_hundred_asks_survive_thirty_percent_faults() {
    let mock = Mock::start(MockConfig {
        fault_rate: 0.3,
        faults: Fault::ALL.to_vec(),
        seed: 42,
        ..MockConfig::default()
    });
    // Four workers, 50 asks each: the retries' backoff sleeps, not the CPU, set the pace.
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let mock = &mock;
            scope.spawn(move || {
                for i in (worker..200).step_by(4) {
                    let prompt = format!("question number {i}");
                    // Alternate streamed and whole answers: stream faults strike before the
                    // first token, so both must come back complete.
                    let mode = if i % 2 == 0 {
                        "--no-stream"
                    } else {
                        "--temperature=0"
                    };
                    let o = Llmkit::against(mock)
                        .args([
                            "ask",
                            "--max-retries",
                            "10",
                            "--stall-timeout",
                            "0.3",
                            mode,
                            &prompt,
                        ])
                        .run();
                    assert!(o.status.success(), "ask {i} failed: {}", stderr(&o));
                    assert_eq!(stdout(&o), format!("{prompt}\n"), "ask {i}");
                }
            });
        }
    });
    let faults = mock
        .server
        .requests()
        .iter()
        .filter(|r| !r["fault"].is_null())
        .count();
    assert!(faults > 40, "only {faults} faults were injected");
}
