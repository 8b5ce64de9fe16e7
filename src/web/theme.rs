//! An academy's theme (SPEC §5): a folder (`theme_dir`) whose
//! `templates/` replace the binary's templates of the same name (the wording
//! of a page or a mail: `templates/pages/login.html`,
//! `templates/mail/confirm_email.txt`, `templates/mail/en/…`), and whose
//! `static/` files are served at `/theme/<name>`: `static/theme.css` is
//! linked from every page after Clef's own style (colours: `--accent`,
//! `--error`), `static/logo.svg` (or `.png`, `.jpg`, `.jpeg`, `.webp`) shown in the
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
    ("woff2", "font/woff2"),
];

/// Logos looked for, in this order.
const LOGOS: &[&str] = &["logo.svg", "logo.png", "logo.jpg", "logo.jpeg", "logo.webp"];

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
    let theme = read(dir, &known())?;
    verify(&theme, super::pages::TEMPLATES, super::pages::configure)?;
    verify(&theme, crate::delivery::mail::templates(), |_| {})?;
    Ok(theme)
}

fn known() -> Vec<&'static str> {
    super::pages::TEMPLATES
        .iter()
        .chain(crate::delivery::mail::templates())
        .map(|(name, _)| *name)
        .collect()
}

/// Clef's templates of one kind (`embedded`: the pages, or the mails), each
/// replaced by `theme`'s of the same name, in an environment `configure`
/// prepares (the pages' functions; nothing for mails).
pub(crate) fn environment<'a>(
    embedded: &[(&'static str, &'static str)],
    theme: Option<&'a Theme>,
    configure: fn(&mut minijinja::Environment<'a>),
) -> anyhow::Result<minijinja::Environment<'a>> {
    let mut env = minijinja::Environment::new();
    configure(&mut env);
    for (name, source) in embedded {
        let source = theme
            .and_then(|theme| theme.templates.get(*name))
            .map_or(*source, String::as_str);
        env.add_template(name, source)
            .with_context(|| format!("template {name}"))?;
    }
    Ok(env)
}

/// Renders the theme's templates of one kind among Clef's others, with
/// nothing in the context: a function, filter or test the kind lacks, or a
/// template it extends that does not exist, is told now rather than at every
/// page or mail.
fn verify<'a>(
    theme: &'a Theme,
    embedded: &[(&'static str, &'static str)],
    configure: fn(&mut minijinja::Environment<'a>),
) -> anyhow::Result<()> {
    let env = environment(embedded, Some(theme), configure)
        .map_err(|e| anyhow::anyhow!("theme {e:#}"))?;
    for (name, _) in embedded
        .iter()
        .filter(|(name, _)| theme.templates.contains_key(*name))
    {
        use minijinja::ErrorKind::*;
        if let Err(e) = env
            .get_template(name)
            .and_then(|t| t.render(minijinja::context! {}))
            && matches!(
                e.kind(),
                UnknownFunction
                    | UnknownFilter
                    | UnknownTest
                    | UnknownMethod
                    | TemplateNotFound
                    | SyntaxError
            )
        {
            anyhow::bail!("theme template {name}: {e}");
        }
    }
    Ok(())
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
            theme.templates.insert(name, source);
        }
    }
    let statics = dir.join("static");
    if statics.is_dir() {
        for entry in std::fs::read_dir(&statics).context("reading the theme's static folder")? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            // Served by name alone, at /theme/<name>: a folder would be ignored.
            anyhow::ensure!(
                path.is_file(),
                "theme static/{name}: a folder; put its files in static/ itself"
            );
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

/// The theme loaded at start, if any.
pub fn installed() -> Option<&'static Theme> {
    THEME.get()
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

    const PAGES: &[(&str, &str)] = &[
        (
            "pages/base.html",
            "<main>{% block content %}{% endblock %}</main>",
        ),
        ("pages/login.html", "{% extends \"pages/base.html\" %}"),
    ];
    const MAILS: &[(&str, &str)] = &[("mail/en/confirm_email.txt", "Hello {{ name }}")];

    /// `check` against these few templates.
    fn checked(dir: &Path) -> anyhow::Result<Theme> {
        let known: Vec<&str> = PAGES.iter().chain(MAILS).map(|(name, _)| *name).collect();
        let theme = read(dir, &known)?;
        verify(&theme, PAGES, super::super::pages::configure)?;
        verify(&theme, MAILS, |_| {})?;
        Ok(theme)
    }

    #[test]
    fn a_theme_replaces_known_templates_and_serves_its_files() {
        let dir = folder(&[
            (
                "templates/pages/login.html",
                "{% extends \"pages/base.html\" %}{% block content %}{{ t(\"Connexion\") }} académie{% endblock %}",
            ),
            (
                "templates/mail/en/confirm_email.txt",
                "Hello {{ name }}, welcome",
            ),
            ("static/theme.css", ":root { --accent: #6e445a; }"),
            ("static/logo.svg", "<svg/>"),
        ]);
        let theme = checked(dir.path()).unwrap();
        assert_eq!(theme.templates.len(), 2);
        assert_eq!(theme.files["theme.css"].0, "text/css; charset=utf-8");
        assert_eq!(theme.files["logo.svg"].0, "image/svg+xml");
    }

    #[test]
    fn a_typo_a_broken_template_or_a_strange_file_stops_the_start() {
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
                &[(
                    "templates/pages/login.html",
                    "{% extends \"pages/bse.html\" %}",
                )][..],
                "theme template pages/login.html",
            ),
            // `t` is the pages': a mail calling it would fail at every sending.
            (
                &[(
                    "templates/mail/en/confirm_email.txt",
                    "{{ t(\"Bonjour\") }}",
                )][..],
                "theme template mail/en/confirm_email.txt",
            ),
            (
                &[("static/script.js", "alert(1)")][..],
                "theme file static/script.js: not one of the types served",
            ),
            (
                &[("static/fonts/a.woff2", "")][..],
                "theme static/fonts: a folder",
            ),
        ] {
            let dir = folder(files);
            let error = format!("{:#}", checked(dir.path()).unwrap_err());
            assert!(error.contains(told), "{error}");
        }
        let missing = format!(
            "{:#}",
            checked(Path::new("/nonexistent/theme")).unwrap_err()
        );
        assert!(missing.contains("no such folder"), "{missing}");
    }
}
