-- db-migrate's Cart table, as a semver-named SQL migration.
CREATE TABLE "Cart" (
    id INTEGER PRIMARY KEY,
    userid INTEGER NOT NULL,
    productsid TEXT NOT NULL
);
