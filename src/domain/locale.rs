//! The language Clef speaks to a person: French by default, English on request.
//!
//! The web layer settles it once per request (see `web::locale`) and serves the
//! request inside [`Locale::scope`]; pages and mails rendered while serving it read
//! [`Locale::current`], as a log line reads its span.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    Fr,
    En,
}

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    /// One language tag: `fr`, `fr-FR`, `en-GB`… (primary subtag, any case).
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("fr") {
            Some(Locale::Fr)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Locale::En)
        } else {
            None
        }
    }

    /// `ui_locales`: space-separated tags in order of preference; the first Clef speaks wins.
    pub fn from_ui_locales(list: &str) -> Option<Locale> {
        list.split_ascii_whitespace().find_map(Locale::from_tag)
    }

    /// `Accept-Language`: the spoken language with the highest q-value (earlier wins ties).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(Locale, f32)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(locale) = parts.next().and_then(Locale::from_tag) else {
                continue;
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((locale, q));
            }
        }
        best.map(|(locale, _)| locale)
    }

    /// A calendar date as the person reads it: « 03/02/2011 » in French, and
    /// in English « 3 February 2011 » (03/02 reads as 2 March to many).
    pub fn date(self, year: i32, month: u8, day: u8) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        match (self, MONTHS.get(usize::from(month).wrapping_sub(1))) {
            (Locale::En, Some(name)) => format!("{day} {name} {year:04}"),
            _ => format!("{day:02}/{month:02}/{year:04}"),
        }
    }

    /// The other language, offered by the link on every page.
    pub fn other(self) -> Locale {
        match self {
            Locale::Fr => Locale::En,
            Locale::En => Locale::Fr,
        }
    }
}

tokio::task_local! {
    static SPEAKING: Locale;
}

impl Locale {
    /// The language of the person being served (French outside a request).
    pub fn current() -> Locale {
        SPEAKING.try_with(|l| *l).unwrap_or_default()
    }

    /// Runs `work` speaking `self`.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        SPEAKING.scope(self, work).await
    }

    /// Runs `f` speaking `self` (tests, and work outside a request).
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        SPEAKING.sync_scope(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_locales_first_spoken_language_wins() {
        assert_eq!(Locale::from_ui_locales("de en-GB fr"), Some(Locale::En));
        assert_eq!(Locale::from_ui_locales("fr-CA en"), Some(Locale::Fr));
        assert_eq!(Locale::from_ui_locales("de es"), None);
        assert_eq!(Locale::from_ui_locales(""), None);
    }

    #[test]
    fn accept_language_follows_q_values() {
        assert_eq!(
            Locale::from_accept_language("en-US,en;q=0.9"),
            Some(Locale::En)
        );
        assert_eq!(
            Locale::from_accept_language("de, fr;q=0.5, en;q=0.8"),
            Some(Locale::En)
        );
        assert_eq!(
            Locale::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Some(Locale::Fr)
        );
        assert_eq!(
            Locale::from_accept_language("en;q=0, fr;q=0.1"),
            Some(Locale::Fr)
        );
        assert_eq!(Locale::from_accept_language("de;q=abc, *"), None);
    }
}
