"""The HR notice lifecycle migration keeps the notices already sent: their statuses mapped
(sent -> new, actioned -> action recorded), their share, clauses and history filled in."""
from __future__ import annotations

import json

from sqlalchemy import text

from tests.test_migrations import alembic_config, alembic_engine  # noqa: F401  (fixtures)

BEFORE = "86fd5fc54d26"
REVISION = "b71a1963663e"

ROWS = [
    ("INSERT INTO parties (id, code, name_zh, name_en, kind, active, version, created_at) VALUES "
    "(1, 'C001', '顺丰', '', 'carrier', true, 1, '2026-11-01 00:00:00'), "
    "(2, 'D001', '促销部', '', 'department', true, 1, '2026-11-01 00:00:00')"),
    ("INSERT INTO users (id, username, display_name, email, employee_no, password_hash, role, "
    "locale, timezone, active, created_at) VALUES (1, 'hr', '人事 赵', '', '', 'x', 'hr_officer', "
    "'zh_CN', 'Asia/Shanghai', true, '2026-11-01 00:00:00')"),
    ("INSERT INTO standards (id, code, title_zh, title_en, category, summary, created_at, "
    "version, ack_requires_training) VALUES "
    "(1, 'CAR-DLV', '配送标准', '', 'delivery', '', '2026-11-01 00:00:00', 1, false)"),
    ("INSERT INTO standard_versions (id, standard_id, number, status, effective_from, "
    "change_note, version, created_at, material, rejection_reason, retire_reason) VALUES "
    "(1, 1, 1, 'published', '2026-01-01', '', 1, '2026-11-01 00:00:00', true, '', '')"),
    ("INSERT INTO clauses (id, standard_version_id, position, number, title_zh, title_en, body, "
    "\"check\") VALUES (1, 1, 0, '1', '虚假签收反馈', 'False feedback', '', '')"),
    ("INSERT INTO cases (id, title, description, incident_at, status, version, created_at) "
    "VALUES (1, 't', '', '2026-11-01 00:00:00', 'ruled', 1, '2026-11-01 00:00:00')"),
    ("INSERT INTO violations (id, case_id, clause_id, party_id, occurrences, evidence, "
    "recorded_at, status, source, clause_number, \"check\", customer_compensation, party_fine, "
    "points, repeat_no, multiplier, dismiss_reason) VALUES (1, 1, 1, 1, 1, '', "
    "'2026-11-01 00:00:00', 'confirmed', 'manual', '1', '', 0, 500, 0, 1, 1, '')"),
    ("INSERT INTO rulings (id, case_id, officer_id, rationale, total_amount, fine_total, "
    "compensation_total, points_total, ruled_at, status, required_role, approval_meaning, "
    "declined_reason, supersede_reason) VALUES (7, 1, 1, 'r', 500, 500, 0, 0, "
    "'2026-11-01 00:00:00', 'effective', 'cs_officer', '', '', '')"),
    ("INSERT INTO responsibility_shares (id, ruling_id, party_id, percent, employee_no, "
    "employee_name, fine, compensation, points, serious_points, override_reason) VALUES "
    "(1, 7, 1, 70, '', '', 350, 0, 0, 0, ''), (2, 7, 2, 30, 'E1', '钱晓', 150, 0, 0, 0, '')"),
    ("INSERT INTO penalties (id, ruling_id, share_id, case_id, party_id, amount, fine, "
    "compensation, points, serious_points, active, created_at) VALUES "
    "(1, 7, 2, 1, 2, 150, 150, 0, 0, 0, true, '2026-11-01 00:00:00'), "
    "(2, 7, 2, 1, 2, 150, 150, 0, 0, 0, false, '2026-11-01 00:00:00')"),
    ("INSERT INTO hr_notices (id, penalty_id, case_id, department_id, employee_no, "
    "employee_name, amount, rationale, status, acknowledged_at, acknowledged_by_id, "
    "action_taken, actioned_at, actioned_by_id, version, created_at) VALUES "
    "(1, 1, 1, 2, 'E1', '钱晓', 150, 'r', 'sent', NULL, NULL, '', NULL, NULL, 1, "
    "'2026-11-01 00:00:00'), "
    "(2, 2, 1, 2, 'E1', '钱晓', 150, 'r', 'actioned', '2026-11-02 00:00:00', 1, '书面警告', "
    "'2026-11-03 00:00:00', 1, 3, '2026-11-01 00:00:00')"),
]


def test_notices_already_sent_keep_their_state_through_the_migration(alembic_runner,
                                                                     alembic_engine):  # noqa: F811
    alembic_runner.migrate_up_to(BEFORE)
    with alembic_engine.begin() as conn:
        for sql in ROWS:
            conn.execute(text(sql))
    alembic_runner.migrate_up_one()
    with alembic_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, action_kind, percent, clauses_json "
                                 "FROM hr_notices ORDER BY id")).all()
        events = conn.execute(text("SELECT notice_id, kind, ref, actor_name FROM "
                                   "hr_notice_events ORDER BY notice_id, id")).all()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (1, "new", None, 30), (2, "action_recorded", "other", 30)]
    assert json.loads(rows[0][4]) == [{"label": "CAR-DLV v1 §1", "title_zh": "虚假签收反馈",
                                       "title_en": "False feedback"}]
    assert [tuple(e) for e in events] == [
        (1, "sent", "R-000007", ""), (2, "sent", "R-000007", ""),
        (2, "acknowledged", "", "人事 赵"), (2, "action_recorded", "", "人事 赵")]
    alembic_runner.migrate_down_one()
    with alembic_engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM hr_notices ORDER BY id")).scalars().all() \
            == ["sent", "actioned"]
