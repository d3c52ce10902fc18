#![no_main]
//! An import file of units: any bytes, read as CSV the way the import reads it, each row judged.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::import::UnitColumns;

fuzz_target!(|data: &[u8]| {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<(UnitColumns, usize)> = None;
    let mut line = 0;
    while let Ok(true) = reader.read_byte_record(&mut record) {
        line += 1;
        let Ok(fields) = record
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        match &columns {
            None => match UnitColumns::from_header(&fields) {
                Ok(c) => columns = Some((c, fields.len())),
                Err(_) => return,
            },
            Some((c, width)) => {
                let _ = c.parse(line, &fields, *width);
            }
        }
    }
});
