"""Demo training: a mandatory online course on the carrier standard (some passed, some failed,
some overdue), an offline course for internal departments (one session held, one to come) and
an open course anyone may take."""
from __future__ import annotations

from datetime import timedelta

from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.timeutil import frozen_time, local_today
from portal.training import assignments, courses, quiz, sessions

LESSONS = [
    ("虚假签收与签收反馈", "False delivery feedback", """\
## 为什么重要

客户没有收到包裹，系统却显示**已签收**，是投诉量最大、客户最愤怒的一类问题。

## 规则要点

- 未经客户本人或其授权人签收，**不得**在系统中反馈签收；
- 代签必须在 **30 分钟内**短信告知客户代签人与存放位置；
- 每发生一次虚假签收反馈，罚款 **¥500**。

> 判责时客服会调取通话录音、签收照片和系统轨迹，请如实反馈。
"""),
    ("时效与延误赔付", "Delivery times and late compensation", """\
## 延误赔付阶梯

| 延误天数 | 给客户的补偿 |
|:--|--:|
| 1 天 | ¥5 |
| 2 天 | ¥10 |
| 3 天及以上 | 免单 |

1. 以承诺送达日为准计算延误；
2. 补偿由责任配送公司承担，在罚单中列示。
"""),
    ("客服请求响应", "Answering CS requests", """\
## 两小时响应

客服通过系统发出的催单、核实请求，配送公司须在 **2 小时内**回复。超时按条款处罚。

- 工作时间外的请求，自次日 8:00 起计时；
- 回复须包含处理结果或明确的处理时限。
"""),
]

QUESTIONS = [
    ("single", "未经客户签收就在系统中反馈签收，每次罚款多少？",
     "What is the fine for each false delivery feedback?",
     [("¥500", "¥500", True), ("¥50", "¥50", False), ("¥100", "¥100", False),
      ("不罚款，只警告", "No fine, a warning", False)]),
    ("single", "包裹延误 2 天，客户获得多少补偿？", "A parcel is 2 days late: what does the customer get?",
     [("¥10", "¥10", True), ("¥5", "¥5", False), ("免单", "Free of charge", False)]),
    ("single", "客服催单须在多长时间内回复？", "How soon must a CS request be answered?",
     [("2 小时", "2 hours", True), ("24 小时", "24 hours", False), ("30 分钟", "30 minutes", False)]),
    ("multiple", "代签后短信告知客户时，必须包含哪些信息？",
     "When a parcel is signed for by someone else, the SMS to the customer must state:",
     [("代签人", "who signed", True), ("包裹存放位置", "where the parcel is", True),
      ("配送员工号", "the courier's staff number", False), ("客户订单金额", "the order value", False)]),
    ("multiple", "以下哪些属于虚假签收反馈？", "Which of these are false delivery feedback?",
     [("客户未收到即反馈签收", "Reporting delivery before the customer has it", True),
      ("未经授权由门卫代签且未告知客户", "Unauthorised doorman signature, customer not told", True),
      ("客户本人签收后反馈签收", "Reporting delivery after the customer signed", False)]),
    ("true_false", "延误 3 天及以上的订单，客户可以免单。",
     "An order 3 or more days late is free of charge for the customer.", True),
    ("true_false", "工作时间外的客服请求，从发出时立即开始计时。",
     "A CS request sent out of hours is timed from the moment it is sent.", False),
    ("true_false", "判责时客服会调取通话录音和签收照片核实。",
     "CS checks call recordings and delivery photos when ruling.", True),
]


def _question(course, kind, zh, en, options):
    if kind == "true_false":
        courses.save_question(course, kind=kind, text_zh=zh, text_en=en,
                              options=[("", "", options)])
    else:
        courses.save_question(course, kind=kind, text_zh=zh, text_en=en, options=options)


def _sit(course, user, *, right: bool, at):
    """``user`` takes the quiz at ``at``, answering everything right or everything wrong."""
    with frozen_time(at), acting_as(user):
        task = assignments.task_of(course, user)
        attempt = quiz.start_attempt(course, task, user)
        answers = {}
        for i, item in enumerate(quiz.paper_items(attempt, reveal=True)):
            wrong = [j for j in range(len(item.options)) if j not in item.right]
            answers[str(i)] = item.right if right else wrong[:1]
        quiz.submit_attempt(attempt, answers, user)


def load_training(users, start) -> None:
    admin, supervisor = users["admin"], users["supervisor"]
    with frozen_time(start + timedelta(days=30)), acting_as(supervisor):
        dlv = courses.create_course(
            code="TRN-CAR-DLV", title_zh="配送公司服务标准培训", title_en="Carrier service standard training",
            summary="配送公司客服与配送员必培课程：虚假签收、时效赔付、客服响应。",
            kind="mandatory", mode="online", standard_codes="CAR-DLV", validity_months=12,
            questions_per_attempt=5, pass_mark=80, max_attempts=3, cooldown_minutes=30,
            due_days=14, author=supervisor)
        for zh, en, body in LESSONS:
            courses.save_lesson(dlv, title_zh=zh, title_en=en, body=body)
        for kind, zh, en, options in QUESTIONS:
            _question(dlv, kind, zh, en, options)
        courses.publish_course(dlv, supervisor)
        assignments.assign_course(dlv, due_on=local_today() + timedelta(days=14),
                                  kinds=["carrier"], note="新版配送标准上线前全员必培",
                                  user=supervisor)

        promo = courses.create_course(
            code="TRN-PROMO", title_zh="促销活动审核流程线下培训",
            title_en="Promotion review procedure (classroom)",
            summary="内部部门线下课程：促销上线前的客服审核流程与常见错误。", kind="mandatory",
            mode="offline", standard_codes="INT-PROMO", validity_months=24,
            questions_per_attempt=0, due_days=30, author=supervisor)
        courses.save_lesson(promo, title_zh="课前阅读", title_en="Before the session",
                            body="请提前阅读 **INT-PROMO** 标准全文，并带上近期的一个促销方案。")
        courses.publish_course(promo, supervisor)
        assignments.assign_course(promo, due_on=local_today() + timedelta(days=45),
                                  kinds=["department"], user=supervisor)
        held = sessions.schedule_session(
            promo, starts_at=utcnow() + timedelta(days=20, hours=2),
            ends_at=utcnow() + timedelta(days=20, hours=4), place="总部 A 座 12 楼培训室",
            capacity=20, trainer="李娜")
        sessions.enrol(held, users["promo.mgr"], by=supervisor)

        etiquette = courses.create_course(
            code="TRN-ETIQ", title_zh="客户沟通礼仪（公开课）",
            title_en="Talking to customers (open course)",
            summary="所有人可选修：电话与在线沟通的基本礼仪。", kind="open", mode="online",
            questions_per_attempt=2, pass_mark=50, validity_months=None, author=supervisor)
        courses.save_lesson(etiquette, title_zh="电话礼仪", title_en="On the phone",
                            body="1. 先自报部门与姓名\n2. 复述客户诉求\n3. 告知处理时限")
        courses.save_question(etiquette, kind="true_false", text_zh="接听电话时应先自报部门与姓名。",
                              text_en="Answer the phone with your department and name.",
                              options=[("", "", True)])
        courses.save_question(etiquette, kind="true_false", text_zh="无需告知客户处理时限。",
                              text_en="There is no need to tell the customer when it will be done.",
                              options=[("", "", False)])
        courses.publish_course(etiquette, supervisor)

    # the classroom session took place; attendance recorded by CS
    with frozen_time(start + timedelta(days=50, hours=3)), acting_as(users["officer"]):
        sessions.record_attendance(held, users["promo.mgr"], True, by=users["officer"])
    # the carriers' course: one passed, one failed once then passed, one failed
    _sit(dlv, users["sf.zhou"], right=True, at=start + timedelta(days=33))
    _sit(dlv, users["zto.sun"], right=False, at=start + timedelta(days=35))
    _sit(dlv, users["zto.sun"], right=True, at=start + timedelta(days=36))
    _sit(dlv, users["yto.ma"], right=False, at=utcnow() - timedelta(hours=2))
    with acting_as(admin):
        assignments.enrol_by_choice(etiquette, users["m001.he"])
    with acting_as(supervisor):
        sessions.schedule_session(
            promo, starts_at=utcnow() + timedelta(days=10, hours=1),
            ends_at=utcnow() + timedelta(days=10, hours=3), place="总部 A 座 12 楼培训室",
            capacity=2, trainer="李娜")
