//! The drill's pure parts: the random instant and the sampling generator.

use super::{random_instant, SplitMix};
use crate::catalog::OpTime;

fn t(secs: u32) -> OpTime {
    OpTime { t: secs, i: 1 }
}

#[test]
fn random_instants_fall_inside_the_covered_windows_only() {
    // Two chains with a hole between them (1_100..2_000 is not covered).
    let windows = [(t(1_000), t(1_100)), (t(2_000), t(2_050))];
    let mut seen_first = false;
    let mut seen_second = false;
    for seed in 0..2_000 {
        let at = random_instant(&windows, seed)
            .expect("an instant")
            .timestamp();
        assert!(
            (1_000..1_100).contains(&at) || (2_000..2_050).contains(&at),
            "{at} is outside the windows"
        );
        seen_first |= at < 1_100;
        seen_second |= at >= 2_000;
    }
    assert!(seen_first && seen_second, "both windows must be drawn from");
}

#[test]
fn the_last_second_of_a_chain_is_never_drawn() {
    // A point-in-time restore must end before its chain's last second.
    for seed in 0..500 {
        let at = random_instant(&[(t(50), t(52))], seed).expect("an instant");
        assert!(at.timestamp() == 50 || at.timestamp() == 51);
    }
    assert_eq!(random_instant(&[(t(50), t(50))], 7), None);
    assert_eq!(random_instant(&[], 7), None);
}

#[test]
fn a_seed_gives_the_same_choices_again() {
    let windows = [(t(0), t(1_000_000))];
    assert_eq!(random_instant(&windows, 42), random_instant(&windows, 42));
    let mut a = SplitMix(1);
    let mut b = SplitMix(2);
    assert_ne!(a.next(), b.next());
}
