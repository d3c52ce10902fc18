//! Genealogy: what a component reference looks like when it is scanned, typed or read from a
//! file. A component is a unit (a serial, with or without its GTIN) or a lot of a component
//! model (a GTIN and a lot code, as a lot-level GS1 code carries them).

use super::digital_link::{DigitalLink, has_scheme, looks_like_digital_link};
use super::gs1::{ElementString, looks_like_element_string};
use super::gtin::Gtin;
use super::import::{RowError, read_header, shorten};
use super::lookup::LookupQuery;
use super::serial::{SerialNumber, check_cs82};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentRef {
    Unit(LookupQuery),
    Lot { gtin: Gtin, lot: String },
}

impl ComponentRef {
    /// A scanned or typed component: a lot-level code (GTIN and lot, no serial) names a lot;
    /// anything else is read as a unit, the way the lookup reads it.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let lot_level = |gtin: Option<Gtin>, lot: Option<String>, serial: bool| match (gtin, lot) {
            (Some(gtin), Some(lot)) if !serial => Some(ComponentRef::Lot { gtin, lot }),
            _ => None,
        };
        if has_scheme(s) || looks_like_digital_link(s) {
            if let Ok(dl) = DigitalLink::parse(s)
                && let Some(r) = lot_level(Some(dl.gtin), dl.lot, dl.serial.is_some())
            {
                return Ok(r);
            }
        } else if looks_like_element_string(s)
            && let Ok(es) = ElementString::parse(s)
            && let Some(r) = lot_level(es.gtin, es.lot, es.serial.is_some())
        {
            return Ok(r);
        }
        LookupQuery::parse(s, None)
            .map(ComponentRef::Unit)
            .map_err(|e| e.message)
    }
}

/// One checked line of a components file: `parent_gtin`, `parent_serial`, `component_gtin`,
/// and either `component_serial` or `component_lot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRecord {
    pub line: u64,
    pub parent_gtin: String,
    pub parent_serial: String,
    pub component_gtin: String,
    pub component_serial: Option<String>,
    pub component_lot: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct ComponentColumns {
    parent_gtin: usize,
    parent_serial: usize,
    component_gtin: usize,
    component_serial: Option<usize>,
    component_lot: Option<usize>,
}

impl ComponentColumns {
    pub fn from_header(header: &[&str]) -> Result<Self, Vec<RowError>> {
        let c = read_header(
            header,
            &["parent_gtin", "parent_serial", "component_gtin"],
            &["component_serial", "component_lot"],
        )?;
        if c[3].is_none() && c[4].is_none() {
            return Err(vec![RowError {
                line: 1,
                column: "component_serial".into(),
                reason: "the header needs a “component_serial” or a “component_lot” column".into(),
            }]);
        }
        Ok(ComponentColumns {
            parent_gtin: c[0].unwrap_or(0),
            parent_serial: c[1].unwrap_or(0),
            component_gtin: c[2].unwrap_or(0),
            component_serial: c[3],
            component_lot: c[4],
        })
    }

    pub fn parse(
        &self,
        line: u64,
        fields: &[&str],
        width: usize,
    ) -> Result<ComponentRecord, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut err = |column: &str, reason: String| {
            errors.push(RowError {
                line,
                column: column.into(),
                reason,
            })
        };
        if fields.len() != width {
            err(
                "",
                format!("has {} fields; the header has {width}", fields.len()),
            );
            return Err(errors);
        }
        let mut gtin = |i: usize, column: &str| match Gtin::parse_exact(fields[i].trim()) {
            Ok(g) => g.as_string(),
            Err(e) => {
                err(column, e.to_string());
                String::new()
            }
        };
        let parent_gtin = gtin(self.parent_gtin, "parent_gtin");
        let component_gtin = gtin(self.component_gtin, "component_gtin");
        let parent_serial = match SerialNumber::parse(fields[self.parent_serial].trim()) {
            Ok(s) => s.to_string(),
            Err(e) => {
                err("parent_serial", e.to_string());
                String::new()
            }
        };
        let get = |i: Option<usize>| i.map(|i| fields[i].trim()).filter(|v| !v.is_empty());
        let component_serial = match get(self.component_serial) {
            None => None,
            Some(s) => match SerialNumber::parse(s) {
                Ok(s) => Some(s.to_string()),
                Err(e) => {
                    err("component_serial", e.to_string());
                    None
                }
            },
        };
        let component_lot = get(self.component_lot).map(str::to_owned);
        if let Some(l) = &component_lot
            && let Err(e) = check_cs82(l)
        {
            err(
                "component_lot",
                e.to_string().replace("serial number", "lot code"),
            );
        }
        let fine_so_far = errors.is_empty();
        let mut err = |column: &str, reason: String| {
            errors.push(RowError {
                line,
                column: column.into(),
                reason,
            })
        };
        match (&component_serial, &component_lot) {
            (None, None) if fine_so_far => err(
                "component_serial",
                "give the component's serial or its lot".into(),
            ),
            (Some(_), Some(l)) => err(
                "component_lot",
                format!(
                    "give the component's serial or its lot, not both (lot “{}”)",
                    shorten(l)
                ),
            ),
            _ => {}
        }
        if errors.is_empty() {
            Ok(ComponentRecord {
                line,
                parent_gtin,
                parent_serial,
                component_gtin,
                component_serial,
                component_lot,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lot_level_code_names_a_lot_and_anything_else_a_unit() {
        let lot = ComponentRef::parse("(01)09506000134352(10)ABC123").unwrap();
        assert!(matches!(lot, ComponentRef::Lot { ref lot, .. } if lot == "ABC123"));
        let lot = ComponentRef::parse("]d20109506000134352\u{1d}10ABC123").unwrap();
        assert!(matches!(lot, ComponentRef::Lot { .. }));
        let lot = ComponentRef::parse("https://id.example.com/01/09506000134352/10/L%2F1").unwrap();
        assert!(matches!(lot, ComponentRef::Lot { ref lot, .. } if lot == "L/1"));
        let unit = ComponentRef::parse("(01)09506000134352(10)ABC123(21)SN0001").unwrap();
        assert!(matches!(unit, ComponentRef::Unit(ref q) if q.serial.as_str() == "SN0001"));
        assert!(matches!(
            ComponentRef::parse(" sn0001 ").unwrap(),
            ComponentRef::Unit(_)
        ));
        assert!(ComponentRef::parse("A#1").is_err());
    }

    #[test]
    fn component_lines_are_checked_with_their_columns() {
        assert!(
            ComponentColumns::from_header(&["parent_gtin", "parent_serial", "component_gtin"])
                .unwrap_err()[0]
                .reason
                .contains("component_serial")
        );
        let cols = ComponentColumns::from_header(&[
            "parent_gtin",
            "parent_serial",
            "component_gtin",
            "component_serial",
            "component_lot",
        ])
        .unwrap();
        let ok = cols
            .parse(
                2,
                &["09506000134369", "VC1", "09506000134352", "", "ABC123"],
                5,
            )
            .unwrap();
        assert_eq!(ok.component_lot.as_deref(), Some("ABC123"));
        let both = cols
            .parse(
                3,
                &["09506000134369", "VC1", "09506000134352", "SN1", "ABC123"],
                5,
            )
            .unwrap_err();
        assert_eq!(both[0].column, "component_lot");
        let none = cols
            .parse(4, &["09506000134369", "VC1", "09506000134352", "", ""], 5)
            .unwrap_err();
        assert!(none[0].reason.contains("serial or its lot"));
        let bad = cols
            .parse(5, &["1", "V C", "09506000134352", "", "A#"], 5)
            .unwrap_err();
        let cols_hit: Vec<&str> = bad.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(cols_hit, ["parent_gtin", "parent_serial", "component_lot"]);
    }
}
