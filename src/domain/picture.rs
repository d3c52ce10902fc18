//! Model pictures: the type is read from the content, never from the name or the browser's
//! claim, and only plain raster formats are accepted (no SVG, which can carry script).

/// Largest picture accepted, in bytes.
pub const MAX_PICTURE_BYTES: usize = 2 * 1024 * 1024;

/// The picture's media type, judged by its first bytes: PNG, JPEG or WebP; `None` for
/// anything else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() > 24 && bytes.starts_with(PNG) && &bytes[12..16] == b"IHDR" {
        return Some("image/png");
    }
    if bytes.len() > 4 && bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.len() > 16 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    None
}

/// Why a picture is refused, if it is.
pub fn check(bytes: &[u8]) -> Result<&'static str, String> {
    if bytes.is_empty() {
        return Err("choose a picture file (PNG, JPEG or WebP)".into());
    }
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(format!(
            "the picture is larger than {} MB, the most accepted; make it smaller and try again",
            MAX_PICTURE_BYTES / 1_048_576
        ));
    }
    sniff(bytes).ok_or_else(|| {
        "this file is not a PNG, JPEG or WebP picture (whatever its name says)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_content() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend([0u8; 20]);
        assert_eq!(sniff(&png), Some("image/png"));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 \0\0\0\0"), Some("image/webp"));
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>"),
            None
        );
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"GIF89a......"), None);
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n"),
            None,
            "a bare signature is not a picture"
        );
        assert!(check(&[]).is_err());
        assert!(
            check(&vec![0xFF; MAX_PICTURE_BYTES + 1])
                .unwrap_err()
                .contains("larger than 2 MB")
        );
    }
}
