"""The registry database's tables, as numbered migrations; ``PRAGMA user_version`` says which have run.

A migration is appended, never edited: a registry made by an older scratchcheck is brought up to date
when it is opened, one numbered step at a time, inside one transaction.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE entries (
                name TEXT PRIMARY KEY,
                content_hash TEXT NOT NULL UNIQUE,
                size INTEGER NOT NULL,
                added TEXT NOT NULL,
                source TEXT NOT NULL DEFAULT '',
                revision TEXT,
                license TEXT,
                params INTEGER NOT NULL DEFAULT 0,
                source_key TEXT,
                model_hash TEXT UNIQUE
            )""",
            "CREATE INDEX entries_by_source_key ON entries (source_key)",
            """CREATE TABLE parents (
                name TEXT NOT NULL REFERENCES entries (name) ON DELETE CASCADE,
                parent TEXT NOT NULL,
                PRIMARY KEY (name, parent)
            )""",
            """CREATE TABLE failures (
                source TEXT PRIMARY KEY,
                error TEXT NOT NULL,
                at TEXT NOT NULL
            )""",
        ],
    ),
    (
        2,
        [
            # The scan's candidate filter: normalised view shapes of every fingerprint (candidates.py).
            """CREATE TABLE shapes (
                key TEXT NOT NULL,
                name TEXT NOT NULL REFERENCES entries (name) ON DELETE CASCADE ON UPDATE CASCADE,
                PRIMARY KEY (key, name)
            ) WITHOUT ROWID""",
            "CREATE INDEX shapes_by_name ON shapes (name)",
        ],
    ),
    (
        3,
        [
            # The scan's screen: per entry and key, the sketches of screen.py (labels, float16 rows).
            # ``sketched`` is the version of an entry's sketches (SKETCH_VERSION; 0: none); the others
            # get theirs from their fingerprint file at the next scan (screen.sketch_file).
            """CREATE TABLE sketches (
                key TEXT NOT NULL,
                name TEXT NOT NULL REFERENCES entries (name) ON DELETE CASCADE ON UPDATE CASCADE,
                labels TEXT NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (key, name)
            )""",
            "CREATE INDEX sketches_by_name ON sketches (name)",
            "ALTER TABLE entries ADD COLUMN sketched INTEGER NOT NULL DEFAULT 0",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]
# The version of screen.py's sketches, kept in ``entries.sketched`` (0: none). Changing how sketches
# are made (their sizes, positions, keys) means raising it: entries holding another version are
# sketched again from their fingerprint files at the next scan.
SKETCH_VERSION = 1
