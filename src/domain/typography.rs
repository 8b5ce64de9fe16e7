//! French typography: the space before « : ; ! ? », inside « » and after a
//! number is one a line must not break at (Lexique des règles typographiques
//! en usage à l'Imprimerie nationale): without it, a narrow screen can start a
//! line with « » » or « ? » alone, or part « 3 » from « mois ».
//!
//! Clef's French is written with ordinary spaces, as its catalogue and its tests
//! read it; pages, mails and letters are typeset once, as they are rendered in
//! French. English text is left as it is.

/// No-break space: before « : », inside « ».
pub const NO_BREAK_SPACE: char = '\u{a0}';
/// Narrow no-break space: before « ; ! ? ».
pub const NARROW_NO_BREAK_SPACE: char = '\u{202f}';

/// French prose (a text mail, a letter's paragraph) with the spaces that
/// belong to its punctuation made unbreakable.
pub fn french_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    typeset(text, &mut out);
    out
}

/// A French HTML page or mail: its text is typeset as [`french_text`] does;
/// tags and their attributes, comments, and what `<script>`, `<style>`,
/// `<textarea>` and code (`<code>`, `<pre>`, `<kbd>`, `<samp>`) hold are
/// copied as they are.
pub fn french_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        typeset(&rest[..start], &mut out);
        rest = &rest[start..];
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map_or(rest.len(), |e| e + 3)
        } else {
            let tag_end = tag_end(rest);
            match raw_text_element(&rest[1..tag_end]) {
                Some(name) => closing_tag(rest, tag_end, name),
                None => tag_end,
            }
        };
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    typeset(rest, &mut out);
    out
}

/// Where the tag that `html` starts with ends (just past its `>`); a `>`
/// inside a quoted attribute value does not end it.
fn tag_end(html: &str) -> usize {
    let mut quote = None;
    for (i, b) in html.bytes().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return i + 1,
            _ => {}
        }
    }
    html.len()
}

/// The element whose content is not French prose, if `tag` opens one.
fn raw_text_element(tag: &str) -> Option<&'static str> {
    let name: String = tag
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ["script", "style", "textarea", "code", "pre", "kbd", "samp"]
        .into_iter()
        .find(|raw| *raw == name)
}

/// Just past `</name>` after `from`, or the end of `html`.
fn closing_tag(html: &str, from: usize, name: &str) -> usize {
    let closing = format!("</{name}");
    html[from..]
        .to_ascii_lowercase()
        .find(&closing)
        .map_or(html.len(), |at| {
            let at = from + at;
            at + tag_end(&html[at..])
        })
}

fn typeset(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    // Whether the word written last is a number (« 3 », « 1 700 », « 06 12 »).
    let mut number = false;
    while let Some(c) = chars.next() {
        match c {
            '«' => {
                out.push('«');
                if chars.peek() == Some(&' ') {
                    chars.next();
                    out.push(NO_BREAK_SPACE);
                }
                number = false;
            }
            ' ' => {
                let mut after = chars.clone();
                let space = match (after.next(), after.next()) {
                    (Some('»'), _) => NO_BREAK_SPACE,
                    (Some(':'), next) if ends_a_word(next) => NO_BREAK_SPACE,
                    (Some(';' | '!' | '?'), next) if ends_a_word(next) => NARROW_NO_BREAK_SPACE,
                    // A number stays with what it counts: « 3 mois », « 2 s », « 6 A ».
                    (Some(next), _) if number && !next.is_whitespace() => NO_BREAK_SPACE,
                    _ => ' ',
                };
                out.push(space);
                number = false;
            }
            c => {
                let starts_a_word = out
                    .chars()
                    .next_back()
                    .is_none_or(|last| last.is_whitespace() || matches!(last, '(' | '>' | '«'));
                number = c.is_ascii_digit() && (number || starts_a_word);
                out.push(c);
            }
        }
    }
}

/// Whether what follows a punctuation mark leaves it at the end of a word (a
/// space, the end, a closing mark), not inside a token such as ` :hover`.
fn ends_a_word(next: Option<char>) -> bool {
    next.is_none_or(|c| c.is_whitespace() || matches!(c, '»' | ')' | '.' | ',' | '<' | '!' | '?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_before_high_punctuation_and_inside_guillemets_do_not_break() {
        assert_eq!(
            french_text("Identifiant : jean.dupont ; « Mot de passe oublié ? » Voilà !"),
            "Identifiant\u{a0}: jean.dupont\u{202f}; «\u{a0}Mot de passe oublié\u{202f}?\u{a0}» Voilà\u{202f}!"
        );
    }

    #[test]
    fn a_number_stays_with_what_it_counts() {
        assert_eq!(
            french_text(
                "Patientez 2 s, soit 3 mois ; 1 700 élèves en 6 A (3 enfants) au 06 12 34 56 78."
            ),
            "Patientez 2\u{a0}s, soit 3\u{a0}mois\u{202f}; 1\u{a0}700\u{a0}élèves en 6\u{a0}A (3\u{a0}enfants) au 06\u{a0}12\u{a0}34\u{a0}56\u{a0}78."
        );
        for text in [
            "lea.martin2 est",
            "le 28/02/2027 au",
            "à 19:52 depuis",
            "n° 42",
            "2 ",
        ] {
            assert_eq!(french_text(text), text, "{text}");
        }
    }

    #[test]
    fn tokens_times_and_addresses_are_left_alone() {
        for text in [
            "à 19:52",
            "https://ent.example/?lang=fr",
            "a :hover b",
            "C'est ?a",
            "« ",
            "",
            "no space: here; nor here!",
        ] {
            assert_eq!(french_text(text), text.replace("« ", "«\u{a0}"), "{text}");
        }
    }

    #[test]
    fn html_is_typeset_between_tags_only() {
        let page = concat!(
            "<title>Erreur : compte</title>",
            "<p title=\"a : b\">Le champ « <strong>Identifiant</strong> » est obligatoire.</p>",
            "<input value=\"x ? y\" data-x='>' placeholder=\"z ! \">",
            "<!-- note : ici --><textarea>libre : texte</textarea>",
            "<script>a ? b : c</script><STYLE>a :hover{}</STYLE>",
            "Détail : <code lang=\"en\">error : x</code> Fin ?"
        );
        assert_eq!(
            french_html(page),
            concat!(
                "<title>Erreur\u{a0}: compte</title>",
                "<p title=\"a : b\">Le champ «\u{a0}<strong>Identifiant</strong>\u{a0}» est obligatoire.</p>",
                "<input value=\"x ? y\" data-x='>' placeholder=\"z ! \">",
                "<!-- note : ici --><textarea>libre : texte</textarea>",
                "<script>a ? b : c</script><STYLE>a :hover{}</STYLE>",
                "Détail\u{a0}: <code lang=\"en\">error : x</code> Fin\u{202f}?"
            )
        );
    }

    #[test]
    fn an_unclosed_tag_or_element_is_copied_to_the_end() {
        assert_eq!(french_html("a : <p class=\"x"), "a\u{a0}: <p class=\"x");
        assert_eq!(french_html("<script>x ? y"), "<script>x ? y");
        assert_eq!(french_html("<!-- a : b"), "<!-- a : b");
    }
}
