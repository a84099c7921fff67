from datetime import date

import pytest
from sqlalchemy import select

from portal.core.errors import ServiceError
from portal.extensions import db
from portal.standards import services
from portal.standards.models import Clause, ImmutableVersionError, StandardVersion, VersionStatus
from tests.factories import build_world


def test_a_published_version_never_changes(app):
    with app.test_request_context():
        world = build_world(with_case=False)
        v = db.session.get(StandardVersion, world.version)
        with pytest.raises(ServiceError):
            services.add_clause(v, number="9", title_zh="新条款", body="x")
        clause = db.session.get(Clause, world.clause)
        clause.body = "改过的正文"
        with pytest.raises(ImmutableVersionError):
            db.session.flush()
        db.session.rollback()
        v = db.session.get(StandardVersion, world.version)
        v.effective_from = date(2030, 1, 1)
        with pytest.raises(ImmutableVersionError):
            db.session.flush()
        db.session.rollback()


def test_a_new_version_supersedes_the_old_one(app):
    with app.test_request_context():
        world = build_world(with_case=False)
        v1 = db.session.get(StandardVersion, world.version)
        draft = services.new_draft(v1.standard, date(2026, 12, 1), "措辞修订")
        db.session.flush()
        assert [c.number for c in draft.clauses] == ["1", "2"]
        services.add_clause(draft, number="3", title_zh="代签短信", body="代签须短信告知。")
        db.session.flush()
        services.publish_version(draft, None)
        db.session.commit()
        assert v1.status is VersionStatus.SUPERSEDED
        assert draft.status is VersionStatus.PUBLISHED and draft.number == 2
        assert draft.text_hash != v1.text_hash


def test_the_shipped_rulebook_loads_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["standards", "load"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    with app.app_context():
        count = db.session.scalar(select(db.func.count()).select_from(StandardVersion))
    second = runner.invoke(args=["standards", "load"])
    assert second.exit_code == 0, second.output
    assert "created" not in second.output and "updated" not in second.output
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(StandardVersion)) == count


def test_a_malformed_standard_file_is_rejected_with_file_and_line(app, tmp_path):
    (tmp_path / "bad.toml").write_text(
        'code = "BAD-ONE"\ntitle_zh = "坏文件"\naudience = ["carrier"]\n'
        'effective_from = "2026-01-01"\n\n[[clauses]]\nnumber = "1"\ntitle_zh = "条款"\n'
        'body_zh = "正文"\nfine = "abc"\n', encoding="utf-8")
    (tmp_path / "broken.toml").write_text('code = "X\n', encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["standards", "load", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.toml:7: clause 1: 罚款须为以元计的金额" in result.output  # CLI speaks zh_CN
    assert "broken.toml:1" in result.output
    with app.app_context():
        assert db.session.scalar(select(StandardVersion.id)) is None
