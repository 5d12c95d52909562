//! A database URL that never shows its password.

use std::fmt;

use super::Driver;

/// What replaces a password in anything shown.
const MASK: &str = "***";

/// A database URL (or a SQLite path). `Display` and `Debug` show it with the
/// password replaced by `***`; [`expose`](Self::expose) gives the real one,
/// for connecting only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    /// The password in every form it may appear in (as written and decoded).
    secrets: Vec<String>,
}

impl DatabaseUrl {
    /// Wraps a URL, finding its password: the `user:password@` part, a
    /// `password=` query parameter, or a libpq `password=` keyword.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        let url = url.into();
        let mut secrets = Vec::new();
        if let Ok(parsed) = url::Url::parse(&url) {
            if let Some(p) = parsed.password() {
                secrets.push(p.to_owned());
            }
            for (k, v) in parsed.query_pairs() {
                if k.eq_ignore_ascii_case("password") {
                    secrets.push(v.into_owned());
                }
            }
        }
        // By hand too, for URLs the parser refuses (a raw `#`, `/` or `?` in
        // the password) and for query values as written.
        if let Some((_, rest)) = url.split_once("://") {
            if let Some((userinfo, _)) = rest.rsplit_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                secrets.push(password.to_owned());
            }
            if let Some((_, query)) = rest.split_once('?') {
                for pair in query.split('&') {
                    if let Some((k, v)) = pair.split_once('=')
                        && k.eq_ignore_ascii_case("password")
                    {
                        secrets.push(v.to_owned());
                    }
                }
            }
        }
        // libpq's `host=... password=...` form.
        for part in url.split_whitespace() {
            if let Some((k, v)) = part.split_once('=')
                && k.eq_ignore_ascii_case("password")
            {
                secrets.push(v.trim_matches('\'').to_owned());
            }
        }
        let mut this = DatabaseUrl {
            url,
            secrets: Vec::new(),
        };
        for s in secrets {
            this.add_secret(&s);
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
        let mut url = url::Url::parse(&format!("{scheme}://localhost/"))
            .map_err(|e| format!("a valid URL base: {e}"))?;
        url.set_host(Some(host))
            .map_err(|e| format!("a host name or address ({e}): `{host}`"))?;
        url.set_port(port)
            .map_err(|()| "a host that takes a port".to_owned())?;
        if let Some(user) = user {
            url.set_username(user)
                .map_err(|()| "a host that takes a user".to_owned())?;
        }
        if let Some(password) = password {
            url.set_password(Some(password))
                .map_err(|()| "a host that takes a password".to_owned())?;
        }
        url.path_segments_mut()
            .map_err(|()| "a host that takes a database name".to_owned())?
            .clear()
            .push(database);
        let mut this = DatabaseUrl::new(String::from(url));
        if let Some(password) = password {
            this.add_secret(password);
        }
        Ok(this)
    }

    fn add_secret(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let decoded = percent_decode(secret);
        for s in [secret.to_owned(), decoded] {
            if !self.secrets.contains(&s) {
                self.secrets.push(s);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// The real URL, password included: pass it to the driver, never to a
    /// log.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password masked.
    pub fn redacted(&self) -> String {
        self.redact(&self.url)
    }

    /// `text` with every occurrence of this URL's password masked: for
    /// error messages that may quote what the driver was given.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), MASK);
        }
        out
    }

    /// Whether a password was found.
    pub fn has_password(&self) -> bool {
        !self.secrets.is_empty()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
