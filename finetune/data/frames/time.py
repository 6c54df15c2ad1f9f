"""Frames for PyPI `mcp-server-time` (get_current_time, convert_time); results computed with zoneinfo."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import clock, zone

SERVER = "time"

FRAMES: dict[str, list[Frame]] = {
    "get_current_time": [
        ask(
            [
                "What time is it in {timezone}?",
                "what's the time in {timezone} right now",
                "Is it still morning in {timezone}?",
                "I need to call a client in {timezone}. What's the local time there?",
                "current local time, {timezone}",
                "My sister lives in {timezone} — would she be awake now?",
                "Before I ping the team in {timezone}: what time is it over there?",
                "My flight lands in {timezone} soon. What's the local time there?",
                "A customer from {timezone} just wrote in. Is it the middle of the night for them?",
                "time in {timezone} pls",
            ],
            timezone=zone,
        ),
    ],
    "convert_time": [
        ask(
            [
                "If it's {time} in {source_timezone}, what time is it in {target_timezone}?",
                "Convert {time} {source_timezone} time to {target_timezone}.",
                "Our standup is at {time} in {source_timezone}. When is that for someone in {target_timezone}?",
                "{time} {source_timezone} -> {target_timezone}?",
                "The webinar starts {time} {source_timezone} time; what's that in {target_timezone}?",
                "The deadline is {time} here in {source_timezone}. My reviewer sits in {target_timezone} — what time "
                "will it be for her?",
                "I land in {target_timezone} at {time} {source_timezone} time. What does the clock say there then?",
            ],
            time=clock,
            source_timezone=zone,
            target_timezone=zone,
        ),
    ],
}


def _moment(rng: random.Random) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(365 * 24 * 60))


def _at(zone_name: str, when: datetime) -> dict[str, Any]:
    local = when.astimezone(ZoneInfo(zone_name))
    return {
        "timezone": zone_name,
        "datetime": local.isoformat(timespec="seconds"),
        "day_of_week": local.strftime("%A"),
        "is_dst": bool(local.dst()),
    }


def _now(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    result = _at(args["timezone"], _moment(rng))
    local = datetime.fromisoformat(result["datetime"])
    answer = f"It's {local:%H:%M} on {result['day_of_week']} in {args['timezone']}."
    return json.dumps(result, indent=2), answer


def _convert(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    hour, minute = map(int, args["time"].split(":"))
    src_zone, dst_zone = ZoneInfo(args["source_timezone"]), ZoneInfo(args["target_timezone"])
    day = _moment(rng).astimezone(src_zone)
    src = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    dst = src.astimezone(dst_zone)
    hours = (dst.utcoffset() - src.utcoffset()).total_seconds() / 3600  # type: ignore[operator]
    result = {
        "source": _at(args["source_timezone"], src),
        "target": _at(args["target_timezone"], dst),
        "time_difference": f"{hours:+.1f}h",
    }
    answer = f"{args['time']} in {args['source_timezone']} is {dst:%H:%M} in {args['target_timezone']} ({hours:+g} h)."
    return json.dumps(result, indent=2), answer


REPLIES: dict[str, Reply] = {"get_current_time": _now, "convert_time": _convert}
