//! The establishment back office (SPEC §3.9, issue 11), at `/etablissement`:
//! for staff only, and within each staff member's establishments only — every
//! route below resolves the establishment from its UAI and asks the staff
//! member's scope before reading anything.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use sqlx::Row;

use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, Device, Query, SignedIn};
use super::{AppState, pages};
use crate::accounts::staff::{self, Action, Done, Funnel, Refused, Scope};
use crate::accounts::{
    Account, Establishment, EstablishmentChange, EstablishmentInput, Letterhead, store,
};
use crate::app::Clef;
use crate::audit;
use crate::domain::{BirthDate, EmailAddress, Uai};
use crate::provisioning::import::{self, BadRows, ImportReport};
use crate::provisioning::letters;

/// Accounts listed per page.
const PAGE: i64 = 50;

/// A destructive action asks for the staff member's password again when they
/// signed in longer ago than this.
const REAUTH_AFTER: i64 = 10 * 60;

fn forbidden() -> WebError {
    WebError::Page {
        status: StatusCode::FORBIDDEN,
        title: "Accès refusé",
        message: "Cette page est réservée au personnel de l'établissement concerné.".into(),
    }
}

/// A staff member and what they may manage; anyone else is refused.
async fn staff_scope(app: &Clef, account: &Account) -> Result<Scope, WebError> {
    let scope = staff::scope(&app.db, account).await?;
    if scope.is_empty() {
        return Err(forbidden());
    }
    Ok(scope)
}

/// The establishment of the path and its UAI, if the staff member manages it
/// (the same refusal for one that does not exist: UAIs are not to be probed).
async fn managed(app: &Clef, staff: &Account, uai: &str) -> Result<(Establishment, Uai), WebError> {
    let (establishment, uai, _) = managed_in_scope(app, staff, uai).await?;
    Ok((establishment, uai))
}

/// [`managed`], with the staff member's scope.
async fn managed_in_scope(
    app: &Clef,
    staff: &Account,
    uai: &str,
) -> Result<(Establishment, Uai, Scope), WebError> {
    let scope = staff_scope(app, staff).await?;
    let found = match Uai::parse(uai) {
        Ok(uai) => store::establishment_by_uai(&app.db, &uai)
            .await?
            .filter(|e| scope.manages(&e.id))
            .map(|e| (e, uai)),
        Err(_) => None,
    };
    match found {
        Some((establishment, uai)) => Ok((establishment, uai, scope)),
        None => Err(refused_to(app, staff, &format!("establishment {uai}")).await),
    }
}

/// An establishment whose details the staff member may change: the
/// academy's operators only (a school's staff are refused, on their trail).
async fn academy_managed(
    app: &Clef,
    staff: &Account,
    uai: &str,
) -> Result<(Establishment, Uai), WebError> {
    let (establishment, uai, scope) = managed_in_scope(app, staff, uai).await?;
    if !scope.academy {
        refused_to(app, staff, &format!("details of establishment {uai}")).await;
        return Err(WebError::Page {
            status: StatusCode::FORBIDDEN,
            title: "Accès refusé",
            message: "Les coordonnées de l'établissement sont modifiées par le rectorat : adressez-vous à lui.".into(),
        });
    }
    Ok((establishment, uai))
}

/// A staff member asked for an establishment or an account they do not
/// manage: on their own trail (the 403 tells them nothing more).
async fn refused_to(app: &Clef, staff: &Account, what: &str) -> WebError {
    let what: String = what.chars().filter(|c| !c.is_control()).take(120).collect();
    let detail = format!("refused: {what}");
    let entry = audit::Entry::new(audit::Event::StaffAction, audit::Outcome::Refused)
        .account(&staff.id)
        .actor(&staff.id)
        .detail(&detail);
    audit::record(&app.db, entry, app.now()).await;
    forbidden()
}

/// An account of a managed establishment: a pupil of it, or a parent of one of
/// its pupils still there (a closed pupil keeps no parent in the school).
async fn managed_account(
    app: &Clef,
    staff: &Account,
    uai: &str,
    id: &str,
) -> Result<(Establishment, Account), WebError> {
    let (establishment, _) = managed(app, staff, uai).await?;
    if !belongs(app, &establishment.id, id).await? {
        return Err(refused_to(app, staff, &format!("account {id} at {uai}")).await);
    }
    let account = store::account_by_id(&app.db, id)
        .await?
        .ok_or_else(forbidden)?;
    Ok((establishment, account))
}

/// `GET /etablissement`: the establishments the staff member manages.
pub async fn home(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let scope = staff_scope(&app, &account).await?;
    let establishments: Vec<minijinja::Value> = if scope.academy {
        sqlx::query("SELECT uai, name FROM establishments ORDER BY uai")
            .fetch_all(&app.db)
            .await?
            .iter()
            .map(|row| {
                Ok(minijinja::context! {
                    uai => row.try_get::<String, _>("uai")?,
                    name => row.try_get::<String, _>("name")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?
    } else {
        scope
            .establishments
            .iter()
            .map(|e| minijinja::context! { uai => &e.uai, name => &e.name })
            .collect()
    };
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/backoffice_home.html",
        |csrf| minijinja::context! { csrf, establishments, academy => scope.academy },
    ))
}

/// Height of one class in the funnel chart: its name on a line of its own
/// (so that a long name is not cut by its bar at 320 px), then its bar.
const CHART_ROW: usize = 46;

/// One bar of the funnel chart: its class, its numbers, and the widths (in
/// percent of the widest class) of its three segments.
fn bars(funnel: &[Funnel]) -> Vec<minijinja::Value> {
    let widest = funnel.iter().map(Funnel::total).max().unwrap_or(0).max(1) as f64;
    let mut y = 0;
    funnel
        .iter()
        .map(|f| {
            let width = |n: i64| (n as f64 * 100.0 / widest * 10.0).round() / 10.0;
            let (p, e, a) = (
                width(f.provisional),
                width(f.pending_email),
                width(f.active),
            );
            let bar = minijinja::context! {
                class => &f.class, provisional => f.provisional, pending_email => f.pending_email,
                active => f.active, total => f.total(),
                p, e, a, e_x => p, a_x => p + e, y,
            };
            y += CHART_ROW;
            bar
        })
        .collect()
}

/// `GET /etablissement/{uai}`: the activation funnel, for the pupils and for
/// their parents, per class and in all, as a chart and as numbers.
pub async fn establishment(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    Path(uai): Path<String>,
    Query(params): Query,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let (establishment, _, scope) = managed_in_scope(&app, &account, &uai).await?;
    // Back from its details' form (`?coordonnees=enregistrees`).
    let saved = params.is_ok_and(|p| p.get("coordonnees") == Some("enregistrees"));
    let students = staff::funnel(&app.db, &establishment.id, false).await?;
    let guardians = staff::funnel(&app.db, &establishment.id, true).await?;
    let (students_total, guardians_total) = (
        staff::funnel_total(&app.db, &establishment.id, false).await?,
        staff::funnel_total(&app.db, &establishment.id, true).await?,
    );
    let chart = |funnel: &[Funnel], total: &Funnel| {
        minijinja::context! {
            bars => bars(funnel),
            height => funnel.len() * CHART_ROW,
            total => minijinja::Value::from(minijinja::value::Serde(total)),
        }
    };
    // What its letters print (the academy sets it: here, or `clef establishment update`).
    let head = store::letterhead(&app.db, &establishment.id).await?;
    let address = head.postal_address();
    let portal = establishment.portal_url.clone();
    let login = format!("{}/login", app.config.issuer_str());
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/backoffice_establishment.html",
        |csrf| {
            minijinja::context! {
                csrf, uai => &establishment.uai, name => &establishment.name,
                students => chart(&students, &students_total), guardians => chart(&guardians, &guardians_total),
                address, contact => head.contact, portal, login,
                academy => scope.academy, saved,
            }
        },
    ))
}

/// The details' form: the values held, or those just typed, and what was
/// refused in them, each at its field.
fn details_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    (uai, values, before): (&str, &EstablishmentInput<'_>, &EstablishmentInput<'_>),
    errors: Vec<minijinja::Value>,
    reauth: bool,
) -> Response {
    // Each field, and as it was shown first (hidden: what the person
    // changed is what differs from it).
    let details: std::collections::BTreeMap<&str, minijinja::Value> = EstablishmentInput::KEYS
        .into_iter()
        .map(|key| {
            let (value, shown) = (values.get(key), before.get(key));
            let field = minijinja::context! { value => value.unwrap_or_default(), shown => shown.unwrap_or_default() };
            (key, field)
        })
        .collect();
    pages::form(app, jar, status, "pages/backoffice_details.html", |csrf| {
        minijinja::context! {
            csrf, uai, errors, reauth, details,
            max_name => Establishment::MAX_NAME, max_address => Letterhead::MAX_ADDRESS,
            max_city => Letterhead::MAX_CITY, max_contact => Letterhead::MAX_CONTACT,
        }
    })
}

/// `GET /etablissement/{uai}/coordonnees`: for the academy, the form that
/// changes an establishment's name, address, contact and portal (SPEC §2:
/// what its letters print, and where they send families to sign in).
pub async fn details_form(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let (establishment, _) = academy_managed(&app, &staff, &uai).await?;
    let head = store::letterhead(&app.db, &establishment.id).await?;
    let held = EstablishmentInput::held(&establishment, &head);
    let reauth = signed_in_long_ago(&app, &session);
    Ok(details_page(
        &app,
        jar,
        StatusCode::OK,
        (&establishment.uai, &held, &held),
        Vec::new(),
        reauth,
    ))
}

/// `POST /etablissement/{uai}/coordonnees`: the academy's change, every
/// field checked (refused: the form again, as typed, nothing written), its
/// password asked again after 10 minutes as for an action on an account
/// (the portal is where every letter sends families), then on the trail.
pub async fn save_details(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path(uai): Path<String>,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let (establishment, uai) = academy_managed(&app, &staff, &uai).await?;
    let typed = EstablishmentInput::read(|key| Some(params.get(key).unwrap_or_default()));
    // The form as it was shown (a form without them: every field changed).
    let shown = EstablishmentInput::read(|key| params.get(&format!("shown_{key}")));
    let reauth = signed_in_long_ago(&app, &session);
    let refused = |jar, status, errors: &[(&str, &str)]| {
        let errors = pages::field_errors(errors.iter().copied());
        details_page(
            &app,
            jar,
            status,
            (&establishment.uai, &typed, &shown),
            errors,
            reauth,
        )
    };
    match reauthenticated(&app, &jar, &staff, &session, (address, &device), &params).await? {
        None => {}
        Some(Reauth::TooMany { retry_after }) => {
            let told = [(
                "password",
                "Trop de tentatives : patientez avant de réessayer.",
            )];
            let page = refused(jar, StatusCode::TOO_MANY_REQUESTS, &told);
            return Ok(pages::retry_after(page, retry_after));
        }
        Some(reauth) => {
            let told = match reauth {
                Reauth::Wrong => "Mot de passe incorrect.",
                _ => {
                    "Votre connexion date de plus de 10 minutes : confirmez avec votre mot de passe."
                }
            };
            return Ok(refused(jar, StatusCode::BAD_REQUEST, &[("password", told)]));
        }
    }
    // Only the fields changed on the form: another operator's change made
    // while it was open stays.
    let local = crate::domain::is_loopback(&app.config.issuer);
    let change = match EstablishmentChange::checked(&typed.changed_from(&shown), local) {
        Ok(change) => change,
        Err(fields) => {
            let told: Vec<(&str, String)> = fields
                .iter()
                .map(|(key, e)| (*key, e.to_string()))
                .collect();
            let told: Vec<(&str, &str)> = told.iter().map(|(k, m)| (*k, m.as_str())).collect();
            return Ok(refused(jar, StatusCode::BAD_REQUEST, &told));
        }
    };
    // Only what differs from what is held is written and put on the trail,
    // with what it replaced.
    let (change, held, head) = store::update_establishment(&app.db, &uai, change)
        .await
        .map_err(anyhow::Error::from)?;
    if !change.is_empty() {
        let who = store::ChangedBy {
            actor: Some(&staff.id),
            by: format!("from the back office by {}", staff.identifier),
            from: Some((address, &device)),
        };
        store::record_establishment(
            &app.db,
            (&uai, "updated"),
            &change,
            Some(&EstablishmentInput::held(&held, &head)),
            who,
            app.now(),
        )
        .await;
    }
    let saved = format!(
        "/etablissement/{}?coordonnees=enregistrees",
        establishment.uai
    );
    Ok(axum::response::IntoResponse::into_response(
        axum::response::Redirect::to(&saved),
    ))
}

/// `GET /etablissement/{uai}/comptes?classe=&etat=&page=`: the pupils of
/// the establishment and their parents' accounts, with their state.
pub async fn accounts(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let mut params = params.map_err(|e| WebError::bad_request(&e))?;
    // A name searched never travels in an address (proxies log them): POST only.
    params = crate::domain::Params::from_pairs(
        params
            .pairs()
            .filter(|(name, _)| *name != "q")
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .map_err(|e| WebError::bad_request(&e))?;
    list_accounts(app, account, uai, jar, params).await
}

/// `POST /etablissement/{uai}/comptes`: the same list, searched by name or
/// identifier (`q`), the search kept out of the address.
pub async fn search_accounts(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    list_accounts(app, account, uai, jar, params).await
}

async fn list_accounts(
    app: std::sync::Arc<Clef>,
    account: Account,
    uai: String,
    jar: CookieJar,
    params: crate::domain::Params,
) -> Result<Response, WebError> {
    let (establishment, _) = managed(&app, &account, &uai).await?;
    let class = params.get("classe").map(str::to_owned);
    let state = params
        .get("etat")
        .filter(|s| matches!(*s, "provisional" | "pending_email" | "active" | "closed"))
        .map(str::to_owned);
    let typed = params.get("q").map(|q| q.replace(['%', '_'], ""));
    let search = typed.as_ref().map(|q| format!("%{}%", q.to_lowercase()));
    // The same words without accents nor apostrophes, as identifiers spell
    // the names (`élodie.lefèvre` is `elodie.lefevre`, N’Diaye `ndiaye`):
    // SQLite lower-cases ASCII only, so « Élodie » would not find « ÉLODIE »
    // by name, and « N'Diaye » typed would miss « N’Diaye » imported.
    let folded = typed.as_ref().map(|q| {
        let words = deunicode::deunicode(q).to_lowercase().replace('\'', "");
        format!(
            "%{}%",
            words.split_whitespace().collect::<Vec<_>>().join("%")
        )
    });
    let page = params
        .get("page")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .map_or(1, i64::from);
    // Pupils of the establishment, and the guardians of those pupils.
    let rows = sqlx::query(
        "SELECT DISTINCT a.id, a.identifier, a.kind, a.state, a.given_name, a.family_name, s.class_name \
         FROM accounts s LEFT JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts a ON a.id = s.id OR (a.id = l.guardian_id AND s.state <> 'closed') \
         WHERE s.establishment_id = $1 AND s.kind = 'student' \
         AND ($2 = '' OR s.class_name = $2) AND ($3 = '' OR a.state = $3) \
         AND ($4 = '' OR LOWER(a.identifier) LIKE $4 OR LOWER(a.family_name) LIKE $4 OR LOWER(a.given_name) LIKE $4 \
              OR a.identifier LIKE $7) \
         ORDER BY s.class_name, a.family_name, a.given_name, a.identifier LIMIT $5 OFFSET $6",
    )
    .bind(&establishment.id)
    .bind(class.clone().unwrap_or_default())
    .bind(state.clone().unwrap_or_default())
    .bind(search.clone().unwrap_or_default())
    .bind(PAGE + 1)
    .bind((page - 1) * PAGE)
    .bind(folded.unwrap_or_default())
    .fetch_all(&app.db)
    .await?;
    let more = rows.len() as i64 > PAGE;
    let listed: Vec<minijinja::Value> = rows
        .iter()
        .take(PAGE as usize)
        .map(|row| {
            Ok(minijinja::context! {
                id => row.try_get::<String, _>("id")?,
                identifier => row.try_get::<String, _>("identifier")?,
                kind => row.try_get::<String, _>("kind")?,
                state => row.try_get::<String, _>("state")?,
                name => format!("{} {}", row.try_get::<String, _>("given_name")?, row.try_get::<String, _>("family_name")?),
                class => row.try_get::<Option<String>, _>("class_name")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let classes = staff::classes(&app.db, &establishment.id).await?;
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/backoffice_accounts.html",
        |csrf| {
            minijinja::context! {
                csrf, uai => &establishment.uai, name => &establishment.name, accounts => listed,
                classes, class, state, q => params.get("q").unwrap_or(""), page, more,
                previous => page - 1, next => page + 1,
            }
        },
    ))
}

/// Whether `account_id` is a pupil of the establishment or a parent of one.
async fn belongs(
    app: &Clef,
    establishment_id: &str,
    account_id: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM accounts s LEFT JOIN guardianships l ON l.student_id = s.id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' \
         AND (s.id = $2 OR (l.guardian_id = $2 AND s.state <> 'closed')) LIMIT 1",
    )
    .bind(establishment_id)
    .bind(account_id)
    .fetch_optional(&app.db)
    .await?;
    Ok(found.is_some())
}

/// What the trail's event code says, in French (`| tr` makes it English); a
/// staff action by what it did.
fn event_label<'a>(code: &'a str, detail: Option<&str>) -> &'a str {
    match (code, detail) {
        ("staff_action", Some("reset")) => return "Compte réinitialisé",
        ("staff_action", Some("close")) => return "Compte fermé",
        ("staff_action", Some(d)) if d.starts_with("refused") => return "Accès refusé",
        ("staff_action", Some(d)) if d.starts_with("correct_email") => {
            return "Adresse mail corrigée";
        }
        ("staff_action", Some("detach")) => return "Enfant détaché",
        // The kind, then the request's reference.
        ("recovery_requested", Some(d)) if d.starts_with("identifier") => {
            return "Demande d'identifiant oublié";
        }
        ("staff_action", Some(d)) if d.starts_with("letters printed") => {
            return "Courrier imprimé";
        }
        ("staff_action", Some(d)) if d.starts_with("import ") => {
            return "Import du fichier des élèves";
        }
        _ => {}
    }
    match code {
        "login" => "Connexion",
        "activation" => "Activation du compte",
        "email_confirmed" => "Adresse mail confirmée",
        "email_change_requested" => "Demande de changement d'adresse mail",
        "password_changed" => "Mot de passe modifié",
        "recovery_requested" => "Demande de mot de passe oublié",
        "recovery_completed" => "Mot de passe réinitialisé",
        "grouping" => "Regroupement de comptes",
        "detachment" => "Enfant détaché",
        "consent_given" => "Autorisation donnée à un service",
        "consent_withdrawn" => "Autorisation retirée à un service",
        "client_registered" => "Service enregistré",
        "client_deleted" => "Service supprimé",
        "key_rotation" => "Rotation des clés",
        "staff_action" => "Action de l'établissement",
        "account_erased" => "Données personnelles effacées (compte fermé)",
        other => other,
    }
}

/// What the trail's outcome code says, in French.
fn outcome_label(code: &str) -> &str {
    match code {
        "ok" => "Réussi",
        "failed" => "Échoué",
        "refused" => "Refusé",
        other => other,
    }
}

/// `GET /etablissement/{uai}/compte/{id}`: an account and its audit trail,
/// newest first: what happened and when, not from which address (a school
/// helps a family, it does not follow where it signs in from; the operator's
/// `clef audit` keeps the addresses).
pub async fn account(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path((uai, id)): Path<(String, String)>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let (establishment, account) = managed_account(&app, &staff, &uai, &id).await?;
    // Only this establishment's pupils: a parent's other children are another
    // school's to show.
    let children: Vec<minijinja::Value> = store::children(&app.db, &account.id)
        .await?
        .iter()
        .filter(|c| {
            c.establishment
                .as_ref()
                .is_some_and(|e| e.id == establishment.id)
        })
        .map(|c| minijinja::context! { id => &c.id, name => format!("{} {}", c.given_name, c.family_name) })
        .collect();
    // A pupil's parents, each with the state of their account (the one to
    // help, reset or print a letter for).
    let guardians: Vec<minijinja::Value> = store::guardians(&app.db, &account.id)
        .await?
        .iter()
        .map(|g| {
            minijinja::context! {
                id => &g.id, name => format!("{} {}", g.given_name, g.family_name),
                rank => g.rank, state => g.state.as_str(),
            }
        })
        .collect();
    let trail: Vec<minijinja::Value> = audit::trail(&app.db, Some(&account.id), 0, 200)
        .await?
        .into_iter()
        .map(|e| {
            minijinja::context! {
                at => super::account::datetime(&app, e.at), event => event_label(&e.event, e.detail.as_deref()),
                outcome => outcome_label(&e.outcome),
                by_staff => e.actor_id.is_some(),
            }
        })
        .collect();
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/backoffice_account.html",
        |csrf| {
            minijinja::context! {
                csrf, uai => &establishment.uai, establishment => &establishment.name,
                identifier => &account.identifier, name => format!("{} {}", account.given_name, account.family_name),
                kind => account.kind.as_str(), state => account.state.as_str(), class => &account.class_name,
                email => &account.email, email_verified => account.email_verified_at.is_some(),
                pending_email => &account.pending_email,
                // What a family is asked or reached by: the birth date of a
                // first connection, the phone of an SMS.
                birthdate => account.birthdate.as_deref().and_then(|iso| BirthDate::parse(iso).ok()).map(|d| d.french()),
                phone => account.phone.as_deref().map(super::account::phone_shown),
                phone_sms => account.phone.as_deref().is_some_and(crate::provisioning::csv_file::Phone::takes_sms),
                children, guardians, trail, id => &account.id, closed => account.state == crate::accounts::AccountState::Closed,
                reauth => signed_in_long_ago(&app, &session),
                provisional => account.state == crate::accounts::AccountState::Provisional,
            }
        },
    ))
}

/// Whether the staff member signed in more than [`REAUTH_AFTER`] ago: their
/// password again before an action or a print of letters.
fn signed_in_long_ago(app: &Clef, session: &crate::oidc::session::Session) -> bool {
    app.now() - session.auth_time > REAUTH_AFTER
}

/// Why a staff member signed in a while ago was not taken at their word.
enum Reauth {
    /// No password came (a page shown before the 10 minutes ran out):
    /// asked for, nothing counted.
    Asked,
    TooMany {
        retry_after: u64,
    },
    Wrong,
}

/// A staff member signed in more than [`REAUTH_AFTER`] ago types their
/// password again (the form's `password`), counted like a login attempt and
/// a wrong one on the trail like a failed login, before an action or a
/// print of letters: an unattended desk gives none.
async fn reauthenticated(
    app: &Clef,
    jar: &CookieJar,
    staff: &Account,
    session: &crate::oidc::session::Session,
    (address, device): (std::net::IpAddr, &str),
    params: &crate::domain::Params,
) -> Result<Option<Reauth>, WebError> {
    if !signed_in_long_ago(app, session) {
        return Ok(None);
    }
    if params.get("password").is_none() {
        return Ok(Some(Reauth::Asked));
    }
    let origin = super::cookies::origin(app, jar, address, Some(staff));
    let admitted = app
        .throttle
        .enter(&staff.identifier, &origin, app.now_ms())
        .await?;
    if let crate::accounts::throttle::Admission::Closed { retry_after } = admitted {
        return Ok(Some(Reauth::TooMany { retry_after }));
    }
    let password = params.secret("password");
    if !app
        .passwords
        .verify(&password, staff.password_hash.as_deref())
        .await?
    {
        tracing::info!(account = %staff.id, %address, "back-office password check failed");
        let entry = audit::Entry::new(audit::Event::Login, audit::Outcome::Failed)
            .account(&staff.id)
            .from(address, device)
            .detail("back-office password check");
        audit::record(&app.db, entry, app.now()).await;
        return Ok(Some(Reauth::Wrong));
    }
    app.throttle
        .succeeded(&staff.identifier, &origin, admitted)
        .await?;
    Ok(None)
}

/// `POST /etablissement/{uai}/compte/{id}/action`: reset, close, correct the
/// address, detach a child. Each needs its confirmation box ticked.
pub async fn act(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path((uai, id)): Path<(String, String)>,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let (establishment, account) = managed_account(&app, &staff, &uai, &id).await?;
    let back = format!("/etablissement/{}/compte/{}", establishment.uai, account.id);
    let refused = |message: &'static str| {
        Ok(pages::message_with_link(
            StatusCode::BAD_REQUEST,
            "Action non effectuée",
            message,
            None,
            Some((&back, "Retour au compte")),
        ))
    };
    // A limit reached: 429, and when to come back.
    let held = |message: &'static str, retry_after: u64| {
        let page = pages::message_with_link(
            StatusCode::TOO_MANY_REQUESTS,
            "Action non effectuée",
            message,
            None,
            Some((&back, "Retour au compte")),
        );
        Ok(pages::retry_after(page, retry_after))
    };
    if params.get("confirm") != Some("1") {
        return refused("Cochez la case de confirmation pour effectuer cette action.");
    }
    match reauthenticated(&app, &jar, &staff, &session, (address, &device), &params).await? {
        None => {}
        Some(Reauth::TooMany { retry_after }) => {
            return held(
                "Trop de tentatives : patientez avant de réessayer.",
                retry_after,
            );
        }
        Some(Reauth::Asked | Reauth::Wrong) => {
            return refused(
                "Votre connexion date de plus de 10 minutes : confirmez cette action avec votre mot de passe.",
            );
        }
    }
    let action = match params.get("action") {
        Some("reset") => Action::Reset,
        Some("close") => Action::Close,
        Some("email") => match EmailAddress::parse(params.get("email").unwrap_or("")) {
            Ok(email) => Action::CorrectEmail(email),
            Err(_) => return refused("L'adresse mail n'est pas valide."),
        },
        Some("detach") => match params.get("student") {
            Some(student) if belongs(&app, &establishment.id, student).await? => Action::Detach {
                student_id: student.to_owned(),
            },
            _ => return Err(forbidden()),
        },
        _ => return refused("Action inconnue."),
    };
    let done = match staff::act(&app, &staff, &account, action, address, &device).await {
        Ok(Err(Refused::SharedParent)) => {
            return refused(
                "Ce parent a aussi des enfants dans un autre établissement : seule l'académie peut fermer ou réinitialiser son compte, ou corriger son adresse.",
            );
        }
        Ok(Err(Refused::TooManyMails { retry_after })) => {
            return held(
                "Trop de mails de confirmation ont été envoyés à ce compte dans l'heure : réessayez plus tard.",
                retry_after,
            );
        }
        Ok(Ok(done)) => done,
        // The database or the store is down: a 503, not « pas possible ».
        Err(e) if crate::storage::is_unavailable(&e) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "staff action refused");
            return refused("Cette action n'est pas possible sur ce compte.");
        }
    };
    // Done: the page that says so is a GET of its own, so that reloading it
    // (or going back to it) does not do it again.
    let told = format!("{back}/fait?{}", done_query(&done));
    Ok(axum::response::IntoResponse::into_response(
        axum::response::Redirect::to(&told),
    ))
}

/// What a back-office action did, as the redirect after it carries it.
fn done_query(done: &Done) -> String {
    let code = match done {
        Done::Reset => "reinitialise",
        Done::Closed => "ferme",
        Done::EmailForActivation => "adresse-activation",
        Done::EmailSent => "adresse-envoye",
        Done::EmailNotSent => "adresse-non-envoye",
        Done::Detached { new_identifier } => {
            let encoded: String =
                url::form_urlencoded::byte_serialize(new_identifier.as_bytes()).collect();
            return format!("resultat=detache&nouveau={encoded}");
        }
    };
    format!("resultat={code}")
}

/// What [`done_query`] wrote.
fn parse_done(params: &crate::domain::Params) -> Option<Done> {
    Some(match params.get("resultat")? {
        "reinitialise" => Done::Reset,
        "ferme" => Done::Closed,
        "adresse-activation" => Done::EmailForActivation,
        "adresse-envoye" => Done::EmailSent,
        "adresse-non-envoye" => Done::EmailNotSent,
        "detache" => Done::Detached {
            new_identifier: params.get("nouveau")?.to_owned(),
        },
        _ => return None,
    })
}

/// `GET /etablissement/{uai}/compte/{id}/fait?resultat=…`: « Action
/// effectuée », what was done and what to do next (print the new letter).
/// Only what the school's own pages link to: the accounts named are checked
/// to be the establishment's.
pub async fn action_done(
    State(app): AppState,
    SignedIn { account: staff, .. }: SignedIn,
    Path((uai, id)): Path<(String, String)>,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let (establishment, _) = managed(&app, &staff, &uai).await?;
    let back = format!("/etablissement/{}/compte/{id}", establishment.uai);
    // Nothing said: the account's page.
    let Some(done) = parse_done(&params) else {
        return Ok(axum::response::IntoResponse::into_response(
            axum::response::Redirect::to(&back),
        ));
    };
    let ours = belongs(&app, &establishment.id, &id).await?;
    let account = match ours {
        true => crate::accounts::store::account_by_id(&app.db, &id).await?,
        false => None,
    };
    let print = |identifier: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(identifier.as_bytes()).collect();
        format!(
            "/etablissement/{}/courriers?compte={encoded}",
            establishment.uai
        )
    };
    let (message, letter) = match &done {
        Done::Reset => (
            "Le compte est réinitialisé : un nouveau courrier de notification est prêt à être imprimé.".to_owned(),
            account.as_ref().map(|a| print(a.identifier.as_str())),
        ),
        Done::Closed => ("Le compte est fermé.".to_owned(), None),
        Done::EmailForActivation => ("L'adresse est corrigée ; un mail de confirmation y est envoyé quand le compte est activé.".to_owned(), None),
        Done::EmailSent => ("L'adresse est corrigée : un mail de confirmation y est envoyé ; elle vaut pour le compte dès que la personne a ouvert son lien.".to_owned(), None),
        Done::EmailNotSent => ("L'adresse est corrigée, mais le mail de confirmation n'a pas pu y être envoyé pour le moment : la personne pourra le redemander en se connectant.".to_owned(), None),
        Done::Detached { new_identifier } => {
            let new = match crate::domain::Identifier::parse(new_identifier) {
                Ok(identifier) => crate::accounts::store::account_by_identifier(&app.db, &identifier).await?,
                Err(_) => None,
            };
            let new = match new {
                Some(new) if belongs(&app, &establishment.id, &new.id).await? => Some(new),
                _ => None,
            };
            match new {
                Some(new) => (
                    format!(
                        "L'enfant est détaché de ce compte. Son nouveau compte responsable est {} : imprimez son courrier.",
                        new.identifier
                    ),
                    Some(print(new.identifier.as_str())),
                ),
                None => ("L'enfant est détaché de ce compte.".to_owned(), None),
            }
        }
    };
    let mut links = Vec::new();
    if let Some(print) = &letter {
        links.push((print.as_str(), "Imprimer le courrier"));
    }
    // A parent whose only pupil here was detached is no longer the school's
    // to open: back to the establishment instead.
    let establishment_page = format!("/etablissement/{}", establishment.uai);
    match ours {
        true => links.push((back.as_str(), "Retour au compte")),
        false => links.push((establishment_page.as_str(), "Retour à l'établissement")),
    }
    Ok(pages::message_with_links(
        StatusCode::OK,
        "Action effectuée",
        &message,
        None,
        &links,
    ))
}

/// `GET /etablissement/{uai}/courriers?format=pdf|csv&classe=&compte=`:
/// « Imprimer les courriers », the notification letters of the accounts not
/// activated yet (all, a class, or one account), as a PDF (one A4 page each)
/// or a CSV for mail merges. They hold the accounts' provisional passwords,
/// so a GET prints nothing: a link from elsewhere (the session cookie goes
/// with a top-level GET) would download a school's passwords onto the
/// secretary's computer and mark them printed. The page POSTs the selection
/// with its CSRF token, and with the staff member's password when they
/// signed in more than 10 minutes ago.
pub async fn letters(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let (establishment, _) = managed(&app, &staff, &uai).await?;
    // How many: the page shows no password, nor reads one.
    let found = letters::count(&app.db, &establishment.id, &selection(&params)).await?;
    if found == 0 {
        return no_letters(&app, &establishment, &selection(&params)).await;
    }
    if let Some(refused) = too_many_for_a_pdf(&establishment, &params, found) {
        return Ok(refused);
    }
    let ask_password = signed_in_long_ago(&app, &session);
    Ok(confirm_letters(
        &app,
        jar,
        &establishment,
        &params,
        (ask_password, Some(found)),
        None,
    ))
}

/// More letters than one PDF made here holds
/// ([`letters::MOST_IN_A_SERVED_PDF`]): told, with what to do, before any
/// is laid out (the CSV has no such bound).
fn too_many_for_a_pdf(
    establishment: &Establishment,
    params: &crate::domain::Params,
    count: usize,
) -> Option<Response> {
    let pdf = params.get("format") != Some("csv");
    if !pdf || count <= letters::MOST_IN_A_SERVED_PDF {
        return None;
    }
    let back = format!("/etablissement/{}", establishment.uai);
    let message = format!(
        "Cette sélection compte {count} courriers : c'est plus que les {} qu'un fichier PDF peut \
         contenir ici. Imprimez-les classe par classe (ou demandez à l'académie de les imprimer \
         avec clef letters).",
        letters::MOST_IN_A_SERVED_PDF
    );
    Some(pages::message_with_link(
        StatusCode::OK,
        "Trop de courriers pour un seul fichier",
        &message,
        None,
        Some((&back, "Retour à l'établissement")),
    ))
}

/// The letters `params` asks for: a class, one account, or all.
fn selection(params: &crate::domain::Params) -> letters::Selection {
    letters::Selection {
        class: params.get("classe").map(str::to_owned),
        account: params.get("compte").map(str::to_owned),
    }
}

/// « Aucun courrier », and why: an unknown class or account (404), or no
/// account of the selection waiting for its letter.
async fn no_letters(
    app: &Clef,
    establishment: &Establishment,
    selection: &letters::Selection,
) -> Result<Response, WebError> {
    let why = letters::why_none(&app.db, &establishment.id, selection).await?;
    let status = match why.unknown() {
        true => StatusCode::NOT_FOUND,
        false => StatusCode::OK,
    };
    let back = format!("/etablissement/{}", establishment.uai);
    Ok(pages::message_with_link(
        status,
        "Aucun courrier",
        why.french(),
        None,
        Some((&back, "Retour à l'établissement")),
    ))
}

/// `POST /etablissement/{uai}/courriers`: the letters, once the password is
/// confirmed (when it must be).
pub async fn letters_confirmed(
    State(app): AppState,
    SignedIn {
        account: staff,
        session,
        ..
    }: SignedIn,
    Path(uai): Path<String>,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let (establishment, uai) = managed(&app, &staff, &uai).await?;
    match reauthenticated(&app, &jar, &staff, &session, (address, &device), &params).await? {
        None => {
            print_letters(
                &app,
                &staff,
                &establishment,
                &uai,
                &params,
                address,
                &device,
            )
            .await
        }
        Some(Reauth::TooMany { retry_after }) => Ok(pages::retry_after(
            confirm_letters(
                &app,
                jar,
                &establishment,
                &params,
                (true, None),
                Some((
                    StatusCode::TOO_MANY_REQUESTS,
                    "Trop de tentatives : patientez avant de réessayer.",
                )),
            ),
            retry_after,
        )),
        Some(Reauth::Asked) => Ok(confirm_letters(
            &app,
            jar,
            &establishment,
            &params,
            (true, None),
            None,
        )),
        Some(Reauth::Wrong) => Ok(confirm_letters(
            &app,
            jar,
            &establishment,
            &params,
            (true, None),
            Some((StatusCode::BAD_REQUEST, "Mot de passe incorrect.")),
        )),
    }
}

/// « Imprimer les courriers »: the selection carried to a POST, with the
/// password again when `ask_password`, and how many letters it holds when
/// known.
fn confirm_letters(
    app: &Clef,
    jar: CookieJar,
    establishment: &Establishment,
    params: &crate::domain::Params,
    (ask_password, count): (bool, Option<usize>),
    error: Option<(StatusCode, &str)>,
) -> Response {
    let status = error.map_or(StatusCode::OK, |(status, _)| status);
    pages::form(app, jar, status, "pages/backoffice_letters.html", |csrf| {
        minijinja::context! {
            csrf, uai => &establishment.uai, name => &establishment.name,
            format => params.get("format"), classe => params.get("classe"),
            compte => params.get("compte"), ask_password, count,
            months => app.config.letter_validity_months,
            error => error.map(|(_, message)| message),
        }
    })
}

async fn print_letters(
    app: &Clef,
    staff: &Account,
    establishment: &Establishment,
    uai: &Uai,
    params: &crate::domain::Params,
    address: std::net::IpAddr,
    device: &str,
) -> Result<Response, WebError> {
    use axum::response::IntoResponse;
    let selection = selection(params);
    let found = letters::select_as_configured(app, uai, &selection).await?;
    if found.is_empty() {
        return no_letters(app, establishment, &selection).await;
    }
    // Whose provisional passwords were printed, where, by whom: on the trail
    // of every account printed (a lost letter is traced to its printing).
    let printed = match &selection.class {
        Some(class) => format!("letters printed: {} ({uai}, class {class})", found.len()),
        None => format!("letters printed: {} ({uai})", found.len()),
    };
    let mut accounts: Vec<String> = found.iter().map(|l| l.account_id.clone()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let csv = params.get("format") == Some("csv");
    if let Some(refused) = too_many_for_a_pdf(establishment, params, found.len()) {
        return Ok(refused);
    }
    // Named after what it holds: the school, and the class or the account.
    let mut file_name = format!("courriers-{uai}");
    match (&selection.account, &selection.class) {
        (Some(_), _) => file_name.push_str(&format!("-{}", found[0].identifier)),
        (None, Some(class)) => file_name.push_str(&format!("-{class}")),
        (None, None) => {}
    }
    let file_name: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let now = app.now();
    // One PDF at a time per instance (its memory), waited for.
    let _printing = match csv {
        true => None,
        false => Some(
            app.letters_printing
                .acquire()
                .await
                .map_err(anyhow::Error::from)?,
        ),
    };
    // A whole school's letters take seconds of CPU: off the runtime's
    // threads, so that sign-ins go on meanwhile.
    let (body, content_type, extension) = tokio::task::spawn_blocking(move || {
        anyhow::Ok(if csv {
            (letters::csv(&found)?, "text/csv; charset=utf-8", "csv")
        } else {
            (letters::pdf(&found, now)?, "application/pdf", "pdf")
        })
    })
    .await
    .map_err(anyhow::Error::from)??;
    let entry = audit::Entry::new(audit::Event::StaffAction, audit::Outcome::Ok)
        .actor(&staff.id)
        .from(address, device)
        .detail(&printed);
    let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
    audit::record_for_each(&app.db, entry, &accounts, app.now()).await;
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}.{extension}\""),
            ),
        ],
        body,
    )
        .into_response();
    pages::no_store(&mut response);
    Ok(response)
}

/// A file checked and previewed, waiting for « Appliquer ».
#[derive(serde::Serialize, serde::Deserialize)]
struct ImportDraft {
    /// What the preview's form names it by.
    id: String,
    establishment_id: String,
    /// The file, base64.
    file: String,
    /// Its bad rows are left out (« Importer les autres lignes »).
    #[serde(default)]
    skip_bad_rows: bool,
    /// The rows it imports, for the progress page.
    #[serde(default)]
    rows: usize,
}

/// One draft per staff member, under their account id: a new preview
/// replaces the last, so previews (up to 11 MB each) cannot pile up in the
/// store.
fn drafts(app: &Clef) -> crate::storage::Kind<ImportDraft> {
    crate::storage::Kind::new(&app.store, "import-draft")
}

fn import_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    establishment: &Establishment,
    context: minijinja::Value,
) -> Response {
    pages::form(app, jar, status, "pages/backoffice_import.html", |csrf| {
        minijinja::context! { csrf, uai => &establishment.uai, name => &establishment.name, ..context }
    })
}

/// `GET /etablissement/{uai}/import`.
pub async fn import_form(
    State(app): AppState,
    SignedIn { account: staff, .. }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let (establishment, _) = managed(&app, &staff, &uai).await?;
    Ok(import_page(
        &app,
        jar,
        StatusCode::OK,
        &establishment,
        minijinja::context! {},
    ))
}

/// A report as its page shows it: the changes it lists (`ImportReport::changes`:
/// every one to look at, the first others), the counts say the rest.
fn report_view(report: &ImportReport) -> minijinja::Value {
    minijinja::context! {
        students_created => report.students_created, students_updated => report.students_updated,
        students_unchanged => report.students_unchanged, guardians_created => report.guardians_created,
        guardians_updated => report.guardians_updated, guardians_unchanged => report.guardians_unchanged,
        changes => &report.changes, more_changes => report.unlisted_changes, skipped => &report.skipped,
    }
}

/// `POST /etablissement/{uai}/import` (multipart: the file and the form
/// token): the file is checked and previewed, nothing is written yet.
pub async fn import_preview(
    State(app): AppState,
    SignedIn { account: staff, .. }: SignedIn,
    Path(uai): Path<String>,
    jar: CookieJar,
    mut multipart: axum::extract::Multipart,
) -> Result<Response, WebError> {
    use crate::provisioning::import::ImportError;
    use base64::Engine;
    let (establishment, uai) = managed(&app, &staff, &uai).await?;
    let mut csrf = None;
    let mut file = None;
    let mut too_large = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
                break;
            }
        };
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("file") => match field.bytes().await {
                Ok(bytes) => file = Some(bytes),
                Err(e) => {
                    too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
                    break;
                }
            },
            _ => {}
        }
    }
    // The form's token comes before the file: read even when the file is too large.
    if !super::cookies::csrf_matches(&app, &jar, csrf.as_deref()) {
        return Err(super::extract::expired_form());
    }
    let refused = match &file {
        _ if too_large => Some((
            StatusCode::PAYLOAD_TOO_LARGE,
            "Le fichier dépasse 8 Mo. Enregistrez-le en CSV, sans autres colonnes que celles du modèle, ou importez-le en plusieurs fois (par niveau).",
        )),
        Some(file) if !file.is_empty() => None,
        _ => Some((
            StatusCode::BAD_REQUEST,
            "Choisissez le fichier des élèves (CSV).",
        )),
    };
    if let Some((status, error)) = refused {
        let context = minijinja::context! { error };
        return Ok(import_page(&app, jar, status, &establishment, context));
    }
    let file = file.unwrap_or_default();
    // Previewed without its bad rows, should the school ask to import the others.
    let now = app.now();
    match import::import(&app.db, &app.letters, &uai, &file, now, true, BadRows::Skip).await {
        Ok(report) => {
            let skip_bad_rows = !report.skipped.is_empty();
            let good_rows =
                report.students_created + report.students_updated + report.students_unchanged;
            // A draft only for what may be applied: not a file whose every
            // row is bad (as before « Importer les autres lignes »).
            let id = match !skip_bad_rows || good_rows > 0 {
                true => {
                    let id = crate::secret::random_token(24);
                    let draft = ImportDraft {
                        id: id.clone(),
                        establishment_id: establishment.id.clone(),
                        file: base64::engine::general_purpose::STANDARD.encode(&file),
                        skip_bad_rows,
                        rows: good_rows,
                    };
                    drafts(&app)
                        .put(&staff.id, &draft, std::time::Duration::from_secs(30 * 60))
                        .await?;
                    Some(id)
                }
                false => None,
            };
            if !skip_bad_rows {
                let context = minijinja::context! { preview => report_view(&report), draft => id };
                return Ok(import_page(
                    &app,
                    jar,
                    StatusCode::OK,
                    &establishment,
                    context,
                ));
            }
            // Refused as it is; the good rows, if any, may go in without the others.
            let (errors, more) = first_hundred(&report.skipped);
            let partial = (good_rows > 0).then(|| report_view(&report));
            let context = minijinja::context! { errors, more, partial, draft => id };
            Ok(import_page(
                &app,
                jar,
                StatusCode::BAD_REQUEST,
                &establishment,
                context,
            ))
        }
        // A file refused whole (a workbook, a column twice) has no rows to correct.
        Err(ImportError::File(errors)) => {
            Ok(refused_file(&app, jar, &establishment, &errors, true))
        }
        Err(ImportError::Rows { refused, .. }) => {
            Ok(refused_file(&app, jar, &establishment, &refused, false))
        }
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

/// The import page telling why a file was not imported: its first errors.
fn refused_file(
    app: &Clef,
    jar: CookieJar,
    establishment: &Establishment,
    errors: &[crate::provisioning::csv_file::RowError],
    whole_file: bool,
) -> Response {
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let (errors, more) = first_hundred(&errors);
    let context = minijinja::context! { errors, more, whole_file };
    import_page(app, jar, StatusCode::BAD_REQUEST, establishment, context)
}

/// The first hundred errors of a file, enough to see what is wrong with it,
/// and how many more there are.
fn first_hundred(errors: &[String]) -> (Vec<String>, usize) {
    (
        errors.iter().take(100).cloned().collect(),
        errors.len().saturating_sub(100),
    )
}

/// `POST /etablissement/{uai}/import/appliquer`: the previewed file, written.
pub async fn import_apply(
    State(app): AppState,
    SignedIn { account: staff, .. }: SignedIn,
    Path(uai): Path<String>,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    use base64::Engine;
    let (establishment, uai) = managed(&app, &staff, &uai).await?;
    // The staff member's draft, if it is the one this preview showed (a newer
    // preview replaced an older one); taken once.
    let shown = |d: &ImportDraft| {
        Some(d.id.as_str()) == params.get("draft") && d.establishment_id == establishment.id
    };
    let draft = match drafts(&app).get(&staff.id).await?.filter(shown) {
        Some(_) => drafts(&app).take(&staff.id).await?.filter(shown),
        None => None,
    };
    let Some(draft) = draft else {
        let context = minijinja::context! { error => "Cet aperçu a expiré ou a déjà été appliqué : déposez le fichier à nouveau." };
        return Ok(import_page(
            &app,
            jar,
            StatusCode::GONE,
            &establishment,
            context,
        ));
    };
    let file = base64::engine::general_purpose::STANDARD
        .decode(draft.file)
        .map_err(anyhow::Error::from)?;
    let bad_rows = match draft.skip_bad_rows {
        true => BadRows::Skip,
        false => BadRows::Refuse,
    };
    // The import runs on its own; the page follows it (`import_progress`).
    let job_id = crate::secret::random_token(24);
    let job = ImportJob {
        establishment_id: establishment.id.clone(),
        staff_id: staff.id.clone(),
        rows: draft.rows,
        report: None,
        failed: false,
        heartbeat: Some(app.now()),
    };
    jobs(&app).put(&job_id, &job, JOB_TTL).await?;
    let (finished, done) = tokio::sync::oneshot::channel();
    let task = {
        let app = app.clone();
        let job_id = job_id.clone();
        let device = device.clone();
        let name = establishment.name.clone();
        async move {
            let import = import::import(
                &app.db,
                &app.letters,
                &uai,
                &file,
                app.now(),
                false,
                bad_rows,
            );
            tokio::pin!(import);
            // While it runs, the job says so every few seconds: an instance
            // killed or stopped mid-import leaves a job that stops beating.
            let mut beat = tokio::time::interval(HEARTBEAT);
            beat.tick().await;
            let result = loop {
                tokio::select! {
                    result = &mut import => break result,
                    _ = beat.tick() => {
                        let alive = ImportJob { heartbeat: Some(app.now()), ..job.clone() };
                        if let Err(e) = jobs(&app).put(&job_id, &alive, JOB_TTL).await {
                            tracing::warn!(error = %e, "import heartbeat not recorded");
                        }
                    }
                }
            };
            // Which school's file, and what it did: the trail of a staff
            // member of several schools (or the academy's) says which.
            let (outcome, detail) = match &result {
                Ok(report) => (
                    audit::Outcome::Ok,
                    format!(
                        "import {uai}: pupils +{} ~{}, guardians +{} ~{}, rows left out {}",
                        report.students_created,
                        report.students_updated,
                        report.guardians_created,
                        report.guardians_updated,
                        report.skipped.len()
                    ),
                ),
                Err(_) => (audit::Outcome::Refused, format!("import {uai}")),
            };
            let entry = audit::Entry::new(audit::Event::StaffAction, outcome)
                .actor(&job.staff_id)
                .from(address, &device)
                .detail(&detail);
            audit::record(&app.db, entry, app.now()).await;
            if let Ok(report) = &result {
                let actor = Some(job.staff_id.as_str());
                import::tell_the_accounts(&app, report, &name, &uai, actor).await;
            }
            let job = match result {
                Ok(report) => ImportJob {
                    report: Some(report),
                    ..job
                },
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "import from the back office failed"
                    );
                    ImportJob {
                        failed: true,
                        ..job
                    }
                }
            };
            if let Err(e) = jobs(&app).put(&job_id, &job, JOB_TTL).await {
                tracing::error!(error = %e, "import outcome not recorded");
            }
            let _ = finished.send(());
        }
    };
    // A shutdown waits for it as for a request (`web::serve`).
    app.background.spawn(task);
    // A small file is done in a moment: its report comes at once.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), done).await;
    use axum::response::IntoResponse;
    let mut response = axum::response::Redirect::to(&format!(
        "/etablissement/{}/import/suivi/{job_id}",
        establishment.uai
    ))
    .into_response();
    pages::no_store(&mut response);
    Ok(response)
}

/// An import under way or done, as the progress page reads it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct ImportJob {
    establishment_id: String,
    staff_id: String,
    /// Rows of the file.
    rows: usize,
    report: Option<ImportReport>,
    failed: bool,
    /// When the import last said it was running (Unix seconds).
    #[serde(default)]
    heartbeat: Option<i64>,
}

impl ImportJob {
    /// Under way, but silent for longer than a running import ever is: its
    /// instance stopped (SIGKILL, or a shutdown whose drain it outlasted).
    fn interrupted(&self, now: i64) -> bool {
        self.report.is_none()
            && !self.failed
            && self
                .heartbeat
                .is_some_and(|beat| now - beat > INTERRUPTED_AFTER)
    }
}

const JOB_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// Six heartbeats missed.
const INTERRUPTED_AFTER: i64 = 30;

fn jobs(app: &Clef) -> crate::storage::Kind<ImportJob> {
    crate::storage::Kind::new(&app.store, "import-job")
}

/// `GET /etablissement/{uai}/import/suivi/{job}`: the import under way (a
/// script asks for the page until the import ends, then shows it once;
/// without scripts, a link), then its report.
pub async fn import_progress(
    State(app): AppState,
    SignedIn { account: staff, .. }: SignedIn,
    Path((uai, job_id)): Path<(String, String)>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let (establishment, _) = managed(&app, &staff, &uai).await?;
    let job = jobs(&app)
        .get(&job_id)
        .await?
        .filter(|job| job.establishment_id == establishment.id && job.staff_id == staff.id)
        .ok_or_else(forbidden)?;
    let context = match (&job.report, job.failed) {
        (Some(report), _) => minijinja::context! { applied => report_view(report) },
        (None, true) => minijinja::context! {
            error => "L'import n'a pas pu être enregistré ; rien n'a été modifié. Réessayez, ou signalez-le à l'académie.",
        },
        (None, false) if job.interrupted(app.now()) => minijinja::context! {
            error => "L'import a été interrompu par un redémarrage du service avant son compte rendu. Déposez le fichier à nouveau : ce qui a déjà été importé ne sera pas créé deux fois.",
        },
        (None, false) => {
            // The one script that asks whether the import has ended.
            let nonce = crate::secret::random_token(16);
            let context =
                minijinja::context! { running => job.rows, job => &job_id, nonce => &nonce };
            let mut page = import_page(&app, jar, StatusCode::OK, &establishment, context);
            let policy = format!(
                "{}; script-src 'nonce-{nonce}'; connect-src 'self'",
                super::PAGE_POLICY
            );
            page.headers_mut().insert(
                axum::http::header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_str(&policy).map_err(anyhow::Error::from)?,
            );
            return Ok(page);
        }
    };
    Ok(import_page(
        &app,
        jar,
        StatusCode::OK,
        &establishment,
        context,
    ))
}

#[cfg(test)]
mod tests {
    use super::event_label;

    #[test]
    fn an_identifier_reminder_is_not_told_as_a_password_request() {
        assert_eq!(
            event_label("recovery_requested", Some("identifier 2274313122334")),
            "Demande d'identifiant oublié"
        );
        assert_eq!(
            event_label("recovery_requested", Some("password_email 2274313122334")),
            "Demande de mot de passe oublié"
        );
    }
}
