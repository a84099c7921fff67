"""Demo complaint tickets and shipment volumes: the last two months, imported as a file would
be, so the review queue, the follow-up queue and the import page have something to show."""
from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.timeutil import zone
from portal.intake import services
from portal.intake.fields import TICKET_NAMES
from portal.intake.models import BatchKind, BatchSource

CARRIERS = ["C001", "C002", "C003", "C004", "C005", "C006"]
MERCHANTS = ["M001", "M002", "M003", "M004"]
TEXTS = ["客户称未收到包裹但系统显示已签收，要求核实", "配送超时，客户多次催促", "催单两小时未回复",
         "快递员态度恶劣，拒绝送货上门", "包裹外箱破损，商品受损", "预约时间未上门"]
FMT = "%Y-%m-%d %H:%M"


def ticket_rows(rng: random.Random, n: int = 360) -> list[dict]:
    tz = zone("Asia/Shanghai")
    now = utcnow().astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    rows = []
    for i in range(n):
        opened = now - timedelta(minutes=rng.randrange(60 * 24, 60 * 24 * 60))
        promised = opened - timedelta(hours=rng.randrange(0, 48))
        kind = rng.random()
        delivered = promised - timedelta(hours=rng.randrange(1, 20))
        carrier_signed, customer_signed = "1", "1"
        if kind < 0.12:
            delivered = promised + timedelta(hours=rng.choice([8, 30, 54, 80]))
        elif kind < 0.16:
            customer_signed = "0"
        asked = rng.random() < 0.3
        request = opened + timedelta(minutes=rng.randrange(5, 240))
        answer = request + timedelta(minutes=rng.randrange(125, 300) if rng.random() < 0.2
                                     else rng.randrange(5, 100))
        rows.append({
            "ticket_no": f"TK{opened:%y%m%d}{i:04d}", "order_no": f"O{rng.randrange(10**10):010d}",
            "carrier_code": rng.choice(CARRIERS), "merchant_code": rng.choice(MERCHANTS),
            "category": rng.choice(["delay", "false_feedback", "no_response", "attitude"]),
            "order_value": f"{rng.randrange(1500, 90000) / 100:.2f}",
            "opened_at": opened.strftime(FMT), "promised_at": promised.strftime(FMT),
            "delivered_at": delivered.strftime(FMT), "carrier_signed": carrier_signed,
            "customer_signed": customer_signed, "proxy_signed": "0",
            "cs_request_at": request.strftime(FMT) if asked else "",
            "responded_at": answer.strftime(FMT) if asked and answer < now else "",
            "text": rng.choice(TEXTS)})
    for i in range(24):   # not delivered, past the promised time: the follow-up queue
        promised = now - timedelta(hours=rng.randrange(6, 24 * 6))
        rows.append({"ticket_no": f"TK-LATE-{i:03d}", "order_no": f"O{rng.randrange(10**10):010d}",
                     "carrier_code": rng.choice(CARRIERS), "merchant_code": rng.choice(MERCHANTS),
                     "category": "delay", "order_value": f"{rng.randrange(1500, 40000) / 100:.2f}",
                     "opened_at": (promised - timedelta(hours=30)).strftime(FMT),
                     "promised_at": promised.strftime(FMT), "text": "包裹超过承诺时间仍未送达"})
    return rows


def volume_rows(rng: random.Random, days: int = 60) -> list[dict]:
    today = utcnow().astimezone(zone("Asia/Shanghai")).date()
    return [{"party_code": code, "day": (today - timedelta(days=d)).isoformat(),
             "orders": rng.randrange(800, 6000)}
            for code in CARRIERS + MERCHANTS for d in range(1, days + 1)]


def _csv(rows: list[dict], names: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def load_tickets(user, rng: random.Random) -> dict:
    with acting_as(user):
        tickets = services.run_import(_csv(ticket_rows(rng), TICKET_NAMES), "demo-tickets.csv",
                                      BatchKind.TICKETS, BatchSource.CLI, user=user)
        services.run_import(_csv(volume_rows(rng), ["party_code", "day", "orders"]),
                            "demo-volumes.csv", BatchKind.VOLUMES, BatchSource.CLI, user=user)
    return {"tickets": tickets.created, "proposed": tickets.violations}
