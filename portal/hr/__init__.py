"""HR penalty notices (HR 处罚通知) for internal employees."""
