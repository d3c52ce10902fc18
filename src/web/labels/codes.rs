//! The codes on printed labels as inline SVG: a QR code and a GS1 DataMatrix, each one `<path>`
//! of dark modules on a viewBox of whole modules that includes the quiet zone. Geometry only: no
//! text from the encoded data ever reaches the markup, so nothing in it needs escaping.

use std::fmt::Write;

use datamatrix::{DataMatrixBuilder, SymbolList};
use qrcode::{Color, EcLevel, QrCode};

/// QR codes need four light modules on every side (ISO/IEC 18004).
const QR_QUIET: usize = 4;
/// DataMatrix needs one; two leave room for a printer's bleed.
const DM_QUIET: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("the data does not fit in a QR code: {0}")]
    Qr(qrcode::types::QrError),
    #[error("the data does not fit in a DataMatrix symbol")]
    DataMatrix,
}

/// A grid of modules, row by row, `true` for dark.
struct Modules {
    width: usize,
    dark: Vec<bool>,
}

impl Modules {
    fn height(&self) -> usize {
        self.dark.len().checked_div(self.width).unwrap_or(0)
    }

    /// The SVG: each horizontal run of dark modules is one `M x y h n v 1 h -n z` rectangle.
    fn svg(&self, quiet: usize, class: &str, label: &str) -> String {
        let (w, h) = (self.width + 2 * quiet, self.height() + 2 * quiet);
        let mut d = String::new();
        for (y, row) in self.dark.chunks(self.width.max(1)).enumerate() {
            let mut x = 0;
            while x < row.len() {
                if !row[x] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < row.len() && row[x] {
                    x += 1;
                }
                let n = x - start;
                let _ = write!(d, "M{} {}h{n}v1h-{n}z", start + quiet, y + quiet);
            }
        }
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="code {class}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" shape-rendering="crispEdges"><rect width="{w}" height="{h}" fill="#fff"/><path fill="#000" d="{d}"/></svg>"##
        )
    }
}

/// A QR code (error correction level M) carrying `data`, usually a Digital Link URL.
pub fn qr_svg(data: &str) -> Result<String, CodeError> {
    qr_svg_named(data, "QR code: the product's web link")
}

/// The same, with `label` as what a screen reader says of it.
pub fn qr_svg_named(data: &str, label: &str) -> Result<String, CodeError> {
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(CodeError::Qr)?;
    let modules = Modules {
        width: code.width(),
        dark: code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect(),
    };
    Ok(modules.svg(QR_QUIET, "qr", label))
}

/// A square GS1 DataMatrix: FNC1 first, then `element_string` (fields separated by GS, which the
/// GS1 DataMatrix Guideline allows in place of FNC1 separators; readers transmit both as GS).
pub fn gs1_datamatrix_svg(element_string: &str) -> Result<String, CodeError> {
    let code = DataMatrixBuilder::new()
        .with_fnc1_start(true)
        // Macros (05/06 headers) are for other application standards, never GS1.
        .with_macros(false)
        .with_symbol_list(SymbolList::default().enforce_square())
        .encode(element_string.as_bytes())
        .map_err(|_| CodeError::DataMatrix)?;
    let bitmap = code.bitmap();
    let width = bitmap.width();
    let mut dark = vec![false; width * bitmap.height()];
    for (x, y) in bitmap.pixels() {
        dark[y * width + x] = true;
    }
    let modules = Modules { width, dark };
    Ok(modules.svg(DM_QUIET, "dm", "GS1 DataMatrix code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_dark_modules_become_rectangles_inside_the_quiet_zone() {
        let m = Modules {
            width: 3,
            dark: vec![true, true, false, false, false, true],
        };
        let svg = m.svg(1, "x", "y");
        assert!(svg.contains(r#"viewBox="0 0 5 4""#), "{svg}");
        assert!(svg.contains(r#"d="M1 1h2v1h-2zM3 2h1v1h-1z""#), "{svg}");
    }

    #[test]
    fn codes_are_geometry_only() {
        let hostile = r#"<script>alert("x")</script>&"#;
        for svg in [
            qr_svg(hostile).unwrap(),
            gs1_datamatrix_svg(hostile).unwrap(),
        ] {
            assert!(!svg.contains("script") && !svg.contains("alert"), "{svg}");
            assert_eq!(svg.matches('<').count(), 4, "svg, rect, path, /svg: {svg}");
        }
    }

    #[test]
    fn the_datamatrix_starts_with_fnc1() {
        let code = DataMatrixBuilder::new()
            .with_fnc1_start(true)
            .with_macros(false)
            .encode(b"0109506000134352")
            .unwrap();
        assert_eq!(code.data_codewords()[0], 232, "FNC1 codeword");
    }

    #[test]
    fn too_much_data_is_an_error_not_a_panic() {
        let big = "9".repeat(8000);
        assert!(qr_svg(&big).is_err());
        assert!(gs1_datamatrix_svg(&big).is_err());
    }
}
