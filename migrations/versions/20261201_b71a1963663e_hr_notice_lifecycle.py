"""HR notice lifecycle: new, acknowledged, action recorded, closed, withdrawn; amendments,
escalation, the action's kind and reason, the proposed sanction and clauses on the notice,
and each notice's history; the ``hr_sanction`` penalty-rule kind

Existing notices: ``sent`` becomes ``new`` and ``actioned`` becomes ``action_recorded`` (its
free-text action is kept, of kind ``other``); each gets its department's share and the
clauses of its case, and a history built from what it recorded (sent, acknowledged, action).

Downgrading maps ``new`` back to ``sent`` and ``action_recorded``, ``closed`` and
``withdrawn`` to ``actioned`` (the old schema knows no more), and deletes ``hr_sanction``
rules (the text hash stored on a version that had one then no longer matches its text).

Revision ID: b71a1963663e
Revises: 86fd5fc54d26
Create Date: 2026-12-01 14:35:09.152948
"""
import json

import sqlalchemy as sa
from alembic import op

import portal.core.db

revision = 'b71a1963663e'
down_revision = '86fd5fc54d26'
branch_labels = None
depends_on = None

NEW_STATUSES = "('new', 'acknowledged', 'action_recorded', 'closed', 'withdrawn')"
OLD_STATUSES = "('sent', 'acknowledged', 'actioned')"
SANCTIONS = "('verbal_warning', 'training', 'written_warning', 'fine', 'demotion', 'dismissal')"
ACTIONS = ("('verbal_warning', 'training', 'written_warning', 'fine', 'demotion', 'dismissal', "
           "'no_action', 'other')")
NEW_KINDS = "('fixed_fine', 'tiered', 'time_limit', 'points', 'escalation', 'hr_sanction')"
OLD_KINDS = "('fixed_fine', 'tiered', 'time_limit', 'points', 'escalation')"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _swap_kind_check(kinds):
    # SQLite: batch mode rebuilds the table without the old CHECK (it is not reflected).
    with op.batch_alter_table('penalty_rules', schema=None) as batch_op:
        if not _sqlite():
            batch_op.drop_constraint(op.f('ck_penalty_rules_rulekind'), type_='check')
        batch_op.create_check_constraint('rulekind', f"kind IN {kinds}")


def upgrade():
    _swap_kind_check(NEW_KINDS)
    # 1. the new columns (the enum ones as plain strings: their CHECKs come in step 3), and
    #    no status CHECK while the values change
    with op.batch_alter_table('hr_notices', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(op.f('ck_hr_notices_noticestatus'), type_='check')
        batch_op.add_column(sa.Column('percent', sa.Integer(), server_default='100', nullable=False))
        batch_op.add_column(sa.Column('clauses_json', sa.Text(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('proposal', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('proposal_text', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('action_kind', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('action_reason', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('closed_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('amended_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('amendments', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('escalated_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_hr_notices_closed_by_id_users'), 'users', ['closed_by_id'], ['id'])
    # 2. the old statuses and the facts the notices now carry
    op.execute("UPDATE hr_notices SET status = 'new' WHERE status = 'sent'")
    op.execute("UPDATE hr_notices SET status = 'action_recorded', action_kind = 'other' "
               "WHERE status = 'actioned'")
    op.execute("UPDATE hr_notices SET percent = (SELECT s.percent FROM penalties p "
               "JOIN responsibility_shares s ON s.id = p.share_id "
               "WHERE p.id = hr_notices.penalty_id)")
    _clauses_of_existing_notices()
    # 3. the CHECKs of the status and the two enum columns
    with op.batch_alter_table('hr_notices', schema=None) as batch_op:
        batch_op.create_check_constraint('noticestatus', f"status IN {NEW_STATUSES}")
        batch_op.create_check_constraint('hrsanction', f"proposal IN {SANCTIONS}")
        batch_op.create_check_constraint('actionkind', f"action_kind IN {ACTIONS}")
    # 4. the history, after the rebuilds of hr_notices (it points at them)
    op.create_table('hr_notice_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('sent', 'acknowledged', 'action_recorded', 'closed', 'amended', 'carried_over', 'withdrawn', 'escalated', name='eventkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=120), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details_json', sa.Text(), nullable=False),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_hr_notice_events_actor_id_users')),
    sa.ForeignKeyConstraint(['notice_id'], ['hr_notices.id'], name=op.f('fk_hr_notice_events_notice_id_hr_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hr_notice_events'))
    )
    with op.batch_alter_table('hr_notice_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hr_notice_events_notice_id'), ['notice_id'], unique=False)
    _history_of_existing_notices()


def _clauses_of_existing_notices():
    """Each notice's clauses: its department's confirmed violations in the case, else all."""
    bind = op.get_bind()
    notices = bind.execute(sa.text("SELECT id, case_id, department_id FROM hr_notices")).all()
    for notice_id, case_id, department_id in notices:
        rows = bind.execute(sa.text(
            "SELECT DISTINCT v.party_id, c.number, c.title_zh, c.title_en, s.code, sv.number "
            "FROM violations v JOIN clauses c ON c.id = v.clause_id "
            "JOIN standard_versions sv ON sv.id = c.standard_version_id "
            "JOIN standards s ON s.id = sv.standard_id "
            "WHERE v.case_id = :case AND v.status = 'confirmed'"), {"case": case_id}).all()
        own = [r for r in rows if r[0] == department_id] or rows
        clauses = sorted({(f"{code} v{vno} §{number}", zh, en or "")
                          for _p, number, zh, en, code, vno in own})
        bind.execute(sa.text("UPDATE hr_notices SET clauses_json = :j WHERE id = :id"), {
            "id": notice_id, "j": json.dumps([{"label": label, "title_zh": zh, "title_en": en}
                                              for label, zh, en in clauses],
                                             ensure_ascii=False)})


def _history_of_existing_notices():
    """What each notice recorded, as its first history rows: sent, acknowledged, action."""
    bind = op.get_bind()
    insert = sa.text(
        "INSERT INTO hr_notice_events (notice_id, kind, actor_id, actor_name, ref, reason, "
        "details_json, created_at) VALUES (:n, :kind, :actor, :name, :ref, '', :d, :at)")
    rows = bind.execute(sa.text(
        "SELECT n.id, p.ruling_id, n.created_at, n.acknowledged_at, n.acknowledged_by_id, "
        "COALESCE(a.display_name, ''), n.actioned_at, n.actioned_by_id, "
        "COALESCE(b.display_name, ''), n.action_taken FROM hr_notices n "
        "JOIN penalties p ON p.id = n.penalty_id "
        "LEFT JOIN users a ON a.id = n.acknowledged_by_id "
        "LEFT JOIN users b ON b.id = n.actioned_by_id ORDER BY n.id")).all()
    for (notice_id, ruling_id, sent_at, acked_at, acked_by, acked_name, actioned_at,
         actioned_by, actioned_name, action) in rows:
        steps = [("sent", None, "", f"R-{ruling_id:06d}", {}, sent_at)]
        if acked_at is not None:
            steps.append(("acknowledged", acked_by, acked_name, "", {}, acked_at))
        if actioned_at is not None:
            steps.append(("action_recorded", actioned_by, actioned_name, "",
                          {"action_kind": "other", "action_taken": action}, actioned_at))
        for kind, actor, name, ref, details, at in steps:
            bind.execute(insert, {"n": notice_id, "kind": kind, "actor": actor, "name": name,
                                  "ref": ref, "d": json.dumps(details, ensure_ascii=False),
                                  "at": at})


def downgrade():
    with op.batch_alter_table('hr_notice_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hr_notice_events_notice_id'))
    op.drop_table('hr_notice_events')
    with op.batch_alter_table('hr_notices', schema=None, recreate='always') as batch_op:
        for name in ('noticestatus', 'hrsanction', 'actionkind'):
            batch_op.drop_constraint(op.f(f'ck_hr_notices_{name}'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_hr_notices_closed_by_id_users'), type_='foreignkey')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('amendments')
        batch_op.drop_column('amended_at')
        batch_op.drop_column('withdrawn_at')
        batch_op.drop_column('closed_by_id')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('action_reason')
        batch_op.drop_column('action_kind')
        batch_op.drop_column('proposal_text')
        batch_op.drop_column('proposal')
        batch_op.drop_column('clauses_json')
        batch_op.drop_column('percent')
    op.execute("UPDATE hr_notices SET status = 'sent' WHERE status = 'new'")
    op.execute("UPDATE hr_notices SET status = 'actioned' "
               "WHERE status IN ('action_recorded', 'closed', 'withdrawn')")
    with op.batch_alter_table('hr_notices', schema=None) as batch_op:
        batch_op.create_check_constraint('noticestatus', f"status IN {OLD_STATUSES}")
    op.execute("DELETE FROM penalty_rules WHERE kind = 'hr_sanction'")
    _swap_kind_check(OLD_KINDS)
