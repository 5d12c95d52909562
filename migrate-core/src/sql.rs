//! Reading migration SQL just far enough to split it into statements and
//! name each one by its first words: `--` and nested `/* */` comments,
//! quoted strings (`''` doubled), quoted identifiers (`""` and backquotes),
//! PostgreSQL's dollar quotes and `E''` strings, and the `BEGIN … END`
//! bodies of triggers and routines, whose `;` do not end the statement. It
//! does not parse SQL. The [`Dialect`]s differ in comments and quotes:
//! PostgreSQL's nested comments and dollar quotes, MySQL's backslash
//! escapes and `#` comments.
//!
//! `embed_sql!` uses it at build time, and the registry for SQL listed by
//! hand, to refuse a migration that every dialect reads as ending the
//! transaction it runs in (or that holds a client's `DELIMITER` command);
//! before steps run, the executor refuses what the connection's own
//! dialect reads so.

/// How a database reads the text between statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: block comments nest, `$tag$` quotes text, `E''` strings
    /// take backslash escapes, and names may hold `$` after their first
    /// character.
    Postgres,
    /// SQLite: block comments do not nest, and a backslash is an ordinary
    /// character.
    Sqlite,
    /// MySQL and MariaDB: block comments do not nest, `#` starts a comment
    /// that runs to the end of the line, a backslash escapes the next
    /// character in `''` and `""` strings, and names may hold `$`.
    MySql,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::Sqlite, Dialect::MySql];
}

/// A statement of an SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The line it starts on, from 1.
    pub line: usize,
    /// Its first words (at most four), in upper case: `["COMMIT"]`,
    /// `["CREATE", "TABLE", "T"]`. Quoted text and punctuation are not
    /// words.
    pub words: Vec<String>,
}

impl Statement {
    /// Whether it starts, ends or commits a transaction: `BEGIN`, `START
    /// TRANSACTION`, `COMMIT`, `END`, `ROLLBACK` (but `ROLLBACK TO` a
    /// savepoint), `ABORT`, `PREPARE TRANSACTION` and `SET autocommit`.
    /// MariaDB's `BEGIN NOT ATOMIC` is a block, not a transaction.
    pub fn controls_the_transaction(&self) -> bool {
        let word = |i: usize| self.words.get(i).map_or("", String::as_str);
        match word(0) {
            "BEGIN" => word(1) != "NOT",
            "COMMIT" | "END" | "ABORT" => true,
            // `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] s` is not.
            "ROLLBACK" => {
                let to = if matches!(word(1), "WORK" | "TRANSACTION") {
                    2
                } else {
                    1
                };
                word(to) != "TO"
            }
            "START" => word(1) == "TRANSACTION",
            "PREPARE" => word(1) == "TRANSACTION",
            "SET" => (1..=2).any(|i| word(i) == "AUTOCOMMIT"),
            _ => false,
        }
    }

    /// The statement's first words, as written in messages.
    pub fn head(&self) -> String {
        self.words.join(" ")
    }
}

/// The first statement of `sql`, read in `dialect`, that starts, ends or
/// commits a transaction (see [`Statement::controls_the_transaction`]).
pub fn transaction_control(sql: &str, dialect: Dialect) -> Option<Statement> {
    statements(sql, dialect)
        .into_iter()
        .find(Statement::controls_the_transaction)
}

/// [`transaction_control`] as every dialect reads it (the first dialect's
/// statement): what is refused before the backend is known. Text that
/// only one dialect reads so (a backslash before a quote, a `#`) is
/// refused by the executor once it knows the connection's.
pub fn transaction_control_in_every_dialect(sql: &str) -> Option<Statement> {
    let mut found = Dialect::ALL.map(|d| transaction_control(sql, d));
    if found.iter().all(Option::is_some) {
        found[0].take()
    } else {
        None
    }
}

/// The first statement of `sql` that every dialect reads as the mysql
/// client's `DELIMITER` command, which no server runs.
pub fn client_command(sql: &str) -> Option<Statement> {
    let mut found = Dialect::ALL.map(|d| {
        statements(sql, d)
            .into_iter()
            .find(|s| s.words.first().is_some_and(|w| w == "DELIMITER"))
    });
    if found.iter().all(Option::is_some) {
        found[0].take()
    } else {
        None
    }
}

/// Whether `sql`, read in `dialect`, ends inside a statement that has no
/// `;` yet (comments after the last `;` do not count): what follows it
/// must start with one.
pub fn ends_unterminated(sql: &str, dialect: Dialect) -> bool {
    let mut lexer = Lexer::new(sql, dialect);
    let mut open = false;
    while let Some(token) = lexer.next_token() {
        open = !matches!(token, Token::Semicolon);
    }
    open
}

/// The words that make a `CREATE` statement create something other than a
/// trigger or routine, whatever it is named (`CREATE TABLE event`).
const NOT_A_ROUTINE: [&str; 11] = [
    "TABLE",
    "INDEX",
    "VIEW",
    "SEQUENCE",
    "TYPE",
    "SCHEMA",
    "DATABASE",
    "DOMAIN",
    "EXTENSION",
    "RULE",
    "POLICY",
];

/// The statements of `sql`, read in `dialect`, in order: empty ones (`;;`,
/// comments alone) are left out.
pub fn statements(sql: &str, dialect: Dialect) -> Vec<Statement> {
    let mut lexer = Lexer::new(sql, dialect);
    let mut statements = Vec::new();
    let mut current: Option<Statement> = None;
    // Inside the body of a trigger or routine: how deep, and whether an
    // `END` waits to see the word after it.
    let (mut routine, mut depth, mut pending_end) = (false, 0usize, false);
    // Whether the token before was `,`, `.` or `(`: a `BEGIN` or `END`
    // after one is a name (`SELECT start, end FROM r`).
    let mut after_punctuation = false;
    while let Some(token) = lexer.next_token() {
        let named = std::mem::replace(
            &mut after_punctuation,
            matches!(token, Token::Other(Some(',' | '.' | '('))),
        );
        match token {
            Token::Semicolon | Token::Other(_) => {
                if pending_end {
                    depth = depth.saturating_sub(1);
                    pending_end = false;
                }
                if matches!(token, Token::Semicolon) && depth == 0 {
                    statements.extend(current.take());
                    routine = false;
                }
            }
            Token::Word(word, line) => {
                let statement = current.get_or_insert_with(|| Statement {
                    line,
                    words: Vec::new(),
                });
                let first = statement.words.is_empty();
                if statement.words.len() < 4 {
                    statement.words.push(word.clone());
                }
                if first {
                    // `BEGIN NOT ATOMIC … END` (MariaDB) is a block.
                    routine = false;
                }
                if statement.words.first().is_some_and(|w| w == "CREATE")
                    && matches!(
                        word.as_str(),
                        "TRIGGER" | "FUNCTION" | "PROCEDURE" | "EVENT"
                    )
                    && !statement
                        .words
                        .iter()
                        .any(|w| NOT_A_ROUTINE.contains(&w.as_str()))
                {
                    routine = true;
                }
                if statement.words.len() == 2
                    && statement.words[0] == "BEGIN"
                    && statement.words[1] == "NOT"
                {
                    routine = true;
                    depth += 1;
                }
                if !routine {
                    continue;
                }
                if pending_end {
                    pending_end = false;
                    match word.as_str() {
                        // `END IF`, `END LOOP` …: blocks that were not counted.
                        "IF" | "LOOP" | "WHILE" | "REPEAT" => continue,
                        "CASE" => {
                            depth = depth.saturating_sub(1);
                            continue;
                        }
                        _ => depth = depth.saturating_sub(1),
                    }
                }
                match word.as_str() {
                    _ if named => {}
                    "BEGIN" | "CASE" => depth += 1,
                    "END" if depth > 0 => pending_end = true,
                    _ => {}
                }
            }
        }
    }
    statements.extend(current);
    statements
}

enum Token {
    /// A word, upper-cased, with the line it is on.
    Word(String, usize),
    Semicolon,
    /// Anything else: punctuation (the character), numbers and quoted
    /// text (`None`).
    Other(Option<char>),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    sql: &'a str,
    line: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str, dialect: Dialect) -> Lexer<'a> {
        Lexer {
            chars: sql.char_indices().peekable(),
            sql,
            line: 1,
            dialect,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    /// Skips to the end of a quoted text opened by `quote` (already read):
    /// a doubled quote stands for itself, and with `backslash` a backslash
    /// escapes the next character.
    fn quoted(&mut self, quote: char, backslash: bool) {
        while let Some(c) = self.bump() {
            if backslash && c == '\\' {
                self.bump();
            } else if c == quote {
                if self.peek() == Some(quote) {
                    self.bump();
                } else {
                    return;
                }
            }
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        loop {
            let (start, c) = *self.chars.peek()?;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                // `--`, and MySQL's `#`, comment to the end of the line.
                c if (c == '-' && self.sql[start..].starts_with("--"))
                    || (c == '#' && self.dialect == Dialect::MySql) =>
                {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '/' if self.sql[start..].starts_with("/*") => {
                    self.bump();
                    self.bump();
                    // PostgreSQL nests block comments.
                    let nests = self.dialect == Dialect::Postgres;
                    let mut depth = 1;
                    while depth > 0 {
                        match self.bump() {
                            None => break,
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                depth -= 1;
                            }
                            Some('/') if nests && self.peek() == Some('*') => {
                                self.bump();
                                depth += 1;
                            }
                            Some(_) => {}
                        }
                    }
                }
                ';' => {
                    self.bump();
                    return Some(Token::Semicolon);
                }
                '\'' | '"' => {
                    self.bump();
                    self.quoted(c, self.dialect == Dialect::MySql);
                    return Some(Token::Other(None));
                }
                '`' => {
                    self.bump();
                    self.quoted(c, false);
                    return Some(Token::Other(None));
                }
                '$' if self.dialect == Dialect::Postgres => {
                    self.bump();
                    // `$tag$ … $tag$`, the tag empty or an identifier; `$1`
                    // is a parameter.
                    let rest = &self.sql[start + 1..];
                    let tag_len = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let tag = &rest[..tag_len];
                    if rest[tag_len..].starts_with('$')
                        && !tag.starts_with(|c: char| c.is_ascii_digit())
                    {
                        let delimiter = format!("${tag}$");
                        for _ in 0..=tag.chars().count() {
                            self.bump();
                        }
                        let body_start = start + delimiter.len();
                        match self.sql[body_start..].find(&delimiter) {
                            Some(end) => {
                                let stop = body_start + end + delimiter.len();
                                while self.chars.peek().is_some_and(|&(i, _)| i < stop) {
                                    self.bump();
                                }
                            }
                            None => while self.bump().is_some() {},
                        }
                    }
                    return Some(Token::Other(None));
                }
                c if c.is_alphanumeric() || c == '_' => {
                    let line = self.line;
                    let mut word = String::new();
                    // Every dialect takes `$` after a name's first character.
                    while let Some(c) = self
                        .peek()
                        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    {
                        word.push(c);
                        self.bump();
                    }
                    // `E'…'`: PostgreSQL's string with backslash escapes.
                    if self.dialect == Dialect::Postgres
                        && word.eq_ignore_ascii_case("e")
                        && self.peek() == Some('\'')
                    {
                        self.bump();
                        self.quoted('\'', true);
                        return Some(Token::Other(None));
                    }
                    if word.starts_with(|c: char| c.is_ascii_digit()) {
                        return Some(Token::Other(None));
                    }
                    return Some(Token::Word(word.to_uppercase(), line));
                }
                _ => {
                    self.bump();
                    return Some(Token::Other(Some(c)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements' heads, which every dialect must agree on.
    fn heads(sql: &str) -> Vec<String> {
        let [first, rest @ ..] = Dialect::ALL.map(|d| {
            statements(sql, d)
                .iter()
                .map(Statement::head)
                .collect::<Vec<_>>()
        });
        for other in rest {
            assert_eq!(first, other, "the dialects differ on {sql}");
        }
        first
    }

    /// What every dialect reads as transaction control (the build-time
    /// refusal).
    fn control(sql: &str) -> Option<(usize, String)> {
        transaction_control_in_every_dialect(sql).map(|s| (s.line, s.head()))
    }

    fn control_in(sql: &str, dialect: Dialect) -> Option<String> {
        transaction_control(sql, dialect).map(|s| s.head())
    }

    #[test]
    fn statements_are_split_at_semicolons_outside_quotes_and_comments() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- COMMIT;\n/* ROLLBACK; */\nINSERT INTO \"we;ird\" VALUES ('it''s; COMMIT');\nSELECT 1;";
        assert_eq!(
            heads(sql),
            ["CREATE TABLE A X", "INSERT INTO VALUES", "SELECT"]
        );
        assert_eq!(control(sql), None);
    }

    #[test]
    fn postgres_nests_comments_and_quotes_with_dollars_where_the_others_do_not() {
        let heads_in = |sql: &str, d: Dialect| -> Vec<String> {
            statements(sql, d).iter().map(Statement::head).collect()
        };
        let nested = "/* a /* b */ COMMIT; */ SELECT 1;";
        assert_eq!(heads_in(nested, Dialect::Postgres), ["SELECT"]);
        for d in [Dialect::Sqlite, Dialect::MySql] {
            assert_eq!(control_in(nested, d), Some("COMMIT".to_owned()), "{d:?}");
        }
        let dollars = "SELECT $$;\nCOMMIT; $$, $f$ ; $f$, $1;";
        assert_eq!(heads_in(dollars, Dialect::Postgres), ["SELECT"]);
        assert_eq!(
            control_in(dollars, Dialect::Sqlite),
            Some("COMMIT".to_owned())
        );
        // A `$` inside a name opens no dollar quote.
        let names = "CREATE TABLE t (a$b$ int);\nCOMMIT;\nCREATE TABLE u (c$b$ int);";
        assert_eq!(control(names), Some((2, "COMMIT".to_owned())));
    }

    #[test]
    fn a_text_ends_unterminated_only_after_a_statement_without_its_semicolon() {
        for dialect in Dialect::ALL {
            assert!(ends_unterminated("SELECT 1", dialect));
            assert!(ends_unterminated("SELECT 1; SELECT ';'", dialect));
            assert!(!ends_unterminated("SELECT 1;", dialect));
            assert!(!ends_unterminated("SELECT 1;\n-- done\n/* ; */", dialect));
            assert!(!ends_unterminated("  -- nothing\n", dialect));
        }
        // MySQL's `#` comment after the last `;`.
        assert!(!ends_unterminated("SELECT 1;\n# done", Dialect::MySql));
        // A backslash-escaped quote: MySQL's string goes on to the `;`.
        assert!(!ends_unterminated("SELECT 'it\\'s';", Dialect::MySql));
        assert!(ends_unterminated("SELECT 'it\\'s';", Dialect::Postgres));
    }

    #[test]
    fn mysql_backslash_escapes_and_hash_comments_are_read_as_mysql_reads_them() {
        // One string in MySQL; in PostgreSQL and SQLite the string ends at
        // `\'` and a real COMMIT follows.
        let escaped = "INSERT INTO t VALUES ('it\\'s; commit later');";
        assert_eq!(control_in(escaped, Dialect::MySql), None);
        assert_eq!(
            control_in(escaped, Dialect::Postgres),
            Some("COMMIT LATER".to_owned())
        );
        // Refused at build time only where every dialect agrees.
        assert_eq!(control(escaped), None);
        let hash = "# Begin: add users\nCREATE TABLE users (id INT);";
        assert_eq!(control_in(hash, Dialect::MySql), None);
        assert_eq!(control(hash), None);
        assert_eq!(
            control_in("CREATE TABLE a (x INT);\n# a note\nCOMMIT;", Dialect::MySql),
            Some("COMMIT".to_owned())
        );
        // Double quotes are strings in MySQL, with the same escapes.
        assert_eq!(
            control_in("SELECT \"a\\\"; COMMIT; \";", Dialect::MySql),
            None
        );
    }

    #[test]
    fn the_mysql_clients_delimiter_command_is_found() {
        let sql = "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;";
        assert_eq!(client_command(sql).map(|s| s.line), Some(1));
        assert_eq!(client_command("SELECT 'DELIMITER //';"), None);
    }

    #[test]
    fn transaction_control_is_found_with_its_line() {
        assert_eq!(
            control("CREATE TABLE a (x INT);\n\nCOMMIT;\nCREATE TABLE b (x INT);"),
            Some((3, "COMMIT".to_owned()))
        );
        assert_eq!(
            control("ROLLBACK; CREATE TABLE leaked (x INT);"),
            Some((1, "ROLLBACK".to_owned()))
        );
        assert_eq!(
            control("begin;\ncreate table t (x int);\ncommit;"),
            Some((1, "BEGIN".to_owned()))
        );
        for sql in [
            "START TRANSACTION",
            "END",
            "END TRANSACTION",
            "ABORT",
            "PREPARE TRANSACTION 'x'",
            "COMMIT PREPARED 'x'",
            "SET autocommit = 1",
            "SET @@session.autocommit = 0",
            "BEGIN IMMEDIATE",
        ] {
            assert!(control(sql).is_some(), "{sql}");
        }
    }

    #[test]
    fn savepoints_blocks_and_routine_bodies_are_not_transaction_control() {
        for sql in [
            "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT s;",
            "ROLLBACK WORK TO SAVEPOINT s; ROLLBACK TRANSACTION TO s; ROLLBACK TO s;",
            // SQLite trigger bodies.
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = n + 1; DELETE FROM c; END;\nINSERT INTO a VALUES (1);",
            // MySQL routines, with CASE and END IF inside.
            "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT CASE WHEN 1 THEN 2 END; END;\nSELECT 2;",
            // PostgreSQL bodies in dollar quotes, and BEGIN ATOMIC.
            "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN COMMIT; END $$ LANGUAGE plpgsql;",
            "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
            "DO $body$ BEGIN PERFORM 1; END $body$;",
            // MariaDB's anonymous block.
            "BEGIN NOT ATOMIC SELECT 1; END;",
            "SELECT E'\\' COMMIT; \\'';",
        ] {
            assert_eq!(control(sql), None, "{sql}");
        }
        assert_eq!(
            heads("CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = 1; END;\nCOMMIT;"),
            ["CREATE TRIGGER T AFTER", "COMMIT"]
        );
        assert!(control("ROLLBACK WORK; ROLLBACK TRANSACTION;").is_some());
    }

    #[test]
    fn begin_and_end_as_names_neither_open_nor_close_a_body() {
        // A column named `end` inside a procedure's body.
        assert_eq!(
            heads(
                "CREATE PROCEDURE p() BEGIN SELECT start, end FROM r; SELECT max(end) FROM r; END;\nCOMMIT;"
            ),
            ["CREATE PROCEDURE P BEGIN", "COMMIT"]
        );
        // A table named `event`, with columns `begin` and `end`, is no routine.
        assert_eq!(
            heads("CREATE TABLE event (begin INT, end INT);\nINSERT INTO event VALUES (1, 2);"),
            ["CREATE TABLE EVENT BEGIN", "INSERT INTO EVENT VALUES"]
        );
        assert_eq!(
            heads("CREATE TABLE event AS SELECT 1 AS begin;\nCOMMIT;"),
            ["CREATE TABLE EVENT AS", "COMMIT"]
        );
        assert_eq!(
            heads(
                "CREATE OR REPLACE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END;\nSELECT 1;"
            ),
            ["CREATE OR REPLACE TRIGGER", "SELECT"]
        );
    }
}
