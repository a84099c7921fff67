"""The JSON API for other systems (/api/v1) and the page where CS admins manage its tokens."""
