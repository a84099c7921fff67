"""Versions go draft -> in review -> approved -> published, with four eyes and no lost updates."""
from __future__ import annotations

import re

import pytest

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.standards.models import StandardVersion, VersionStatus
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english, row_counts


@pytest.fixture
def world(app):
    with app.test_request_context():
        return build_world(with_case=False)


def browser_for(make_browser, who):
    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b


def today() -> str:
    return local_today().isoformat()


def new_version(b, world, effective: str | None = None) -> int:
    resp = b.post(f"/standards/{world.standard}/drafts", {
        "effective_from": effective or today(), "change_note": "新增代签短信条款",
        "material": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    vid = int(resp.headers["Location"].rsplit("/", 1)[1])
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "3", "title_zh": "代签短信告知", "body": "代签后 30 分钟内短信告知。",
        "fine": "20"})
    assert resp.status_code == 302
    return vid


def status(app, vid) -> VersionStatus:
    with app.app_context():
        return db.session.get(StandardVersion, vid).status


def test_author_cannot_approve_their_own_version(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    assert admin.post(f"/standards/versions/{vid}/submit").status_code == 302
    before = row_counts(app)
    resp = admin.post(f"/standards/versions/{vid}/approve", follow_redirects=True)
    assert "Four eyes: the reviewer must be a different person" in resp.get_data(as_text=True)
    assert status(app, vid) is VersionStatus.IN_REVIEW
    assert row_counts(app) == before


def test_a_version_cannot_be_published_without_approval(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    resp = admin.post(f"/standards/versions/{vid}/publish", follow_redirects=True)
    assert "must be approved by a second person" in resp.get_data(as_text=True)
    assert status(app, vid) is VersionStatus.DRAFT


def test_review_approve_publish_supersedes_the_old_version(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    admin.post(f"/standards/versions/{vid}/submit")
    # in review the text is frozen
    resp = admin.post(f"/standards/versions/{vid}/clauses", {
        "number": "4", "title_zh": "新条款", "body": "正文"})
    assert resp.status_code == 400 and "Only a draft can be edited" in resp.get_data(as_text=True)
    supervisor = browser_for(make_browser, "cs_supervisor")
    supervisor.post(f"/standards/versions/{vid}/approve")
    assert status(app, vid) is VersionStatus.APPROVED
    supervisor.post(f"/standards/versions/{vid}/publish")
    assert status(app, vid) is VersionStatus.PUBLISHED
    assert status(app, world.version) is VersionStatus.SUPERSEDED
    with app.app_context():
        v = db.session.get(StandardVersion, vid)
        assert v.approved_by.username == "cs.supervisor" and v.author.username == "cs.admin"


def test_a_rejection_needs_a_reason_and_returns_the_draft(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    admin.post(f"/standards/versions/{vid}/submit")
    supervisor = browser_for(make_browser, "cs_supervisor")
    before = row_counts(app)
    resp = supervisor.post(f"/standards/versions/{vid}/reject", {"reason": ""})
    assert resp.status_code == 400 and "This field is required." in resp.get_data(as_text=True)
    assert row_counts(app) == before
    supervisor.post(f"/standards/versions/{vid}/reject", {"reason": "条款 3 缺少短信话术原文"})
    assert status(app, vid) is VersionStatus.DRAFT
    page = admin.get(f"/standards/versions/{vid}").get_data(as_text=True)
    assert "Sent back by the reviewer: 条款 3 缺少短信话术原文" in page


def test_two_reviewers_at_once_one_wins_the_other_is_told(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    admin.post(f"/standards/versions/{vid}/submit")
    first, second = browser_for(make_browser, "cs_supervisor"), make_browser()
    with app.test_request_context():
        from portal.accounts.services import create_user
        from portal.core.permissions import Role

        create_user(username="supervisor.two", display_name="主管二", password=PASSWORD,
                    role=Role.CS_SUPERVISOR)
        db.session.commit()
    second.login("supervisor.two", PASSWORD)
    english(second)
    page_a = first.get(f"/standards/versions/{vid}").get_data(as_text=True)
    page_b = second.get(f"/standards/versions/{vid}").get_data(as_text=True)
    lock_a = re.search(r'name="lock" type="hidden" value="(\d+)"', page_a).group(1)
    lock_b = re.search(r'name="lock" type="hidden" value="(\d+)"', page_b).group(1)
    first.post(f"/standards/versions/{vid}/reject", {"reason": "请补充话术", "lock": lock_a})
    before = row_counts(app)
    resp = second.post(f"/standards/versions/{vid}/approve", {"lock": lock_b},
                       follow_redirects=True)
    assert "Someone else changed this version while you were looking at it" in \
        resp.get_data(as_text=True)
    assert status(app, vid) is VersionStatus.DRAFT
    assert row_counts(app) == before


def test_every_step_is_audited(app, world, make_browser):
    from sqlalchemy import select

    from portal.core.audit import AuditEvent

    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)
    admin.post(f"/standards/versions/{vid}/submit")
    supervisor = browser_for(make_browser, "cs_supervisor")
    supervisor.post(f"/standards/versions/{vid}/approve")
    supervisor.post(f"/standards/versions/{vid}/publish")
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_type == "standard_versions",
            AuditEvent.object_id == str(vid)).order_by(AuditEvent.id)).all()
    assert actions == ["standard_version.drafted", "standard_version.submitted",
                       "standard_version.approved", "standard_version.published",
                       "ack_campaign.opened"]


@pytest.mark.parametrize("material, still_acknowledged", [(True, False), (False, True)])
def test_only_a_material_change_asks_for_acknowledgement_again(
        app, world, make_browser, material, still_acknowledged):
    staff = browser_for(make_browser, "staff_a")
    assert staff.post(f"/standards/versions/{world.version}/acknowledge").status_code == 302
    admin = browser_for(make_browser, "cs_admin")
    data = {"effective_from": today(), "change_note": "改错别字"}
    if material:
        data["material"] = "y"
    vid = int(admin.post(f"/standards/{world.standard}/drafts", data)
              .headers["Location"].rsplit("/", 1)[1])
    admin.post(f"/standards/versions/{vid}/submit")
    supervisor = browser_for(make_browser, "cs_supervisor")
    supervisor.post(f"/standards/versions/{vid}/approve")
    supervisor.post(f"/standards/versions/{vid}/publish")
    to_read = staff.get("/standards/to-read").get_data(as_text=True)
    assert (f'href="/standards/versions/{vid}">Read' not in to_read) is still_acknowledged
    coverage = admin.get(f"/standards/versions/{vid}/coverage").get_data(as_text=True)
    done = "1" if still_acknowledged else "0"
    # staff.a, staff.b and carrier.manager are the carriers' staff
    assert f"<strong>{done} / 3</strong>" in coverage


def test_side_by_side_diff_shows_what_changed_clause_by_clause(app, world, make_browser):
    admin = browser_for(make_browser, "cs_admin")
    vid = new_version(admin, world)  # adds clause 3
    with app.test_request_context():
        from portal.standards.diff import diff_versions

        v1 = db.session.get(StandardVersion, world.version)
        v2 = db.session.get(StandardVersion, vid)
        rows = {r.number: r for r in diff_versions(v1, v2)}
    assert rows["1"].change == "same" and rows["3"].change == "added"
    page = admin.get(f"/standards/{world.standard}/diff?a={world.version}&b={vid}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<span class="ins">代签后 30 分钟内短信告知。</span>' in text
    assert "added" in text and "Fine of ¥20.00 on the party per occurrence." in text


def test_character_level_diff_of_chinese_text():
    from portal.standards.diff import _segments

    left, right = _segments("须在2小时内回复。", "须在4小时内回复。")
    assert ("del", "2") in left and ("ins", "4") in right
    assert "".join(t for _k, t in left) == "须在2小时内回复。"
