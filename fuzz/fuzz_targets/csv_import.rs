//! The pupil-file import parser (`provisioning::csv_file::parse` and
//! `decode`). Never panics; rows taken satisfy their types' constraints and
//! carry line numbers of the file, errors too.
#![no_main]

use std::collections::HashSet;

use clef::provisioning::csv_file::{self, PupilRow};
use libfuzzer_sys::fuzz_target;

/// Rows as a spreadsheet numbers them: one more than the line breaks
/// (`\r\n`, a lone `\n` or a lone `\r`).
fn row_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut rows = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                rows += 1;
                i += 1;
            }
            b'\r' | b'\n' => rows += 1,
            _ => {}
        }
        i += 1;
    }
    rows
}

fn check_row(row: &PupilRow, rows: usize) {
    assert!((2..=rows).contains(&row.line), "row {} of {rows}", row.line);
    for name in [&row.family_name, &row.given_name] {
        let name = name.as_str();
        assert!(!name.is_empty() && name.chars().count() <= 100, "{name:?}");
        assert_eq!(name, name.trim());
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
    let student = row.student_ref.as_str();
    assert!(!student.is_empty() && student.len() <= 64, "{student:?}");
    assert!(student.starts_with(|c: char| c.is_ascii_alphanumeric()));
    let class = row.class.as_str();
    assert!(!class.is_empty() && class.chars().count() <= 32, "{class:?}");
    let iso = row.birthdate.iso();
    let year: i32 = iso[..4].parse().unwrap();
    assert!((1900..=2100).contains(&year), "{iso}");
    assert!(row.guardians.len() <= 2);
    let mut ranks = HashSet::new();
    for guardian in &row.guardians {
        assert!(matches!(guardian.rank, 1 | 2));
        assert!(ranks.insert(guardian.rank), "two guardians of rank {}", guardian.rank);
        assert!(!guardian.family_name.as_str().is_empty());
        assert!(!guardian.given_name.as_str().is_empty());
        if let Some(email) = &guardian.email {
            assert!(email.as_str().contains('@'));
        }
        if let Some(phone) = &guardian.phone {
            let digits = phone.as_str().strip_prefix('+').unwrap_or(phone.as_str());
            assert!((8..=15).contains(&digits.len()), "{phone:?}");
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{phone:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = csv_file::decode(data);
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if csv_file::utf16_without_bom(data).is_some() {
        // Every other byte zero: UTF-16, its BOM left out (ASCII text in
        // UTF-16 is also valid UTF-8, of NULs; a text file holds none).
        // Two bytes a character (four for a pair of surrogates).
        assert!(text.chars().count() <= data.len() / 2 + 1);
    } else if let Ok(utf8) = std::str::from_utf8(body) {
        assert_eq!(text, utf8, "UTF-8 is kept as it is");
    } else if !body.starts_with(b"\xFF\xFE") && !body.starts_with(b"\xFE\xFF") {
        // Line by line: a UTF-8 line as it is; Windows-1252 and Mac Roman
        // map every byte of another to one character.
        let expected: usize = body
            .split_inclusive(|&b| b == b'\n')
            .map(|line| std::str::from_utf8(line).map_or(line.len(), |l| l.chars().count()))
            .sum();
        assert_eq!(text.chars().count(), expected);
    }
    let rows = row_count(&text);
    let result = csv_file::parse(data);
    match &result {
        Ok(pupils) => {
            let mut students = HashSet::new();
            let mut last = 1;
            for pupil in pupils {
                check_row(pupil, rows);
                assert!(pupil.line > last, "rows out of order");
                last = pupil.line;
                assert!(
                    students.insert(pupil.student_ref.as_str().to_owned()),
                    "student {} twice",
                    pupil.student_ref.as_str()
                );
                // Without quotes, a record is one line of the file: the
                // pupil's number is on the line its row names.
                if !text.contains('"') {
                    let line = text
                        .split("\r\n")
                        .flat_map(|l| l.split(['\r', '\n']))
                        .nth(pupil.line - 1)
                        .unwrap_or_else(|| panic!("no line {}", pupil.line));
                    assert!(
                        line.contains(pupil.student_ref.as_str()),
                        "line {} is {line:?}, not pupil {}",
                        pupil.line,
                        pupil.student_ref.as_str()
                    );
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error without a reason");
            for error in errors {
                assert!(
                    error.line == 0 || (2..=rows).contains(&error.line),
                    "error at line {} of {rows}: {}",
                    error.line,
                    error.reason
                );
                assert!(!error.reason.is_empty());
                assert!(!error.to_string().is_empty());
            }
        }
    }
    // Parsing the decoded text gives the same answer (a second BOM aside;
    // a workbook is told by its first bytes, which decoding changes).
    let workbook = body.starts_with(b"PK\x03\x04") || body.starts_with(b"\xd0\xcf\x11\xe0");
    if !text.starts_with('\u{feff}') && !workbook {
        assert_eq!(csv_file::parse(text.as_bytes()), result);
    }
});
