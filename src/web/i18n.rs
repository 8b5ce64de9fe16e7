//! The English catalogue: every French sentence a page can show, and its English.
//!
//! Pages are written in French; `t("…")` in a template, and [`translate`] for a
//! message built in Rust, give the English when the request speaks English (see
//! `locale`). A sentence missing here stays French, so `english_pages_have_no_french`
//! in the tests and the integration tests in `tests/api/i18n.rs` keep it complete.

use super::locale::{self, Locale};

/// `text` in the language of the current request.
pub fn translate(text: &str) -> String {
    match locale::current() {
        Locale::Fr => text.to_owned(),
        Locale::En => english(text).unwrap_or_else(|| text.to_owned()),
    }
}

/// `t("…")` in a template. A sentence of the catalogue is Clef's own text
/// (no `<`, `&` or `"` in either language), written out as it stands, as the
/// French was before; anything else (a message holding a name) is escaped.
pub fn template_function(text: minijinja::Value) -> minijinja::Value {
    let Some(french) = text.as_str() else {
        return text;
    };
    match exact(french) {
        Some(english) => minijinja::Value::from_safe_string(match locale::current() {
            Locale::Fr => french.to_owned(),
            Locale::En => english.to_owned(),
        }),
        None => minijinja::Value::from(translate(french)),
    }
}

/// The English of a French sentence, if the catalogue or a known pattern has it.
pub fn english(french: &str) -> Option<String> {
    exact(french).map(str::to_owned).or_else(|| pattern(french))
}

/// Sentences built with a value inside: a field name, a wait, a date, a service.
/// Why a field's value is not valid, as the import's report says it.
fn field_hint(french: &str) -> Option<String> {
    if let Some(hint) = exact(french) {
        return Some(hint.to_owned());
    }
    let (why, rule) = french.rsplit_once(" : ")?;
    let rule = exact(rule)?;
    let chars = |named: &str| -> Option<String> {
        named
            .split(", ")
            .map(|one| match one.strip_prefix("le caractère invisible ") {
                Some(code) => Some(format!("the invisible character {code}")),
                None => Some(format!("“{}”", one.strip_prefix("« ")?.strip_suffix(" »")?)),
            })
            .collect::<Option<Vec<_>>>()
            .map(|named| named.join(", "))
    };
    let why = if why == "un nom commence et finit par une lettre" {
        "a name starts and ends with a letter".to_owned()
    } else if let Some(named) = why.strip_suffix(" n'a pas sa place dans un nom") {
        format!("{} has no place in a name", chars(named)?)
    } else {
        let named = why.strip_suffix(" n'ont pas leur place dans un nom")?;
        format!("{} have no place in a name", chars(named)?)
    };
    Some(format!("{why}: {rule}"))
}

fn pattern(french: &str) -> Option<String> {
    if let Some(report) = import_report(french) {
        return Some(report);
    }
    if let Some((count, most)) = french
        .strip_prefix("Cette sélection compte ")
        .and_then(|r| r.split_once(" courriers : c'est plus que les "))
        && let Some(most) = most.strip_suffix(
            " qu'un fichier PDF peut contenir ici. Imprimez-les classe par classe (ou demandez à l'académie de les imprimer avec clef letters).",
        )
    {
        return Some(format!(
            "This selection holds {count} letters: more than the {most} one PDF file can hold here. Print them class by class (or ask the academy to print them with clef letters)."
        ));
    }
    let field = |name: &str| exact(name).unwrap_or(name).to_owned();
    if let Some(rest) = french.strip_prefix("Le champ « ") {
        let (name, problem) = rest.split_once(" » ")?;
        let name = field(name);
        return match problem {
            "est obligatoire." => Some(format!("The “{name}” field is required.")),
            "contient des caractères non autorisés." => Some(format!(
                "The “{name}” field contains characters that are not allowed."
            )),
            "n'est pas valide." => Some(format!("The “{name}” field is not valid.")),
            other
                if other.starts_with(
                    "contient un caractère que les courriers ne peuvent pas imprimer : « ",
                ) =>
            {
                let c = other
                    .strip_prefix(
                        "contient un caractère que les courriers ne peuvent pas imprimer : « ",
                    )?
                    .strip_suffix(" ».")?;
                Some(format!(
                    "The “{name}” field holds a character the letters cannot print: “{c}”."
                ))
            }
            other if other.starts_with("n'est pas valide : « ") => {
                let rest = other.strip_prefix("n'est pas valide : « ")?;
                if let Some(value) = rest.strip_suffix(" ».") {
                    return Some(format!("The “{name}” field is not valid: “{value}”."));
                }
                // The value as typed, then why: the first split whose hint
                // reads (the hint may quote a character, the value anything).
                let hint = rest.strip_suffix(").")?;
                hint.match_indices(" » (").find_map(|(at, _)| {
                    let value = &hint[..at];
                    let hint = field_hint(&hint[at + " » (".len()..])?;
                    Some(format!(
                        "The “{name}” field is not valid: “{value}” ({hint})."
                    ))
                })
            }
            other => {
                let max = other
                    .strip_prefix("ne peut pas dépasser ")?
                    .strip_suffix(" caractères.")?;
                Some(format!(
                    "The “{name}” field cannot be longer than {max} characters."
                ))
            }
        };
    }
    if let Some(rest) = french.strip_prefix("Le mot de passe ne respecte pas la règle. ") {
        return Some(format!(
            "The password does not follow the rule. {}",
            english(rest)?
        ));
    }
    if let Some(rest) = french.strip_prefix("Mot de passe : ") {
        let (min, rest) = rest.split_once(" à ")?;
        let max = rest.strip_suffix(" caractères, chiffres et lettres obligatoires.")?;
        return Some(format!(
            "Password: {min} to {max} characters, with both letters and digits."
        ));
    }
    if let Some(rest) = french.strip_prefix("Trop de tentatives ont échoué. Patientez ") {
        let wait =
            rest.strip_suffix(" avant de réessayer, ou utilisez « mot de passe oublié ? ».")?;
        return Some(format!(
            "Too many failed attempts. Wait {} before trying again, or use “forgotten password?”.",
            english_wait(wait)?
        ));
    }
    if let Some(rest) =
        french.strip_prefix("Trop de dates de naissance erronées pour ce compte. Patientez ")
    {
        let wait =
            rest.strip_suffix(" avant de réessayer, ou demandez de l'aide à l'établissement.")?;
        return Some(format!(
            "Too many wrong birth dates for this account. Wait {} before trying again, or ask the school for help.",
            english_wait(wait)?
        ));
    }
    if let Some(rest) = french
        .strip_prefix("Trop de mails de confirmation ont été demandés pour ce compte. Patientez ")
    {
        let wait = rest.strip_suffix(" avant de réessayer.")?;
        return Some(format!(
            "Too many confirmation emails were asked for this account. Wait {} before trying again.",
            english_wait(wait)?
        ));
    }
    if let Some(rest) =
        french.strip_prefix("Trop de demandes ont été faites depuis votre connexion. Patientez ")
    {
        let wait = rest.strip_suffix(" avant de réessayer.")?;
        return Some(format!(
            "Too many requests came from your connection. Wait {} before trying again.",
            english_wait(wait)?
        ));
    }
    if let Some(rest) = french
        .strip_prefix("L'enfant est détaché de ce compte. Son nouveau compte responsable est ")
    {
        let identifier = rest.strip_suffix(" : imprimez son courrier.")?;
        return Some(format!(
            "The child is detached from this account. Its new parent account is {identifier}: print its letter."
        ));
    }
    if let Some(rest) = french.strip_prefix("L'autorisation donnée par ")
        && let Some((child, rest)) = rest.split_once(" à « ")
    {
        let name =
            rest.strip_suffix(" » est retirée : ce service la redemandera s'il en a besoin.")?;
        return Some(format!(
            "The authorisation {child} gave “{name}” is withdrawn: the service will ask for it again if it needs it."
        ));
    }
    if let Some(rest) = french.strip_prefix("L'autorisation de « ") {
        let name =
            rest.strip_suffix(" » est retirée : ce service vous la redemandera s'il en a besoin.")?;
        return Some(format!(
            "Your authorisation for “{name}” is withdrawn: the service will ask for it again if it needs it."
        ));
    }
    if let Some(date) = english_date(french) {
        return Some(date);
    }
    if let Some((date, time)) = french.split_once(" à ")
        && let Some(date) = english_date(date)
        && time.len() == 5
        && time.bytes().all(|b| b.is_ascii_digit() || b == b':')
    {
        return Some(format!("{date} at {time}"));
    }
    if let Some((browser, system)) = french.split_once(" sur ")
        && french.len() < 48
        && !french.ends_with('.')
    {
        return Some(format!("{browser} on {system}"));
    }
    None
}

/// A date as French pages write it (`jj/mm/aaaa`), as English ones do.
fn english_date(french: &str) -> Option<String> {
    let mut parts = french.split('/');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || (day.len(), month.len(), year.len()) != (2, 2, 4)
        || !french.bytes().all(|b| b.is_ascii_digit() || b == b'/')
    {
        return None;
    }
    let (day, month, year) = (day.parse().ok()?, month.parse().ok()?, year.parse().ok()?);
    ((1..=31).contains(&day) && (1..=12).contains(&month))
        .then(|| Locale::En.date(year, month, day))
}

/// A pupil's name or birth date an import changes: « nom A → B ; date de
/// naissance 03/02/2011 → 02/03/2011 ».
fn student_changes(french: &str) -> Option<String> {
    french
        .split(" ; ")
        .map(|change| {
            if let Some(names) = change.strip_prefix("nom ") {
                return Some(format!("name {names}"));
            }
            let (old, new) = change
                .strip_prefix("date de naissance ")?
                .split_once(" → ")?;
            let date =
                |d: &str| english_date(d).unwrap_or_else(|| exact(d).unwrap_or(d).to_owned());
            Some(format!("birth date {} → {}", date(old), date(new)))
        })
        .collect::<Option<Vec<_>>>()
        .map(|changes| changes.join("; "))
}

/// The lines of an import's report and errors (`provisioning::import`,
/// `provisioning::csv_file`): « ligne 3 : nouvel élève … », « fichier : … ».
fn import_report(french: &str) -> Option<String> {
    if let Some(rest) = french.strip_prefix("ligne ")
        && let Some((row, reason)) = rest.split_once(" : ")
        && !row.is_empty()
        && row.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(format!("row {row}: {}", import_reason(reason)?));
    }
    if let Some(reason) = french.strip_prefix("fichier : ") {
        return Some(format!("file: {}", import_reason(reason)?));
    }
    if let Some(name) = french
        .strip_prefix("1 élève de l'établissement ne figure pas dans ce fichier : ")
        .and_then(|rest| rest.strip_suffix(
            " ; son compte reste ouvert, fermez-le depuis l'administration si l'élève a quitté l'établissement",
        ))
    {
        return Some(format!(
            "1 student of the school is not in this file: {name}; their account stays open: close it in the back office if they left the school"
        ));
    }
    if let Some((count, rest)) = french
        .split_once(" élèves de l'établissement ne figurent pas dans ce fichier : ")
        && let Some(names) = rest.strip_suffix(
            " ; leurs comptes restent ouverts, fermez depuis l'administration ceux des élèves qui ont quitté l'établissement",
        )
    {
        let names = match names.rsplit_once(", et ") {
            Some((named, others)) => {
                let others = others.strip_suffix(" autres")?;
                format!("{named} and {others} others")
            }
            None => names.to_owned(),
        };
        return Some(format!(
            "{count} students of the school are not in this file: {names}; their accounts stay open: close those of students who left the school in the back office"
        ));
    }
    None
}

fn import_reason(french: &str) -> Option<String> {
    if let Some(english) = exact(french) {
        return Some(english.to_owned());
    }
    // A row's field errors, one sentence each: « Le champ « nom » est
    // obligatoire. Le champ « prénom » … ».
    // Split where a sentence starts, not at any « . » (a quoted « J. Marc »).
    if let Some(fields) = french.strip_prefix("Le champ « ") {
        return fields
            .split(" Le champ « ")
            .map(|sentence| pattern(&format!("Le champ « {sentence}")))
            .collect::<Option<Vec<_>>>()
            .map(|sentences| sentences.join(" "));
    }
    if let Some(who) = french.strip_prefix("nouvel élève ") {
        return Some(format!("new student {who}"));
    }
    if let Some((who, classes)) = french.split_once(" change de classe (") {
        return Some(match classes.split_once(") ; ") {
            Some((classes, changes)) => format!(
                "{who} changes class ({classes}); {}",
                student_changes(changes)?
            ),
            None => format!("{who} changes class ({classes}"),
        });
    }
    if let Some((who, changes)) = french.split_once(" mis à jour : ") {
        return Some(format!("{who} updated: {}", student_changes(changes)?));
    }
    if let Some(date) = french
        .strip_prefix("la date de naissance (")
        .and_then(|r| r.strip_suffix(") est dans le futur"))
    {
        return Some(format!("the birth date ({date}) is in the future"));
    }
    if let Some((date, age)) = french
        .strip_prefix("la date de naissance (")
        .and_then(|r| r.strip_suffix(" ans : vérifiez l'année"))
        .and_then(|r| r.split_once(") donnerait à l'élève "))
    {
        let age = match age.strip_prefix("moins de ") {
            Some(years) => format!("less than {years}"),
            None => age.to_owned(),
        };
        return Some(format!(
            "the birth date ({date}) would make the student {age} years old: check the year"
        ));
    }
    if let Some((who, changes)) = french
        .strip_prefix("coordonnées de ")
        .or_else(|| french.strip_prefix("coordonnées d'"))
        .and_then(|r| r.split_once(" mises à jour : "))
    {
        // « adresse a → b ; téléphone aucun → c »
        let changes = changes
            .split(" ; ")
            .map(|change| {
                let change =
                    change
                        .replacen("adresse ", "address ", 1)
                        .replacen("téléphone ", "phone ", 1);
                change
                    .split(' ')
                    .map(|word| match word {
                        "aucune" | "aucun" => "none",
                        word => word,
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Some(format!("contact details of {who} updated: {changes}"));
    }
    if let Some(who) = french.strip_suffix(" mis à jour") {
        return Some(format!("{who} updated"));
    }
    if let Some(who) = french.strip_suffix(" a un compte fermé par l'établissement ; ligne ignorée")
    {
        return Some(format!(
            "{who} has an account the school closed; row skipped"
        ));
    }
    if let Some((who, rest)) = french.split_once(" devient responsable ")
        && let Some((rank, child)) = rest.split_once(" de ")
    {
        return Some(format!("{who} becomes guardian {rank} of {child}"));
    }
    if let Some((who, child)) = french
        .strip_prefix("le compte non activé de ")
        .and_then(|r| r.split_once(" est détaché de "))
    {
        return Some(format!(
            "the account of {who}, not activated, is detached from {child}"
        ));
    }
    if let Some((who, child)) = french
        .strip_prefix("nouveau responsable ")
        .and_then(|r| r.rsplit_once(" pour "))
    {
        let who = who.replace("(responsable ", "(guardian ");
        return Some(format!("new guardian {who} for {child}"));
    }
    if let Some((who, child)) = french
        .strip_suffix(
            " ; son compte reste rattaché, détachez-le depuis l'administration s'il n'est plus responsable",
        )
        .and_then(|r| {
            r.split_once(" n'est plus dans le fichier comme responsable de ")
                .or_else(|| r.split_once(" n'est plus dans le fichier comme responsable d'"))
        })
    {
        return Some(format!(
            "{who} is no longer in the file as a guardian of {child}; their account stays attached: detach it in the back office if they are no longer a guardian"
        ));
    }
    if let Some(error) = french.strip_prefix("ligne illisible (") {
        return Some(format!("unreadable row ({error}"));
    }
    if let Some(error) = french.strip_prefix("en-tête illisible (") {
        return Some(format!("unreadable header ({error}"));
    }
    if let Some((number, row)) = french
        .strip_prefix("l'identifiant d'élève « ")
        .and_then(|r| r.split_once(" » figure déjà ligne "))
    {
        return Some(format!(
            "the student number “{number}” already appears on row {row}"
        ));
    }
    if let Some(header) = french
        .strip_prefix("la colonne « ")
        .and_then(|r| r.strip_suffix(" » apparaît deux fois"))
    {
        return Some(format!("the column “{header}” appears twice"));
    }
    if let Some((first, second)) = french
        .strip_prefix("les colonnes « ")
        .and_then(|r| r.strip_suffix(" » désignent la même donnée ; gardez-en une"))
        .and_then(|r| r.split_once(" » et « "))
    {
        return Some(format!(
            "the columns “{first}” and “{second}” hold the same data; keep one"
        ));
    }
    if let Some(columns) = french.strip_prefix("colonnes manquantes : ") {
        // « student_id (identifiant de l'élève), family_name (nom) »
        let columns = columns
            .split(", ")
            .map(|column| match column.split_once(" (") {
                Some((name, hint)) => {
                    let hint = hint.strip_suffix(')')?;
                    Some(format!("{name} ({})", exact(hint)?))
                }
                None => Some(column.to_owned()),
            })
            .collect::<Option<Vec<_>>>()?
            .join(", ");
        return Some(format!("missing columns: {columns}"));
    }
    if let Some((cells, rest)) = french
        .strip_prefix("cette ligne a ")
        .and_then(|r| r.split_once(" cellules et l'en-tête "))
        && let Some((columns, separator)) =
            rest.split_once(" colonnes : une cellule contient sans doute le séparateur « ")
        && let Some(separator) = separator
            .strip_suffix(" » sans guillemets, et les suivantes sont décalées ; corrigez la ligne")
    {
        return Some(format!(
            "this row has {cells} cells and the header {columns} columns: a cell probably holds the separator “{separator}” without quotes, and the cells after it are shifted; correct the row"
        ));
    }
    if let Some((cells, rest)) = french
        .strip_prefix("cette ligne n'a que ")
        .and_then(|r| r.split_once(" et l'en-tête "))
        && let Some((columns, missing)) = rest.split_once(" colonnes : il lui manque ")
        && let Some(missing) = missing.strip_suffix(" ; complétez-la")
    {
        let cells = match cells.strip_suffix(" cellule") {
            Some(one) => format!("{one} cell"),
            None => format!("{} cells", cells.strip_suffix(" cellules")?),
        };
        return Some(format!(
            "this row has only {cells} and the header {columns} columns: it lacks {}; complete it",
            quoted(missing)
        ));
    }
    if let Some(header) = french.strip_prefix("la colonne « ").and_then(|r| {
        r.strip_suffix(
            " » n'est pas lue : elle ne dit pas de quel responsable légal elle est ; ajoutez « responsable 1 » ou « responsable 2 » à son nom pour qu'elle le soit",
        )
    }) {
        return Some(format!(
            "the column “{header}” is not read: it does not say which legal guardian it belongs to; add “responsable 1” or “responsable 2” to its name to have it read"
        ));
    }
    if let Some((number, rest)) = french
        .strip_prefix("le n° élève ")
        .and_then(|r| r.split_once(" est celui de "))
        && let Some(who) = rest.strip_suffix(
            "), qui n'a ni ce nom ni cette date de naissance : même numéro, autre élève ? Vérifiez le fichier",
        )
    {
        let who = match who.split_once(" (né(e) le ") {
            Some((name, date)) => format!("{name} (born {date})"),
            None => who.replacen(" (", " (born ", 1),
        };
        return Some(format!(
            "student number {number} belongs to {who}, who has neither this name nor this birth date: same number, another student? Check the file"
        ));
    }
    if let Some((who, rest)) = french.split_once(" (responsable ")
        && let Some((rank, rest)) = rest.split_once(" de ")
        && let Some(child) =
            rest.strip_suffix(") a un compte fermé par l'établissement ; il n'est pas recréé")
    {
        return Some(format!(
            "{who} (guardian {rank} of {child}) has an account the school closed; it is not created again"
        ));
    }
    if let Some((who, new)) = french
        .strip_prefix("l'adresse mail de ")
        .and_then(|r| r.strip_suffix(" dans le fichier) : son compte est activé, l'adresse est la sienne ; le parent la change dans « Mon compte »"))
        .and_then(|r| r.split_once(" n'est pas modifiée ("))
    {
        return Some(format!(
            "the email address of {who} is not changed ({new} in the file): their account is activated, the address is theirs; the parent changes it in “My account”"
        ));
    }
    if let Some(who) = french.strip_prefix("le téléphone de ").and_then(|r| {
        r.strip_suffix(
            " n'est pas modifié : ce parent a des enfants dans un autre établissement ; adressez-vous au rectorat",
        )
    }) {
        return Some(format!(
            "the phone of {who} is not changed: this parent has children in another school; ask the academy (rectorat)"
        ));
    }
    None
}

/// « « Né(e) le », « Classe » » → ““Né(e) le”, “Classe””: the file's own
/// headers, in English quotes.
fn quoted(french: &str) -> String {
    french.replace("« ", "“").replace(" »", "”")
}

/// « 40 secondes » → “40 seconds” (see `throttle::french_wait`).
fn english_wait(french: &str) -> Option<String> {
    let (n, unit) = french.split_once(' ')?;
    let unit = match unit {
        "seconde" => "second",
        "secondes" => "seconds",
        "minute" => "minute",
        "minutes" => "minutes",
        "heures" => "hours",
        _ => return None,
    };
    Some(format!("{n} {unit}"))
}

fn exact(french: &str) -> Option<&'static str> {
    Some(match french {
        // Layout
        "services en ligne des établissements scolaires" => "online services of schools",
        "Se déconnecter" => "Sign out",
        "Redirection" => "Redirecting",
        "Votre navigateur n'exécute pas JavaScript : cliquez pour continuer." => {
            "Your browser does not run JavaScript: click to continue."
        }
        "Continuer" => "Continue",
        " :" => ":",
        " ?" => "?",
        // Login
        "Connexion" => "Sign in",
        "Première connexion" => "First sign-in",
        "Saisissez l'identifiant et le mot de passe provisoire de votre courrier de notification." => {
            "Enter the username and the temporary password from your notification letter."
        }
        "Connectez-vous pour accéder à" => "Sign in to reach",
        "Vous êtes connecté(e) en tant que" => "You are signed in as",
        "Continuer avec ce compte" => "Continue with this account",
        "Ou connectez-vous avec un autre compte" => "Or sign in with another account",
        "Votre identifiant" => "Your username",
        "Mot de passe provisoire (sur votre courrier)" => "Temporary password (on your letter)",
        "Votre mot de passe" => "Your password",
        "Valider" => "Submit",
        "identifiant oublié ?" => "forgotten username?",
        "mot de passe oublié ?" => "forgotten password?",
        "Identifiant ou mot de passe incorrect." => "Incorrect username or password.",
        "Ce courrier de notification a dépassé son délai d'activation : il ne permet plus d'activer le compte. Demandez un nouveau courrier à l'établissement." => {
            "This notification letter is past its activation deadline: it can no longer activate the account. Ask the school for a new letter."
        }
        "Ce compte a été regroupé avec un autre compte, auquel ses enfants sont désormais rattachés : connectez-vous avec l'identifiant de cet autre compte. Si vous ne le connaissez pas, contactez votre établissement." => {
            "This account was grouped with another account, to which its children now belong: sign in with that other account's username. If you do not know it, contact your school."
        }
        "Ce compte a été fermé : il ne permet plus de se connecter. Pour toute question, contactez votre établissement." => {
            "This account is closed: it can no longer sign in. For any question, contact your school."
        }
        "Demande de connexion expirée" => "Sign-in request expired",
        "Votre demande de connexion a expiré. Revenez sur le site de l'application et cliquez à nouveau sur « se connecter »." => {
            "Your sign-in request has expired. Go back to the application's site and click “sign in” again."
        }
        // Field names
        "identifiant" => "username",
        "mot de passe" => "password",
        "nouveau mot de passe" => "new password",
        "mot de passe actuel" => "current password",
        "confirmation du mot de passe" => "password confirmation",
        "adresse mail" => "email address",
        "date de naissance" => "birth date",
        "paramètre" => "parameter",
        "classe" => "class",
        "nom" => "surname",
        "prénom" => "first name",
        "nom du responsable 1" => "surname of guardian 1",
        "prénom du responsable 1" => "first name of guardian 1",
        "nom du responsable 2" => "surname of guardian 2",
        "prénom du responsable 2" => "first name of guardian 2",
        "adresse mail du responsable 1" => "email address of guardian 1",
        "adresse mail du responsable 2" => "email address of guardian 2",
        "téléphone du responsable 1" => "phone of guardian 1",
        "téléphone du responsable 2" => "phone of guardian 2",
        "identifiant de l'élève" => "student number",
        "rang" => "rank",
        "téléphone" => "telephone",
        // First connection
        "Vos informations : choisissez votre mot de passe et indiquez votre adresse mail." => {
            "Your details: choose your password and give your email address."
        }
        "Vos informations : choisissez votre mot de passe." => {
            "Your details: choose your password."
        }
        "Date de naissance de votre enfant" => "Your child's birth date",
        "Votre date de naissance" => "Your birth date",
        "Au format jj/mm/aaaa, par exemple 03/09/2012." => "As dd/mm/yyyy, for example 03/09/2012.",
        "Nouveau mot de passe" => "New password",
        "Confirmation du mot de passe" => "Confirm the password",
        "Votre adresse mail" => "Your email address",
        "Confirmation de votre adresse mail" => "Confirm your email address",
        "Obligatoire : vous y recevrez un lien sur lequel vous devrez cliquer pour accéder à vos services en ligne. Elle servira aussi à retrouver votre identifiant ou votre mot de passe." => {
            "Required: you will receive a link there that you must click to reach your online services. It will also let you recover your username or password."
        }
        "Facultative, mais indispensable pour retrouver seul votre identifiant ou votre mot de passe." => {
            "Optional, but needed to recover your username or password on your own."
        }
        "* Champ obligatoire" => "* Required field",
        "Session expirée" => "Session expired",
        "Cette étape a expiré. Reconnectez-vous avec votre identifiant et votre mot de passe." => {
            "This step has expired. Sign in again with your username and password."
        }
        "La date de naissance ne correspond pas à celle connue de l'établissement." => {
            "The birth date does not match the one the school knows."
        }
        "Courrier expiré" => "Letter expired",
        "Ce courrier de notification a dépassé son délai d'activation : demandez-en un nouveau à l'établissement." => {
            "This notification letter is past its activation deadline: ask the school for a new one."
        }
        "La confirmation du mot de passe ne correspond pas." => {
            "The password confirmation does not match."
        }
        "L'adresse mail est obligatoire pour les responsables." => {
            "An email address is required for parents and guardians."
        }
        "La confirmation de l'adresse mail ne correspond pas." => {
            "The email address confirmation does not match."
        }
        "C'est déjà l'adresse mail de votre compte." => {
            "This is already your account's email address."
        }
        "votre numéro de téléphone portable" => "your mobile phone number",
        // Back office
        "Import en cours : les lignes du fichier sont enregistrées. Cette page affichera le compte rendu dès la fin de l'import." => {
            "Import under way: the rows of the file are being saved. This page will show the report as soon as the import ends."
        }
        "Votre navigateur n'exécute pas JavaScript :" => "Your browser does not run JavaScript:",
        "voir où en est l'import" => "see how far the import has got",
        "Lignes du fichier :" => "Rows of the file:",
        "Import en cours" => "Import under way",
        "L'import n'a pas pu être enregistré ; rien n'a été modifié. Réessayez, ou signalez-le à l'académie." => {
            "The import could not be saved; nothing was changed. Try again, or tell the academy."
        }
        "Aucun courrier" => "No letter",
        "Trop de courriers pour un seul fichier" => "Too many letters for one file",
        "Aucun courrier : l'établissement n'a aucun élève (fichier des élèves pas encore importé, ou courriers expirés sans avoir servi). Importez le fichier des élèves." => {
            "No letter: the school has no student (the students' file was not imported yet, or the letters expired unused). Import the students' file."
        }
        "Aucun courrier à imprimer : aucun de ces comptes n'attend son activation (ils sont activés, ou fermés à l'expiration de leur courrier ou par l'établissement)." => {
            "No letter to print: none of these accounts is waiting for its activation (they are activated, or closed when their letter expired or by the school)."
        }
        "Aucun courrier à imprimer : ces comptes sont tous activés." => {
            "No letter to print: these accounts are all activated."
        }
        "Aucun courrier : aucun élève de l'établissement n'est dans cette classe." => {
            "No letter: no student of the school is in this class."
        }
        "Aucun courrier : aucun compte de l'établissement n'a cet identifiant." => {
            "No letter: no account of the school has this username."
        }
        "Trop de tentatives : patientez avant de réessayer." => {
            "Too many attempts: wait before trying again."
        }
        "Votre connexion date de plus de 10 minutes : confirmez cette action avec votre mot de passe." => {
            "You signed in more than 10 minutes ago: confirm this action with your password."
        }
        "Vous êtes connecté depuis plus de 10 minutes : chaque action demande votre mot de passe." => {
            "You signed in more than 10 minutes ago: each action asks for your password."
        }
        "Import des élèves" => "Student import",
        "Le fichier n'a pas été importé : corrigez ces lignes dans le tableur, puis déposez-le à nouveau." => {
            "The file was not imported: correct these rows in the spreadsheet, then upload it again."
        }
        "Le fichier n'a pas été importé : corrigez-le dans le tableur, puis déposez-le à nouveau." => {
            "The file was not imported: correct it in the spreadsheet, then upload it again."
        }
        "un guillemet (\") ouvert dans cette ligne n'est jamais refermé : la suite du fichier serait lue comme une seule cellule. Retirez ce guillemet ou refermez-le" => {
            "a quote (\") opened in this row is never closed: the rest of the file would be read as a single cell. Remove this quote or close it"
        }
        "ce fichier est un classeur (Excel .xlsx ou .xls, LibreOffice .ods), pas un fichier CSV : ouvrez-le dans le tableur, puis « Enregistrer sous » au format CSV (séparateur : point-virgule) et déposez ce fichier-là" => {
            "this file is a workbook (Excel .xlsx or .xls, LibreOffice .ods), not a CSV file: open it in the spreadsheet, then “Save as” CSV (separator: semicolon) and upload that file"
        }
        "ce fichier n'est pas un fichier texte : exportez la liste des élèves depuis le tableur ou le logiciel de scolarité au format CSV" => {
            "this file is not a text file: export the list of students from the spreadsheet or the school software as CSV"
        }
        "ce fichier est un PDF, pas un fichier CSV : exportez la liste des élèves depuis le tableur ou le logiciel de scolarité au format CSV" => {
            "this file is a PDF, not a CSV file: export the list of students from the spreadsheet or the school software as CSV"
        }
        "le fichier est vide : exportez à nouveau la liste des élèves depuis le tableur ou le logiciel de scolarité" => {
            "the file is empty: export the list of students again from the spreadsheet or the school software"
        }
        "le tableur l'a écrit en notation scientifique : mettez la colonne au format Texte, puis exportez à nouveau" => {
            "the spreadsheet wrote it in scientific notation: format the column as Text, then export again"
        }
        "seulement des lettres, espaces, traits d'union et apostrophes" => {
            "letters, spaces, hyphens and apostrophes only"
        }
        "ce jour n'existe pas" => "there is no such day",
        "une lettre ou un chiffre d'abord, puis lettres, chiffres, espaces et - _ . / ' °" => {
            "a letter or a digit first, then letters, digits, spaces and - _ . / ' °"
        }
        "écrivez la date jj/mm/aaaa" => "write the date dd/mm/yyyy",
        "aucune ligne d'élève sous l'en-tête : vérifiez que le tableur a exporté la bonne feuille, en entier" => {
            "no student row under the header: check that the spreadsheet exported the right sheet, in full"
        }
        "un guillemet (\") ouvert dans cette ligne n'est refermé que plusieurs lignes plus loin : les lignes entre les deux seraient lues comme une seule cellule. Retirez ce guillemet ou refermez-le" => {
            "a quote (\") opened in this row is only closed several rows further down: the rows in between would be read as a single cell. Remove this quote or close it"
        }
        "la date de naissance de cette ligne est écrite mois/jour/année : enregistrez le fichier avec les dates au format jj/mm/aaaa (réglages régionaux français), sinon le jour et le mois des autres dates seraient inversés" => {
            "the birth date of this row is written month/day/year: save the file with dates as dd/mm/yyyy (French regional settings), or the day and month of the other dates would be swapped"
        }
        "Ou importer les autres lignes" => "Or import the other rows",
        "Les lignes refusées ci-dessus sont laissées de côté, les autres sont importées. Une fois ces lignes corrigées, déposez à nouveau le fichier : ce qui est déjà importé ne sera pas créé deux fois." => {
            "The rows refused above are left out, the others are imported. Once those rows are corrected, upload the file again: what is already imported will not be created twice."
        }
        "Importer les autres lignes" => "Import the other rows",
        "Lignes laissées de côté" => "Rows left out",
        "Corrigez-les dans le tableur, puis déposez à nouveau le fichier." => {
            "Correct them in the spreadsheet, then upload the file again."
        }
        "Nouveaux" => "New",
        "Modifiés" => "Changed",
        "Inchangés" => "Unchanged",
        "Le fichier est importé." => "The file is imported.",
        "Aperçu" => "Preview",
        "Rien n'est encore enregistré. Vérifiez les changements, puis appliquez-les." => {
            "Nothing is saved yet. Check the changes, then apply them."
        }
        "Appliquer" => "Apply",
        "Le fichier des élèves exporté du tableur (CSV, séparé par des points-virgules ou des virgules) : une ligne par élève, avec ses responsables." => {
            "The students' file exported from the spreadsheet (CSV, separated by semicolons or commas): one row per student, with their parents."
        }
        "Fichier des élèves" => "Students' file",
        "Voir l'aperçu" => "See the preview",
        "Importer le fichier des élèves" => "Import the students' file",
        "Choisissez le fichier des élèves (CSV)." => "Choose the students' file (CSV).",
        "Choisissez un mot de passe différent du mot de passe provisoire du courrier." => {
            "Choose a password different from the letter's temporary password."
        }
        "Cette adresse ne s'ouvre pas directement : revenez à la page précédente, ou à l'accueil." => {
            "This address cannot be opened directly: go back to the previous page, or to the home page."
        }
        "Le fichier dépasse 8 Mo. Enregistrez-le en CSV, sans autres colonnes que celles du modèle, ou importez-le en plusieurs fois (par niveau)." => {
            "The file is over 8 MB. Save it as CSV, with no columns beyond the template's, or import it in several parts (by year group)."
        }
        "Cet aperçu a expiré ou a déjà été appliqué : déposez le fichier à nouveau." => {
            "This preview has expired or was already applied: upload the file again."
        }
        "Imprimer son courrier de notification (PDF)" => "Print its notification letter (PDF)",
        "Actions" => "Actions",
        "Réinitialiser le compte" => "Reset the account",
        "Un nouveau mot de passe provisoire et un nouveau courrier ; le compte repasse par la première connexion ; toutes ses connexions sont fermées." => {
            "A new temporary password and a new letter; the account goes through its first sign-in again; all its sessions are closed."
        }
        "Fermer le compte" => "Close the account",
        "Le compte ne pourra plus se connecter ; toutes ses connexions sont fermées." => {
            "The account will no longer sign in; all its sessions are closed."
        }
        "Je confirme" => "I confirm",
        "Aller au contenu" => "Skip to content",
        "Corriger l'adresse mail" => "Correct the email address",
        "L'adresse ne compte qu'une fois confirmée par le lien envoyé." => {
            "The address only counts once confirmed through the link sent."
        }
        "Détacher" => "Detach",
        "Courriers des comptes non activés :" => "Letters of the accounts not activated:",
        "courriers" => "letters",
        "Action non effectuée" => "Action not carried out",
        "Retour au compte" => "Back to the account",
        "Cochez la case de confirmation pour effectuer cette action." => {
            "Tick the confirmation box to carry out this action."
        }
        "L'adresse mail n'est pas valide." => "The email address is not valid.",
        "La date de naissance n'est pas valide : ce jour n'existe pas." => {
            "The birth date is not valid: there is no such day."
        }
        "La date de naissance n'est pas valide : écrivez-la jj/mm/aaaa, par exemple 03/09/2012." => {
            "The birth date is not valid: write it dd/mm/yyyy, for example 03/09/2012."
        }
        "Action inconnue." => "Unknown action.",
        "Le compte est réinitialisé : un nouveau courrier de notification est prêt à être imprimé." => {
            "The account is reset: a new notification letter is ready to print."
        }
        "Le compte est fermé." => "The account is closed.",
        "L'adresse est corrigée, mais le mail de confirmation n'a pas pu y être envoyé pour le moment : la personne pourra le redemander en se connectant." => {
            "The address is corrected, but the confirmation email could not be sent to it for now: the person can ask for it again by signing in."
        }
        "L'adresse est corrigée : un mail de confirmation y est envoyé ; elle vaut pour le compte dès que la personne a ouvert son lien." => {
            "The address is corrected: a confirmation email is sent to it; it counts for the account once the person has opened its link."
        }
        "L'adresse est corrigée ; un mail de confirmation y est envoyé quand le compte est activé." => {
            "The address is corrected; a confirmation email is sent to it when the account is activated."
        }
        "Trop de mails de confirmation ont été envoyés à ce compte dans l'heure : réessayez plus tard." => {
            "Too many confirmation emails were sent to this account within the hour: try again later."
        }
        "Ce parent a aussi des enfants dans un autre établissement : seule l'académie peut fermer ou réinitialiser son compte, ou corriger son adresse." => {
            "This parent also has children at another school: only the academy can close or reset the account, or correct its address."
        }
        "L'import a été interrompu par un redémarrage du service avant son compte rendu. Déposez le fichier à nouveau : ce qui a déjà été importé ne sera pas créé deux fois." => {
            "The import was interrupted by a restart of the service before its report. Upload the file again: what was already imported will not be created twice."
        }
        "Cette action n'est pas possible sur ce compte." => {
            "This action is not possible on this account."
        }
        "Action effectuée" => "Action carried out",
        "Espace établissement" => "School area",
        "Vous administrez tous les établissements de l'académie." => {
            "You administer every school of the academy."
        }
        "Aucun établissement." => "No school.",
        "actifs" => "active",
        "en attente de confirmation" => "awaiting confirmation",
        "non activés" => "not activated",
        "Chaque barre se lit de gauche à droite : d'abord les non activés (en rouge), puis ceux en attente de confirmation (en jaune), enfin les actifs (en vert)." => {
            "Each bar reads from left to right: first those not activated (in red), then those awaiting confirmation (in yellow), last the active ones (in green)."
        }
        "Classe" => "Class",
        "Non activés" => "Not activated",
        "En attente" => "Awaiting",
        "Actifs" => "Active",
        "Total" => "Total",
        "Aucun compte." => "No account.",
        "Comptes par classe" => "Accounts by class",
        "Activation des comptes des élèves" => "Activation of the students' accounts",
        "Élèves" => "Students",
        "Activation des comptes des responsables" => "Activation of the parents' accounts",
        "Responsables" => "Parents and guardians",
        "Retour aux établissements" => "Back to the schools",
        "Comptes" => "Accounts",
        "Toutes" => "All",
        "État" => "State",
        "Tous" => "All",
        "non activé" => "not activated",
        "actif" => "active",
        "fermé" => "closed",
        "Nom ou identifiant" => "Name or username",
        "Rechercher" => "Search",
        "Élèves et responsables" => "Students and parents",
        "Type" => "Kind",
        "élève" => "student",
        "responsable" => "parent or guardian",
        "Page précédente" => "Previous page",
        "Page suivante" => "Next page",
        "Retour à l'établissement" => "Back to the school",
        "Imprimer les courriers" => "Print the letters",
        "Imprimer le courrier" => "Print the letter",
        "Les nombres de chaque classe sont dans le tableau ci-dessous." => {
            "Each class's numbers are in the table below."
        }
        "Imprimer" => "Print",
        "Télécharger" => "Download",
        "Mot de passe incorrect." => "Incorrect password.",
        "Les courriers de notification contiennent les mots de passe provisoires des comptes." => {
            "The notification letters hold the accounts' provisional passwords. They are written in French, as the families' letters are."
        }
        "Courriers à imprimer :" => "Letters to print:",
        "Adresse imprimée sur les courriers" => "Address printed on the letters",
        "Contact" => "Contact",
        "Adresse de connexion indiquée aux familles" => "Sign-in address given to families",
        "le portail de l'établissement n'est pas renseigné" => "the school's portal is not set",
        "Pour les modifier, adressez-vous au rectorat." => "To change them, contact the rectorate.",
        "Modifier les coordonnées" => "Change the school's details",
        "Les coordonnées de l'établissement sont modifiées par le rectorat : adressez-vous à lui." => {
            "The school's details are changed by the rectorate: contact them."
        }
        "Les coordonnées de l'établissement sont enregistrées." => {
            "The school's details are saved."
        }
        "Coordonnées de l'établissement" => "School details",
        "Elles sont imprimées sur les courriers de notification des familles. Un champ laissé vide n'est pas imprimé." => {
            "They are printed on the families' notification letters. A field left empty is not printed."
        }
        "Nom de l'établissement" => "Name of the school",
        "Adresse" => "Address",
        "Par exemple : 12 rue Pasteur" => "For example: 12 rue Pasteur",
        "Code postal et ville" => "Postcode and town",
        "Par exemple : 59000 Lille" => "For example: 59000 Lille",
        "Contact des familles" => "Contact for families",
        "Le secrétariat : adresse mail, téléphone." => {
            "The school office: email address, phone."
        }
        "Adresse du portail de l'établissement (ENT)" => "Address of the school's portal (ENT)",
        "Les courriers y envoient les familles pour se connecter (https://…). Vide : la page de connexion de Clef." => {
            "The letters send families there to sign in (https://…). Empty: Clef's sign-in page."
        }
        "Vous êtes connecté depuis plus de 10 minutes : confirmez avec votre mot de passe." => {
            "You signed in more than 10 minutes ago: confirm with your password."
        }
        "Enregistrer" => "Save",
        "adresse" => "address",
        "ville" => "town",
        "contact" => "contact",
        "adresse du portail" => "portal address",
        "nom de l'établissement" => "name of the school",
        "Un courrier imprimé pour la première fois est daté de ce jour : ses" => {
            "A letter printed for the first time is dated today: its"
        }
        "mois pour activer le compte commencent aujourd'hui. Imprimé à nouveau, il garde sa date." => {
            "months to activate the account start today. Printed again, it keeps its date."
        }
        "Sélection :" => "Selection:",
        "le compte" => "the account",
        "la classe" => "the class",
        "tout l'établissement" => "the whole school",
        "un fichier CSV pour un publipostage" => "a CSV file for a mail merge",
        "un fichier PDF, une page par courrier" => "a PDF file, one page per letter",
        "Votre connexion date de plus de 10 minutes : confirmez avec votre mot de passe." => {
            "You signed in more than 10 minutes ago: confirm with your password."
        }
        "personnel" => "staff",
        "Journal du compte" => "Account log",
        "Les événements de sécurité du compte, du plus récent au plus ancien." => {
            "The account's security events, newest first."
        }
        "Date" => "Date",
        "Événement" => "Event",
        "Résultat" => "Outcome",
        "par l'établissement" => "by the school",
        "Aucun événement." => "No event.",
        "Retour aux comptes" => "Back to the accounts",
        "Accès refusé" => "Access denied",
        "Cette page est réservée au personnel de l'établissement concerné." => {
            "This page is for the staff of the school concerned only."
        }
        // Grouping
        "Accéder aux services de l'établissement" => "Go to the school's services",
        "Enfants" => "Children",
        "Enfants rattachés au compte" => "Children attached to the account",
        "Responsable légal 1" => "Legal guardian 1",
        "Responsable légal 2" => "Legal guardian 2",
        "Aucun enfant n'est rattaché à ce compte." => "No child is attached to this account.",
        "Vous avez reçu un courrier de notification par enfant, ou l'autre responsable a son propre compte ? Regroupez-les ici : tous les enfants seront rattachés à ce compte, et l'autre compte sera fermé." => {
            "Did you receive one notification letter per child, or does the other guardian have their own account? Group them here: every child will be attached to this account, and the other account will be closed."
        }
        "Regrouper des comptes" => "Group accounts",
        "Compte à regrouper avec" => "Account to group with",
        "saisissez ici l'identifiant et le mot de passe de l'autre compte : ceux d'un autre courrier de notification, ou ceux d'un autre compte de responsable déjà activé." => {
            "enter the username and password of the other account here: those of another notification letter, or those of another parent or guardian account already activated."
        }
        "Identifiant du compte" => "Username of the account",
        "Mot de passe du compte" => "Password of the account",
        "Pour un courrier de notification, son mot de passe provisoire." => {
            "For a notification letter, its temporary password."
        }
        "Date de naissance de l'enfant" => "The child's birth date",
        "Seulement pour un compte pas encore activé (courrier de notification) : la date de naissance de l'enfant nommé sur le courrier, au format jj/mm/aaaa." => {
            "Only for an account not activated yet (notification letter): the birth date of the child named on the letter, as dd/mm/yyyy."
        }
        "Suivant" => "Next",
        "Regrouper des comptes — confirmation" => "Group accounts — confirmation",
        "Élèves rattachés à votre compte :" => "Students attached to your account:",
        "Élèves rattachés au compte que vous souhaitez regrouper :" => {
            "Students attached to the account you want to group:"
        }
        "aucun" => "none",
        "En validant cette opération, vous confirmez la fermeture du compte" => {
            "By confirming this operation, you confirm the closing of the account"
        }
        "et le rattachement de l'ensemble des élèves ci-dessus au compte" => {
            "and the attachment of all the students above to the account"
        }
        "Ce compte n'a pas encore été activé : retapez le mot de passe provisoire de son courrier de notification et saisissez aussi la date de naissance de l'enfant qui y est nommé." => {
            "This account has not been activated yet: type the temporary password of its notification letter again and also enter the birth date of the child named on it."
        }
        "Le champ « mot de passe du compte » est obligatoire." => {
            "The “account password” field is required."
        }
        "Le champ « identifiant du compte » est obligatoire." => {
            "The “account username” field is required."
        }
        "Ce courrier de notification a dépassé son délai d'activation : il ne permet plus de regrouper le compte. Demandez un nouveau courrier à l'établissement." => {
            "This notification letter is past its activation deadline: it can no longer group the account. Ask the school for a new letter."
        }
        "Seuls les comptes de responsables peuvent être regroupés : ce compte est celui d'un élève ou d'un personnel." => {
            "Only parent or guardian accounts can be grouped: this account belongs to a student or a staff member."
        }
        "C'est le compte avec lequel vous êtes connecté : saisissez l'identifiant de l'autre compte." => {
            "This is the account you are signed in with: enter the username of the other account."
        }
        "Ce compte a déjà été regroupé ou fermé : il ne peut plus l'être." => {
            "This account has already been grouped or closed: it cannot be any more."
        }
        "Seul un compte de responsable activé peut regrouper des comptes." => {
            "Only an activated parent or guardian account can group accounts."
        }
        "Cette demande de regroupement a expiré ou a déjà été validée : recommencez si besoin." => {
            "This grouping request has expired or was already confirmed: start again if needed."
        }
        "Seuls les comptes de responsables peuvent regrouper des comptes." => {
            "Only parent or guardian accounts can group accounts."
        }
        "Confirmation de regroupement de comptes" => "Account grouping confirmed",
        "L'opération de regroupement des comptes a été effectuée avec succès. Seul le compte avec lequel vous êtes connecté reste disponible." => {
            "The accounts have been grouped successfully. Only the account you are signed in with remains available."
        }
        "Voir les enfants rattachés à votre compte" => {
            "See the children attached to your account"
        }
        // Recovery
        "Identifiant oublié" => "Forgotten username",
        "Mot de passe oublié" => "Forgotten password",
        "Mot de passe oublié : mode d'envoi" => "Forgotten password: how to reset it",
        "Mot de passe oublié : code reçu par SMS" => {
            "Forgotten password: code received by text message"
        }
        "Mot de passe oublié : demande enregistrée" => "Forgotten password: request recorded",
        "Identifiant oublié : demande enregistrée" => "Forgotten username: request recorded",
        "Votre demande a été prise en compte. Si cette adresse est celle, confirmée, d'un compte, un mail rappelant votre identifiant vient d'y être envoyé." => {
            "Your request has been received. If this is the confirmed address of an account, an email reminding you of your username has just been sent to it."
        }
        "Retour à la connexion" => "Back to sign-in",
        "Saisissez l'adresse mail que vous avez confirmée pour votre compte : nous y enverrons votre identifiant." => {
            "Enter the email address you confirmed for your account: we will send your username there."
        }
        "Le code reçu par SMS compte 6 chiffres." => {
            "The code received by text message has 6 digits."
        }
        "Vous ne recevez rien ?" => "Didn't receive anything?",
        "Vérifiez que votre téléphone capte le réseau et qu'il ne bloque pas les SMS d'expéditeurs inconnus ; le SMS peut mettre quelques minutes à arriver." => {
            "Check that your phone has reception and does not block text messages from unknown senders; the text message may take a few minutes to arrive."
        }
        "Vérifiez l'identifiant saisi : il figure sur le courrier de notification. Un identifiant mal saisi ne reçoit aucun SMS." => {
            "Check the username you typed: it is on the notification letter. A mistyped username receives no text message."
        }
        "Si ce numéro n'est plus le vôtre, contactez l'établissement qui vous a remis le courrier de notification." => {
            "If this number is no longer yours, contact the school that gave you the notification letter."
        }
        "Vérifiez l'identifiant ou l'adresse saisis : un identifiant ou une adresse mal saisis ne reçoivent aucun message." => {
            "Check the username or address you typed: a mistyped username or address receives no message."
        }
        "Identifiant saisi :" => "Username typed:",
        "Modifier" => "Change",
        "se terminant par" => "ending in",
        "Vérifiez vos dossiers « courriers indésirables » ou « spam »." => {
            "Check your “junk mail” or “spam” folders."
        }
        "Seule une adresse mail confirmée reçoit ces messages : si vous n'avez jamais cliqué sur le lien de confirmation reçu à la création du compte, ou si vous n'avez pas encore activé votre compte, aucun message ne peut vous être envoyé." => {
            "Only a confirmed email address receives these messages: if you never clicked the confirmation link received when the account was created, or have not activated your account yet, no message can be sent to you."
        }
        "Élève sans adresse mail confirmée : demandez à vos parents ou à votre établissement." => {
            "Students without a confirmed email address: ask your parents or your school."
        }
        "Sinon, contactez l'établissement qui vous a remis le courrier de notification." => {
            "Otherwise, contact the school that gave you the notification letter."
        }
        "Veuillez saisir les informations suivantes :" => "Please enter the following information:",
        "Choisissez comment recevoir de quoi changer votre mot de passe :" => {
            "Choose how to receive what you need to change your password:"
        }
        "Par mail, à l'adresse confirmée de votre compte" => {
            "By email, at your account's confirmed address"
        }
        "Par SMS, au numéro" => "By text message, to the number",
        "Utilisez l'adresse mail ou le numéro de téléphone portable communiqué à l'établissement." => {
            "Use the email address or the mobile number given to the school."
        }
        "Votre demande de réinitialisation de mot de passe a été prise en compte." => {
            "Your password reset request has been received."
        }
        "La référence de cette demande est le n°" => "Your request's reference number is",
        "Veuillez noter ce numéro." => "Please note this number.",
        "Un mail détaillant la marche à suivre pour finaliser cette modification va vous être envoyé." => {
            "An email explaining how to complete this change is on its way to you."
        }
        "Un SMS contenant un code à 6 chiffres vous est envoyé. Il est valable 10 minutes." => {
            "A text message with a 6-digit code is on its way to you. It is valid for 10 minutes."
        }
        "Code reçu par SMS" => "Code received by text message",
        "6 chiffres ; 3 essais au plus." => "6 digits; 3 tries at most.",
        "Le SMS à utiliser porte le n° de cette demande :" => {
            "The text message to use bears this request's number:"
        }
        "Demander un nouveau code" => "Ask for a new code",
        "Modifiez votre mot de passe" => "Change your password",
        "Veuillez saisir votre identifiant ainsi que votre nouveau mot de passe." => {
            "Please enter your username and your new password."
        }
        "Votre nouveau mot de passe" => "Your new password",
        "Cet identifiant n'est pas reconnu. Veuillez réessayer." => {
            "This username is not recognised. Please try again."
        }
        "Les informations associées à votre compte ne permettent pas de répondre à votre demande. Merci de contacter votre établissement." => {
            "The details of your account do not allow us to answer your request. Please contact your school."
        }
        "Trop de demandes" => "Too many requests",
        "Faire une nouvelle demande" => "Make a new request",
        "Retour à l'accueil" => "Back to the home page",
        "Choisissez l'envoi par mail ou par SMS." => "Choose email or text message.",
        "Ce code n'est pas le bon. Il vous reste 1 essai." => {
            "This code is not the right one. You have 1 try left."
        }
        "Ce code n'est pas le bon. Il vous reste 2 essais." => {
            "This code is not the right one. You have 2 tries left."
        }
        "Code refusé" => "Code refused",
        "Trois codes erronés ont été saisis : ce code ne fonctionne plus. Faites une nouvelle demande pour en recevoir un autre." => {
            "Three wrong codes were entered: this code no longer works. Make a new request to receive another one."
        }
        "Code expiré" => "Code expired",
        "Ce code a expiré ou ne fonctionne plus (un autre code a servi, ou le mot de passe a changé). Faites une nouvelle demande." => {
            "This code has expired or no longer works (another code was used, or the password changed). Make a new request."
        }
        "Cette demande a déjà servi, ou une demande plus récente l'a remplacée : si votre mot de passe n'a pas été modifié, faites une nouvelle demande." => {
            "This request has already been used, or a more recent request replaced it: if your password was not changed, make a new request."
        }
        "Cette demande a expiré. Faites une nouvelle demande." => {
            "This request has expired. Make a new request."
        }
        "Ce lien a déjà servi, ou une demande plus récente l'a remplacé : utilisez le lien du dernier mail reçu, ou faites une nouvelle demande." => {
            "This link has already been used, or a more recent request replaced it: use the link in the latest email, or make a new request."
        }
        "Ce lien a expiré. Faites une nouvelle demande." => {
            "This link has expired. Make a new request."
        }
        "Mot de passe modifié" => "Password changed",
        "Activation du compte" => "Account activated",
        "Demande de mot de passe oublié" => "Forgotten password request",
        "Demande d'identifiant oublié" => "Forgotten username request",
        "Mot de passe réinitialisé" => "Password reset",
        "Regroupement de comptes" => "Accounts grouped",
        "Enfant détaché" => "Child detached",
        "Autorisation donnée à un service" => "Authorisation given to a service",
        "Autorisation retirée à un service" => "Authorisation withdrawn from a service",
        "Données personnelles effacées (compte fermé)" => {
            "Personal data erased (closed account)"
        }
        "Service enregistré" => "Service registered",
        "Service supprimé" => "Service deleted",
        "Rotation des clés" => "Key rotation",
        "Action de l'établissement" => "Action by the school",
        "Compte réinitialisé" => "Account reset",
        "Compte fermé" => "Account closed",
        "Adresse mail corrigée" => "Email address corrected",
        "Courrier imprimé" => "Letter printed",
        "Import du fichier des élèves" => "Import of the students' file",
        "Autres changements, non listés ici :" => "Other changes, not listed here:",
        "Délai dépassé" => "Request timed out",
        "La demande a mis trop de temps à arriver. Vérifiez votre connexion et réessayez." => {
            "The request took too long to arrive. Check your connection and try again."
        }
        "Demande trop volumineuse" => "Request too large",
        "Ce que vous avez envoyé est trop volumineux. Revenez à la page précédente et réessayez avec moins de données." => {
            "What you sent is too large. Go back to the previous page and try again with less data."
        }
        "Réussi" => "Succeeded",
        "Échoué" => "Failed",
        "Refusé" => "Refused",
        "Votre mot de passe a été modifié avec succès." => {
            "Your password has been changed successfully."
        }
        "Se connecter" => "Sign in",
        "Un responsable d'élèves de plusieurs classes compte dans chacune, et une fois au total." => {
            "A parent of students in several classes counts in each, and once in all."
        }
        "ce compte ne donnera plus accès à cet enfant ; un nouveau compte de responsable, avec son courrier de notification, est créé pour lui." => {
            "this account will no longer give access to this child; a new guardian account, with its notification letter, is made for the child."
        }
        "Courrier perdu, ou son délai passé : l'établissement vous en remet un nouveau." => {
            "Letter lost, or past its deadline: the school gives you a new one."
        }
        "Ajouter une adresse mail" => "Add an email address",
        "Avec une adresse mail, vous pourrez retrouver seul votre identifiant ou votre mot de passe. Elle comptera quand vous aurez cliqué sur le lien reçu." => {
            "With an email address, you can recover your username or your password on your own. It counts once you have clicked the link you receive."
        }
        "Mot de passe actuel (pour confirmer l'ajout de l'adresse)" => {
            "Current password (to confirm adding the address)"
        }
        "Confirmation de l'adresse" => "Address confirmation",
        "Ajouter l'adresse" => "Add the address",
        "Si ce numéro n'est pas le vôtre, vérifiez l'identifiant saisi, ou adressez-vous à l'établissement." => {
            "If this number is not yours, check the username you typed, or ask the school."
        }
        "Cet identifiant n'est pas celui du compte concerné par cette demande." => {
            "This username does not match the account this request was made for."
        }
        // Pending / unconfirmed / confirmation
        "Compte en attente de validation" => "Account waiting for validation",
        "Votre compte est enregistré, mais le mail de confirmation n'a pas pu être envoyé pour le moment. Dans quelques minutes, connectez-vous à nouveau avec votre identifiant et votre nouveau mot de passe pour le renvoyer ; si cela continue, signalez-le à l'établissement qui vous a remis le courrier." => {
            "Your account is saved, but the confirmation email could not be sent for now. In a few minutes, sign in again with your username and your new password to send it again; if this goes on, tell the school that gave you the letter."
        }
        "Le mail de confirmation n'a pas pu être envoyé pour le moment. Redemandez-le dans quelques minutes ; si cela continue, signalez-le à l'établissement qui vous a remis le courrier." => {
            "The confirmation email could not be sent for now. Ask for it again in a few minutes; if this goes on, tell the school that gave you the letter."
        }
        "Pour utiliser votre compte, ouvrez maintenant le mail que vous venez de recevoir" => {
            "To use your account, now open the email you have just received"
        }
        "à l'adresse" => "at",
        "et suivez les instructions." => "and follow its instructions.",
        "Le mail peut avoir été classé comme indésirable : vérifiez vos dossiers « courriers indésirables » ou « spam ». Si vous ne le recevez pas, connectez-vous à nouveau pour le renvoyer ou corriger l'adresse, ou signalez-le à l'établissement qui vous a remis le courrier." => {
            "The email may have been filed as junk: check your “junk mail” or “spam” folders. If you do not receive it, sign in again to resend it or correct the address, or tell the school that gave you the letter."
        }
        "Continuer vers l'application" => "Continue to the application",
        "Compte non confirmé" => "Account not confirmed",
        "n'est pas encore confirmée : tant qu'elle ne l'est pas, votre compte reste indisponible. Ouvrez le mail que nous vous avons envoyé et cliquez sur le lien qu'il contient." => {
            "is not confirmed yet: until it is, your account remains unavailable. Open the email we sent you and click the link in it."
        }
        "Vérifiez aussi vos dossiers « courriers indésirables » ou « spam »." => {
            "Also check your “junk mail” or “spam” folders."
        }
        "Renvoyer le mail de confirmation" => "Resend the confirmation email",
        "Corriger l'adresse" => "Correct the address",
        "La nouvelle adresse deviendra celle de votre compte." => {
            "The new address will become your account's."
        }
        "Nouvelle adresse mail" => "New email address",
        "Confirmation de la nouvelle adresse" => "Confirm the new address",
        "Un nouveau mail de confirmation vient d'être envoyé. Seul le lien de ce dernier mail fonctionne." => {
            "A new confirmation email has just been sent. Only the link in this latest email works."
        }
        "L'adresse a été corrigée et un mail de confirmation y a été envoyé." => {
            "The address has been corrected and a confirmation email has been sent to it."
        }
        "Confirmer votre adresse mail" => "Confirm your email address",
        "Cliquez sur le bouton pour confirmer l'adresse" => {
            "Click the button to confirm the address"
        }
        " de votre compte." => " of your account.",
        "Confirmer mon adresse" => "Confirm my address",
        "Lien invalide" => "Invalid link",
        "Adresse déjà confirmée" => "Address already confirmed",
        "Cette adresse mail est déjà confirmée : ce lien n'a plus rien à faire. Connectez-vous simplement avec votre identifiant et votre mot de passe." => {
            "This email address is already confirmed: this link has nothing left to do. Simply sign in with your username and password."
        }
        "Demande plus valable" => "Request no longer valid",
        "Ce lien n'est pas valide. Vérifiez que vous avez copié l'adresse complète du mail." => {
            "This link is not valid. Check that you copied the whole address from the email."
        }
        "Ce lien a déjà servi, ou ne vaut plus : un mail plus récent l'a remplacé, ou le mot de passe du compte a changé depuis (ce qui annule un changement d'adresse en attente). Utilisez le lien du dernier mail reçu. Si votre adresse est déjà confirmée, connectez-vous simplement." => {
            "This link has already been used, or no longer works: a more recent email replaced it, or the account's password has changed since (which cancels an address change waiting for confirmation). Use the link in the latest email you received. If your address is already confirmed, simply sign in."
        }
        "Ce lien a expiré. Connectez-vous pour recevoir un nouveau mail de confirmation." => {
            "This link has expired. Sign in to receive a new confirmation email."
        }
        "Gérer mon compte" => "Manage my account",
        "Création réussie" => "Account created",
        "Vous venez de créer votre compte, vous pouvez maintenant utiliser les différents services ouverts par l'établissement qui vous a remis le courrier de notification. Vous pouvez à tout moment mettre à jour les informations de votre compte dans « Mon compte »." => {
            "You have created your account: you can now use the services opened by the school that gave you the notification letter. You can update your account's details at any time in “My account”."
        }
        "Adresse mail confirmée" => "Email address confirmed",
        "Demande de changement d'adresse mail" => "Email address change requested",
        "Votre adresse mail est confirmée : c'est désormais celle de votre compte." => {
            "Your email address is confirmed: it is now your account's address."
        }
        // My account
        "Mon compte" => "My account",
        "Identifiant" => "Username",
        "Nom" => "Name",
        "Adresse mail" => "Email address",
        "validée" => "validated",
        "non validée" => "not validated",
        "aucune" => "none",
        "aucune avant celle-ci" => "none before this one",
        "Nouvelle adresse en attente de validation" => "New address waiting for validation",
        "Téléphone portable" => "Mobile phone",
        "Téléphone" => "Phone",
        "Date de naissance" => "Birth date",
        "ligne fixe : ne reçoit pas de SMS" => "landline: receives no SMS",
        "Celui que vous avez donné à l'établissement : il reçoit le code par SMS si vous oubliez votre mot de passe. Pour le changer, adressez-vous à l'établissement." => {
            "The one you gave the school: it receives the code by SMS if you forget your password. To change it, contact the school."
        }
        "Celui que vous avez donné à l'établissement. Pour le changer, adressez-vous à l'établissement." => {
            "The one you gave the school. To change it, contact the school."
        }
        "Né(e) le" => "Born on",
        "Dernière connexion" => "Last sign-in",
        "Renvoyer un email de validation" => "Resend a validation email",
        "Changer de mot de passe" => "Change password",
        "Mot de passe actuel" => "Current password",
        "Confirmation du nouveau mot de passe" => "Confirm the new password",
        "Changer d'adresse mail" => "Change email address",
        "La nouvelle adresse remplacera l'actuelle quand vous aurez cliqué sur le lien reçu ; l'ancienne adresse en sera informée." => {
            "The new address will replace the current one once you click the link you receive; the old address will be told."
        }
        "Mot de passe actuel (pour confirmer le changement d'adresse)" => {
            "Current password (to confirm the change of address)"
        }
        "Changer d'adresse" => "Change address",
        "Vos sessions" => "Your sessions",
        "Les navigateurs où votre compte est connecté en ce moment." => {
            "The browsers where your account is signed in right now."
        }
        "cette session" => "this session",
        "Ouverte le" => "Opened on",
        "Dernière activité le" => "Last active on",
        "navigateur inconnu" => "unknown browser",
        "Ferme toutes vos autres sessions, sur tous vos appareils ; celle-ci reste ouverte. Les services où vous étiez connecté(e) par ces sessions en sont avertis." => {
            "Closes all your other sessions, on all your devices; this one stays open. The services you were signed in to through those sessions are told."
        }
        "Se déconnecter partout" => "Sign out everywhere",
        "Applications autorisées" => "Authorised applications",
        "Ces services, qui ne sont pas gérés par l'académie, reçoivent des informations de votre compte parce que vous l'avez accepté. Si vous retirez une autorisation, le service ne peut plus renouveler son accès et vous la redemandera à votre prochaine connexion." => {
            "These services, which are not run by the education authority, receive information from your account because you agreed. If you withdraw an authorisation, the service can no longer renew its access and will ask you again at your next sign-in."
        }
        "Autorisation donnée le" => "Authorisation given on",
        ", pour recevoir :" => ", to receive:",
        "Retirer l'autorisation" => "Withdraw the authorisation",
        "Retirer l'autorisation de" => "Withdraw the authorisation of",
        "Aucun service extérieur n'a reçu votre autorisation." => {
            "No outside service has received your authorisation."
        }
        "Un email de validation vient d'être envoyé. Seul le lien de ce dernier mail fonctionne." => {
            "A validation email has just been sent. Only the link in this latest email works."
        }
        "Votre adresse mail est déjà validée." => "Your email address is already validated.",
        "Votre mot de passe a été modifié." => "Your password has been changed.",
        "Votre mot de passe a été modifié. Le changement d'adresse mail en attente est annulé : si c'est vous qui l'aviez demandé, demandez-le de nouveau." => {
            "Your password has been changed. The email address change waiting for confirmation is cancelled: if you asked for it, ask again."
        }
        "Un courriel vient de vous être envoyé à votre nouvelle adresse afin de confirmer cette mise à jour. Elle remplacera l'actuelle dès que vous aurez cliqué sur son lien." => {
            "An email has just been sent to your new address to confirm this change. It will replace the current one as soon as you click its link."
        }
        "Vos autres sessions sont fermées : seule celle-ci reste ouverte." => {
            "Your other sessions are closed: only this one stays open."
        }
        "Ce service n'a pas ou plus votre autorisation." => {
            "This service does not have, or no longer has, your authorisation."
        }
        "Ce service n'a pas ou plus cette autorisation." => {
            "This service does not have, or no longer has, this authorisation."
        }
        "Services extérieurs autorisés par cet enfant :" => {
            "Outside services this child allowed:"
        }
        "un numéro qui le ou la désigne auprès de ce service seulement" => {
            "a number that stands for them with this service only"
        }
        "ses nom, prénom et date de naissance" => "their surname, first name and birth date",
        "son adresse mail" => "their email address",
        "son numéro de téléphone portable" => "their mobile phone number",
        "son établissement et sa classe" => "their school and class",
        "garder l'accès à ces informations quand il ou elle n'est pas connecté(e), jusqu'au retrait de l'autorisation" => {
            "keep access to this information while they are signed out, until the authorisation is withdrawn"
        }
        "Retirer l'autorisation donnée par" => "Withdraw the authorisation given by",
        "Le mot de passe actuel est incorrect." => "The current password is incorrect.",
        // Consent
        "Autoriser" => "Authorise",
        "demande à recevoir les informations suivantes de votre compte" => {
            "asks to receive the following information from your account"
        }
        "Ce service n'est pas géré par l'académie. N'acceptez que si vous lui faites confiance. Vous pourrez retirer cette autorisation à tout moment dans « Mon compte »." => {
            "This service is not run by the education authority. Accept only if you trust it. You can withdraw this authorisation at any time in “My account”."
        }
        "Avant d'utiliser ce service, lisez sa charte d'utilisation :" => {
            "Before using this service, read its charter:"
        }
        "charte de" => "charter of",
        "Publiés par" => "Published by",
        "et" => "and",
        "sa politique de confidentialité (nouvelle fenêtre)" => "its privacy policy (new window)",
        "ses conditions d'utilisation (nouvelle fenêtre)" => "its terms of use (new window)",
        "version" => "version",
        ", nouvelle fenêtre" => ", new window",
        "J'ai lu et j'accepte la charte" => "I have read and accept the charter",
        "Accepter" => "Accept",
        "Refuser" => "Refuse",
        "Requête invalide" => "Invalid request",
        "Choisissez « Accepter » ou « Refuser »." => "Choose “Accept” or “Refuse”.",
        "Cochez « J'ai lu et j'accepte la charte » pour continuer, ou refusez." => {
            "Tick “I have read and accept the charter” to continue, or refuse."
        }
        "un numéro qui vous désigne auprès de ce service seulement, pour vous reconnaître" => {
            "a number that stands for you with this service only, to recognise you"
        }
        "vos nom, prénom et date de naissance" => "your surname, first name and birth date",
        "vos nom et prénom" => "your surname and first name",
        "votre adresse mail" => "your email address",
        "la liste de vos enfants : leurs nom, prénom et date de naissance, leur établissement et leur classe" => {
            "the list of your children: their surname, first name and birth date, their school and their class"
        }
        "votre établissement et votre classe" => "your school and your class",
        "garder l'accès à ces informations quand vous n'êtes pas connecté(e), jusqu'à ce que vous le retiriez" => {
            "keep access to this information when you are not signed in, until you withdraw it"
        }
        // Logout
        "Déconnexion" => "Sign out",
        "Voulez-vous vous déconnecter de Clef ?" => "Do you want to sign out of Clef?",
        "demande à vous déconnecter de Clef." => "asks to sign you out of Clef.",
        "Vous êtes connecté avec le compte" => "You are signed in with the account",
        "Une fois déconnecté, il faudra saisir à nouveau votre identifiant et votre mot de passe pour accéder aux services de l'établissement." => {
            "Once signed out, you will have to enter your username and password again to reach the school's services."
        }
        "Annuler" => "Cancel",
        "Vous êtes déconnecté" => "You are signed out",
        "Vous êtes déconnecté de Clef" => "You are signed out of Clef",
        ", comme l'a demandé" => ", as requested by",
        "Sur un ordinateur partagé, pensez à fermer le navigateur." => {
            "On a shared computer, remember to close the browser."
        }
        "Se connecter à nouveau" => "Sign in again",
        "Demande de déconnexion invalide" => "Invalid sign-out request",
        "L'application qui vous a envoyé ici n'est pas enregistrée auprès de Clef." => {
            "The application that sent you here is not registered with Clef."
        }
        "L'application qui vous a envoyé ici a formulé une demande de déconnexion invalide. Vous êtes toujours connecté à Clef ; pour vous déconnecter, utilisez « Se déconnecter » dans « Mon compte »." => {
            "The application that sent you here made an invalid sign-out request. You are still signed in to Clef; to sign out, use “Sign out” in “My account”."
        }
        "L'application qui vous a envoyé ici a formulé une demande de déconnexion invalide. Vous n'êtes pas connecté à Clef : il n'y a rien à faire de plus." => {
            "The application that sent you here made an invalid sign-out request. You are not signed in to Clef: there is nothing more to do."
        }
        // Errors
        "Demande de connexion invalide" => "Invalid sign-in request",
        "L'application qui vous a envoyé ici a formulé une demande de connexion invalide. Revenez sur son site et réessayez ; si le problème persiste, contactez-la." => {
            "The application that sent you here made an invalid sign-in request. Go back to its site and try again; if the problem persists, contact it."
        }
        "Détail technique :" => "Technical detail:",
        "Page introuvable" => "Page not found",
        "Page non disponible" => "Page not available",
        "Cette demande n'a pas pu être lue. Revenez à la page précédente et réessayez." => {
            "This request could not be read. Go back to the previous page and try again."
        }
        "Cette page n'existe pas." => "This page does not exist.",
        "Formulaire expiré" => "Form expired",
        "Ce formulaire a expiré ou n'a pas été envoyé depuis Clef. Revenez à la page précédente et réessayez." => {
            "This form has expired or was not sent from Clef. Go back to the previous page and try again."
        }
        "Service momentanément surchargé" => "Service temporarily overloaded",
        "Trop de connexions sont en cours. Réessayez dans quelques secondes." => {
            "Too many connections are in progress. Try again in a few seconds."
        }
        "Service momentanément indisponible" => "Service temporarily unavailable",
        "Le service ne peut pas vous répondre pour le moment. Réessayez dans quelques instants." => {
            "The service cannot answer you for now. Try again in a few moments."
        }
        "Erreur interne" => "Internal error",
        "Erreur" => "Error",
        "Une erreur inattendue s'est produite. Réessayez plus tard ; si le problème persiste, contactez votre établissement." => {
            "An unexpected error occurred. Try again later; if the problem persists, contact your school."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_with_values_are_translated() {
        assert_eq!(
            english("Le champ « mot de passe » est obligatoire.").as_deref(),
            Some("The “password” field is required.")
        );
        assert_eq!(
            english("Le champ « identifiant » ne peut pas dépasser 64 caractères.").as_deref(),
            Some("The “username” field cannot be longer than 64 characters.")
        );
        assert!(
            english("Trop de tentatives ont échoué. Patientez 2 secondes avant de réessayer, ou utilisez « mot de passe oublié ? ».")
                .unwrap()
                .contains("Wait 2 seconds")
        );
        assert_eq!(
            english("Le mot de passe ne respecte pas la règle. Mot de passe : 8 à 14 caractères, chiffres et lettres obligatoires.").as_deref(),
            Some("The password does not follow the rule. Password: 8 to 14 characters, with both letters and digits.")
        );
        assert_eq!(
            english("03/09/2026 à 14:05").as_deref(),
            Some("3 September 2026 at 14:05")
        );
        assert_eq!(english("03/02/2011").as_deref(), Some("3 February 2011"));
        assert_eq!(english("31/13/2011"), None);
        assert_eq!(
            english("Firefox sur Windows").as_deref(),
            Some("Firefox on Windows")
        );
        assert_eq!(
            english("Trop de dates de naissance erronées pour ce compte. Patientez 24 heures avant de réessayer, ou demandez de l'aide à l'établissement.").as_deref(),
            Some("Too many wrong birth dates for this account. Wait 24 hours before trying again, or ask the school for help.")
        );
        for (french, english_text) in [
            (
                "ligne 3 : nouvel élève Léa Martin (5 A)",
                "row 3: new student Léa Martin (5 A)",
            ),
            (
                "ligne 4 : Léa Martin mis à jour : date de naissance 03/02/2011 → 02/03/2011",
                "row 4: Léa Martin updated: birth date 3 February 2011 → 2 March 2011",
            ),
            (
                "ligne 5 : Lea MARTIN change de classe (5 A → 4 B) ; nom Léa Martin → Lea MARTIN ; date de naissance aucune → 02/03/2011",
                "row 5: Lea MARTIN changes class (5 A → 4 B); name Léa Martin → Lea MARTIN; birth date none → 2 March 2011",
            ),
            (
                "ligne 12 : Léa Martin change de classe (5 A → 4 B)",
                "row 12: Léa Martin changes class (5 A → 4 B)",
            ),
            (
                "ligne 7 : coordonnées de Paul Dupont mises à jour : adresse paul.nouveau@example.fr → paul.dupont@example.fr ; téléphone aucun → +33612345678",
                "row 7: contact details of Paul Dupont updated: address paul.nouveau@example.fr → paul.dupont@example.fr; phone none → +33612345678",
            ),
            (
                "ligne 8 : coordonnées d'Anaïs Roux mises à jour : téléphone aucun → +33612345678",
                "row 8: contact details of Anaïs Roux updated: phone none → +33612345678",
            ),
            (
                "ligne 5 : Le champ « téléphone du responsable 1 » n'est pas valide : « 6.12E+08 » (le tableur l'a écrit en notation scientifique : mettez la colonne au format Texte, puis exportez à nouveau). Le champ « date de naissance » n'est pas valide : « 31/02/2014 ».",
                "row 5: The “phone of guardian 1” field is not valid: “6.12E+08” (the spreadsheet wrote it in scientific notation: format the column as Text, then export again). The “birth date” field is not valid: “31/02/2014”.",
            ),
            (
                "ligne 12 : la date de naissance (05/09/2025) donnerait à l'élève moins de 2 ans : vérifiez l'année",
                "row 12: the birth date (05/09/2025) would make the student less than 2 years old: check the year",
            ),
            (
                "ligne 13 : la date de naissance (05/09/1912) donnerait à l'élève 114 ans : vérifiez l'année",
                "row 13: the birth date (05/09/1912) would make the student 114 years old: check the year",
            ),
            (
                "ligne 12 : la date de naissance (05/09/2030) est dans le futur",
                "row 12: the birth date (05/09/2030) is in the future",
            ),
            (
                "12 élèves de l'établissement ne figurent pas dans ce fichier : Léa Martin (5 A), Hugo Petit (4 B), et 10 autres ; leurs comptes restent ouverts, fermez depuis l'administration ceux des élèves qui ont quitté l'établissement",
                "12 students of the school are not in this file: Léa Martin (5 A), Hugo Petit (4 B) and 10 others; their accounts stay open: close those of students who left the school in the back office",
            ),
            (
                "1 élève de l'établissement ne figure pas dans ce fichier : Léa Martin (5 A) ; son compte reste ouvert, fermez-le depuis l'administration si l'élève a quitté l'établissement",
                "1 student of the school is not in this file: Léa Martin (5 A); their account stays open: close it in the back office if they left the school",
            ),
            (
                "ligne 4 : Claire Martin devient responsable 1 de Léa",
                "row 4: Claire Martin becomes guardian 1 of Léa",
            ),
            (
                "ligne 5 : nouveau responsable Paul Aubert (responsable 2) pour Anna",
                "row 5: new guardian Paul Aubert (guardian 2) for Anna",
            ),
            (
                "ligne 7 : l'identifiant d'élève « 1234 » figure déjà ligne 3",
                "row 7: the student number “1234” already appears on row 3",
            ),
            (
                "ligne 8 : Le champ « nom » est obligatoire. Le champ « classe » n'est pas valide.",
                "row 8: The “surname” field is required. The “class” field is not valid.",
            ),
            (
                "fichier : la colonne « nom » apparaît deux fois",
                "file: the column “nom” appears twice",
            ),
            (
                "fichier : colonnes manquantes : student_id (identifiant de l'élève), birthdate (date de naissance), class (classe)",
                "file: missing columns: student_id (student number), birthdate (birth date), class (class)",
            ),
            (
                "ligne 3 : un guillemet (\") ouvert dans cette ligne n'est refermé que plusieurs lignes plus loin : les lignes entre les deux seraient lues comme une seule cellule. Retirez ce guillemet ou refermez-le",
                "row 3: a quote (\") opened in this row is only closed several rows further down: the rows in between would be read as a single cell. Remove this quote or close it",
            ),
            (
                "ligne 2 : cette ligne a 10 cellules et l'en-tête 8 colonnes : une cellule contient sans doute le séparateur « , » sans guillemets, et les suivantes sont décalées ; corrigez la ligne",
                "row 2: this row has 10 cells and the header 8 columns: a cell probably holds the separator “,” without quotes, and the cells after it are shifted; correct the row",
            ),
            (
                "ligne 3 : le n° élève E002 est celui de Emma Petit (né(e) le 05/09/2013), qui n'a ni ce nom ni cette date de naissance : même numéro, autre élève ? Vérifiez le fichier",
                "row 3: student number E002 belongs to Emma Petit (born 05/09/2013), who has neither this name nor this birth date: same number, another student? Check the file",
            ),
            (
                "ligne 2 : Luc Durand (responsable 2 de Paul) a un compte fermé par l'établissement ; il n'est pas recréé",
                "row 2: Luc Durand (guardian 2 of Paul) has an account the school closed; it is not created again",
            ),
            (
                "ligne 4 : l'adresse mail de Luc Durand n'est pas modifiée (luc@example.org dans le fichier) : son compte est activé, l'adresse est la sienne ; le parent la change dans « Mon compte »",
                "row 4: the email address of Luc Durand is not changed (luc@example.org in the file): their account is activated, the address is theirs; the parent changes it in “My account”",
            ),
            (
                "ligne 4 : le téléphone de Luc Durand n'est pas modifié : ce parent a des enfants dans un autre établissement ; adressez-vous au rectorat",
                "row 4: the phone of Luc Durand is not changed: this parent has children in another school; ask the academy (rectorat)",
            ),
            (
                "ligne 4 : cette ligne n'a que 3 cellules et l'en-tête 5 colonnes : il lui manque « Né(e) le », « Classe » ; complétez-la",
                "row 4: this row has only 3 cells and the header 5 columns: it lacks “Né(e) le”, “Classe”; complete it",
            ),
            (
                "ligne 9 : cette ligne n'a que 1 cellule et l'en-tête 5 colonnes : il lui manque « Nom », « Classe » ; complétez-la",
                "row 9: this row has only 1 cell and the header 5 columns: it lacks “Nom”, “Classe”; complete it",
            ),
            (
                "fichier : la colonne « Courriel » n'est pas lue : elle ne dit pas de quel responsable légal elle est ; ajoutez « responsable 1 » ou « responsable 2 » à son nom pour qu'elle le soit",
                "file: the column “Courriel” is not read: it does not say which legal guardian it belongs to; add “responsable 1” or “responsable 2” to its name to have it read",
            ),
            (
                "fichier : le fichier est vide : exportez à nouveau la liste des élèves depuis le tableur ou le logiciel de scolarité",
                "file: the file is empty: export the list of students again from the spreadsheet or the school software",
            ),
            (
                "ligne 3 : Le champ « prénom » n'est pas valide : « J. Marc » (« . » n'a pas sa place dans un nom : seulement des lettres, espaces, traits d'union et apostrophes). Le champ « date de naissance » n'est pas valide : « 31/02/2014 » (ce jour n'existe pas).",
                "row 3: The “first name” field is not valid: “J. Marc” (“.” has no place in a name: letters, spaces, hyphens and apostrophes only). The “birth date” field is not valid: “31/02/2014” (there is no such day).",
            ),
            (
                "ligne 4 : Le champ « nom » n'est pas valide : « Ro[U+200D]ux2 » (le caractère invisible U+200D, « 2 » n'ont pas leur place dans un nom : seulement des lettres, espaces, traits d'union et apostrophes). Le champ « prénom » n'est pas valide : « -Léa » (un nom commence et finit par une lettre : seulement des lettres, espaces, traits d'union et apostrophes).",
                "row 4: The “surname” field is not valid: “Ro[U+200D]ux2” (the invisible character U+200D, “2” have no place in a name: letters, spaces, hyphens and apostrophes only). The “first name” field is not valid: “-Léa” (a name starts and ends with a letter: letters, spaces, hyphens and apostrophes only).",
            ),
            (
                "ligne 4 : Le champ « date de naissance » n'est pas valide : « 2014/13 » (écrivez la date jj/mm/aaaa).",
                "row 4: The “birth date” field is not valid: “2014/13” (write the date dd/mm/yyyy).",
            ),
            (
                "ligne 6 : Le champ « classe » n'est pas valide : « =1+1 » (une lettre ou un chiffre d'abord, puis lettres, chiffres, espaces et - _ . / ' °).",
                "row 6: The “class” field is not valid: “=1+1” (a letter or a digit first, then letters, digits, spaces and - _ . / ' °).",
            ),
        ] {
            assert_eq!(english(french).as_deref(), Some(english_text), "{french}");
        }
        assert_eq!(english("ligne 3 : quelque chose d'inconnu"), None);
        assert_eq!(english("texte inconnu"), None);
    }

    #[test]
    fn catalogue_sentences_need_no_escaping() {
        for (name, source) in super::super::pages::TEMPLATES {
            for piece in source.split("t(\"").skip(1) {
                let key = piece.split("\")").next().unwrap_or_default();
                for text in [key, exact(key).unwrap_or_default()] {
                    assert!(!text.contains(['<', '>', '&', '"']), "{name}: {text:?}");
                }
            }
        }
    }

    #[test]
    fn every_template_sentence_has_its_english() {
        for (name, source) in super::super::pages::TEMPLATES {
            for piece in source.split("t(\"").skip(1) {
                let key = piece.split("\")").next().unwrap_or_default();
                assert!(exact(key).is_some(), "{name}: no English for {key:?}");
            }
        }
    }
}
