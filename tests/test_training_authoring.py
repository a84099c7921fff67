"""Ad-hoc checks of the CS training pages (not part of the suite)."""
import io
import re

from PIL import Image

from tests.factories import PASSWORD, build_training, build_world
from tests.helpers import english, row_counts


def _world(app):
    with app.test_request_context():
        build_world(with_case=False)
        return build_training()


def _admin(make_browser):
    b = make_browser()
    b.login("cs.admin", PASSWORD)
    english(b)
    return b


def _png():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buf, "PNG")
    return buf.getvalue()


def test_bad_inputs_show_a_message_and_change_nothing(app, make_browser):
    ids = _world(app)
    b = _admin(make_browser)
    cid = ids["course"]
    cases = [
        ("/training/courses/new", {"code": "TRN-X", "title_zh": "某", "kind": "mandatory",
                                   "mode": "online", "pass_mark": "150",
                                   "questions_per_attempt": "1", "max_attempts": "3",
                                   "cooldown_minutes": "0", "due_days": "30"},
         "Must be a whole number from 1 to 100."),
        ("/training/courses/new", {"code": "TRN-X", "title_zh": "某", "kind": "mandatory",
                                   "mode": "online", "pass_mark": "80", "standard_codes": "ZZZ",
                                   "questions_per_attempt": "1", "max_attempts": "3",
                                   "cooldown_minutes": "0", "due_days": "30"},
         "No standard with code ZZZ."),
        ("/training/courses/new", {"code": "TRN-X", "title_zh": "某", "kind": "mandatory",
                                   "mode": "online", "pass_mark": "abc"}, "Not a valid integer"),
        (f"/training/courses/{cid}/questions/new",
         {"kind": "single", "text_zh": "题", "rows-0-text_zh": "a", "rows-0-correct": "y",
          "rows-1-text_zh": "b", "rows-1-correct": "y"}, "exactly one right option"),
        (f"/training/courses/{cid}/assign", {"due_on": "2099-01-01", "party_codes": "X99"},
         "No party with code X99."),
        (f"/training/courses/{cid}/assign", {"due_on": "2000-01-01", "kinds": "carrier"},
         "cannot be in the past"),
        (f"/training/courses/{ids['offline_course']}/sessions/new",
         {"starts_at": "2099-01-01T10:00", "ends_at": "2099-01-01T09:00", "place": "x",
          "capacity": "5"}, "must end after it starts"),
        (f"/training/courses/{ids['offline_course']}/sessions/new",
         {"starts_at": "2099-01-01T10:00", "ends_at": "2099-01-01T12:00", "place": "x",
          "capacity": "0"}, "Capacity must be 1 to 10,000"),
        (f"/training/sessions/{ids['session']}/enrol", {"username": "ghost"},
         "No active user with the username ghost."),
        (f"/training/sessions/{ids['session']}/cancel", {"reason": " "},
         "Give the reason for cancelling"),
        (f"/training/certificates/{ids['certificate']}/revoke", {"reason": ""},
         "Give the reason for revoking"),
    ]
    for url, data, message in cases:
        before = row_counts(app)
        resp = b.post(url, data)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, (url, resp.status_code)
        assert message in page, (url, message, re.findall(r'class="error">([^<]+)', page))
        assert row_counts(app) == before, url


def test_an_image_that_is_not_one_is_refused_beside_the_field(app, make_browser):
    ids = _world(app)
    b = _admin(make_browser)
    before = row_counts(app)
    resp = b.post(f"/training/courses/{ids['course']}/lessons/new",
                  {"title_zh": "课", "body": "text kept", "upload": "Upload image",
                   "image": (io.BytesIO(b"not an image"), "x.png")},
                  content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "is not an image the portal can show" in page
    assert "text kept" in page and row_counts(app) == before
    resp = b.post(f"/training/courses/{ids['course']}/lessons/new",
                  {"title_zh": "课", "body": "text kept", "upload": "Upload image",
                   "image": (io.BytesIO(_png()), "dot.png")},
                  content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    key = re.search(r"!\[dot\]\(/files/([\w-]+)\)", page).group(1)
    assert resp.status_code == 200 and "text kept" in page
    img = b.get(f"/files/{key}")
    assert img.status_code == 200 and img.mimetype == "image/png"
    assert img.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in img.headers["Cache-Control"]
    again = b.client.get(f"/files/{key}", headers={"If-None-Match": img.headers["ETag"]})
    assert again.status_code == 304
    # save the lesson: it renders the image
    resp = b.post(f"/training/courses/{ids['course']}/lessons/new",
                  {"title_zh": "课二", "body": f"# T\n\n![dot](/files/{key})"})
    assert resp.status_code == 302
    page = b.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'<img src="/files/{key}" alt="dot">' in page


def test_a_file_level_import_error_changes_nothing_and_bad_rows_are_listed(app, make_browser):
    ids = _world(app)
    b = _admin(make_browser)
    before = row_counts(app)
    resp = b.post(f"/training/sessions/{ids['session']}/attendance",
                  {"file": (io.BytesIO(b"name,present\nstaff.a,yes\n"), "a.csv")},
                  content_type="multipart/form-data")
    assert resp.status_code == 400 and "must name the columns" in resp.get_data(as_text=True)
    assert row_counts(app) == before
    resp = b.post(f"/training/sessions/{ids['session']}/attendance",
                  {"file": (io.BytesIO(b"username,attended\nstaff.a,yes\nghost,yes\n"), "a.csv")},
                  content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Line 2:" in page and "Line 3: no user ghost" in page  # session not started yet


def test_a_stale_edit_is_refused(app, make_browser):
    ids = _world(app)
    b = _admin(make_browser)
    page = b.get(f"/training/courses/{ids['course']}/edit").get_data(as_text=True)
    lock = re.search(r'name="lock" type="hidden" value="(\d+)"', page) or \
        re.search(r'id="lock" name="lock" type="hidden" value="(\d+)"', page)
    assert lock
    data = {"title_zh": "改", "kind": "mandatory", "mode": "online", "standard_codes": "CAR-DLV",
            "questions_per_attempt": "1", "pass_mark": "100", "max_attempts": "3",
            "cooldown_minutes": "0", "due_days": "30", "validity_months": "12",
            "lock": str(int(lock.group(1)) - 1)}
    resp = b.post(f"/training/courses/{ids['course']}/edit", data)
    assert resp.status_code == 400 and "Someone else changed this course" in \
        resp.get_data(as_text=True)
    data["lock"] = lock.group(1)
    assert b.post(f"/training/courses/{ids['course']}/edit", data).status_code == 302


def test_read_only_staff_see_courses_without_buttons(app, make_browser):
    ids = _world(app)
    b = make_browser()
    b.login("auditor", PASSWORD)
    english(b)
    page = b.get(f"/training/courses/{ids['course']}").get_data(as_text=True)
    assert "Edit" not in page and "Archive" not in page and "Lessons" in page
    assert b.get("/training/courses").status_code == 200
