//! Reading migration SQL just far enough to split it into statements and
//! name each one by its first words, across SQLite's, PostgreSQL's and
//! MySQL's lexical rules: `--` and nested `/* */` comments, quoted strings
//! (`''` doubled, and backslash escapes in `E''` strings), quoted
//! identifiers (`""` and backquotes), PostgreSQL's dollar quotes, and the
//! `BEGIN … END` bodies of triggers and routines, whose `;` do not end the
//! statement. It does not parse SQL, and needs no dialect.
//!
//! `embed_sql!` uses it at build time, and the registry for SQL listed by
//! hand, to refuse a migration that would end the transaction it runs in.

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
            "ROLLBACK" => word(1) != "TO",
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

/// The first statement of `sql` that starts, ends or commits a
/// transaction (see [`Statement::controls_the_transaction`]).
pub fn transaction_control(sql: &str) -> Option<Statement> {
    statements(sql)
        .into_iter()
        .find(Statement::controls_the_transaction)
}

/// Whether `sql` ends inside a statement that has no `;` yet (comments
/// after the last `;` do not count): what follows it must start with one.
pub fn ends_unterminated(sql: &str) -> bool {
    let mut lexer = Lexer {
        chars: sql.char_indices().peekable(),
        sql,
        line: 1,
    };
    let mut open = false;
    while let Some(token) = lexer.next_token() {
        open = !matches!(token, Token::Semicolon);
    }
    open
}

/// The statements of `sql`, in order: empty ones (`;;`, comments alone)
/// are left out.
pub fn statements(sql: &str) -> Vec<Statement> {
    let mut lexer = Lexer {
        chars: sql.char_indices().peekable(),
        sql,
        line: 1,
    };
    let mut statements = Vec::new();
    let mut current: Option<Statement> = None;
    // Inside the body of a trigger or routine: how deep, and whether an
    // `END` waits to see the word after it.
    let (mut routine, mut depth, mut pending_end) = (false, 0usize, false);
    while let Some(token) = lexer.next_token() {
        match token {
            Token::Semicolon | Token::Other => {
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
    /// Anything else: punctuation, numbers, quoted text.
    Other,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    sql: &'a str,
    line: usize,
}

impl Lexer<'_> {
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
                '-' if self.sql[start..].starts_with("--") => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '/' if self.sql[start..].starts_with("/*") => {
                    self.bump();
                    self.bump();
                    // PostgreSQL nests block comments.
                    let mut depth = 1;
                    while depth > 0 {
                        match self.bump() {
                            None => break,
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                depth -= 1;
                            }
                            Some('/') if self.peek() == Some('*') => {
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
                '\'' | '"' | '`' => {
                    self.bump();
                    self.quoted(c, false);
                    return Some(Token::Other);
                }
                '$' => {
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
                    return Some(Token::Other);
                }
                c if c.is_alphanumeric() || c == '_' => {
                    let line = self.line;
                    let mut word = String::new();
                    while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                        word.push(c);
                        self.bump();
                    }
                    // `E'…'`: PostgreSQL's string with backslash escapes.
                    if word.eq_ignore_ascii_case("e") && self.peek() == Some('\'') {
                        self.bump();
                        self.quoted('\'', true);
                        return Some(Token::Other);
                    }
                    if word.starts_with(|c: char| c.is_ascii_digit()) {
                        return Some(Token::Other);
                    }
                    return Some(Token::Word(word.to_uppercase(), line));
                }
                _ => {
                    self.bump();
                    return Some(Token::Other);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(sql: &str) -> Vec<String> {
        statements(sql).iter().map(Statement::head).collect()
    }

    fn control(sql: &str) -> Option<(usize, String)> {
        transaction_control(sql).map(|s| (s.line, s.head()))
    }

    #[test]
    fn statements_are_split_at_semicolons_outside_quotes_and_comments() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- COMMIT;\n/* ROLLBACK; /* nested; */ */\nINSERT INTO \"we;ird\" VALUES ('it''s; COMMIT');\nSELECT $$ COMMIT; $$, $f$ ; $f$, $1;";
        assert_eq!(
            heads(sql),
            ["CREATE TABLE A X", "INSERT INTO VALUES", "SELECT"]
        );
        assert_eq!(control(sql), None);
    }

    #[test]
    fn a_text_ends_unterminated_only_after_a_statement_without_its_semicolon() {
        assert!(ends_unterminated("SELECT 1"));
        assert!(ends_unterminated("SELECT 1; SELECT ';'"));
        assert!(!ends_unterminated("SELECT 1;"));
        assert!(!ends_unterminated("SELECT 1;\n-- done\n/* ; */"));
        assert!(!ends_unterminated("  -- nothing\n"));
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
    }
}
