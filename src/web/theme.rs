//! An academy's theme (SPEC §5): a folder (`theme_dir`) whose
//! `templates/` replace the binary's templates of the same name (the wording
//! of a page or a mail: `templates/pages/login.html`,
//! `templates/mail/confirm_email.txt`, `templates/mail/en/…`), and whose
//! `static/` files are served at `/theme/<name>`: `static/theme.css` is
//! linked from every page after Clef's own style (colours: `--accent`,
//! `--error`), `static/logo.svg` (or `.png`, `.jpg`, `.webp`) shown in the
//! pages' header. Read once at start and checked then: an unknown template
//! name (a typo would otherwise be ignored) or a template that does not parse
//! stops the start with its name; a change needs a restart.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The static files a theme may hold, by extension, and their types.
const TYPES: &[(&str, &str)] = &[
    ("css", "text/css; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    ("woff2", "font/woff2"),
];

/// Logos looked for, in this order.
const LOGOS: &[&str] = &["logo.svg", "logo.png", "logo.jpg", "logo.webp"];

/// A static file larger than this is refused at start (a logo, a stylesheet).
const MAX_FILE: u64 = 1024 * 1024;

#[derive(Debug, Default)]
pub struct Theme {
    templates: HashMap<String, String>,
    files: HashMap<String, (&'static str, Vec<u8>)>,
}

static THEME: OnceLock<Theme> = OnceLock::new();

/// Reads and checks the theme in `dir` and installs it for this process,
/// before any page or mail is rendered.
pub fn load(dir: &Path) -> anyhow::Result<()> {
    let theme = check(dir)?;
    if THEME.set(theme).is_err() {
        anyhow::bail!("a theme is already loaded in this process");
    }
    Ok(())
}

/// Reads and checks the theme in `dir` against the templates the binary
/// carries (also `clef config check`).
pub fn check(dir: &Path) -> anyhow::Result<Theme> {
    let known: Vec<&str> = super::pages::names()
        .chain(crate::delivery::mail::names())
        .collect();
    read(dir, &known)
}

fn read(dir: &Path, known: &[&str]) -> anyhow::Result<Theme> {
    anyhow::ensure!(dir.is_dir(), "theme_dir {}: no such folder", dir.display());
    let mut theme = Theme::default();
    let templates = dir.join("templates");
    if templates.is_dir() {
        for path in files_under(&templates)? {
            let name = path
                .strip_prefix(&templates)
                .expect("under the folder")
                .to_string_lossy()
                .replace('\\', "/");
            anyhow::ensure!(
                known.contains(&name.as_str()),
                "theme template {name}: Clef has no template of that name (they are pages/*.html, \
                 mail/*.txt|html and mail/en/*.txt|html, as in the source's templates/ folder)"
            );
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("reading theme template {name}"))?;
            // Parsed now, with the pages' own functions, so a mistake stops the start.
            let mut env = minijinja::Environment::new();
            env.add_function("t", super::i18n::template_function);
            env.add_filter("tr", |text: &str| super::i18n::translate(text));
            env.add_template_owned(name.clone(), source.clone())
                .with_context(|| format!("theme template {name}"))?;
            theme.templates.insert(name, source);
        }
    }
    let statics = dir.join("static");
    if statics.is_dir() {
        for entry in std::fs::read_dir(&statics).context("reading the theme's static folder")? {
            let path = entry?.path();
            if !path.is_file() {
                continue;
            }
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let kind = name
                .rsplit_once('.')
                .and_then(|(_, ext)| TYPES.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)))
                .map(|(_, kind)| *kind)
                .with_context(|| {
                    format!(
                        "theme file static/{name}: not one of the types served ({})",
                        TYPES.iter().map(|(e, _)| *e).collect::<Vec<_>>().join(", ")
                    )
                })?;
            let size = path.metadata()?.len();
            anyhow::ensure!(
                size <= MAX_FILE,
                "theme file static/{name}: {size} bytes, more than the 1 MiB served"
            );
            let bytes = std::fs::read(&path).with_context(|| format!("reading static/{name}"))?;
            theme.files.insert(name, (kind, bytes));
        }
    }
    Ok(theme)
}

fn files_under(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// The theme's version of the template `name`, if it has one.
pub fn template(name: &str) -> Option<&'static str> {
    THEME.get()?.templates.get(name).map(String::as_str)
}

/// Whether the theme has a stylesheet (`/theme/theme.css`).
pub fn stylesheet() -> bool {
    THEME
        .get()
        .is_some_and(|theme| theme.files.contains_key("theme.css"))
}

/// The theme's logo, its file name under `/theme/`.
pub fn logo() -> Option<&'static str> {
    let theme = THEME.get()?;
    LOGOS
        .iter()
        .copied()
        .find(|logo| theme.files.contains_key(*logo))
}

/// `GET /theme/{name}`: a file of the theme's `static/` folder.
pub async fn file(UrlPath(name): UrlPath<String>) -> Response {
    match THEME.get().and_then(|theme| theme.files.get(&name)) {
        Some((kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    const KNOWN: &[&str] = &["pages/login.html", "mail/en/confirm_email.txt"];

    #[test]
    fn a_theme_replaces_known_templates_and_serves_its_files() {
        let dir = folder(&[
            (
                "templates/pages/login.html",
                "{{ t(\"Connexion\") }} académie",
            ),
            ("templates/mail/en/confirm_email.txt", "Hello"),
            ("static/theme.css", ":root { --accent: #6e445a; }"),
            ("static/logo.svg", "<svg/>"),
        ]);
        let theme = read(dir.path(), KNOWN).unwrap();
        assert_eq!(theme.templates.len(), 2);
        assert_eq!(theme.files["theme.css"].0, "text/css; charset=utf-8");
        assert_eq!(theme.files["logo.svg"].0, "image/svg+xml");
    }

    #[test]
    fn a_typo_an_unparsable_template_or_a_strange_file_stops_the_start() {
        for (files, told) in [
            (
                &[("templates/pages/logn.html", "x")][..],
                "theme template pages/logn.html: Clef has no template of that name",
            ),
            (
                &[("templates/pages/login.html", "{% if %}")][..],
                "theme template pages/login.html",
            ),
            (
                &[("static/script.js", "alert(1)")][..],
                "theme file static/script.js: not one of the types served",
            ),
        ] {
            let dir = folder(files);
            let error = format!("{:#}", read(dir.path(), KNOWN).unwrap_err());
            assert!(error.contains(told), "{error}");
        }
        let missing = format!(
            "{:#}",
            read(Path::new("/nonexistent/theme"), KNOWN).unwrap_err()
        );
        assert!(missing.contains("no such folder"), "{missing}");
    }
}
