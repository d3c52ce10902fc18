//! Recall campaigns: what a notice must say (GPSR Art. 36 / Regulation 2024/1435, 16 CFR 1115
//! subpart C), the softening words guidance bans, the remedies rule (GPSR Art. 37), the
//! campaign's life (draft → launched → closed) and each affected unit's (affected → notified →
//! acknowledged → remedied, or unreachable).

/// What an editor fills in; the rest of the notice (heading, product, pictures, identifiers,
/// date) comes from the campaign's targets and the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeText {
    pub title: String,
    pub hazard: String,
    pub what_to_do: String,
    pub sold_where: String,
    pub contact: String,
    pub remedy_repair: bool,
    pub remedy_replace: bool,
    pub remedy_refund: bool,
    /// Why fewer than two remedies are offered (GPSR Art. 37 asks for a reason).
    pub remedy_reason: String,
}

/// Words and phrases recall guidance bans because they play the hazard down (matched on word
/// stems, case-insensitively: "voluntarily" is caught like "voluntary").
pub const BANNED: [&str; 5] = [
    "voluntar",
    "precaution",
    "discretion",
    "in rare situations",
    "no reported accidents",
];

/// One thing wrong with a notice: the field it is about and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        field,
        message: message.into(),
    }
}

/// The banned word or phrase in `text`, if any (as the guidance words it).
pub fn banned_in(text: &str) -> Option<&'static str> {
    let folded: String = text
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    BANNED
        .iter()
        .find(|b| folded.contains(*b))
        .map(|b| match *b {
            "voluntar" => "voluntary",
            "precaution" => "precautionary",
            "discretion" => "discretionary",
            other => other,
        })
}

/// Every problem of a notice: missing parts named, banned words found, too few remedies
/// without a reason. Empty: it may be launched.
pub fn check(n: &NoticeText, has_targets: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let required: [(&'static str, &str, &str); 5] = [
        ("title", &n.title, "a title naming the product"),
        ("hazard", &n.hazard, "the hazard, in plain words"),
        (
            "what_to_do",
            &n.what_to_do,
            "what to do now (for example: stop using it)",
        ),
        ("sold_where", &n.sold_where, "where and when it was sold"),
        (
            "contact",
            &n.contact,
            "contact details (a phone number, mail or web address)",
        ),
    ];
    for (field, value, what) in required {
        if value.trim().is_empty() {
            out.push(problem(field, format!("missing: {what}")));
        }
    }
    for (field, value) in [
        ("title", &n.title),
        ("hazard", &n.hazard),
        ("what_to_do", &n.what_to_do),
        ("sold_where", &n.sold_where),
        ("contact", &n.contact),
        ("remedy_reason", &n.remedy_reason),
    ] {
        if let Some(word) = banned_in(value) {
            out.push(problem(
                field,
                format!("“{word}” plays the hazard down, and recall guidance bans it: say plainly what the danger is"),
            ));
        }
    }
    let remedies = [n.remedy_repair, n.remedy_replace, n.remedy_refund]
        .into_iter()
        .filter(|r| *r)
        .count();
    if remedies < 2 && n.remedy_reason.trim().is_empty() {
        out.push(problem(
            "remedies",
            "offer at least two remedies (repair, replacement, refund), or record why not",
        ));
    }
    if !has_targets {
        out.push(problem(
            "targets",
            "missing: which units are affected (add at least one target)",
        ));
    }
    out
}

/// The heading every notice carries.
pub fn heading(title: &str) -> String {
    format!("Product safety recall: {}", title.trim())
}

/// A campaign code as printed and typed: 3 to 32 capitals, digits and dashes, starting with a
/// letter or digit (e.g. `R-2026-004`).
pub fn parse_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_uppercase();
    let ok = (3..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && code.as_bytes()[0] != b'-';
    if ok {
        Ok(code)
    } else {
        Err("a code is 3 to 32 letters, digits and dashes, such as R-2026-004".into())
    }
}

/// A campaign's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Draft,
    Launched,
    Closed,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Launched => "launched",
            CampaignStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            CampaignStatus::Draft,
            CampaignStatus::Launched,
            CampaignStatus::Closed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Where one affected unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitState {
    Affected,
    Notified,
    Acknowledged,
    Remedied,
    Unreachable,
}

impl UnitState {
    pub const ALL: [UnitState; 5] = [
        UnitState::Affected,
        UnitState::Notified,
        UnitState::Acknowledged,
        UnitState::Remedied,
        UnitState::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Affected => "affected",
            UnitState::Notified => "notified",
            UnitState::Acknowledged => "acknowledged",
            UnitState::Remedied => "remedied",
            UnitState::Unreachable => "unreachable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        UnitState::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// Whether a unit may move from here to `to`: forward only, and never out of "remedied".
    /// Staff may mark any unremedied unit remedied, and an owner's acknowledgement moves an
    /// affected (unreachable until now) or notified unit on.
    pub fn may_become(self, to: UnitState) -> bool {
        use UnitState::*;
        matches!(
            (self, to),
            (Affected, Notified | Acknowledged | Remedied | Unreachable)
                | (Notified, Acknowledged | Remedied | Unreachable)
                | (Acknowledged, Remedied)
                | (Unreachable, Notified | Acknowledged | Remedied)
        )
    }
}

/// What the lookup says about a unit and recalls (PRODUCT.md §3, as NHTSA shows them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupRecall {
    None,
    Open { remedy_available: bool },
    Remedied { on: chrono::NaiveDate },
}

impl LookupRecall {
    /// The JSON word (PRODUCT.md §4).
    pub fn code(&self) -> &'static str {
        match self {
            LookupRecall::None => "none",
            LookupRecall::Open {
                remedy_available: true,
            } => "open",
            LookupRecall::Open {
                remedy_available: false,
            } => "remedy_not_yet_available",
            LookupRecall::Remedied { .. } => "remedied",
        }
    }

    /// A unit's recall state from its campaigns: (open campaign's remedy available, remedied
    /// on). Any open, unremedied campaign wins; else the latest remedy; else none.
    pub fn of(campaigns: &[(bool, Option<chrono::NaiveDate>)]) -> Self {
        let open: Vec<bool> = campaigns
            .iter()
            .filter(|(_, remedied)| remedied.is_none())
            .map(|(available, _)| *available)
            .collect();
        if !open.is_empty() {
            // One campaign without a remedy yet is enough to say "not yet available".
            return LookupRecall::Open {
                remedy_available: open.iter().all(|a| *a),
            };
        }
        match campaigns.iter().filter_map(|(_, r)| *r).max() {
            Some(on) => LookupRecall::Remedied { on },
            None => LookupRecall::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> NoticeText {
        NoticeText {
            title: "PowerCell 18V battery packs".into(),
            hazard: "The battery can overheat while charging and catch fire.".into(),
            what_to_do:
                "Stop using and stop charging it now. Keep it away from anything that burns.".into(),
            sold_where: "Hardware stores and online, March to June 2026.".into(),
            contact: "0800 123 456, recall@arden.example".into(),
            remedy_repair: false,
            remedy_replace: true,
            remedy_refund: true,
            remedy_reason: String::new(),
        }
    }

    #[test]
    fn a_complete_notice_passes() {
        assert_eq!(check(&complete(), true), vec![]);
        assert_eq!(heading(" Batteries "), "Product safety recall: Batteries");
    }

    #[test]
    fn each_missing_part_is_named() {
        let empty = NoticeText::default();
        let problems = check(&empty, false);
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "title",
                "hazard",
                "what_to_do",
                "sold_where",
                "contact",
                "remedies",
                "targets"
            ]
        );
        assert!(problems[1].message.contains("the hazard"));
    }

    #[test]
    fn banned_softening_words_are_refused_wherever_they_are() {
        for (text, word) in [
            ("A VOLUNTARY recall", "voluntary"),
            ("we voluntarily recall", "voluntary"),
            ("as a precautionary measure", "precautionary"),
            ("Precaution only", "precautionary"),
            ("at our discretion", "discretionary"),
            ("only in  rare\nsituations", "in rare situations"),
            ("There are no reported accidents.", "no reported accidents"),
        ] {
            assert_eq!(banned_in(text), Some(word), "{text}");
            let mut n = complete();
            n.hazard = text.into();
            let problems = check(&n, true);
            assert_eq!(problems.len(), 1, "{text}");
            assert_eq!(problems[0].field, "hazard");
            assert!(problems[0].message.contains(word));
        }
        assert_eq!(banned_in("It can catch fire."), None);
    }

    #[test]
    fn two_remedies_or_a_reason() {
        let mut n = complete();
        n.remedy_refund = false;
        assert_eq!(check(&n, true)[0].field, "remedies");
        n.remedy_reason = "Replacement parts do not exist; every unit is replaced.".into();
        assert_eq!(check(&n, true), vec![]);
        n.remedy_reason = "a precautionary step".into();
        assert_eq!(check(&n, true)[0].field, "remedy_reason");
    }

    #[test]
    fn codes_are_plain() {
        assert_eq!(parse_code(" r-2026-004 "), Ok("R-2026-004".into()));
        for bad in ["", "AB", "-AB", "R 2026", "R/2026", &"A".repeat(33), "ÄBC"] {
            assert!(parse_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_states_only_move_forward() {
        use UnitState::*;
        for from in UnitState::ALL {
            for to in UnitState::ALL {
                let forward = match (from, to) {
                    (Remedied, _) => false,
                    (_, Affected) => false,
                    (a, b) if a == b => false,
                    (Acknowledged, Unreachable | Notified) => false,
                    _ => true,
                };
                assert_eq!(from.may_become(to), forward, "{from:?} → {to:?}");
            }
        }
        for s in UnitState::ALL {
            assert_eq!(UnitState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_lookup_state_of_a_unit() {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2026, 5, day).unwrap();
        assert_eq!(LookupRecall::of(&[]), LookupRecall::None);
        assert_eq!(LookupRecall::of(&[]).code(), "none");
        let open = LookupRecall::of(&[(true, None)]);
        assert_eq!(open.code(), "open");
        let not_yet = LookupRecall::of(&[(true, None), (false, None)]);
        assert_eq!(not_yet.code(), "remedy_not_yet_available");
        assert_eq!(
            LookupRecall::of(&[(true, Some(d(3))), (true, Some(d(9)))]),
            LookupRecall::Remedied { on: d(9) }
        );
        // A remedied campaign does not hide another one still open.
        assert_eq!(
            LookupRecall::of(&[(true, Some(d(3))), (false, None)]).code(),
            "remedy_not_yet_available"
        );
    }
}
