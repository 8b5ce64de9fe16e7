//! The rotation schedule: which key of an algorithm signs and which are
//! published, decided from the keys' creation times (their file names) and the
//! time alone, so every instance and `clef keys` reach the same answer.

use std::cmp::Ordering;

use super::{PUBLICATION_DELAY, RETENTION};

/// Where a key stands in the schedule at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In the JWKS, not signing yet: relying parties that cache the JWKS get
    /// to see it first. Signs from `signs_from` (its creation plus the
    /// publication delay), unless a newer key is due by then.
    Published { signs_from: i64 },
    /// The key its algorithm signs with.
    Signing,
    /// Stopped signing when its successor became active; stays in the JWKS,
    /// and its tokens verify, until `until` (that moment plus the retention).
    Retired { until: i64 },
    /// Past its retention: neither published nor accepted any more, and
    /// deleted by the next `clef keys rotate`.
    Expired,
}

impl KeyState {
    /// In the JWKS, and accepted by `KeyRing::verify`.
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Expired)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Published { .. } => "published",
            Self::Signing => "signing",
            Self::Retired { .. } => "retired",
            Self::Expired => "expired",
        }
    }
}

/// The states at `now` of one algorithm's keys, given their creation times in
/// ascending order. The signer is the newest key older than the publication
/// delay, or the oldest key when none is (a first start: its key signs at
/// once). A key before the signer retired when its successor became due.
pub(super) fn states(created: &[i64], now: i64) -> Vec<KeyState> {
    let due = |c: i64| c.saturating_add(PUBLICATION_DELAY) <= now;
    let signer = created.iter().rposition(|&c| due(c)).unwrap_or(0);
    created
        .iter()
        .enumerate()
        .map(|(i, &c)| match i.cmp(&signer) {
            Ordering::Less => {
                // Keys become due in creation order, so the successor became
                // active at its own due time, no later than now.
                let until = created[i + 1]
                    .saturating_add(PUBLICATION_DELAY)
                    .saturating_add(RETENTION);
                if now < until {
                    KeyState::Retired { until }
                } else {
                    KeyState::Expired
                }
            }
            Ordering::Equal => KeyState::Signing,
            Ordering::Greater => KeyState::Published {
                signs_from: c.saturating_add(PUBLICATION_DELAY),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::KeyState::*;
    use super::*;

    const D: i64 = PUBLICATION_DELAY;
    const R: i64 = RETENTION;

    #[test]
    fn a_first_key_signs_at_once() {
        assert_eq!(states(&[100], 100), [Signing]);
        assert_eq!(states(&[100], 100 + D), [Signing]);
        assert!(states(&[], 100).is_empty());
    }

    #[test]
    fn a_new_key_is_published_for_the_delay_then_signs() {
        let keys = [0, 1000 * D];
        let rotated = 1000 * D;
        assert_eq!(
            states(&keys, rotated),
            [
                Signing,
                Published {
                    signs_from: rotated + D
                }
            ]
        );
        assert_eq!(
            states(&keys, rotated + D - 1),
            [
                Signing,
                Published {
                    signs_from: rotated + D
                }
            ]
        );
        assert_eq!(
            states(&keys, rotated + D),
            [
                Retired {
                    until: rotated + D + R
                },
                Signing
            ]
        );
        assert_eq!(
            states(&keys, rotated + D + R - 1),
            [
                Retired {
                    until: rotated + D + R
                },
                Signing
            ]
        );
        assert_eq!(states(&keys, rotated + D + R), [Expired, Signing]);
    }

    #[test]
    fn a_rotation_soon_after_a_first_start_keeps_the_first_key_signing() {
        // Neither key is past the delay: the oldest signs.
        assert_eq!(
            states(&[100, 160], 200),
            [
                Signing,
                Published {
                    signs_from: 160 + D
                }
            ]
        );
        assert_eq!(
            states(&[100, 160], 160 + D),
            [Retired { until: 160 + D + R }, Signing]
        );
    }

    #[test]
    fn two_rotations_in_a_row_retire_in_order() {
        let keys = [0, 10 * D, 10 * D + 60];
        assert_eq!(
            states(&keys, 10 * D + D + 30),
            [
                Retired { until: 11 * D + R },
                Signing,
                Published {
                    signs_from: 11 * D + 60
                }
            ]
        );
        assert_eq!(
            states(&keys, 11 * D + 60),
            [
                Retired { until: 11 * D + R },
                Retired {
                    until: 11 * D + 60 + R
                },
                Signing
            ]
        );
    }
}
