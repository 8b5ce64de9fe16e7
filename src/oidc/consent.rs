//! Consent (SPEC §4): a third-party client receives an account's data only
//! after the person accepted, on a page, what it will receive. Remembered per
//! account and client as the scopes accepted so far, and for `children` as
//! the children listed then; asked again when a request wants more (a scope,
//! or a child attached since: a grouping, a sibling in the school's file), or
//! when the client sends `prompt=consent`.

use std::collections::HashSet;

use super::Scopes;
use super::authorize::AuthorizationRequest;
use super::clients::{Client, Terms};
use crate::app::Clef;
use crate::storage::Db;

/// Whether this request needs the person's approval on the consent page
/// before a code is issued: consent to the scopes (third parties, or
/// `prompt=consent`), or the client's terms in a version not yet accepted.
pub async fn required(
    db: &Db,
    client: &Client,
    account_id: &str,
    request: &AuthorizationRequest,
) -> Result<bool, sqlx::Error> {
    if request.prompt_consent || terms_pending(db, client, account_id).await?.is_some() {
        return Ok(true);
    }
    if client.is_first_party {
        return Ok(false);
    }
    let granted = granted(db, account_id, &client.id).await?;
    let covered = request
        .scopes
        .iter()
        .all(|scope| granted.as_ref().is_some_and(|g| g.contains(scope)));
    if !covered {
        return Ok(true);
    }
    if !request.scopes.contains("children") {
        return Ok(false);
    }
    let uncovered_child: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM guardianships g JOIN accounts s ON s.id = g.student_id \
         WHERE g.guardian_id = $1 AND s.state <> 'closed' AND NOT EXISTS ( \
           SELECT 1 FROM consent_children k \
           WHERE k.account_id = g.guardian_id AND k.client_id = $2 AND k.child_id = g.student_id) \
         LIMIT 1",
    )
    .bind(account_id)
    .bind(&client.id)
    .fetch_optional(db)
    .await?;
    Ok(uncovered_child.is_some())
}

/// The children of `account_id` whose data its consent lets `client_id`
/// receive (the `children` claim of a third party).
pub async fn children_covered<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    account_id: &str,
    client_id: &str,
) -> Result<HashSet<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT child_id FROM consent_children WHERE account_id = $1 AND client_id = $2",
    )
    .bind(account_id)
    .bind(client_id)
    .fetch_all(db)
    .await
    .map(HashSet::from_iter)
}

/// The scopes `account_id` has accepted for `client_id`, if any.
pub async fn granted(
    db: &Db,
    account_id: &str,
    client_id: &str,
) -> Result<Option<Scopes>, sqlx::Error> {
    let scopes: Option<String> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .fetch_optional(db)
            .await?;
    Ok(scopes.map(|s| Scopes::known(s.split(' '))))
}

/// The client's terms, if the account has not accepted their current version.
pub async fn terms_pending<'a>(
    db: &Db,
    client: &'a Client,
    account_id: &str,
) -> Result<Option<&'a Terms>, sqlx::Error> {
    let Some(terms) = &client.terms else {
        return Ok(None);
    };
    let accepted: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM terms_acceptances WHERE account_id = $1 AND client_id = $2 AND version = $3",
    )
    .bind(account_id)
    .bind(&client.id)
    .bind(&terms.version)
    .fetch_optional(db)
    .await?;
    Ok(accepted.is_none().then_some(terms))
}

/// Records that the account accepted this version of the client's terms.
pub async fn accept_terms(
    db: &Db,
    account_id: &str,
    client: &Client,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Some(terms) = &client.terms else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO terms_acceptances (account_id, client_id, version, accepted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, client_id, version) DO NOTHING",
    )
    .bind(account_id)
    .bind(&client.id)
    .bind(&terms.version)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A child detached from `guardian_id` leaves the consents of that account: if
/// attached again, the person is asked again.
pub async fn forget_child<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    guardian_id: &str,
    student_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consent_children WHERE account_id = $1 AND child_id = $2")
        .bind(guardian_id)
        .bind(student_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the person's acceptance of `scopes`, added to what they accepted
/// before; with `children`, of those of the account's children the page
/// listed (`children_shown`, account ids) and still attached: a child
/// attached while the page was open is asked for next time.
pub async fn grant(
    db: &Db,
    (account_id, client_id): (&str, &str),
    scopes: &Scopes,
    children_shown: &[&str],
    now: i64,
) -> Result<(), sqlx::Error> {
    let before = granted(db, account_id, client_id).await?;
    let all = Scopes::known(before.iter().flat_map(|b| b.iter()).chain(scopes.iter()));
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
    )
    .bind(account_id)
    .bind(client_id)
    .bind(all.to_wire())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Without `children`, the page showed none to cover.
    let covered = if scopes.contains("children") {
        children_shown
    } else {
        &[]
    };
    for child_id in covered {
        sqlx::query(
            "INSERT INTO consent_children (account_id, client_id, child_id) \
             SELECT g.guardian_id, $2, g.student_id FROM guardianships g \
             JOIN accounts s ON s.id = g.student_id \
             WHERE g.guardian_id = $1 AND g.student_id = $3 AND s.state <> 'closed' \
             ON CONFLICT (account_id, client_id, child_id) DO NOTHING",
        )
        .bind(account_id)
        .bind(client_id)
        .bind(*child_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// What a scope gives a (third-party) service about a `kind` of account, in
/// the words a parent or a student reads on the consent page: a pairwise
/// `sub`, never the account's identifier.
pub fn described(scope: &str, kind: crate::accounts::AccountKind) -> Option<&'static str> {
    use crate::accounts::AccountKind;
    match scope {
        "openid" => {
            Some("un numéro qui vous désigne auprès de ce service seulement, pour vous reconnaître")
        }
        "profile" if kind == AccountKind::Student => Some("vos nom, prénom et date de naissance"),
        "profile" => Some("vos nom et prénom"),
        "email" => Some("votre adresse mail"),
        "phone" => Some("votre numéro de téléphone portable"),
        "children" if kind == AccountKind::Guardian => Some(
            "la liste de vos enfants : leurs nom, prénom et date de naissance, leur établissement et leur classe",
        ),
        // A student has none: nothing is given.
        "children" => None,
        // A student's own; a parent's children come with `children`.
        "school" if kind == AccountKind::Student => Some("votre établissement et votre classe"),
        "school" => None,
        "offline_access" => Some(
            "garder l'accès à ces informations quand vous n'êtes pas connecté(e), jusqu'à ce que vous le retiriez",
        ),
        _ => None,
    }
}

/// [`described`] for a pupil's consent as their parent reads it.
pub fn described_of_child(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("un numéro qui le ou la désigne auprès de ce service seulement"),
        "profile" => Some("ses nom, prénom et date de naissance"),
        "email" => Some("son adresse mail"),
        "phone" => Some("son numéro de téléphone portable"),
        "school" => Some("son établissement et sa classe"),
        "offline_access" => Some(
            "garder l'accès à ces informations quand il ou elle n'est pas connecté(e), jusqu'au retrait de l'autorisation",
        ),
        _ => None,
    }
}

/// A third-party service holding the account's consent, as « Mon compte » lists it.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Scopes,
    pub granted_at: i64,
    /// The children it receives (`children`), by name.
    pub children: Vec<String>,
}

/// The third-party services `account_id` has consented to, by name. First-party
/// clients never ask for consent, so a consent they were given is not listed.
pub async fn authorizations(db: &Db, account_id: &str) -> Result<Vec<Authorization>, sqlx::Error> {
    use sqlx::Row;
    // The children each consent covers and the account still has.
    let covered: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT k.client_id, s.given_name, s.family_name FROM consent_children k \
         JOIN guardianships g ON g.guardian_id = k.account_id AND g.student_id = k.child_id \
         JOIN accounts s ON s.id = k.child_id \
         WHERE k.account_id = $1 AND s.state <> 'closed' \
         ORDER BY g.created_at, s.family_name, s.given_name",
    )
    .bind(account_id)
    .fetch_all(db)
    .await?;
    sqlx::query(
        "SELECT c.client_id, k.name, c.scopes, c.granted_at \
         FROM consents c JOIN clients k ON k.id = c.client_id \
         WHERE c.account_id = $1 AND k.is_first_party = 0 AND k.deleted_at IS NULL \
         ORDER BY k.name, c.client_id",
    )
    .bind(account_id)
    .fetch_all(db)
    .await?
    .iter()
    .map(|row| {
        let client_id: String = row.try_get("client_id")?;
        let scopes = Scopes::known(row.try_get::<String, _>("scopes")?.split(' '));
        let children = covered
            .iter()
            .filter(|(client, _, _)| *client == client_id && scopes.contains("children"))
            .map(|(_, given, family)| format!("{given} {family}"))
            .collect();
        Ok(Authorization {
            client_name: row.try_get("name")?,
            granted_at: row.try_get("granted_at")?,
            client_id,
            scopes,
            children,
        })
    })
    .collect()
}

/// Every consent the account gave, and every service's terms it accepted,
/// forgotten (a reset of its password, by the person or by the school): what
/// was granted in its name may have been granted by whoever held it, so the
/// next request of each service asks the person again. In the reset's
/// transaction; the tokens go with the reset's own revocations.
pub async fn forget_all(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: &str,
) -> Result<u64, sqlx::Error> {
    for forgotten in [
        "DELETE FROM terms_acceptances WHERE account_id = $1",
        "DELETE FROM consent_children WHERE account_id = $1",
    ] {
        sqlx::query(forgotten)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(sqlx::query("DELETE FROM consents WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Withdraws `account_id`'s consent to `client_id`: its access tokens and
/// unexchanged codes end; then, in one transaction, the consent is forgotten
/// (the next sign-in asks again) and the refresh tokens the client holds for
/// this account end. Only this account's rows are touched, whatever the
/// client id. False when there was no consent.
pub async fn withdraw(app: &Clef, account_id: &str, client_id: &str) -> anyhow::Result<bool> {
    let now = app.now();
    let given: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM consents WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .fetch_optional(&app.db)
            .await?;
    if given.is_none() {
        return Ok(false);
    }
    // Marked first: an exchange under way writes its refresh family, then
    // looks for the mark (`token::exchange_code`); a family it wrote before
    // the mark is revoked just below.
    app.access_tokens
        .revoke_for(account_id, client_id, app.now_ms())
        .await?;
    let mut tx = app.db.begin().await?;
    sqlx::query("DELETE FROM consent_children WHERE account_id = $1 AND client_id = $2")
        .bind(account_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    let deleted = sqlx::query("DELETE FROM consents WHERE account_id = $1 AND client_id = $2")
        .bind(account_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    super::refresh::revoke_families_of(&mut *tx, account_id, client_id, now).await?;
    tx.commit().await?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountKind;

    /// The consent page names what the service will receive and nothing
    /// else: a parent gets no birth date of their own and no school (their
    /// children's come with `children`).
    #[test]
    fn a_scope_is_described_as_the_account_kind_receives_it() {
        assert_eq!(
            described("school", AccountKind::Student),
            Some("votre établissement et votre classe")
        );
        assert_eq!(described("school", AccountKind::Guardian), None);
        assert_eq!(
            described("profile", AccountKind::Guardian),
            Some("vos nom et prénom")
        );
        assert!(
            described("profile", AccountKind::Student)
                .is_some_and(|text| text.contains("date de naissance"))
        );
        assert_eq!(described("unknown", AccountKind::Student), None);
        // A student has no children to give.
        assert_eq!(described("children", AccountKind::Student), None);
        assert!(described("children", AccountKind::Guardian).is_some());
    }
}
