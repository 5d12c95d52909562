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
    /// Why drivers may read it differently ([`DatabaseUrl::problem`]).
    problem: Option<&'static str>,
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
    /// Why drivers may read it differently, if they may.
    problem: Option<&'static str>,
}

impl Parsed {
    fn plain(shown: String, secrets: Vec<String>) -> Parsed {
        Parsed {
            shown,
            secrets,
            problem: None,
        }
    }
}

/// Why a query is ambiguous where it follows a secret with what is not a
/// connection parameter: the secret's tail after a raw `&`, it seems.
const TAIL: &str =
    "a parameter after a secret one is not a connection parameter (a raw `&` in the secret?)";

/// `scheme://[user[:password]@]host[:port][/path][?query][#fragment]`, as
/// RFC 3986 reads it: the authority ends at the first `/`, `?` or `#`, and
/// its user information at its last `@`; the query's `key=value` pairs are
/// split at `&`.
///
/// A password holding a raw `@`, `/`, `?` or `#` is where drivers part
/// ways (libpq ends the user information at the *first* `@` or `/`, and its
/// errors then quote pieces of the password as a host or a port). Such a
/// URL, where an `@` stands anywhere but in the authority or in a query
/// value, has a [`problem`](DatabaseUrl::problem): it is shown as
/// `scheme://***` and refused before any driver sees it.
fn parse_url(scheme: &str, rest: &str) -> Parsed {
    let masked = |problem| Parsed {
        shown: format!("{scheme}://{MASK}"),
        secrets: vec![rest.to_owned()],
        problem: Some(problem),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut secrets = Vec::new();
    let mut shown = format!("{scheme}://");
    let host = match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains('@') => {
            return masked("its user information holds a raw `@`");
        }
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    secrets.push(password.to_owned());
                    shown += &format!("{user}:{MASK}@");
                }
                None => shown += &format!("{userinfo}@"),
            }
            host
        }
        None => authority,
    };
    // A port that is not a number is a password without its `@`, or the
    // head of one holding a raw `/`, `?` or `#`.
    if !host.split(',').all(host_and_port) {
        return masked("its host and port are not `host[:port]`");
    }
    shown += host;
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };
    let raw = "a raw `/`, `?` or `#` stands before an `@`";
    if path.contains('@') || fragment.is_some_and(|f| f.contains('@')) {
        return masked(raw);
    }
    shown += path;
    if let Some(query) = query {
        let mut pairs = Vec::new();
        let mut after_secret = false;
        for pair in query.split('&') {
            pairs.push(match pair.split_once('=') {
                // A user's password holding a raw `?`.
                Some((key, _)) if key.contains('@') => return masked(raw),
                Some((key, value)) => {
                    let key_text = percent_decode_str(key).decode_utf8_lossy();
                    if is_secret_key(&key_text) {
                        after_secret = true;
                        secrets.push(value.to_owned());
                        format!("{key}={MASK}")
                    } else if is_parameter(&key_text) {
                        pair.to_owned()
                    } else if value.contains('@') {
                        // A user's password holding a raw `?`.
                        return masked(raw);
                    } else if after_secret {
                        return masked(TAIL);
                    } else {
                        pair.to_owned()
                    }
                }
                // Not a parameter: the tail of a value that held a raw `&`.
                None if pair.contains('@') => return masked(raw),
                None if after_secret => return masked(TAIL),
                None if pair.is_empty() => String::new(),
                None => {
                    secrets.push(pair.to_owned());
                    MASK.to_owned()
                }
            });
        }
        shown.push('?');
        shown += &pairs.join("&");
    }
    // Drivers have no use for a fragment: it can only be the tail of a
    // value that held a raw `#`.
    if let Some(fragment) = fragment {
        secrets.push(fragment.to_owned());
        shown.push('#');
        shown += MASK;
    }
    Parsed::plain(shown, secrets)
}

/// A path, or what may be a URL without its scheme: whatever stands
/// before the last `@` may be a user's password, and whatever follows the
/// first `?` may hold one (where there is an `@` or an `=`). Both are
/// masked; what is shown is what stands between.
fn parse_other(text: &str) -> Parsed {
    let start = text.rfind('@').map_or(0, |at| at + 1);
    let query = text.find('?').filter(|_| start > 0 || text.contains('='));
    let end = query.unwrap_or(text.len()).max(start);
    let mut secrets = Vec::new();
    let mut shown = String::new();
    if start > 0 {
        secrets.push(text[..start - 1].to_owned());
        shown += &format!("{MASK}@");
    }
    shown += &text[start..end];
    if let Some(q) = query {
        secrets.push(text[q + 1..].to_owned());
        shown += &format!("?{MASK}");
    }
    Parsed::plain(shown, secrets)
}

/// Whether `key` is a connection parameter libpq or diesel's MySQL
/// connection knows (what may follow a secret in a URL's query).
fn is_parameter(key: &str) -> bool {
    const KNOWN: &[&str] = &[
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "passfile",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
        "ssl_mode",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "unix_socket",
    ];
    KNOWN.contains(&key.to_ascii_lowercase().as_str())
}

/// Whether `text` is `host`, `host:port` or `[v6]`, `[v6]:port` (one of a
/// comma-separated list, as libpq takes several), with a port of digits.
fn host_and_port(text: &str) -> bool {
    let port = match text.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((_, "")) => return true,
            Some((_, rest)) => rest.strip_prefix(':'),
            None => None,
        },
        None => match text.split_once(':') {
            Some((_, port)) => Some(port),
            None => return true,
        },
    };
    port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
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

/// libpq's keyword form, masked; `None` when `text` does not start like it
/// (a keyword of letters, digits and `_`, then `=`).
fn parse_keyword_form(text: &str) -> Option<Parsed> {
    let keyword =
        |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let first = text
        .trim_start()
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()?;
    if !keyword(first) || !text.contains('=') {
        return None;
    }
    let Some(pairs) = parse_keywords(text).filter(|p| p.iter().all(|k| keyword(k.key))) else {
        // libpq refuses it too; what it holds cannot be told apart.
        return Some(Parsed::plain(
            "(a keyword connection string that does not parse, not shown)".to_owned(),
            vec![text.to_owned()],
        ));
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
    Some(Parsed::plain(shown.join(" "), secrets))
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
        // A URL is whatever has a `://` after a first word without spaces
        // or `=` (`jdbc:postgresql://` included, so that nothing with a
        // URL's shape escapes masking); a `://` inside a keyword's value
        // does not make one.
        let parsed = match url.split_once("://") {
            Some((scheme, rest))
                if !scheme.is_empty()
                    && !scheme.contains(|c: char| c == '=' || c.is_whitespace()) =>
            {
                if scheme.eq_ignore_ascii_case("sqlite") || scheme.eq_ignore_ascii_case("file") {
                    // A path (`sqlite://file:app.db?mode=ro`), not a host.
                    let Parsed {
                        shown,
                        secrets,
                        problem,
                    } = parse_other(rest);
                    Parsed {
                        shown: format!("{scheme}://{shown}"),
                        secrets,
                        problem,
                    }
                } else {
                    parse_url(scheme, rest)
                }
            }
            _ => parse_keyword_form(&url).unwrap_or_else(|| parse_other(&url)),
        };
        let mut this = DatabaseUrl {
            url,
            shown: parsed.shown,
            secrets: Vec::new(),
            problem: parsed.problem,
        };
        for secret in parsed.secrets {
            this.add_secret(&secret);
        }
        this
    }

    /// Why this URL is refused before connecting, if it is: a password
    /// holding a raw `@`, `/`, `?` or `#`, which drivers read differently
    /// (percent-encode it: `@` is `%40`, `/` is `%2F`, `?` is `%3F`, `#` is
    /// `%23`).
    pub fn problem(&self) -> Option<&'static str> {
        self.problem
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
