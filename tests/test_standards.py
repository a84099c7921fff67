from datetime import date

import pytest
from sqlalchemy import select

from portal.core.errors import ServiceError
from portal.core.timeutil import local_today
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
        draft = services.new_draft(v1.standard, local_today(), "措辞修订")
        db.session.flush()
        assert [c.number for c in draft.clauses] == ["1", "2"]
        services.add_clause(draft, number="3", title_zh="代签短信", body="代签须短信告知。")
        db.session.flush()
        services.publish_version(draft, None, review_skipped="test")
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
    assert "bad.toml:7: 条款 1：罚款须为以元计的金额" in result.output  # CLI speaks zh_CN
    assert "broken.toml:1: 不是有效的 TOML" in result.output
    with app.app_context():
        assert db.session.scalar(select(StandardVersion.id)) is None


def test_a_rulebook_file_can_name_parties_and_a_changed_audience_updates_without_a_version(
        app, tmp_path):
    from portal.standards.models import Standard

    with app.test_request_context():
        build_world(with_case=False)
    body = ('code = "MER-VIP"\ntitle_zh = "重点商家标准"\naudience = []\nparties = [{parties}]\n'
            'effective_from = "2026-01-01"\n\n[[clauses]]\nnumber = "1"\ntitle_zh = "条款"\n'
            'body_zh = "正文"\nfine = "100"\n')
    path = tmp_path / "vip.toml"
    path.write_text(body.format(parties='"M001"'), encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["standards", "load", str(tmp_path), "--owner", "cs.supervisor"])
    assert result.exit_code == 0 and "created" in result.output, result.output
    path.write_text(body.format(parties='"M001", "W001"'), encoding="utf-8")
    result = runner.invoke(args=["standards", "load", str(tmp_path)])
    assert "updated   vip.toml" in result.output, result.output
    assert "unchanged vip.toml" in runner.invoke(args=["standards", "load", str(tmp_path)]).output
    with app.app_context():
        std = db.session.scalar(select(Standard).where(Standard.code == "MER-VIP"))
        assert [p.code for p in std.audience_parties] == ["M001", "W001"]
        assert len(std.versions) == 1 and std.owner.username == "cs.supervisor"
    path.write_text(body.format(parties='"M001"').replace('audience = []', 'audience = "merchant"'),
                    encoding="utf-8")
    result = runner.invoke(args=["standards", "load", str(tmp_path)])
    assert result.exit_code == 1 and "vip.toml:3: audience 必须是字符串列表" in \
        result.output


def _draft(b):
    resp = b.post("/standards/new", {"code": "MER-NEW", "title_zh": "商家新标准",
                                     "audience": ["merchant"], "effective_from": "2026-01-01"})
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _signed_in_admin(app, make_browser):
    from tests.factories import PASSWORD, username
    from tests.helpers import english

    with app.test_request_context():
        build_world(with_case=False)
    b = make_browser()
    b.login(username("cs_admin"), PASSWORD)
    english(b)
    return b


def test_a_clause_takes_structured_rules_from_the_form(app, make_browser):
    b = _signed_in_admin(app, make_browser)
    vid = _draft(b)
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "3", "title_zh": "客服请求两小时响应", "body": "2 小时内回复。",
        "rules": '[[rules]]\nkind = "time_limit"\nlimit_minutes = 120\namount = "50"\n\n'
                 '[[rules]]\nkind = "points"\npoints = 2\n'})
    assert resp.status_code == 302
    page = b.get(f"/standards/versions/{vid}").get_data(as_text=True)
    assert "Must be done within 2 hours; each breach fines the party ¥50.00." in page
    assert "2 points per occurrence." in page


@pytest.mark.parametrize("rules, message", [
    ('[[rules]]\nkind = "time_limit"\nlimit_minutes = \n', "Not valid TOML"),
    ('kind = "points"\n', "Write each rule as a [[rules]] table."),
    ('[[rules]]\nkind = "points"\npoints = 0\n', "Points must be from 1 to 100."),
])
def test_bad_rules_in_the_form_are_refused(app, make_browser, rules, message):
    from tests.helpers import row_counts

    b = _signed_in_admin(app, make_browser)
    vid = _draft(b)
    before = row_counts(app)
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "1", "title_zh": "条款", "body": "正文", "rules": rules})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert row_counts(app) == before
