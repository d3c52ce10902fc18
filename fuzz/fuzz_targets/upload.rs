#![no_main]
//! An uploaded file (a proof of purchase, a claim photo, a model picture): judged by its
//! content alone, whatever its name or the browser claimed; what is accepted must start as its
//! type does, and a photo or picture is never a PDF or markup.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::{picture, proof};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = proof::check(data) {
        let magic: &[u8] = match t {
            proof::ProofType::Pdf => b"%PDF-",
            proof::ProofType::Png => b"\x89PNG\r\n\x1a\n",
            proof::ProofType::Jpeg => b"\xFF\xD8\xFF",
        };
        assert!(
            data.starts_with(magic),
            "{t:?} accepted without its signature"
        );
    }
    if let Ok(t) = proof::check_photo(data) {
        assert!(t != proof::ProofType::Pdf, "a PDF accepted as a photo");
    }
    if let Ok(media_type) = picture::check(data) {
        assert!(media_type.starts_with("image/") && media_type != "image/svg+xml");
        assert!(!data.starts_with(b"<") && !data.starts_with(b"%PDF"));
    }
});
