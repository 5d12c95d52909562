//! A database URL that never shows its secrets.
//!
//! The URL is taken apart by its structure, as the drivers read it: a URL
//! (`scheme://user:password@host/db?key=value`), libpq's keyword form
//! (`host=h password='a b'`, with libpq's quoting), or a file path. What is
//! shown is rebuilt from those parts with every secret field replaced, so
//! nothing depends on finding the password's text in the output. Only
//! messages written by a driver or a server, which may quote what they were
//! given, are searched for the secrets' text, as a last line of defence,
//! and then only for whole words.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::Driver;

/// What replaces a secret in anything shown.
const MASK: &str = "***";

/// A database URL (or a SQLite path). `Display` and `Debug` show it with
/// every secret field replaced by `***`; [`expose`](Self::expose) gives the
/// real one, for connecting only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    /// The URL rebuilt with its secrets masked.
    shown: String,
    /// The secrets, as written and decoded, longest first.
    secrets: Vec<String>,
}

/// Whether a parameter named `key` carries a secret: libpq's `password`
/// and `sslpassword`, and whatever else is named like a password, a secret
/// or a token (MySQL's and other drivers' spellings included).
fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(key.as_str(), "pass" | "passwd" | "pwd")
        || ["password", "secret", "token"]
            .iter()
            .any(|word| key.contains(word))
}

/// The parts of a URL as shown, and its secrets as written.
struct Parsed {
    shown: String,
    secrets: Vec<String>,
}

/// `scheme://[user[:password]@]host[:port][/path][?query]`. The user
/// information ends at the *last* `@`, so that a password holding a raw
/// `@`, `/`, `?` or `#` is still masked whole (a query holding an `@`
/// then masks more than it must, never less).
fn parse_url(url: &str) -> Option<Parsed> {
    let (scheme, rest) = url.split_once("://")?;
    let mut secrets = Vec::new();
    let mut shown = format!("{scheme}://");
    let after_userinfo = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    secrets.push(password.to_owned());
                    shown += &format!("{user}:{MASK}@");
                }
                None => shown += &format!("{userinfo}@"),
            }
            after
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((base, query)) => {
            shown += base;
            shown.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, value))
                        if is_secret_key(&percent_decode_str(key).decode_utf8_lossy()) =>
                    {
                        secrets.push(value.to_owned());
                        format!("{key}={MASK}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            shown += &pairs.join("&");
        }
        None => shown += after_userinfo,
    }
    Some(Parsed { shown, secrets })
}

/// One `keyword = value` of libpq's keyword form: the keyword, the value as
/// written (quotes and escapes included) and as libpq reads it.
struct Keyword<'a> {
    key: &'a str,
    written: &'a str,
    value: String,
}

/// libpq's keyword form, read as libpq's `conninfo_parse` reads it:
/// keywords and values separated by whitespace, optional whitespace around
/// `=`, a value either single-quoted (where `\'` and `\\` escape) or bare
/// (ending at whitespace, `\` escaping the next character). `None` when it
/// does not parse (libpq refuses it too).
fn parse_keywords(text: &str) -> Option<Vec<Keyword<'_>>> {
    let bytes = text.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i == bytes.len() {
            return Some(pairs);
        }
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = &text[key_start..i];
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_space(i + 1);
        let value_start = i;
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => {
                        value.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = bytes.get(i) {
                if b.is_ascii_whitespace() {
                    break;
                }
                if b == b'\\'
                    && let Some(&next) = bytes.get(i + 1)
                {
                    value.push(next);
                    i += 2;
                    continue;
                }
                value.push(b);
                i += 1;
            }
        }
        // Escapes only remove ASCII backslashes before whole characters,
        // so the text stays UTF-8 (a lone backslash before a multi-byte
        // character keeps its bytes together).
        let value = String::from_utf8(value).ok()?;
        pairs.push(Keyword {
            key,
            written: &text[value_start..i],
            value,
        });
    }
}

fn parse_keyword_form(text: &str) -> Parsed {
    let Some(pairs) = parse_keywords(text) else {
        // libpq refuses it too; what it holds cannot be told apart.
        return Parsed {
            shown: "(a keyword connection string that does not parse, not shown)".to_owned(),
            secrets: vec![text.to_owned()],
        };
    };
    let mut secrets = Vec::new();
    let shown: Vec<String> = pairs
        .into_iter()
        .map(|pair| {
            if is_secret_key(pair.key) {
                secrets.push(pair.value);
                secrets.push(pair.written.to_owned());
                format!("{}={MASK}", pair.key)
            } else {
                format!("{}={}", pair.key, pair.written)
            }
        })
        .collect();
    Parsed {
        shown: shown.join(" "),
        secrets,
    }
}

/// The characters a URL's user, password or path segment must encode.
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b';')
    .add(b',')
    .add(b'$')
    .add(b'\'');

impl DatabaseUrl {
    /// Wraps a URL (or a libpq keyword string, or a SQLite path), taking it
    /// apart to find its secrets: a URL's password, and every secret
    /// parameter of its query or of the keyword form (`password`,
    /// `sslpassword`, ...).
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        let url = url.into();
        // A URL starts with its scheme (as libpq tells a URI from keywords);
        // a `://` inside a keyword's value does not make one.
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        let is_url = scheme.is_some_and(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        let parsed = if is_url {
            parse_url(&url)
        } else if url.contains('=') {
            Some(parse_keyword_form(&url))
        } else {
            None
        };
        let Parsed { shown, secrets } = parsed.unwrap_or_else(|| Parsed {
            shown: url.clone(),
            secrets: Vec::new(),
        });
        let mut this = DatabaseUrl {
            url,
            shown,
            secrets: Vec::new(),
        };
        for secret in secrets {
            this.add_secret(&secret);
        }
        this
    }

    /// Builds a server URL from its parts, percent-encoding each. The error
    /// says what was expected of the host.
    pub fn from_parts(
        driver: Driver,
        host: &str,
        port: Option<u16>,
        user: Option<&str>,
        password: Option<&str>,
        database: &str,
    ) -> Result<DatabaseUrl, String> {
        let scheme = match driver {
            Driver::Postgres => "postgres",
            Driver::Mysql => "mysql",
            Driver::Sqlite => return Ok(DatabaseUrl::new(database)),
        };
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~');
        let host = if !host.is_empty() && host.chars().all(plain) {
            host.to_owned()
        } else if host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{host}]")
        } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
            && inner.parse::<std::net::Ipv6Addr>().is_ok()
        {
            host.to_owned()
        } else {
            return Err(format!(
                "a host name or address (letters, digits, `.`, `-`, `_`, or an IPv6 address): `{host}`"
            ));
        };
        let encode = |part: &str| utf8_percent_encode(part, COMPONENT).to_string();
        let mut url = format!("{scheme}://");
        if let Some(user) = user {
            url += &encode(user);
            if let Some(password) = password {
                url += &format!(":{}", encode(password));
            }
            url.push('@');
        } else if let Some(password) = password {
            url += &format!(":{}@", encode(password));
        }
        url += &host;
        if let Some(port) = port {
            url += &format!(":{port}");
        }
        url += &format!("/{}", encode(database));
        let mut this = DatabaseUrl::new(url);
        if let Some(password) = password {
            this.add_secret(password);
        }
        Ok(this)
    }

    fn add_secret(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let decoded = percent_decode_str(secret).decode_utf8_lossy().into_owned();
        for s in [secret.to_owned(), decoded] {
            if !s.is_empty() && !self.secrets.contains(&s) {
                self.secrets.push(s);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// The real URL, secrets included: pass it to the driver, never to a
    /// log.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL rebuilt with every secret field masked (what `Display`
    /// shows).
    pub fn redacted(&self) -> String {
        self.shown.clone()
    }

    /// `text` with this URL's secrets masked: for messages a driver or a
    /// server wrote, which may quote what they were given. The URL itself,
    /// quoted whole, becomes its masked form; beyond that a secret's text
    /// is masked where it stands as a word of its own (a password `s` does
    /// not mangle `postgres`), and the masked form of the URL is left as
    /// it is (a password `postgres` does not mangle `postgres://`).
    pub fn redact(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_owned();
        }
        let text = text.replace(&self.url, &self.shown);
        text.split(self.shown.as_str())
            .map(|part| {
                let mut part = part.to_owned();
                for secret in &self.secrets {
                    part = mask_words(&part, secret);
                }
                part
            })
            .collect::<Vec<_>>()
            .join(&self.shown)
    }

    /// Whether a secret was found.
    pub fn has_password(&self) -> bool {
        !self.secrets.is_empty()
    }
}

/// `text` with each occurrence of `secret` that stands as a word of its own
/// replaced: the characters on either side, where the secret itself begins
/// or ends with a letter, digit or `_`, must not be one.
fn mask_words(text: &str, secret: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let starts_word = secret.chars().next().is_some_and(word);
    let ends_word = secret.chars().next_back().is_some_and(word);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + secret.len()..].chars().next();
        let inside_a_word =
            starts_word && before.is_some_and(word) || ends_word && after.is_some_and(word);
        out += &rest[..at];
        out += if inside_a_word { secret } else { MASK };
        rest = &rest[at + secret.len()..];
    }
    out + rest
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}
