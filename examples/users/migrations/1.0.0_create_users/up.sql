CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL
);

INSERT INTO users (id, first_name, last_name) VALUES
    (1, 'Ada', 'Lovelace'),
    (2, 'Grace', 'Hopper'),
    (3, 'Edsger', 'Dijkstra');
