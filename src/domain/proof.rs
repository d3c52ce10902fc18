//! Proof of purchase: a receipt as PDF, JPEG or PNG. The type is read from the content, never
//! from the name or the browser's claim.

/// Largest proof accepted, in bytes.
pub const MAX_PROOF_BYTES: usize = 5 * 1024 * 1024;

/// An accepted proof's media type and the file extension it is stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofType {
    Pdf,
    Jpeg,
    Png,
}

impl ProofType {
    pub fn media_type(self) -> &'static str {
        match self {
            ProofType::Pdf => "application/pdf",
            ProofType::Jpeg => "image/jpeg",
            ProofType::Png => "image/png",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ProofType::Pdf => "pdf",
            ProofType::Jpeg => "jpg",
            ProofType::Png => "png",
        }
    }

    pub fn from_media_type(s: &str) -> Option<Self> {
        [ProofType::Pdf, ProofType::Jpeg, ProofType::Png]
            .into_iter()
            .find(|t| t.media_type() == s)
    }

    /// What a page calls it.
    pub fn label(self) -> &'static str {
        match self {
            ProofType::Pdf => "PDF",
            ProofType::Jpeg => "JPEG picture",
            ProofType::Png => "PNG picture",
        }
    }
}

/// The proof's type judged by its first bytes, `None` for anything else.
pub fn sniff(bytes: &[u8]) -> Option<ProofType> {
    // A PDF starts with its header (readers tolerate a little junk before it; we do not).
    if bytes.len() > 8 && bytes.starts_with(b"%PDF-") && bytes[5].is_ascii_digit() {
        return Some(ProofType::Pdf);
    }
    match super::picture::sniff(bytes) {
        Some("image/png") => Some(ProofType::Png),
        Some("image/jpeg") => Some(ProofType::Jpeg),
        _ => None,
    }
}

/// Why a file over [`MAX_PROOF_BYTES`] is refused.
pub fn too_large() -> String {
    format!(
        "the file is larger than {} MB, the most accepted: a photo of the receipt or a smaller scan will do",
        MAX_PROOF_BYTES / 1_048_576
    )
}

/// The proof's type, or why it is refused.
pub fn check(bytes: &[u8]) -> Result<ProofType, String> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(too_large());
    }
    sniff(bytes).ok_or_else(|| {
        "this file is not a PDF, JPEG or PNG (whatever its name says): save the receipt as one of those".into()
    })
}

/// A claim photo's type (JPEG or PNG, by content), or why it is refused.
pub fn check_photo(bytes: &[u8]) -> Result<ProofType, String> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(format!(
            "a photo is larger than {} MB, the most accepted: send a smaller one",
            MAX_PROOF_BYTES / 1_048_576
        ));
    }
    match sniff(bytes) {
        Some(t @ (ProofType::Jpeg | ProofType::Png)) => Ok(t),
        _ => Err("a file is not a JPEG or PNG photo (whatever its name says)".into()),
    }
}

/// A size for people: "640 KB", "2.4 MB".
pub fn human_size(bytes: i64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} KB", (bytes + 1023) / 1024)
    } else {
        format!("{:.1} MB", bytes as f64 / 1_048_576.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_content() {
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj"), Some(ProofType::Pdf));
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend([0u8; 20]);
        assert_eq!(sniff(&png), Some(ProofType::Png));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(ProofType::Jpeg)
        );
        // Named or sent as PDF means nothing: HTML, SVG, WebP and a bare header are refused.
        assert_eq!(sniff(b"<html><script>alert(1)</script>%PDF-1.4"), None);
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 \0\0\0\0"), None);
        assert_eq!(sniff(b"%PDF-"), None);
        assert_eq!(sniff(b"%PDF-x.y garbage"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn size_limit_is_exact() {
        let mut ok = b"%PDF-1.4\n".to_vec();
        ok.resize(MAX_PROOF_BYTES, b' ');
        assert_eq!(check(&ok), Ok(ProofType::Pdf));
        ok.push(b' ');
        assert!(check(&ok).unwrap_err().contains("larger than 5 MB"));
    }

    #[test]
    fn claim_photos_are_jpeg_or_png_only() {
        assert_eq!(
            check_photo(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Ok(ProofType::Jpeg)
        );
        assert!(check_photo(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj").is_err());
        assert!(check_photo(b"<svg/>").is_err());
    }

    #[test]
    fn media_types_round_trip() {
        for t in [ProofType::Pdf, ProofType::Jpeg, ProofType::Png] {
            assert_eq!(ProofType::from_media_type(t.media_type()), Some(t));
        }
        assert_eq!(ProofType::from_media_type("image/webp"), None);
        assert_eq!(human_size(1), "1 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MB");
    }
}
