//! Provisioning benchmark (not a test): imports 100k pupils with two guardians
//! each, then renders notification letters, and prints the rates.
//!
//!     cargo bench --bench provisioning
//!     CLEF_BENCH_PUPILS=20000 CLEF_BENCH_LETTERS=500 cargo bench --bench provisioning
//!     CLEF_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/bench cargo bench --bench provisioning
//!
//! Figures and the machine they were measured on: docs/benchmarks.md.

use std::time::Instant;

use clef::domain::Uai;
use clef::provisioning::import::BadRows::Refuse;
use clef::provisioning::letters::{self, Selection};
use clef::provisioning::provisional::LetterCipher;

const GIVEN: &[&str] = &[
    "Léa", "Hugo", "Zoé", "Noah", "Inès", "Jules", "Chloé", "Lucas", "Aïcha", "Théo", "Maëlys",
    "Éloïse",
];
const FAMILY: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Lefèvre", "N'Diaye", "Moreau", "Laurent", "Girard", "Ça",
    "Faure",
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A school file as a spreadsheet exports it: `;`, French headers, dd/mm/yyyy.
fn pupil_file(pupils: usize) -> Vec<u8> {
    let mut csv = String::with_capacity(pupils * 160);
    csv.push_str("N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1;Téléphone responsable 1;Nom responsable 2;Prénom responsable 2;Courriel responsable 2;Téléphone responsable 2\r\n");
    for i in 0..pupils {
        let family = FAMILY[i % FAMILY.len()];
        let given = GIVEN[(i / FAMILY.len()) % GIVEN.len()];
        csv.push_str(&format!(
            "{i:08};{family};{given};{:02}/{:02}/{};{}e {};{family};Marc;parent{i}@example.org;06{:08};Durand;Sophie;;\r\n",
            i % 28 + 1,
            i % 12 + 1,
            2008 + i % 8,
            3 + i % 4,
            i % 9 + 1,
            i % 100_000_000,
        ));
    }
    csv.into_bytes()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pupils = env("CLEF_BENCH_PUPILS", 100_000);
    let letter_count = env("CLEF_BENCH_LETTERS", 2_000);
    let dir = tempfile::tempdir()?;
    let url = match std::env::var("CLEF_BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
    };
    let db = clef::storage::open(&url).await?;
    let cipher = LetterCipher::load_or_generate(dir.path())?;
    let devices = clef::accounts::devices::DeviceKey::load_or_generate(dir.path())?;
    let uai = Uai::parse("0590001A").expect("UAI");
    let named = clef::accounts::EstablishmentChange::named("Collège du banc d'essai");
    clef::accounts::store::create_establishment(&db, &uai, &named, 0).await?;

    let file = pupil_file(pupils);
    println!(
        "file: {pupils} pupils, {} guardians, {:.1} MB",
        pupils * 2,
        file.len() as f64 / 1e6
    );
    let started = Instant::now();
    let report =
        clef::provisioning::import::import(&db, &cipher, &uai, &file, 1_790_000_000, false, Refuse)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let accounts = report.students_created + report.guardians_created;
    println!(
        "import: {elapsed:.1} s for {pupils} pupils ({accounts} accounts): {:.0} pupils/s, {:.0} accounts/s",
        pupils as f64 / elapsed,
        accounts as f64 / elapsed
    );

    let started = Instant::now();
    let again =
        clef::provisioning::import::import(&db, &cipher, &uai, &file, 1_790_000_000, false, Refuse)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(again.students_created + again.guardians_created, 0);
    println!(
        "re-import (nothing changes): {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut all = letters::select(
        &db,
        &cipher,
        &devices,
        "https://ent.example.fr",
        &uai,
        &Selection::default(),
        &letters::Dating {
            validity_months: 3,
            zone: jiff::tz::TimeZone::get("Europe/Paris")?,
            issued: 1_790_000_000,
        },
    )
    .await?;
    let selected = started.elapsed().as_secs_f64();
    all.truncate(letter_count);
    let started = Instant::now();
    let pdf = letters::pdf(&all, 1_796_050_800)?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "letters: selecting and decrypting {accounts} letters {selected:.1} s; PDF of {} pages {elapsed:.2} s: {:.0} pages/s ({:.1} MB)",
        all.len(),
        all.len() as f64 / elapsed,
        pdf.len() as f64 / 1e6
    );
    Ok(())
}
