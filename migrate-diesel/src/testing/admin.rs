//! The test server's admin side, shared by PostgreSQL and MySQL: its URL
//! from the environment, a connection to it, and the URL of another
//! database on it.

use diesel::Connection;

/// The admin URL in `var` and a connection to it; unset, the error says
/// what to set (`server` names the server, `example` is a URL).
pub(super) fn connect<C: Connection>(
    var: &str,
    server: &str,
    example: &str,
) -> Result<(String, C), String> {
    let url = match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            return Err(format!(
                "{var} is not set: set it to the URL of a {server} server whose user may create databases, e.g. {example}"
            ));
        }
    };
    let conn = C::establish(&url)
        .map_err(|e| format!("cannot reach the {server} test server ({var}): {e}"))?;
    Ok((url, conn))
}

/// Runs `sql` on the admin connection; the error names the SQL.
pub(super) fn run<C: Connection>(conn: &mut C, sql: &str) -> Result<(), String> {
    conn.batch_execute(sql).map_err(|e| format!("{sql}: {e}"))
}

/// `admin` with its database replaced by `database`: the path of a
/// `scheme://…/db?params` URL. Other forms (key=value strings) are refused.
pub(super) fn with_database(admin: &str, database: &str) -> Result<String, String> {
    let Some((scheme, rest)) = admin.split_once("://") else {
        return Err(
            "the test server's admin URL must be a URL (`scheme://user@host:port/db`)".into(),
        );
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let mut url = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        let cases = [
            ("postgres://u:p@h:5/postgres", "postgres://u:p@h:5/t"),
            ("postgres://u@h", "postgres://u@h/t"),
            (
                "mysql://root@127.0.0.1:3306/?ssl-mode=DISABLED",
                "mysql://root@127.0.0.1:3306/t?ssl-mode=DISABLED",
            ),
            (
                "postgres://h/db?sslmode=disable&x=1",
                "postgres://h/t?sslmode=disable&x=1",
            ),
        ];
        for (admin, expected) in cases {
            assert_eq!(with_database(admin, "t").unwrap(), expected, "{admin}");
        }
        assert!(with_database("host=localhost dbname=x", "t").is_err());
    }
}
