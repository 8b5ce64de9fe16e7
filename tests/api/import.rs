//! The pupil-file import and the letters (SPEC §3.10, §2).

use clef::provisioning::import::ImportError;

use crate::helpers::*;

const HEADER: &str = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email,guardian1_phone,guardian2_family_name,guardian2_given_name,guardian2_email,guardian2_phone";

fn file(rows: &[&str]) -> Vec<u8> {
    let mut text = String::from(HEADER);
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.into_bytes()
}

async fn app_with_school() -> TestApp {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    app
}

#[tokio::test]
async fn importing_the_same_file_twice_changes_nothing() {
    let app = app_with_school().await;
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,0612345678,Durand,Sophie,,",
        "1002,Petit,Hugo,2011-01-20,4 A,Petit,Anne,anne@example.org,,,,,",
    ]);
    let first = app.import("0590001A", &csv).await.unwrap();
    assert_eq!((first.students_created, first.guardians_created), (2, 3));
    let accounts = app.count("accounts").await;
    let letters: Vec<(String, String)> = app
        .letters("0590001A")
        .await
        .into_iter()
        .map(|l| (l.identifier, l.password))
        .collect();
    let second = app.import("0590001A", &csv).await.unwrap();
    assert_eq!(
        (
            second.students_created,
            second.students_updated,
            second.guardians_created,
            second.guardians_updated
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        (second.students_unchanged, second.guardians_unchanged),
        (2, 3)
    );
    assert_eq!(app.count("accounts").await, accounts);
    let again: Vec<(String, String)> = app
        .letters("0590001A")
        .await
        .into_iter()
        .map(|l| (l.identifier, l.password))
        .collect();
    assert_eq!(
        letters, again,
        "reprinting shows the same identifiers and passwords"
    );
}

/// A spreadsheet that took the pupils' numbers for numbers drops their
/// leading zeros, and an INE may come back in lower case: the same pupils,
/// nothing created twice. In one file, the two spellings are one pupil twice.
#[tokio::test]
async fn a_pupil_number_that_lost_its_zeros_or_its_case_is_the_same_pupil() {
    let app = app_with_school().await;
    let first = file(&[
        "00123,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
        "070803070AJ,Petit,Hugo,2011-01-20,4 A,,,,,,,,",
    ]);
    assert_eq!(
        app.import("0590001A", &first)
            .await
            .unwrap()
            .students_created,
        2
    );
    let accounts = app.count("accounts").await;
    let again = file(&[
        "123,Baillet,Julie,2012-09-03,5 C,,,,,,,,",
        "070803070aj,Petit,Hugo,2011-01-20,4 A,,,,,,,,",
    ]);
    let report = app.import("0590001A", &again).await.unwrap();
    assert_eq!(
        (
            report.students_created,
            report.students_updated,
            report.students_unchanged
        ),
        (0, 1, 1),
        "{:?}",
        report.changes
    );
    assert_eq!(app.count("accounts").await, accounts);
    assert_eq!(
        app.account_named("julie.baillet")
            .await
            .class_name
            .as_deref(),
        Some("5 C")
    );
    let twice = file(&[
        "00123,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
        "123,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
    ]);
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", &twice).await
    else {
        panic!("one pupil twice in a file is refused")
    };
    assert_eq!(errors[0].line, 3);
}

#[tokio::test]
async fn a_windows_1252_file_with_semicolons_french_headers_and_dates_is_read() {
    let app = app_with_school().await;
    let text = "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1;Téléphone responsable 1\r\n\
                2001;Lefèvre;Zoé;03/09/2012;6ème 2;N'Diaye-Lefèvre;Aïcha;aicha@example.org;06 12 34 56 78\r\n\
                2002;Ça;Jérôme;14/02/2010;3ème 1;;;;\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    let report = app.import("0590001A", &bytes).await.unwrap();
    assert_eq!((report.students_created, report.guardians_created), (2, 1));
    let zoe = app.account_named("zoe.lefevre").await;
    assert_eq!(
        (zoe.family_name.as_str(), zoe.given_name.as_str()),
        ("Lefèvre", "Zoé")
    );
    assert_eq!(zoe.birthdate.as_deref(), Some("2012-09-03"));
    assert_eq!(zoe.class_name.as_deref(), Some("6ème 2"));
    let mother = app.account_named("aicha.ndiaye-lefevre").await;
    assert_eq!(mother.family_name, "N'Diaye-Lefèvre");
    assert_eq!(mother.email.as_deref(), Some("aicha@example.org"));
    assert_eq!(mother.phone.as_deref(), Some("+33612345678"));
    app.account_named("jerome.ca").await;
    // With a BOM, in UTF-8, the same file reads the same.
    let app = app_with_school().await;
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(text.as_bytes());
    assert_eq!(
        app.import("0590001A", &bom).await.unwrap().students_created,
        2
    );
}

#[tokio::test]
async fn a_file_with_three_bad_rows_writes_nothing_and_names_each_line() {
    let app = app_with_school().await;
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
        "1002,Petit,,2011-01-20,4 A,,,,,,,,",
        "1003,Roux,Léo,31/02/2011,4 A,,,,,,,,",
        "1004,Morel,Inès,2011-05-05,4 A,Morel,Paul,pas-une-adresse,,,,,",
        "1005,Faure,Tom,2011-05-05,4 A,,,,,,,,",
    ]);
    let before = app.count("accounts").await;
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", &csv).await
    else {
        panic!("bad rows must be refused")
    };
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(errors[0].reason.contains("prénom"), "{}", errors[0].reason);
    assert!(
        errors[1].reason.contains("date de naissance"),
        "{}",
        errors[1].reason
    );
    assert!(
        errors[2].reason.contains("adresse mail du responsable 1"),
        "{}",
        errors[2].reason
    );
    assert_eq!(app.count("accounts").await, before, "nothing was written");
    assert_eq!(app.count("identifier_counters").await, 0);
}

#[tokio::test]
async fn bad_rows_are_numbered_as_the_spreadsheet_shows_them() {
    let app = app_with_school().await;
    // As a spreadsheet saves it: CRLF, a cell holding a line break, a blank row.
    let csv = [
        HEADER,                                             // row 1
        "1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,",        // row 2
        "1002,Petit,,2011-01-20,4 A,,,,,,,,",               // row 3: no given name
        "1003,Roux,\"Léo\r\nJean\",2011-02-02,4 A,,,,,,,,", // row 4, on two lines
        "1004,Morel,Inès,2011-05-05,4 A,,,,,,,,",           // row 5
        "",                                                 // row 6
        "1005,Faure,Tom,31/02/2011,4 A,,,,,,,,",            // row 7: no such date
        "1001,Autre,Zoé,2012-01-01,5 B,,,,,,,,",            // row 8: row 2's pupil
    ]
    .join("\r\n");
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", csv.as_bytes()).await
    else {
        panic!("bad rows must be refused")
    };
    let rows: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(rows, vec![3, 4, 7, 8], "{errors:?}");
    assert!(
        errors[0].to_string().starts_with("ligne 3 : "),
        "{}",
        errors[0]
    );
    assert!(
        errors[3].reason.contains("figure déjà ligne 2"),
        "{}",
        errors[3].reason
    );
    // Old Mac files end rows with a lone CR.
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
        "1002,Petit,,2011-01-20,4 A,,,,,,,,",
    ])
    .into_iter()
    .map(|b| if b == b'\n' { b'\r' } else { b })
    .collect::<Vec<u8>>();
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", &csv).await
    else {
        panic!("bad rows must be refused")
    };
    assert_eq!(errors[0].line, 3);
}

#[tokio::test]
async fn markup_formulas_and_control_characters_are_refused_in_every_field() {
    let app = app_with_school().await;
    let hostile = [
        (
            "<b>1</b>,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
            "identifiant de l'élève",
        ),
        ("1002,=1+1,Hugo,2011-01-20,4 A,,,,,,,,", "« nom »"),
        ("1003,Roux,+33 cmd,2011-01-20,4 A,,,,,,,,", "« prénom »"),
        (
            "1004,Morel,Inès,2011-05-05,<script>alert(1)</script>,,,,,,,,",
            "classe",
        ),
        ("1005,Faure,Tom,2011-05-05,@SUM(1+1),,,,,,,,", "classe"),
        (
            "1006,Faure,Léa,2011-05-05,4 A,-cmd|' /C calc'!A0,Paul,,,,,,",
            "nom du responsable 1",
        ),
        (
            "1007,Faure,Max,2011-05-05,4 A,Faure,Paul,a(b)@example.org,,,,,",
            "adresse mail du responsable 1",
        ),
        (
            "1008,Faure,Noé,2011-05-05,4 A,,,,,Faure,Anne,,06<12>34",
            "téléphone du responsable 2",
        ),
        ("1009,Faure,Zoé\u{7},2011-05-05,4 A,,,,,,,,", "« prénom »"),
        (
            "1010,Faure,Lu\u{202e}na,2011-05-05,4 A,,,,,,,,",
            "« prénom »",
        ),
        (
            "1011,Faure,Eva,2011-05-05,4 A,,,,,Faure,{{7*7}},,",
            "prénom du responsable 2",
        ),
    ];
    let rows: Vec<&str> = hostile.iter().map(|(row, _)| *row).collect();
    let before = app.count("accounts").await;
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", &file(&rows)).await
    else {
        panic!("hostile rows must be refused")
    };
    assert_eq!(
        errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        (2..2 + hostile.len()).collect::<Vec<_>>(),
        "{errors:?}"
    );
    for (error, (row, field)) in errors.iter().zip(hostile) {
        assert!(error.reason.contains(field), "{row}: {}", error.reason);
    }
    assert_eq!(app.count("accounts").await, before, "nothing was written");
    // What schools really write goes through, decomposed accents composed.
    let report = app
        .import(
            "0590001A",
            &file(&[
                "INE-070803070AJ,D’Artagnan,Zoe\u{301},2012-09-03,3°A,N'Diaye-Lefèvre,Aïcha,o'neil+ecole@example.org,+33 6 12 34 56 78,,,,",
                "1002/B,Le Goff,Jean Pierre,2011-01-20,1re S/2,,,,,,,,",
            ]),
        )
        .await
        .unwrap();
    assert_eq!((report.students_created, report.guardians_created), (2, 1));
    let zoe = app.account_named("zoe.dartagnan").await;
    assert_eq!(
        (
            zoe.given_name.as_str(),
            zoe.family_name.as_str(),
            zoe.class_name.as_deref()
        ),
        ("Zoé", "D'Artagnan", Some("3°A")),
        "one apostrophe"
    );
}

#[tokio::test]
async fn siblings_sharing_guardians_get_one_guardian_account_per_child() {
    let app = app_with_school().await;
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,,Durand,Sophie,sophie@example.org,",
        "1002,Baillet,Théo,2010-02-14,3 A,Baillet,Marc,marc@example.org,,Durand,Sophie,sophie@example.org,",
    ]);
    let report = app.import("0590001A", &csv).await.unwrap();
    assert_eq!((report.students_created, report.guardians_created), (2, 4));
    // As in the seeds: each parent receives one letter (one account) per child.
    let letters = app.letters("0590001A").await;
    let marc: Vec<&str> = letters
        .iter()
        .filter(|l| l.recipient == "Marc Baillet")
        .map(|l| l.identifier.as_str())
        .collect();
    assert_eq!(marc.len(), 2);
    assert!(marc.contains(&"marc.baillet") && marc.contains(&"marc.baillet1"));
    let for_julie: Vec<&str> = letters
        .iter()
        .filter(|l| l.student_given_name == "Julie")
        .map(|l| l.kind.as_str())
        .collect();
    assert_eq!(for_julie, ["student", "guardian", "guardian"]);
    assert_eq!(app.count("guardianships").await, 4);
}

#[tokio::test]
async fn identifier_collisions_are_numbered() {
    let app = app_with_school().await;
    // An account made by hand already holds the plain identifier.
    app.account(
        "julie.baillet",
        clef::accounts::AccountKind::Staff,
        None,
        None,
    )
    .await;
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
        "1002,Baillet,Julie,2011-03-03,4 C,,,,,,,,",
    ]);
    app.import("0590001A", &csv).await.unwrap();
    let mut identifiers: Vec<String> = app
        .letters("0590001A")
        .await
        .into_iter()
        .map(|l| l.identifier)
        .collect();
    identifiers.sort();
    assert_eq!(identifiers, ["julie.baillet1", "julie.baillet2"]);
    // A later import continues the numbering.
    app.import(
        "0590001A",
        &file(&["1003,Baillet,Julie,2013-03-03,6 A,,,,,,,,"]),
    )
    .await
    .unwrap();
    app.account_named("julie.baillet3").await;
}

/// A preview takes no write lock: with every write to `accounts` held by
/// another transaction (a long import, SQLite's one writer), a preview of
/// new pupils, a class change and new contact details answers at once,
/// with the same report as the import then gives.
#[tokio::test]
async fn a_preview_takes_no_write_lock_and_reports_what_the_import_does() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&["1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,,,,"]),
    )
    .await
    .unwrap();
    let next = file(&[
        "1001,Baillet,Julie,2012-09-03,4 B,Baillet,Marc,marc.baillet@example.org,,,,,",
        "1002,Roux,Léo,2011-02-13,4 A,Roux,Anne,,,,,,",
    ]);
    let mut held = app.app.db.begin().await.unwrap();
    let statement = if std::env::var("CLEF_TEST_DATABASE_URL").is_ok() {
        "LOCK TABLE accounts IN EXCLUSIVE MODE"
    } else {
        "DELETE FROM accounts WHERE 1 = 0"
    };
    sqlx::query(statement).execute(&mut *held).await.unwrap();
    let started = std::time::Instant::now();
    let preview = app.import_with("0590001A", &next, true).await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "not held up by the writer: {:?}",
        started.elapsed()
    );
    held.rollback().await.unwrap();
    let report = app.import("0590001A", &next).await.unwrap();
    assert_eq!(
        (
            preview.students_created,
            preview.students_updated,
            preview.guardians_created,
            preview.guardians_updated,
            &preview.changes,
        ),
        (
            report.students_created,
            report.students_updated,
            report.guardians_created,
            report.guardians_updated,
            &report.changes,
        )
    );
    assert_eq!((report.students_created, report.students_updated), (1, 1));
}

#[tokio::test]
async fn a_class_change_updates_the_student_in_place_and_a_dry_run_writes_nothing() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&["1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,,,,"]),
    )
    .await
    .unwrap();
    let julie = app.account_named("julie.baillet").await;
    let moved = file(&["1001,Baillet,Julie,2012-09-03,4 B,Baillet,Marc,,,,,,"]);
    let preview = app.import_with("0590001A", &moved, true).await.unwrap();
    assert!(preview.dry_run && preview.students_updated == 1);
    assert!(
        preview.changes.iter().any(|c| c.contains("5 B → 4 B")),
        "{:?}",
        preview.changes
    );
    assert_eq!(
        app.account_named("julie.baillet")
            .await
            .class_name
            .as_deref(),
        Some("5 B"),
        "the dry run wrote nothing"
    );
    let report = app.import("0590001A", &moved).await.unwrap();
    assert_eq!(report.students_updated, 1);
    let after = app.account_named("julie.baillet").await;
    assert_eq!(
        (after.id, after.class_name.as_deref()),
        (julie.id, Some("4 B"))
    );
    assert_eq!(app.count("accounts").await, 2);
}

/// A re-export that reads the day as the month, or spells a name another
/// way, is shown old → new among the changes to look at, not as a bare
/// « mis à jour ».
#[tokio::test]
async fn a_birth_date_or_a_name_the_file_changes_is_shown_before_and_after() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&["1001,Baillet,Julie,2011-02-03,5 B,Baillet,Marc,,,,,,"]),
    )
    .await
    .unwrap();
    let swapped = file(&["1001,BAILLET,Julie,2011-03-02,5 B,Baillet,Marc,,,,,,"]);
    let preview = app.import_with("0590001A", &swapped, true).await.unwrap();
    assert_eq!(preview.students_updated, 1);
    assert!(
        preview.changes.contains(
            &"ligne 2 : Julie BAILLET mis à jour : nom Julie Baillet → Julie BAILLET ; \
              date de naissance 03/02/2011 → 02/03/2011"
                .to_owned()
        ),
        "{:?}",
        preview.changes
    );
    let moved = file(&["1001,Baillet,Julie,2011-03-02,4 B,Baillet,Marc,,,,,,"]);
    let report = app.import("0590001A", &moved).await.unwrap();
    assert!(
        report.changes.contains(
            &"ligne 2 : Julie Baillet change de classe (5 B → 4 B) ; \
              date de naissance 03/02/2011 → 02/03/2011"
                .to_owned()
        ),
        "{:?}",
        report.changes
    );
}

#[tokio::test]
async fn an_import_for_an_unknown_establishment_or_without_required_columns_is_refused() {
    let app = app_with_school().await;
    assert!(matches!(
        app.import("0590009Z", &file(&["1,A,B,2012-01-01,5 B,,,,,,,,"]))
            .await,
        Err(ImportError::UnknownEstablishment(_))
    ));
    let Err(ImportError::File(errors)) = app.import("0590001A", b"nom;prenom\nA;B\n").await else {
        panic!()
    };
    assert!(errors[0].reason.contains("colonnes manquantes"));
}

#[tokio::test]
async fn a_pdf_of_three_letters_names_each_identifier() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&["1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,Durand,Sophie,,"]),
    )
    .await
    .unwrap();
    let letters = app.letters("0590001A").await;
    assert_eq!(letters.len(), 3);
    let pdf = clef::provisioning::letters::pdf(&letters, app.app.now()).unwrap();
    // Read back with lopdf, which decodes the builtin fonts' WinAnsi text (accents included).
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    // Dated as printed, not 1 January 1970.
    let info = document
        .trailer
        .get(b"Info")
        .unwrap()
        .as_reference()
        .unwrap();
    let info = document.get_dictionary(info).unwrap();
    let created = info.get(b"CreationDate").unwrap();
    // Its properties say who made it and for which school (UTF-16BE, with its BOM).
    let text = |key: &[u8]| {
        let bytes = info.get(key).unwrap().as_str().unwrap();
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    };
    assert_eq!(text(b"Author"), "Collège Jean Moulin");
    assert_eq!(text(b"Creator"), "Clef");
    let year = time::OffsetDateTime::from_unix_timestamp(app.app.now())
        .unwrap()
        .year()
        .to_string();
    assert!(
        String::from_utf8_lossy(created.as_str().unwrap()).contains(&year),
        "{created:?}"
    );
    let pages: Vec<u32> = document.get_pages().into_keys().collect();
    assert_eq!(pages.len(), 3, "one page per letter");
    for (letter, page) in letters.iter().zip(&pages) {
        let text = document.extract_text(&[*page]).unwrap();
        assert!(
            text.contains(&letter.identifier),
            "{} on its page: {text}",
            letter.identifier
        );
        assert!(text.contains(&letter.password));
    }
    let text = document.extract_text(&pages).unwrap();
    let flowing = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowing.contains("Collège Jean Moulin pour Julie Baillet, élève de 5 B"),
        "{flowing}"
    );
    assert!(flowing.contains("Mot de passe provisoire, à modifier lors de la première connexion"));
    assert!(flowing.contains("délai de 3 mois pour activer votre compte"));
    // A letter tells the validity it was printed with.
    let mut longer = letters[0].clone();
    longer.validity_months = 4;
    let document = lopdf::Document::load_mem(
        &clef::provisioning::letters::pdf(std::slice::from_ref(&longer), app.app.now()).unwrap(),
    )
    .unwrap();
    let text = document.extract_text(&[1]).unwrap();
    let flowing = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowing.contains("délai de 4 mois pour activer votre compte"),
        "{flowing}"
    );
    // The CSV for mail merges carries the same.
    let csv = String::from_utf8(clef::provisioning::letters::csv(&letters).unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(
        letters
            .iter()
            .all(|l| csv.contains(&format!("{};{}", l.identifier, l.password)))
    );
}

/// Names the PDF's builtin fonts lack (Polish, Turkish, Vietnamese, Cyrillic)
/// print as the school wrote them, in an embedded font that copies back as
/// text; a file whose names they have embeds no font.
#[tokio::test]
async fn letters_print_names_as_written_whatever_their_alphabet() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&[
            "1001,Wiśniewska,Zofia,2012-09-03,5 B,Wiśniewski,Łukasz,,,Yılmaz,Şahin,,",
            "1002,Nguyễn,Thị Lan,2012-05-04,5 B,Иванова,Дарья,,,,,,",
            "1003,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,,,,",
        ]),
    )
    .await
    .unwrap();
    let letters = app.letters("0590001A").await;
    let (written, latin): (Vec<_>, Vec<_>) = letters
        .into_iter()
        .partition(|l| l.student_family_name != "Baillet");
    let pdf = clef::provisioning::letters::pdf(&written, app.app.now()).unwrap();
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    let pages: Vec<u32> = document.get_pages().into_keys().collect();
    let text = document.extract_text(&pages).unwrap();
    let flowing = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for name in [
        "Łukasz Wiśniewski",
        "Şahin Yılmaz",
        "Zofia Wiśniewska",
        "Thị Lan Nguyễn",
        "Дарья Иванова",
    ] {
        assert!(flowing.contains(name), "{name} in {flowing}");
    }
    let embeds = |pdf: &[u8]| {
        let document = lopdf::Document::load_mem(pdf).unwrap();
        document.objects.values().any(|object| {
            object
                .as_dict()
                .or_else(|_| object.as_stream().map(|s| &s.dict))
                .is_ok_and(|d| d.has(b"FontFile2"))
        })
    };
    assert!(embeds(&pdf));
    let pdf = clef::provisioning::letters::pdf(&latin, app.app.now()).unwrap();
    assert!(!embeds(&pdf), "Helvetica prints « Julie Baillet »");
}

/// An account the school reset after its owner used it is provisional again,
/// but its contact details are still its owner's: the file does not
/// overwrite them, nor swap them at each import.
#[tokio::test]
async fn a_reset_account_keeps_its_owners_contact_details() {
    let app = app_with_school().await;
    let csv = file(&["1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,,,,,"]);
    app.import("0590001A", &csv).await.unwrap();
    sqlx::query(
        "UPDATE accounts SET activated_at = 5, email = 'marc.new@example.org' WHERE identifier = 'marc.baillet'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let report = app.import("0590001A", &csv).await.unwrap();
    assert_eq!(report.guardians_updated, 0, "{:?}", report.changes);
    assert_eq!(
        app.account_named("marc.baillet").await.email.as_deref(),
        Some("marc.new@example.org")
    );
}

/// A parent's phone comes from the school's records (no page changes it): a
/// new number in the file reaches an activated account, whose address stays
/// its owner's (and the report says so); a file without a number keeps the
/// one known.
#[tokio::test]
async fn a_new_phone_in_the_file_reaches_an_activated_account() {
    let app = app_with_school().await;
    let row = |phone: &str| {
        file(&[&format!(
            "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,{phone},,,,"
        )])
    };
    app.import("0590001A", &row("06 12 34 56 78"))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE accounts SET state = 'active', activated_at = 5, email = 'marc.new@example.org' \
         WHERE identifier = 'marc.baillet'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let report = app
        .import("0590001A", &row("07 98 76 54 32"))
        .await
        .unwrap();
    assert_eq!(report.guardians_updated, 1, "{:?}", report.changes);
    let marc = app.account_named("marc.baillet").await;
    assert_eq!(marc.phone.as_deref(), Some("+33798765432"));
    assert_eq!(marc.email.as_deref(), Some("marc.new@example.org"));
    // The address kept is said, with the file's: the school does not
    // believe it changed.
    assert!(
        report.changes.iter().any(|c| c
            == "ligne 2 : l'adresse mail de Marc Baillet n'est pas modifiée (marc@example.org dans le fichier) : \
                son compte est activé, l'adresse est la sienne ; le parent la change dans « Mon compte »"),
        "{:?}",
        report.changes
    );
    let report = app.import("0590001A", &row("")).await.unwrap();
    assert_eq!(report.guardians_updated, 0, "{:?}", report.changes);
    assert_eq!(
        app.account_named("marc.baillet").await.phone.as_deref(),
        Some("+33798765432")
    );
}

/// Two siblings' numbers swapped in the file (or a column shifted): each
/// number now names another child — another birth date and another name.
/// Imported, each account would be rewritten into the other child's and
/// the parents would see someone else's child: the file is refused at
/// those lines, nothing written; skipping bad rows leaves them out. A
/// corrected birth date alone, or a name alone, is the same pupil.
#[tokio::test]
async fn a_number_that_now_names_another_child_is_a_bad_row() {
    let app = app_with_school().await;
    let julie = "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,,,,,";
    let hugo = "1002,Baillet,Hugo,2010-01-04,3 A,Baillet,Marc,marc@example.org,,,,,";
    app.import("0590001A", &file(&[julie, hugo])).await.unwrap();
    let swapped = file(&[
        "1002,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,,,,,",
        "1001,Baillet,Hugo,2010-01-04,3 A,Baillet,Marc,marc@example.org,,,,,",
    ]);
    let refused = app.import("0590001A", &swapped).await.unwrap_err();
    let clef::provisioning::import::ImportError::Rows { refused: rows, .. } = refused else {
        panic!("{refused:?}");
    };
    let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3], "{rows:?}");
    assert!(
        rows[0]
            .to_string()
            .contains("le n° élève 1002 est celui de Hugo Baillet (né(e) le 04/01/2010)")
            && rows[0].to_string().contains("autre élève"),
        "{}",
        rows[0]
    );
    let name_of = |number: &'static str| {
        let db = app.app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT given_name FROM accounts WHERE student_ref = $1",
            )
            .bind(number)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(name_of("1001").await, "Julie", "nothing written");
    let skipped = clef::provisioning::import::import(
        &app.app.db,
        &app.app.letters,
        &clef::domain::Uai::parse("0590001A").unwrap(),
        &swapped,
        app.app.now(),
        false,
        clef::provisioning::import::BadRows::Skip,
    )
    .await
    .unwrap();
    assert_eq!(skipped.skipped.len(), 2, "{skipped:?}");
    assert_eq!(
        (name_of("1001").await, name_of("1002").await),
        ("Julie".into(), "Hugo".into())
    );

    // The same child, corrected: a birth date alone, then a name alone.
    let report = app
        .import(
            "0590001A",
            &file(&[
                "1001,Baillet,Julie,2012-09-04,5 B,Baillet,Marc,marc@example.org,,,,,",
                hugo,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(report.students_updated, 1, "{:?}", report.changes);
    let report = app
        .import(
            "0590001A",
            &file(&[
                "1001,Baillet-Roux,Julie,2012-09-04,5 B,Baillet,Marc,marc@example.org,,,,,",
                hugo,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(report.students_updated, 1, "{:?}", report.changes);
}

/// A guardian's name the school corrects in its file (accents, capitals)
/// is the account's from then on, on the letter and for the services, and
/// the report shows it old → new; a parent with a child in another school
/// keeps the name that school's file may spell otherwise, and the report
/// says so.
#[tokio::test]
async fn a_guardians_name_corrected_in_the_file_is_updated_in_place() {
    let app = app_with_school().await;
    let row = |given: &str, family: &str| {
        file(&[&format!(
            "1001,Lefèvre,Noémie,2012-09-03,5 B,{family},{given},helene@example.org,,,,,"
        )])
    };
    app.import("0590001A", &row("Helene", "LEFEVRE"))
        .await
        .unwrap();
    let before = app.account_named("helene.lefevre").await;

    let report = app
        .import("0590001A", &row("Hélène", "Lefèvre"))
        .await
        .unwrap();
    assert_eq!(
        (report.guardians_created, report.guardians_updated),
        (0, 1),
        "{:?}",
        report.changes
    );
    assert!(
        report
            .changes
            .iter()
            .any(|c| c == "ligne 2 : nom de responsable Helene LEFEVRE → Hélène Lefèvre"),
        "{:?}",
        report.changes
    );
    let after = app.account_named("helene.lefevre").await;
    assert_eq!(after.id, before.id, "the same account");
    assert_eq!(
        (after.given_name.as_str(), after.family_name.as_str()),
        ("Hélène", "Lefèvre")
    );
    let letter = app.letters("0590001A").await;
    assert!(
        letter
            .iter()
            .any(|l| l.identifier == "helene.lefevre" && l.recipient == "Hélène Lefèvre")
    );
    let again = app
        .import("0590001A", &row("Hélène", "Lefèvre"))
        .await
        .unwrap();
    assert_eq!(again.guardians_updated, 0, "{:?}", again.changes);
    // A file that writes names in capitals says less: the names stay.
    let capitals = app
        .import("0590001A", &row("HÉLÈNE", "LEFÈVRE"))
        .await
        .unwrap();
    assert_eq!(capitals.guardians_updated, 0, "{:?}", capitals.changes);

    // Shared with another school: kept, and said.
    app.establishment("0590002B", "Lycée Victor Hugo").await;
    app.import(
        "0590002B",
        &file(&["2001,Lefèvre,Hugo,2008-01-04,2nde 1,,,,,,,,"]),
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id, rank, created_at) \
         SELECT $1, id, 1, 0 FROM accounts WHERE student_ref = '2001'",
    )
    .bind(&after.id)
    .execute(&app.app.db)
    .await
    .unwrap();
    let report = app
        .import("0590001A", &row("Helene", "Lefevre"))
        .await
        .unwrap();
    assert_eq!(report.guardians_updated, 0, "{:?}", report.changes);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.contains("le nom de Hélène Lefèvre n'est pas modifié")
                && c.contains("autre établissement")),
        "{:?}",
        report.changes
    );
    assert_eq!(
        app.account_named("helene.lefevre").await.given_name,
        "Hélène"
    );
}

/// A parent with a child in another school too: one school's file does not
/// change the phone their account is recovered with by SMS (whoever holds
/// the new number could take the account, children of the other school
/// included); the report says so. Once that child has left, it does.
#[tokio::test]
async fn a_file_does_not_change_the_phone_of_a_parent_shared_with_another_school() {
    let app = app_with_school().await;
    app.establishment("0590002B", "Lycée Victor Hugo").await;
    let row = |phone: &str| {
        file(&[&format!(
            "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,{phone},,,,"
        )])
    };
    app.import("0590001A", &row("06 12 34 56 78"))
        .await
        .unwrap();
    let marc = app.account_named("marc.baillet").await;
    sqlx::query("UPDATE accounts SET state = 'active', activated_at = 5 WHERE id = $1")
        .bind(&marc.id)
        .execute(&app.app.db)
        .await
        .unwrap();
    app.import(
        "0590002B",
        &file(&["2001,Baillet,Hugo,2008-01-04,2nde 1,,,,,,,,"]),
    )
    .await
    .unwrap();
    let hugo: String = sqlx::query_scalar("SELECT id FROM accounts WHERE student_ref = '2001'")
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO guardianships (guardian_id, student_id, rank, created_at) VALUES ($1, $2, 1, 0)")
        .bind(&marc.id)
        .bind(&hugo)
        .execute(&app.app.db)
        .await
        .unwrap();

    let report = app
        .import("0590001A", &row("07 98 76 54 32"))
        .await
        .unwrap();
    assert_eq!(report.guardians_updated, 0, "{:?}", report.changes);
    assert!(
        report.changes.iter().any(
            |c| c.contains("téléphone de Marc Baillet n'est pas modifié")
                && c.contains("autre établissement")
        ),
        "{:?}",
        report.changes
    );
    assert_eq!(
        app.account_named("marc.baillet").await.phone.as_deref(),
        Some("+33612345678")
    );

    sqlx::query("UPDATE accounts SET state = 'closed' WHERE id = $1")
        .bind(&hugo)
        .execute(&app.app.db)
        .await
        .unwrap();
    let report = app
        .import("0590001A", &row("07 98 76 54 32"))
        .await
        .unwrap();
    assert_eq!(report.guardians_updated, 1, "{:?}", report.changes);
    assert_eq!(
        app.account_named("marc.baillet").await.phone.as_deref(),
        Some("+33798765432")
    );
}

/// A parent's account holding two children (grouped, then reset by the
/// school) gets one letter, not one per child.
#[tokio::test]
async fn an_account_with_two_children_gets_one_letter() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&[
            "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,,,,",
            "1002,Baillet,Hugo,2010-01-04,3 A,,,,,,,,",
        ]),
    )
    .await
    .unwrap();
    let marc = app.account_named("marc.baillet").await;
    let hugo: String = sqlx::query_scalar("SELECT id FROM accounts WHERE student_ref = '1002'")
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO guardianships (guardian_id, student_id, rank, created_at) VALUES ($1, $2, 1, 0)")
        .bind(&marc.id)
        .bind(&hugo)
        .execute(&app.app.db)
        .await
        .unwrap();
    let letters = app.letters("0590001A").await;
    assert_eq!(
        letters.iter().filter(|l| l.account_id == marc.id).count(),
        1,
        "{letters:?}"
    );
    assert_eq!(letters.len(), 3, "Julie's, Hugo's and Marc's");
}

/// A pupil the next file does not name (left the school, or a file of one
/// class) keeps an open account, and the report names them.
#[tokio::test]
async fn pupils_the_next_file_leaves_out_are_named_and_stay_open() {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let both = "student_id,family_name,given_name,birthdate,class\n\
               1001,Baillet,Julie,03/09/2012,5 B\n\
               1002,Colin,Chloe,05/06/2011,4 B\n";
    app.import("0590001A", both.as_bytes()).await.unwrap();
    let report = app
        .import("0590001A", b"student_id,family_name,given_name,birthdate,class\n1001,Baillet,Julie,03/09/2012,5 B\n")
        .await
        .unwrap();
    assert_eq!(report.students_absent, 1);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.contains("Chloe Colin (4 B)") && c.contains("son compte reste ouvert")),
        "{:?}",
        report.changes
    );
    let chloe: String = sqlx::query_scalar("SELECT state FROM accounts WHERE student_ref = '1002'")
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    assert_eq!(chloe, "provisional");
    // The whole file again: no one is missing.
    let again = app.import("0590001A", both.as_bytes()).await.unwrap();
    assert_eq!(again.students_absent, 0);
}

/// A pupil the school closed in the back office keeps its number: the next
/// file that lists it imports, the row left out and said so (it failed on the
/// number's uniqueness, with no line).
#[tokio::test]
async fn a_closed_pupil_in_the_next_file_is_left_out_and_the_rest_imports() {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let csv = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email\n\
               1001,Baillet,Julie,03/09/2012,5 B,Baillet,Marc,marc@example.org\n\
               1002,Colin,Chloe,05/06/2011,4 B,Colin,Luc,luc@example.org\n";
    app.import("0590001A", csv.as_bytes()).await.unwrap();
    sqlx::query("UPDATE accounts SET state = 'closed' WHERE student_ref = '1001'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let accounts = app.count("accounts").await;
    let report = app.import("0590001A", csv.as_bytes()).await.unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("ligne 2 :") && c.contains("compte fermé")),
        "{:?}",
        report.changes
    );
    assert_eq!(report.students_created, 0);
    assert_eq!(report.students_unchanged, 1);
    assert_eq!(app.count("accounts").await, accounts);
}

/// A long import while the service writes (logins, audit events) completes:
/// on SQLite it takes the write lock first, instead of having its late
/// upgrade refused by a commit made during its reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_import_completes_while_the_service_writes() {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let mut csv = String::from(
        "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email\n",
    );
    // Names are letters: each digit of the pupil's number as one.
    let name = |n: usize| -> String {
        n.to_string()
            .bytes()
            .map(|d| char::from(b'a' + (d - b'0')))
            .collect()
    };
    for n in 0..3000 {
        let name = name(n);
        csv.push_str(&format!(
            "{n},Nom{name},Prenom{name},03/09/2012,5 B,Parent{name},Marc,p{n}@example.org\n"
        ));
    }
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (db, writing) = (app.app.db.clone(), writing.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                sqlx::query(
                    "INSERT INTO audit_events (id, at, event, outcome) VALUES ($1, $2, 'login', 'ok')",
                )
                .bind(format!("w{n}"))
                .bind(n)
                .execute(&db)
                .await
                .unwrap();
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let report = app.import("0590001A", csv.as_bytes()).await;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let writes = writer.await.unwrap();
    assert!(writes > 0);
    let created = report
        .map(|r| r.students_created)
        .map_err(|e| format!("{e}"));
    assert_eq!(created, Ok(3000));
}

/// (child's given name, rank) of each child of `identifier`, sorted.
async fn children_of(app: &TestApp, identifier: &str) -> Vec<(String, i64)> {
    let guardian = app.account_named(identifier).await;
    let mut children: Vec<(String, i64)> =
        clef::accounts::store::children(&app.app.db, &guardian.id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.given_name, c.rank))
            .collect();
    children.sort();
    children
}

async fn make_active(app: &TestApp, identifier: &str) {
    sqlx::query("UPDATE accounts SET state = 'active', activated_at = 1 WHERE identifier = $1")
        .bind(identifier)
        .execute(&app.app.db)
        .await
        .unwrap();
}

/// Claire grouped both of Marc's letter accounts into hers (a joint account):
/// the unchanged file names Marc as Léa's second guardian and Zoé's first.
/// Both are Claire's account now: the next import neither detaches Zoé from
/// it (Marc's name is not Claire's) nor gives Marc a new letter for Léa.
#[tokio::test]
async fn a_file_imported_again_after_a_grouping_keeps_the_children_and_makes_no_new_guardian() {
    let app = app_with_school().await;
    let csv = file(&[
        "1001,Martin,Léa,2012-01-01,5 B,Martin,Claire,,,Martin,Marc,,",
        "1002,Martin,Zoé,2014-01-02,6 C,Martin,Marc,,,,,,",
    ]);
    app.import("0590001A", &csv).await.unwrap();
    make_active(&app, "claire.martin").await;
    let claire = app.account_named("claire.martin").await;
    for marc in ["marc.martin", "marc.martin1"] {
        let marc = app.account_named(marc).await;
        clef::accounts::grouping::group(&app.app, &claire.id, &marc.id)
            .await
            .unwrap()
            .unwrap();
    }
    let grouped = children_of(&app, "claire.martin").await;
    assert_eq!(grouped, [("Léa".into(), 1), ("Zoé".into(), 1)]);
    let accounts = app.count("accounts").await;

    let report = app.import("0590001A", &csv).await.unwrap();
    assert_eq!(
        (report.guardians_created, report.guardians_updated),
        (0, 0),
        "{:?}",
        report.changes
    );
    assert_eq!(report.guardians_unchanged, 3);
    assert_eq!(children_of(&app, "claire.martin").await, grouped);
    assert_eq!(app.count("accounts").await, accounts);
}

/// A guardian the file spells as before is the same guardian at another
/// rank; a new name at a rank replaces an unused letter's account, but never
/// detaches an activated one: the report asks the school.
#[tokio::test]
async fn a_new_guardian_in_the_file_replaces_an_unused_letter_but_not_an_activated_account() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&[
            "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,,,Durand,Sophie,,",
            "1002,Petit,Hugo,2011-01-20,4 A,Petit,Anne,,,Petit,Paul,,",
        ]),
    )
    .await
    .unwrap();
    make_active(&app, "marc.baillet").await;
    let report = app
        .import(
            "0590001A",
            &file(&[
                // Marc (activated) is no longer in the file; Sophie moves to rank 1.
                "1001,Baillet,Julie,2012-09-03,5 B,Durand,Sophie,,,Roux,Nina,,",
                // Paul (unused letter) is replaced by Jean; Anne stays.
                "1002,Petit,Hugo,2011-01-20,4 A,Petit,Anne,,,Petit,Jean,,",
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            report.guardians_created,
            report.guardians_updated,
            report.guardians_unchanged
        ),
        (2, 1, 1),
        "{:?}",
        report.changes
    );
    assert_eq!(
        children_of(&app, "marc.baillet").await,
        [("Julie".into(), 1)]
    );
    assert_eq!(
        children_of(&app, "sophie.durand").await,
        [("Julie".into(), 1)]
    );
    assert_eq!(children_of(&app, "nina.roux").await, [("Julie".into(), 2)]);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("ligne 2 :") && c.contains("détachez-le")),
        "{:?}",
        report.changes
    );
    assert!(
        report.changes.contains(
            &"ligne 3 : le compte non activé de Paul Petit est détaché de Hugo".to_owned()
        ),
        "{:?}",
        report.changes
    );
    assert!(children_of(&app, "paul.petit").await.is_empty());
    assert_eq!(children_of(&app, "jean.petit").await, [("Hugo".into(), 2)]);
}

/// Two schools import at once, their pupils and parents named alike: each
/// import reserves its numbers, so the second does not pick the first's
/// identifiers and fail on them when the first commits (PostgreSQL; SQLite
/// runs one import after the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schools_importing_at_once_get_distinct_identifiers() {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    app.establishment("0590002B", "Collège Victor Hugo").await;
    let csv = school_file(300);
    let (a, b) = tokio::join!(
        app.import("0590001A", csv.as_bytes()),
        app.import("0590002B", csv.as_bytes())
    );
    let created = |r: Result<clef::provisioning::import::ImportReport, ImportError>| {
        r.map(|r| (r.students_created, r.guardians_created))
            .map_err(|e| format!("{e}"))
    };
    assert_eq!(created(a), Ok((300, 600)));
    assert_eq!(created(b), Ok((300, 600)));
    assert_eq!(app.count("accounts").await, 1800);
    // Numbered on: the second school's Eleve Nomaaaa is eleve.nomaaaa1.
    app.account_named("eleve.nomaaaa1").await;
}

/// « Le  Gall » (two spaces, or a no-break one) and « Le Gall » look alike in
/// a spreadsheet: the same guardian, stored once, with one space — also
/// when an earlier version stored the name with two.
#[tokio::test]
async fn a_guardian_spelt_with_two_spaces_is_the_same_guardian() {
    let app = app_with_school().await;
    let row = |name: &str| {
        file(&[&format!(
            "1001,Le Gall,Julie,2012-09-03,5 B,{name},Marc,marc@example.org,,,,,"
        )])
    };
    let first = app.import("0590001A", &row("Le  Gall")).await.unwrap();
    assert_eq!(first.guardians_created, 1);
    let marc = app.account_named("marc.le-gall").await;
    assert_eq!(marc.family_name, "Le Gall");
    for spelling in ["Le Gall", "Le\u{a0}Gall", "LE GALL"] {
        let again = app.import("0590001A", &row(spelling)).await.unwrap();
        assert_eq!(
            (again.guardians_created, again.guardians_unchanged),
            (0, 1),
            "{spelling:?}: {:?}",
            again.changes
        );
    }
    // Stored with two spaces before this version: still the same guardian.
    sqlx::query("UPDATE accounts SET family_name = 'Le  Gall' WHERE id = $1")
        .bind(&marc.id)
        .execute(&app.app.db)
        .await
        .unwrap();
    let again = app.import("0590001A", &row("Le Gall")).await.unwrap();
    assert_eq!(again.guardians_created, 0, "{:?}", again.changes);
}

/// A birth date to come is a bad row; and every bad row of a file is
/// reported at once, a number naming another pupil among them.
#[tokio::test]
async fn a_birth_date_to_come_is_a_bad_row_reported_with_the_others() {
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&["1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,"]),
    )
    .await
    .unwrap();
    let next_year = time::OffsetDateTime::from_unix_timestamp(app.app.now())
        .unwrap()
        .year()
        + 1;
    let future = format!("1002,Roux,Léo,{next_year}-01-20,4 A,,,,,,,,");
    let csv = file(&[
        "1001,Petit,Hugo,2011-01-20,4 A,,,,,,,,",
        &future,
        "1003,Durand,,2011-01-20,4 A,,,,,,,,",
    ]);
    let Err(ImportError::Rows {
        refused: errors, ..
    }) = app.import("0590001A", &csv).await
    else {
        panic!("refused");
    };
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4], "{errors:?}");
    assert!(errors[1].reason.contains("dans le futur"), "{}", errors[1]);

    // A year no pupil was born in (a typo: 2025 for 2015, 1912 for 2012).
    let baby = format!("1004,Roux,Léa,{}-01-20,4 A,,,,,,,,", next_year - 2);
    let csv = file(&[
        &baby,
        "1005,Roux,Paul,1912-01-20,4 A,,,,,,,,",
        "1006,Roux,Lou,2014-02-03,6 A,,,,,,,,",
    ]);
    let Err(ImportError::Rows {
        refused: errors,
        good,
    }) = app.import("0590001A", &csv).await
    else {
        panic!("refused");
    };
    assert_eq!(good, 1);
    assert_eq!(
        errors[0].reason,
        format!(
            "la date de naissance (20/01/{}) donnerait à l'élève moins de 2 ans : vérifiez l'année",
            next_year - 2
        )
    );
    assert!(
        errors[1]
            .reason
            .starts_with("la date de naissance (20/01/1912) donnerait à l'élève 11"),
        "{}",
        errors[1]
    );
}

/// A report lists the first 300 ordinary changes and counts the others, but
/// every change the school has to look at: a whole académie's file made a
/// report of hundreds of thousands of lines, kept with the back office's job.
#[tokio::test]
async fn a_large_file_lists_the_first_changes_and_every_one_to_look_at() {
    let app = app_with_school().await;
    // Names are letters: `aaa`, `aab`…
    let letters = |n: usize| -> String {
        [n / 676, n / 26, n]
            .iter()
            .map(|d| (b'a' + (d % 26) as u8) as char)
            .collect()
    };
    let pupils = |class: &str, count: usize| -> Vec<u8> {
        let mut text = String::from(
            "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name\n",
        );
        for n in 0..count {
            let name = letters(n);
            text.push_str(&format!(
                "{},Eleve,Prenom{name},03/09/2012,{class},Parent,Prenom{name}\n",
                1000 + n
            ));
        }
        text.into_bytes()
    };
    let first = app.import("0590001A", &pupils("6 A", 400)).await.unwrap();
    assert_eq!(
        (first.students_created, first.guardians_created),
        (400, 400)
    );
    assert_eq!(first.changes.len(), 300);
    assert_eq!(first.unlisted_changes, 500);
    assert_eq!(app.count("accounts").await, 800, "every account is written");
    assert_eq!(app.count("guardianships").await, 400);
    // Every pupil changes class, and the last one has left: the absent pupil
    // comes after the 399 changes and is listed all the same.
    let second = app.import("0590001A", &pupils("5 A", 399)).await.unwrap();
    assert_eq!(second.students_updated, 399);
    assert_eq!(second.changes.len(), 301, "{:?}", second.attention);
    assert_eq!(second.unlisted_changes, 99);
    assert_eq!(second.attention.len(), 1);
    assert_eq!(second.changes.last(), second.attention.last());
    assert_eq!(
        second.touched.len(),
        399,
        "each changed account's own trail"
    );
}

/// A file without the guardians' address or phone columns (another export,
/// a column the school left out) says nothing of them: the addresses and
/// phones already held stay, in the preview and in the import.
#[tokio::test]
async fn a_file_without_contact_columns_erases_no_address_nor_phone() {
    let app = app_with_school().await;
    let csv = file(&[
        "1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,marc@example.org,0612345678,Durand,Sophie,sophie@example.org,0698765432",
    ]);
    app.import("0590001A", &csv).await.unwrap();
    let without = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,\
        guardian2_family_name,guardian2_given_name,guardian2_phone\n\
        1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,Durand,Sophie,0698765432\n";
    for dry_run in [true, false] {
        let report = app
            .import_with("0590001A", without.as_bytes(), dry_run)
            .await
            .unwrap();
        assert_eq!(report.guardians_updated, 0, "{:?}", report.changes);
        assert!(
            report.changes.iter().all(|c| !c.contains("coordonnées")),
            "{:?}",
            report.changes
        );
    }
    let marc = app.account_named("marc.baillet").await;
    assert_eq!(marc.email.as_deref(), Some("marc@example.org"));
    assert_eq!(marc.phone.as_deref(), Some("+33612345678"));
    let sophie = app.account_named("sophie.durand").await;
    assert_eq!(sophie.email.as_deref(), Some("sophie@example.org"));
    // A column the file has still says what it says: an empty cell empties.
    let emptied = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_phone\n\
        1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc,\n";
    app.import("0590001A", emptied.as_bytes()).await.unwrap();
    let marc = app.account_named("marc.baillet").await;
    assert_eq!(marc.email.as_deref(), Some("marc@example.org"));
    assert_eq!(marc.phone, None);
}

/// An address or a phone column that does not say whose is named at the
/// top of the report, before and after the import; the rest of the file
/// imports.
#[tokio::test]
async fn a_contact_column_that_does_not_say_whose_is_named_in_the_report() {
    let app = app_with_school().await;
    let csv = "N° élève;Nom;Prénom;Né(e) le;Classe;Nom responsable 1;Prénom responsable 1;Courriel\n\
        1001;Baillet;Julie;03/09/2012;5 B;Baillet;Marc;marc@example.org\n";
    let notice = "fichier : la colonne « Courriel » n'est pas lue : elle ne dit pas de quel responsable légal elle est ; ajoutez « responsable 1 » ou « responsable 2 » à son nom pour qu'elle le soit";
    for dry_run in [true, false] {
        let report = app
            .import_with("0590001A", csv.as_bytes(), dry_run)
            .await
            .unwrap();
        assert_eq!(report.changes.first().map(String::as_str), Some(notice));
        assert_eq!(report.attention, [notice]);
        assert_eq!(report.guardians_created, 1);
    }
    assert_eq!(app.account_named("marc.baillet").await.email, None);
}

/// « N’Diaye » from a word processor and « N'Diaye » from the school's
/// software are one name: a file with the other apostrophe changes nothing.
#[tokio::test]
async fn a_name_with_the_other_apostrophe_is_the_same_name() {
    let app = app_with_school().await;
    let typographic = file(&["1001,N’Diaye,Awa,2012-09-03,5 B,N’Diaye,Moussa,,,,,,"]);
    let first = app.import("0590001A", &typographic).await.unwrap();
    assert_eq!(first.students_created, 1);
    let plain = file(&["1001,N'Diaye,Awa,2012-09-03,5 B,N'Diaye,Moussa,,,,,,"]);
    let second = app.import("0590001A", &plain).await.unwrap();
    assert_eq!(
        (second.students_unchanged, second.guardians_unchanged),
        (1, 1),
        "{:?}",
        second.changes
    );
}

/// A letter is dated when it is first printed, not at the import (which may
/// come weeks before the rentrée): its three months start then, and it
/// keeps that date when printed again; an account whose letter was never
/// printed does not expire.
#[tokio::test]
async fn a_letter_is_dated_and_counted_from_its_first_printing() {
    use clef::provisioning::letters::{Selection, select_as_configured};
    let app = app_with_school().await;
    app.import(
        "0590001A",
        &file(&[
            "1001,Baillet,Julie,2012-09-03,5 B,,,,,,,,",
            "1002,Petit,Hugo,2011-01-20,4 A,,,,,,,,",
        ]),
    )
    .await
    .unwrap();
    let day = 24 * 3600;
    app.clock.advance(60 * day);
    let print_5b = || async {
        let selection = Selection {
            class: Some("5 B".into()),
            account: None,
        };
        select_as_configured(
            &app.app,
            &clef::domain::Uai::parse("0590001A").unwrap(),
            &selection,
        )
        .await
        .unwrap()
    };
    let printed_at = app.app.now();
    let zone = app.app.config.zone();
    let first = print_5b().await;
    assert_eq!(first.len(), 1);
    let french = |t| clef::provisioning::letters::french_date(t, &zone);
    assert_eq!(first[0].letter_date, french(printed_at));
    assert_eq!(
        app.account_named("julie.baillet").await.letter_date,
        Some(printed_at)
    );
    assert_eq!(app.account_named("hugo.petit").await.letter_date, None);

    app.clock.advance(7 * day);
    let again = print_5b().await;
    assert_eq!(
        again[0].letter_date, first[0].letter_date,
        "printed again, the same date"
    );
    assert_eq!(again[0].deadline, first[0].deadline);

    // Three months after the import, but not after the printing: kept.
    app.clock.advance(30 * day);
    assert_eq!(app.expire_letters().await.deleted, 0);
    assert_eq!(
        app.account_named("julie.baillet").await.state,
        clef::accounts::AccountState::Provisional
    );
    // Past the printed deadline: gone; the letter never printed: kept.
    app.clock.advance(60 * day);
    assert_eq!(app.expire_letters().await.deleted, 1);
    let julie: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE identifier = 'julie.baillet'")
            .fetch_one(&app.app.db)
            .await
            .unwrap();
    assert_eq!(julie, 0);
    assert_eq!(
        app.account_named("hugo.petit").await.state,
        clef::accounts::AccountState::Provisional
    );
}
