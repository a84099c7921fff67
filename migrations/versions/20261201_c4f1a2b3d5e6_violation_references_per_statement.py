"""violations' references checked once per statement on PostgreSQL: the seven FOREIGN KEY
constraints of ``violations`` (ticket, party, clause, standard, case, recorder, reviewer) become
statement-level triggers that check every written row in one set-based query, and triggers on
the referenced tables that refuse to delete or re-key a row a violation still points to;
two indexes fewer to write per violation (party_id alone, case_id of proposals)

A FOREIGN KEY checks each row with its own query: an import that proposes 168,000 violations
spent 5 to 6 s in those checks alone, more than writing the rows. The triggers hold the same
rule (a violation never points to a row that does not exist; a referenced row cannot go while
violations point to it) and raise the same error (SQLSTATE 23503, foreign_key_violation). SQLite
keeps its constraints: its imports are small.

Revision ID: c4f1a2b3d5e6
Revises: b02af599ab6a
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'c4f1a2b3d5e6'
down_revision = 'b02af599ab6a'
branch_labels = None
depends_on = None

# (constraint, column, referenced table, referenced column)
REFERENCES = [
    ("fk_violations_ticket_no_tickets", "ticket_no", "tickets", "ticket_no"),
    ("fk_violations_party_id_parties", "party_id", "parties", "id"),
    ("fk_violations_clause_id_clauses", "clause_id", "clauses", "id"),
    ("fk_violations_standard_id_standards", "standard_id", "standards", "id"),
    ("fk_violations_case_id_cases", "case_id", "cases", "id"),
    ("fk_violations_recorded_by_id_users", "recorded_by_id", "users", "id"),
    ("fk_violations_reviewed_by_id_users", "reviewed_by_id", "users", "id"),
]


def _written_check() -> str:
    checks = []
    for name, column, table, key in REFERENCES:
        checks.append(f"""
    SELECT n.{column} INTO missing FROM written n
     WHERE n.{column} IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{key} = n.{column}) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "violations" violates foreign key constraint "{name}"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}',
                  DETAIL = format('Key ({column})=(%s) is not present in table "{table}".', missing);
    END IF;""")
    return "".join(checks)


def _referenced_check(table: str) -> str:
    checks = []
    for name, column, target, key in REFERENCES:
        if target != table:
            continue
        checks.append(f"""
    SELECT o.{key} INTO missing FROM gone o
     WHERE EXISTS (SELECT 1 FROM violations v WHERE v.{column} = o.{key})
       AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{key} = o.{key}) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'update or delete on table "{table}" violates foreign key constraint "{name}" on table "violations"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}',
                  DETAIL = format('Key ({key})=(%s) is still referenced from table "violations".', missing);
    END IF;""")
    return "".join(checks)


def upgrade():
    # fewer indexes to write per proposal: party_id alone is the first column of
    # ix_violations_party_clause_incident; case_id only for violations that have a case
    with op.batch_alter_table("violations") as batch_op:
        batch_op.drop_index("ix_violations_party_id")
        batch_op.drop_index("ix_violations_case_id")
        batch_op.create_index("ix_violations_case_id", ["case_id"], unique=False,
                              postgresql_where=sa.text("case_id IS NOT NULL"),
                              sqlite_where=sa.text("case_id IS NOT NULL"))
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, *_ in REFERENCES:
        op.execute(f"ALTER TABLE violations DROP CONSTRAINT {name}")
    op.execute(f"""
CREATE FUNCTION violations_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing text;
BEGIN{_written_check()}
    RETURN NULL;
END $$""")
    for event in ("INSERT", "UPDATE"):
        op.execute(f"""
CREATE TRIGGER violations_references_on_{event.lower()} AFTER {event} ON violations
REFERENCING NEW TABLE AS written FOR EACH STATEMENT
EXECUTE FUNCTION violations_references_exist()""")
    for table in sorted({t for _n, _c, t, _k in REFERENCES}):
        op.execute(f"""
CREATE FUNCTION {table}_unreferenced_by_violations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing text;
BEGIN{_referenced_check(table)}
    RETURN NULL;
END $$""")
        op.execute(f"""
CREATE TRIGGER {table}_violations_references_on_delete AFTER DELETE ON {table}
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION {table}_unreferenced_by_violations()""")
        # keys are never changed; should one be, the row is checked alone (the WHEN clause
        # keeps the trigger out of every other update, the importer's million included)
        key = {k for _n, _c, t, k in REFERENCES if t == table}.pop()
        columns = [c for _n, c, t, _k in REFERENCES if t == table]
        referenced = " OR ".join(f"v.{c} = OLD.{key}" for c in columns)
        op.execute(f"""
CREATE FUNCTION {table}_key_kept_for_violations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM violations v WHERE {referenced}) THEN
        RAISE EXCEPTION 'update on table "{table}" changes a key still referenced from table "violations"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key ({key})=(%s) is still referenced from table "violations".', OLD.{key});
    END IF;
    RETURN NEW;
END $$""")
        op.execute(f"""
CREATE TRIGGER {table}_violations_references_on_update BEFORE UPDATE OF {key} ON {table}
FOR EACH ROW WHEN (OLD.{key} IS DISTINCT FROM NEW.{key})
EXECUTE FUNCTION {table}_key_kept_for_violations()""")


def downgrade():
    _downgrade_references()
    with op.batch_alter_table("violations") as batch_op:
        batch_op.drop_index("ix_violations_case_id")
        batch_op.create_index("ix_violations_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_violations_party_id", ["party_id"], unique=False)


def _downgrade_references():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in sorted({t for _n, _c, t, _k in REFERENCES}):
        for event in ("delete", "update"):
            op.execute(f"DROP TRIGGER {table}_violations_references_on_{event} ON {table}")
        op.execute(f"DROP FUNCTION {table}_unreferenced_by_violations()")
        op.execute(f"DROP FUNCTION {table}_key_kept_for_violations()")
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER violations_references_on_{event} ON violations")
    op.execute("DROP FUNCTION violations_references_exist()")
    for name, column, table, key in REFERENCES:
        op.execute(f"ALTER TABLE violations ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                   f"REFERENCES {table} ({key})")
