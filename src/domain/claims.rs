//! Warranty claims: the states a claim goes through, who may move it where, and what each move
//! needs. PRODUCT.md §3: submitted → triaged → approved or rejected → awaiting unit → in repair →
//! shipped back or replaced → closed; plus the customer's cancel (before triage), staff asking
//! for information, and a refund.

use std::fmt;

/// A claim's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Submitted,
    InfoRequested,
    Triaged,
    Approved,
    Rejected,
    AwaitingUnit,
    InRepair,
    ShippedBack,
    Replaced,
    Refunded,
    Closed,
    Cancelled,
}

/// Who asks for a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Customer,
    Staff,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Submitted,
        Status::InfoRequested,
        Status::Triaged,
        Status::Approved,
        Status::Rejected,
        Status::AwaitingUnit,
        Status::InRepair,
        Status::ShippedBack,
        Status::Replaced,
        Status::Refunded,
        Status::Closed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::InfoRequested => "info_requested",
            Status::Triaged => "triaged",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::AwaitingUnit => "awaiting_unit",
            Status::InRepair => "in_repair",
            Status::ShippedBack => "shipped_back",
            Status::Replaced => "replaced",
            Status::Refunded => "refunded",
            Status::Closed => "closed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// What the customer and staff read.
    pub fn label(self) -> &'static str {
        match self {
            Status::Submitted => "Received",
            Status::InfoRequested => "We need more information",
            Status::Triaged => "Being assessed",
            Status::Approved => "Approved",
            Status::Rejected => "Not covered",
            Status::AwaitingUnit => "Waiting for the product to arrive",
            Status::InRepair => "Being repaired",
            Status::ShippedBack => "Repaired and sent back",
            Status::Replaced => "Replaced",
            Status::Refunded => "Refunded",
            Status::Closed => "Closed",
            Status::Cancelled => "Cancelled",
        }
    }

    /// The staff's button for moving a claim here.
    pub fn action(self) -> &'static str {
        match self {
            Status::Submitted => "Reopen",
            Status::InfoRequested => "Ask the customer for information",
            Status::Triaged => "Mark as assessed",
            Status::Approved => "Approve",
            Status::Rejected => "Reject",
            Status::AwaitingUnit => "Wait for the product",
            Status::InRepair => "Start the repair",
            Status::ShippedBack => "Repaired: send it back",
            Status::Replaced => "Replace the unit",
            Status::Refunded => "Refund",
            Status::Closed => "Close",
            Status::Cancelled => "Cancel",
        }
    }

    /// No move leaves these.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Closed | Status::Cancelled)
    }

    /// Still needs work from staff or the customer (counts in the queue and for service levels).
    pub fn is_open(self) -> bool {
        !self.is_final()
    }

    /// Before an outcome (repaired, replaced, refunded, rejected): the customer can still add
    /// information, and an estimate of completion means something.
    pub fn awaits_outcome(self) -> bool {
        matches!(
            self,
            Status::Submitted
                | Status::InfoRequested
                | Status::Triaged
                | Status::Approved
                | Status::AwaitingUnit
                | Status::InRepair
        )
    }

    /// The states a claim can move to from here, by `actor`.
    pub fn next(self, actor: Actor) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|to| allowed(self, *to, actor))
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The one table of allowed moves.
fn allowed(from: Status, to: Status, actor: Actor) -> bool {
    use Status::*;
    match actor {
        Actor::Customer => matches!(
            (from, to),
            // Cancel before staff have assessed it; answering a question returns the claim to
            // where it was when staff asked (assessed, or not yet).
            (Submitted, Cancelled) | (InfoRequested, Submitted) | (InfoRequested, Triaged)
        ),
        Actor::Staff => matches!(
            (from, to),
            (Submitted, Triaged)
                | (Submitted, InfoRequested)
                | (Triaged, InfoRequested)
                // The customer answered another way (by phone).
                | (InfoRequested, Triaged)
                | (Triaged, Approved)
                | (Triaged, Rejected)
                | (Approved, AwaitingUnit)
                | (Approved, InRepair)
                | (Approved, Replaced)
                | (Approved, Refunded)
                | (AwaitingUnit, InRepair)
                | (AwaitingUnit, Replaced)
                | (AwaitingUnit, Refunded)
                | (InRepair, ShippedBack)
                | (InRepair, Replaced)
                | (InRepair, Refunded)
                | (ShippedBack, Closed)
                | (Replaced, Closed)
                | (Refunded, Closed)
                | (Rejected, Closed)
        ),
    }
}

/// Why a move is refused, in words for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError(pub String);

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `actor` may move a claim from `from` to `to`, and if not, why.
pub fn check(from: Status, to: Status, actor: Actor) -> Result<(), TransitionError> {
    if allowed(from, to, actor) {
        return Ok(());
    }
    let why = if from == to {
        format!("the claim is already “{}”", from.label())
    } else if from.is_final() {
        format!(
            "the claim is “{}”: nothing more can change",
            from.label().to_lowercase()
        )
    } else if actor == Actor::Customer && to == Status::Cancelled {
        "a claim can be cancelled only until our staff have assessed it".to_owned()
    } else if actor == Actor::Customer {
        "only our service staff can do that".to_owned()
    } else {
        let next: Vec<&str> = from
            .next(Actor::Staff)
            .into_iter()
            .map(Status::label)
            .collect();
        format!(
            "a claim that is “{}” cannot become “{}”; it can become: {}",
            from.label().to_lowercase(),
            to.label().to_lowercase(),
            if next.is_empty() {
                "nothing".to_owned()
            } else {
                next.join(", ").to_lowercase()
            }
        )
    };
    Err(TransitionError(why))
}

/// What a move needs besides the click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// A note the customer reads: the reason (rejected), the work and parts (repaired), the
    /// refund (refunded), the question (information requested).
    PublicNote,
    /// The serial of the replacement unit.
    ReplacementSerial,
}

pub fn needs(to: Status) -> Needs {
    match to {
        Status::Rejected | Status::ShippedBack | Status::Refunded | Status::InfoRequested => {
            Needs::PublicNote
        }
        Status::Replaced => Needs::ReplacementSerial,
        _ => Needs::Nothing,
    }
}

/// Problem categories the customer chooses from: (code, label).
pub const CATEGORIES: [(&str, &str); 9] = [
    ("does_not_start", "Does not switch on or start"),
    ("battery", "Battery or charging"),
    ("performance", "Works, but poorly"),
    ("noise", "Noise or vibration"),
    ("overheating", "Gets hot, smells or smokes"),
    ("broken_part", "A part broke or fell off"),
    ("arrived_damaged", "Arrived damaged"),
    ("leak", "Leaks"),
    ("other", "Something else"),
];

pub fn category_label(code: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, label)| *label)
}

/// The number a customer quotes: `C-2026-000123`.
pub fn claim_number(year: i32, seq: i64) -> String {
    format!("C-{year}-{seq:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashSet, VecDeque};

    /// The whole table, written out once more by hand: every pair not in it must be refused.
    const STAFF: &[(Status, Status)] = {
        use Status::*;
        &[
            (Submitted, Triaged),
            (Submitted, InfoRequested),
            (Triaged, InfoRequested),
            (InfoRequested, Triaged),
            (Triaged, Approved),
            (Triaged, Rejected),
            (Approved, AwaitingUnit),
            (Approved, InRepair),
            (Approved, Replaced),
            (Approved, Refunded),
            (AwaitingUnit, InRepair),
            (AwaitingUnit, Replaced),
            (AwaitingUnit, Refunded),
            (InRepair, ShippedBack),
            (InRepair, Replaced),
            (InRepair, Refunded),
            (ShippedBack, Closed),
            (Replaced, Closed),
            (Refunded, Closed),
            (Rejected, Closed),
        ]
    };
    const CUSTOMER: &[(Status, Status)] = {
        use Status::*;
        &[
            (Submitted, Cancelled),
            (InfoRequested, Submitted),
            (InfoRequested, Triaged),
        ]
    };

    #[test]
    fn every_pair_of_states_for_both_actors_is_as_the_table_says() {
        let mut checked = 0;
        for from in Status::ALL {
            for to in Status::ALL {
                for (actor, table) in [(Actor::Staff, STAFF), (Actor::Customer, CUSTOMER)] {
                    let expected = table.contains(&(from, to));
                    let got = check(from, to, actor);
                    assert_eq!(got.is_ok(), expected, "{from:?} → {to:?} by {actor:?}");
                    if let Err(e) = got {
                        assert!(!e.0.is_empty() && !e.0.contains("Debug"));
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 12 * 12 * 2);
    }

    #[test]
    fn final_states_lead_nowhere_and_every_other_state_can_reach_an_end() {
        for s in Status::ALL {
            let next: Vec<_> = [Actor::Staff, Actor::Customer]
                .into_iter()
                .flat_map(|a| s.next(a))
                .collect();
            assert_eq!(next.is_empty(), s.is_final(), "{s:?}");
        }
        // Every state is reachable from Submitted, and from every state an end is reachable.
        let reach = |start: Status| {
            let mut seen = HashSet::from([start]);
            let mut todo = VecDeque::from([start]);
            while let Some(s) = todo.pop_front() {
                for n in s
                    .next(Actor::Staff)
                    .into_iter()
                    .chain(s.next(Actor::Customer))
                {
                    if seen.insert(n) {
                        todo.push_back(n);
                    }
                }
            }
            seen
        };
        assert_eq!(reach(Status::Submitted).len(), Status::ALL.len());
        for s in Status::ALL {
            let r = reach(s);
            assert!(
                r.contains(&Status::Closed) || r.contains(&Status::Cancelled),
                "{s:?}"
            );
        }
    }

    #[test]
    fn refusals_say_why_in_words() {
        assert_eq!(
            check(Status::Triaged, Status::Cancelled, Actor::Customer)
                .unwrap_err()
                .0,
            "a claim can be cancelled only until our staff have assessed it"
        );
        assert!(
            check(Status::Submitted, Status::Approved, Actor::Staff)
                .unwrap_err()
                .0
                .contains("it can become: we need more information, being assessed")
        );
        assert!(
            check(Status::Closed, Status::Triaged, Actor::Staff)
                .unwrap_err()
                .0
                .contains("nothing more can change")
        );
        assert_eq!(
            check(Status::Submitted, Status::Triaged, Actor::Customer)
                .unwrap_err()
                .0,
            "only our service staff can do that"
        );
    }

    #[test]
    fn names_round_trip_and_numbers_read_well() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Submitted"), None);
        assert_eq!(claim_number(2026, 123), "C-2026-000123");
        assert_eq!(claim_number(2027, 1_234_567), "C-2027-1234567");
        assert_eq!(category_label("battery"), Some("Battery or charging"));
        assert_eq!(category_label("nope"), None);
        assert_eq!(needs(Status::Replaced), Needs::ReplacementSerial);
        assert_eq!(needs(Status::Rejected), Needs::PublicNote);
        assert_eq!(needs(Status::Triaged), Needs::Nothing);
    }
}
